from __future__ import annotations

import io

from PIL import Image

from kyc.models import VerificationLevel
from kyc.services.compliance import client_level_set


def verify(user, level: str = "identity"):
    """Put a client at a verification level directly (tests of other capabilities that need a verified client)."""
    return client_level_set(user=user, level=VerificationLevel.objects.get(code=level))


def jpeg_bytes(width: int = 800, height: int = 600, color: str = "#336699") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
