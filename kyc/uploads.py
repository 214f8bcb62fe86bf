"""Validation of KYC document uploads (identity documents, selfies, proofs of address) against hostile files.

`validate_upload` either returns a `ValidatedUpload` or raises `UploadRejected` with a message the client can act on.
What an accepted upload guarantees:

- Its size is within `KYC_UPLOAD_MIN_BYTES`..`KYC_UPLOAD_MAX_BYTES`; at most MAX_BYTES + 1 bytes are ever read, and
  the size is checked before anything is parsed.
- Its type was decided by its leading bytes alone: a JPEG, a PNG, or a PDF whose `%PDF-` header is at offset 0.
  `content_type`, `extension` and `storage_name` come from that type; the client's file name and declared type are
  never trusted, and the name is kept only as sanitised display text.
- It carries no second format: no PDF, ZIP, HTML, SVG, script or PHP signature anywhere in it, and nothing but
  padding after the end of the image or document (a PNG's IEND, a JPEG's end-of-image, a PDF's last `%%EOF`).
- An image was fully decoded by Pillow, has a single frame, and its dimensions (read from the header *before*
  decoding, so a decompression bomb never allocates its pixels) are within the side and pixel limits. Before Pillow
  sees it, its chunk or segment structure is walked with bounds on counts, so parsing cost stays proportional to
  what real files need.
- A PDF was parsed by pypdf, is not encrypted, has between 1 and `KYC_UPLOAD_MAX_PDF_PAGES` pages, and has no
  active content (JavaScript, launch or remote actions, form submission, attached files, rich media, XFA forms),
  checked both in the parsed object graph and, as a second opinion, in the raw bytes with `#xx` name escapes decoded.
- `content` is the bytes exactly as received; nothing is re-encoded, nothing is written to disk, and the result
  depends only on the input and the settings (apart from the random `storage_name`).

Serve stored files with the `content_type` recorded here, `X-Content-Type-Options: nosniff` and
`Content-Disposition: attachment`: these checks shrink what a hostile file can do but cannot prove it harmless.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from core.errors import ApplicationError

MIB = 1024 * 1024

DEFAULT_MAX_BYTES = 10 * MIB
# The smallest real document (a blank one-page PDF, a tiny flat PNG) is a few hundred bytes; below this it is noise.
DEFAULT_MIN_BYTES = 100
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 12_000
# Under 200 px a passport page or a face cannot be checked by a person, so asking again beats accepting it.
DEFAULT_MIN_SIDE = 200
DEFAULT_MAX_PDF_PAGES = 20

ACCEPTED_TYPES_MESSAGE = "We accept JPEG, PNG or PDF files."
FALLBACK_DISPLAY_NAME = "document"
MAX_DISPLAY_NAME_LENGTH = 100

# Extensions that mark an executable, a script or an active web document. A name carrying one anywhere ("x.pdf.exe",
# or "x.exe\0.pdf" once the NUL is stripped) is refused even though the name is never used: nobody uploads an ID
# card under such a name by accident. Extensions that double as web domains (com, app, pl, sh…) are left out because
# print-to-PDF names a saved page after its site, as in "mybank.com.pdf".
DANGEROUS_EXTENSIONS = frozenset(
    {
        "apk", "asp", "aspx", "bat", "cgi", "chm", "cmd", "cpl", "dll", "dmg", "exe", "hta", "htm", "html", "jar",
        "js", "jse", "jsp", "lnk", "mht", "mhtml", "msi", "php", "phtml", "pif", "ps1", "reg", "scr", "shtml", "svg",
        "svgz", "swf", "vbe", "vbs", "wsf", "wsh", "xhtml",
    }
)  # fmt: skip

# Pillow parses PNG chunks and JPEG segments in Python, so a 10 MB file of empty ones costs seconds per pass. Real files
# hold a handful of segments (plus one per 64 KiB of metadata), and IDAT chunks of 8 KiB or more, or one per row.
MAX_PNG_CHUNKS = 20_000
MAX_JPEG_SEGMENTS = 1_000
# A progressive JPEG re-walks the whole coefficient buffer once per scan, so thousands of tiny scans turn a small file
# into minutes of CPU. Real encoders write about a dozen.
MAX_JPEG_SCANS = 100
# Bounds the walk over a PDF's object graph; scanned documents and bank statements hold hundreds of objects.
MAX_PDF_OBJECTS = 100_000

_JPEG_SOI = b"\xff\xd8\xff"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PDF_HEADER = b"%PDF-"
# Bytes encoders and transfer tools pad files with; they can carry no content, so trailing runs of them are harmless.
_PADDING = b"\x00\xff \t\r\n"
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
# A JPEG marker: 0xFF, optionally a few more as fill, then the marker code. Encoders write no fill in practice; a long
# run is refused because Pillow skips fill one byte at a time in Python.
_JPEG_MARKER = re.compile(rb"\xff{1,16}([^\xff])")
# Inside entropy-coded data, FF00 is an escaped data byte and FFD0-FFD7 are restart markers; anything else ends it.
_JPEG_SCAN_END = re.compile(rb"\xff(?=[^\x00\xd0-\xd7])")
# Markup that browsers or script engines execute when they sniff a file; readers match it case-insensitively.
_ACTIVE_MARKUP = re.compile(rb"<(?:script|html|svg|\?php)", re.IGNORECASE)

# Keys and name values that make a PDF do something when opened or clicked, each with what the client is told.
_PDF_ACTIVE_NAMES: dict[str, str] = {
    "/JS": "scripts",
    "/JavaScript": "scripts",
    "/Launch": "actions that start other programs",
    "/GoToR": "links that open other files",
    "/GoToE": "links that open attached files",
    "/SubmitForm": "forms that send data",
    "/ImportData": "forms that load data",
    "/EmbeddedFiles": "attached files",
    "/EmbeddedFile": "attached files",
    "/RichMedia": "embedded media",
    "/XFA": "interactive XFA forms",
}
# A PDF name runs until whitespace (NUL included) or a delimiter.
_PDF_NAME_TOKEN = re.compile(rb"/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM_START = re.compile(rb"\bstream(?:\r\n|\n|\r)")
_PDF_STREAM_END = b"endstream"


class UploadRejected(ApplicationError):
    """The upload was refused; `message` tells the client what was wrong and what to do, and never names internals."""


@dataclass(frozen=True)
class ValidatedUpload:
    content: bytes
    content_type: str
    extension: str
    sha256: str
    size: int
    width: int | None
    height: int | None
    pages: int | None
    original_name: str
    storage_name: str


@dataclass(frozen=True)
class _Format:
    name: str  # also Pillow's name for the format, so Image.open is held to the detected one
    content_type: str
    extension: str
    noun: str


_JPEG = _Format("JPEG", "image/jpeg", ".jpg", "image")
_PNG = _Format("PNG", "image/png", ".png", "image")
_PDF = _Format("PDF", "application/pdf", ".pdf", "document")


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    min_bytes: int
    max_pixels: int
    max_side: int
    min_side: int
    max_pdf_pages: int

    @classmethod
    def from_settings(cls) -> _Limits:
        # Read on every call rather than at import, so an override (or pytest's `settings` fixture) takes effect.
        return cls(
            max_bytes=getattr(settings, "KYC_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES),
            min_bytes=getattr(settings, "KYC_UPLOAD_MIN_BYTES", DEFAULT_MIN_BYTES),
            max_pixels=getattr(settings, "KYC_UPLOAD_MAX_PIXELS", DEFAULT_MAX_PIXELS),
            max_side=getattr(settings, "KYC_UPLOAD_MAX_SIDE", DEFAULT_MAX_SIDE),
            min_side=getattr(settings, "KYC_UPLOAD_MIN_SIDE", DEFAULT_MIN_SIDE),
            max_pdf_pages=getattr(settings, "KYC_UPLOAD_MAX_PDF_PAGES", DEFAULT_MAX_PDF_PAGES),
        )


def validate_upload(*, name: str, content: bytes | IO[bytes], declared_type: str | None = None) -> ValidatedUpload:
    """Check one uploaded file and describe it, or raise `UploadRejected`.

    `content` is the raw bytes or a binary file-like object (such as Django's `UploadedFile`), read from its current
    position. `declared_type` is the client's Content-Type: it is never trusted, only recorded on rejections for logs.
    """
    limits = _Limits.from_settings()
    cleaned_name = _clean_name(name)
    _check_name(cleaned_name)

    data = _read_at_most(content, limits.max_bytes + 1)
    _check_size(data, limits)

    kind = _detect_format(data)
    if kind is None:
        raise UploadRejected(ACCEPTED_TYPES_MESSAGE, code="unsupported_type", extra={"declared_type": declared_type})
    _check_foreign_signatures(data, kind)

    width: int | None = None
    height: int | None = None
    pages: int | None = None
    if kind is _PDF:
        pages = _check_pdf(data, limits)
    else:
        width, height = _check_image(data, kind, limits)

    return ValidatedUpload(
        content=data,
        content_type=kind.content_type,
        extension=kind.extension,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=width,
        height=height,
        pages=pages,
        original_name=_shorten_name(cleaned_name),
        storage_name=f"{uuid.uuid4().hex}{kind.extension}",
    )


def _clean_name(name: str) -> str:
    """The client's file name made safe to show: last path part only, NFKC, no control or invisible characters."""
    # NFKC first, so look-alikes such as the fullwidth solidus become real separators before paths are stripped.
    text = unicodedata.normalize("NFKC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    # Category C covers NUL, control characters and format characters like U+202E, which flips "gpj.exe" on screen.
    text = "".join(char for char in text if not unicodedata.category(char).startswith("C"))
    return " ".join(text.split())


def _shorten_name(text: str) -> str:
    if text in {"", ".", ".."}:
        return FALLBACK_DISPLAY_NAME
    if len(text) > MAX_DISPLAY_NAME_LENGTH:
        stem, dot, suffix = text.rpartition(".")
        # Keep a short extension visible so the client still recognises the file they picked.
        if dot and stem and len(suffix) < 10:
            text = stem[: MAX_DISPLAY_NAME_LENGTH - len(suffix) - 1].rstrip() + "." + suffix
        else:
            text = text[:MAX_DISPLAY_NAME_LENGTH]
    return text


def _check_name(name: str) -> None:
    # Runs on the full cleaned name, before shortening could cut an inner extension off.
    for part in name.lower().split(".")[1:]:
        extension = part.strip()
        if extension in DANGEROUS_EXTENSIONS:
            raise UploadRejected(
                f'Files with ".{extension}" in their name are not accepted. {ACCEPTED_TYPES_MESSAGE}',
                code="dangerous_name",
            )


def _read_at_most(content: bytes | IO[bytes], limit: int) -> bytes:
    if isinstance(content, bytes | bytearray | memoryview):
        return bytes(content[:limit])
    chunks: list[bytes] = []
    remaining = limit
    # A single read() may return less than asked (sockets, raw streams), so keep reading until EOF or the limit.
    while remaining > 0:
        chunk = content.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _check_size(data: bytes, limits: _Limits) -> None:
    if len(data) > limits.max_bytes:
        raise UploadRejected(
            f"The file is larger than {_megabytes(limits.max_bytes)}. Please upload a smaller photo or scan.",
            code="too_large",
            extra={"max_bytes": limits.max_bytes},
        )
    if not data:
        raise UploadRejected("The file is empty. Please choose your document again.", code="empty")
    if len(data) < limits.min_bytes:
        raise UploadRejected(
            "The file is too small to be a readable document. Please upload a clear photo or scan.",
            code="too_small",
            extra={"size": len(data), "min_bytes": limits.min_bytes},
        )


def _megabytes(size: int) -> str:
    return f"{size / MIB:g} MB"


def _detect_format(data: bytes) -> _Format | None:
    # Signatures must sit at offset 0. PDF readers accept a header anywhere in the first 1024 bytes, which is exactly
    # what lets a PDF hide behind another format's header, so that leniency is refused here.
    if data.startswith(_JPEG_SOI):
        return _JPEG
    if data.startswith(_PNG_SIGNATURE):
        return _PNG
    if data.startswith(_PDF_HEADER):
        return _PDF
    return None


def _check_foreign_signatures(data: bytes, kind: _Format) -> None:
    # Reading tools look for these anywhere in a file (a ZIP reader from the end, a PDF reader near the start, a
    # browser sniffing for markup), so one file can be two formats at once. A chance match inside compressed data
    # is possible but rare (about one in 400 for the 4-byte ZIP header in 10 MB), and the client can simply re-save.
    embedded = (kind is not _PDF and _PDF_HEADER in data) or _ZIP_LOCAL_HEADER in data or _ACTIVE_MARKUP.search(data)
    if embedded:
        raise UploadRejected(
            f"This file has another kind of file hidden inside the {kind.noun}, so we cannot accept it. "
            "Please save it again as a plain JPEG, PNG or PDF (a new photo or scan also works) and upload that.",
            code="embedded_content",
        )


def _reject_trailing_data(kind: _Format) -> UploadRejected:
    return UploadRejected(
        f"This file has extra data after the end of the {kind.noun}, so we cannot accept it. "
        "Please save it again as a plain JPEG, PNG or PDF (a new photo or scan also works) and upload that.",
        code="trailing_data",
    )


def _unreadable_image() -> UploadRejected:
    return UploadRejected(
        "This image could not be read: it may be damaged or incomplete. Please take the photo or scan again.",
        code="unreadable_image",
    )


def _unreadable_pdf() -> UploadRejected:
    return UploadRejected(
        "This PDF could not be read: it may be damaged. Please save or scan the document again.",
        code="unreadable_pdf",
    )


# Images


def _check_image(data: bytes, kind: _Format, limits: _Limits) -> tuple[int, int]:
    """Returns (width, height) of a single-frame image that decodes in full within the limits."""
    # Image.open reads only the header, so the size is known before any pixel memory is allocated. Pillow's own
    # global bomb guard stays untouched (it is process-wide state) and serves as a backstop for absurd headers.
    # The structure walk runs first: it is cheap, and it refuses the files that would make Pillow's parsing slow.
    if kind is _PNG:
        _check_png_structure(data)
    else:
        _check_jpeg_structure(data)

    formats = [kind.name]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as image:
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError:
        raise _image_too_large(None, limits) from None
    except Exception:  # Pillow signals malformed input with many exception types (OSError, SyntaxError, ValueError…)
        raise _unreadable_image() from None

    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise _image_too_large((width, height), limits)
    if min(width, height) < limits.min_side:
        raise UploadRejected(
            f"This image is too small ({width} x {height} pixels) to read the document. "
            f"Please upload a photo or scan at least {limits.min_side} pixels on each side.",
            code="image_too_small",
            extra={"width": width, "height": height},
        )
    if frames > 1:
        raise UploadRejected(
            "Animated or multi-picture images are not accepted. Please upload a single photo or scan.",
            code="multi_frame",
        )

    try:
        # verify() checks what it can without decoding (PNG chunk CRCs) but leaves the image unusable, so decoding
        # happens on a fresh one; load() is what catches truncated or corrupt pixel data.
        with Image.open(io.BytesIO(data), formats=formats) as image:
            image.verify()
        with Image.open(io.BytesIO(data), formats=formats) as image:
            image.load()
    except Exception:
        raise _unreadable_image() from None
    return width, height


def _image_too_large(size: tuple[int, int] | None, limits: _Limits) -> UploadRejected:
    described = f" ({size[0]} x {size[1]} pixels)" if size else ""
    return UploadRejected(
        f"This image is too large{described}. The maximum is {limits.max_side:,} pixels on each side and "
        f"{limits.max_pixels / 1_000_000:g} megapixels in total; please upload a smaller photo or scan.",
        code="image_too_large",
    )


def _check_png_structure(data: bytes) -> None:
    """Walks the chunks to IEND: a missing IEND means truncation (or too many chunks), anything after it a payload."""
    position = len(_PNG_SIGNATURE)
    chunks = 0
    while position + 12 <= len(data) and chunks < MAX_PNG_CHUNKS:
        chunks += 1
        length = int.from_bytes(data[position : position + 4], "big")
        chunk_type = data[position + 4 : position + 8]
        position += 12 + length  # length, type, data, CRC
        if chunk_type == b"IEND":
            if position < len(data):
                raise _reject_trailing_data(_PNG)
            return
    raise _unreadable_image()


def _check_jpeg_structure(data: bytes) -> None:
    """Walks the markers to the real end-of-image, not merely the last FFD9, which a payload could end with itself.

    After it only padding or further complete JPEG streams may follow: Ultra HDR phone photos append their gain map
    as a second JPEG, which Pillow reads as a single-frame image.
    """
    position = 0
    while position < len(data) and data.startswith(_JPEG_SOI, position):
        end = _jpeg_stream_end(data, position)
        if end is None:
            raise _unreadable_image()
        position = end
    if data[position:].strip(_PADDING):
        raise _reject_trailing_data(_JPEG)


def _jpeg_stream_end(data: bytes, start: int) -> int | None:
    """Offset just past the end-of-image marker of the JPEG stream at `start`, or None if it is truncated or corrupt."""
    # Searches run in the regex engine: a hostile file may be megabytes of fill bytes or escaped FF00 pairs.
    position = start + 2
    segments = scans = 0
    while (found := _JPEG_MARKER.match(data, position)) is not None:
        marker = found[1][0]
        position = found.end()
        if marker == 0xD9:  # EOI
            return position
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM and RSTn stand alone, without a length
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS or position + 2 > len(data):
            return None
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            return None
        position += length
        if marker == 0xDA:  # SOS: entropy-coded data follows the segment
            scans += 1
            scan_end = _JPEG_SCAN_END.search(data, position)
            if scans > MAX_JPEG_SCANS or scan_end is None:
                return None
            position = scan_end.start()
    return None


# PDF


class _PdfTooComplex(Exception):
    """More objects than any real document needs; reported to the client as an unreadable PDF."""


def _check_pdf(data: bytes, limits: _Limits) -> int:
    """Returns the page count of an unencrypted PDF with no active content and nothing after its last %%EOF."""
    # The raw scan runs first because it also sees objects pypdf never reaches: ones missing from the cross-reference
    # table, or appended after %%EOF, which a viewer rebuilding a "damaged" file would still find and run.
    _reject_active_pdf_content(_raw_pdf_names(data))

    end = data.rfind(b"%%EOF")
    if end >= 0 and data[end + len(b"%%EOF") :].strip(_PADDING):
        raise _reject_trailing_data(_PDF)

    # pypdf raises its own errors and plenty of built-in ones (KeyError, ValueError, RecursionError…) on hostile input;
    # every one of them means the same thing to the client.
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
        # An encrypted file's objects cannot be read without the password, so it is refused before they are touched.
        pages, names = (0, set()) if encrypted else (len(reader.pages), _pdf_object_names(reader))
    except Exception:
        raise _unreadable_pdf() from None

    if encrypted:
        raise UploadRejected(
            "This PDF is password-protected. Please upload a copy without a password.", code="encrypted_pdf"
        )
    if pages == 0:
        raise UploadRejected("This PDF has no pages. Please check the file and upload it again.", code="empty_pdf")
    if pages > limits.max_pdf_pages:
        raise UploadRejected(
            f"This PDF has {pages} pages; the maximum is {limits.max_pdf_pages}. "
            "Please upload only the pages we asked for.",
            code="too_many_pages",
            extra={"pages": pages, "max_pages": limits.max_pdf_pages},
        )
    _reject_active_pdf_content(names)
    return pages


def _reject_active_pdf_content(names: set[str]) -> None:
    found = [label for name, label in _PDF_ACTIVE_NAMES.items() if name in names]
    if found:
        raise UploadRejected(
            f"This PDF contains {found[0]}, which we cannot accept. "
            "Please print it to a new PDF or scan the paper document, and upload that.",
            code="active_content",
            extra={"active": sorted(names & _PDF_ACTIVE_NAMES.keys())},
        )


def _raw_pdf_names(data: bytes) -> set[str]:
    """Every name token outside stream bodies, with `#xx` escapes decoded as a PDF reader would (/J#61vaScript)."""
    tokens = set(_PDF_NAME_TOKEN.findall(_without_stream_bodies(data)))
    return {
        _PDF_NAME_ESCAPE.sub(lambda escape: bytes([int(escape[1], 16)]), token).decode("latin-1") for token in tokens
    }


def _without_stream_bodies(data: bytes) -> bytes:
    """The PDF minus its stream data: compressed bytes would match name tokens by chance, and pypdf inspects every
    object anyway, including those packed inside compressed object streams.

    A stream left unterminated is scanned as it is. Each search starts where the last one ended, so the cost stays
    linear however many "stream" keywords a hostile file repeats.
    """
    kept: list[bytes] = []
    position = 0
    while (start := _PDF_STREAM_START.search(data, position)) is not None:
        end = data.find(_PDF_STREAM_END, start.end())
        if end < 0:
            break
        kept.append(data[position : start.start()])
        position = end + len(_PDF_STREAM_END)
    kept.append(data[position:])
    return b" ".join(kept)


def _pdf_object_names(reader: PdfReader) -> set[str]:
    """Every dictionary key and name value reachable from the trailer, object streams included (pypdf unpacks them).

    Iterative with a visited set, so reference cycles (/Parent, /Prev) and deep nesting cannot exhaust the stack.
    """
    names: set[str] = set()
    visited: set[tuple[int, int]] = set()
    pending: list[Any] = [reader.trailer]
    while pending:
        node = pending.pop()
        if isinstance(node, IndirectObject):
            reference = (node.idnum, node.generation)
            if reference not in visited:
                visited.add(reference)
                if len(visited) > MAX_PDF_OBJECTS:
                    raise _PdfTooComplex
                pending.append(node.get_object())
        elif isinstance(node, DictionaryObject):
            # Plain iteration yields stored values with references unresolved, so each object is resolved once above.
            for key, value in node.items():
                names.add(str(key))
                pending.append(value)
        elif isinstance(node, ArrayObject):
            pending.extend(node)
        elif isinstance(node, NameObject):
            names.add(str(node))
    return names
