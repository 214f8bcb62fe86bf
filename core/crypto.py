"""Encrypt short secrets at rest (for instance a trading password until its owner has seen it once)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    # A key of its own, derived from SECRET_KEY with a purpose label, so this never doubles as a signing key.
    digest = hashlib.sha256(b"core.crypto.v1:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Raises ValueError when the token was not made with this SECRET_KEY or was altered."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("The encrypted value cannot be read with this SECRET_KEY.") from None
