"""Uploaded images (logo and dashboard banner): checked by content, then re-encoded.

The order matters for safety: the format is recognised from the first bytes (never the file
name) and anything but JPEG or PNG is refused before an image library looks at it; Pillow's
PNG or JPEG parser then reads the header alone (a lazy open: ``.size`` and ``.format``, no
pixel decoded), and the dimensions are checked against the limits and our own pixel ceiling,
so a decompression bomb costs a few bytes of parsing. Only then is the image decoded (a
truncated or damaged file fails here), turned upright by its EXIF orientation, downscaled if
asked, and re-encoded without metadata (EXIF, XMP, text chunks; a colour profile is converted
to sRGB, then dropped).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin

from selfcare_ops.errors import ImageError
from selfcare_ops.i18n import _, current_language
from selfcare_ops.support.files import read_regular_file, size_text

ImageKind = Literal["logo", "banner"]
KINDS: tuple[str, ...] = ("logo", "banner")

LOGO_MAX_SIDE = 600
BANNER_MAX_SIDE = 2000
BANNER_MAX_BYTES = 3 * 1024 * 1024
#: Largest file read at all (a logo bigger than 600 px may be sent to be fitted).
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
#: Largest image we agree to decode (a logo to fit): 40 megapixels, e.g. 8000 x 5000.
MAX_DECODE_PIXELS = 40_000_000

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _the(kind: str) -> str:
    """The image named at the start of a sentence, in the current language."""
    return _("The logo") if kind == "logo" else _("The banner image")


def _the_file(kind: str) -> str:
    """The image's file named at the start of a sentence, in the current language."""
    if kind == "logo":
        return _("The logo file")
    if kind == "banner":
        return _("The banner image file")
    return _("The image file")


def _count(number: int) -> str:
    """A whole number with the thousands separator of the current language."""
    shown = f"{number:,}"
    return shown.replace(",", "\u202f") if current_language() == "fr" else shown


def _format_name(fmt: str) -> str:
    """The sniffed format as a sentence names it (the two that are not format names)."""
    if fmt == "unknown binary":
        return _("unknown binary")
    if fmt == "text":
        return _("text")
    return fmt


def sniff_format(data: bytes) -> str:
    """The file format named from its first bytes: 'PNG', 'JPEG', or what else it is."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        return "HEIF/AVIF"
    if head[:4] == b"%PDF":
        return "PDF"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in data[:4096].lower():
        return "SVG"
    try:
        data[:1024].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary"
    return "text"


#: Pillow's own parser for each accepted format. Constructing it reads the header only (the
#: lazy half of ``Image.open``); pixels are decoded by ``load()``. ``Image.open`` itself is not
#: used for the header: it applies the process-wide ``Image.MAX_IMAGE_PIXELS`` check before
#: handing the image back, so a bomb above Pillow's ceiling would be refused without its size,
#: and tightening that global to our ceiling would change every other image opened in the
#: analyst's kernel.
_OPENERS: dict[str, Callable[[IO[bytes]], ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
}

#: What Pillow's header parsers raise on a truncated or malformed header.
_HEADER_ERRORS = (SyntaxError, OSError, ValueError, EOFError, IndexError, KeyError, TypeError)


def open_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """The image as Pillow sees it after reading its header: ``.size`` and ``.format`` are
    known, no pixel is decoded. ``fmt`` is 'PNG' or 'JPEG' (from :func:`sniff_format`)."""
    return _OPENERS[fmt](io.BytesIO(data))


@dataclass(frozen=True)
class CheckedImage:
    """An accepted image, re-encoded: ``content`` is what gets stored."""

    kind: str
    format: str
    mime: str
    width: int
    height: int
    size: int
    original_width: int
    original_height: int
    original_size: int
    resized: bool
    content: bytes
    sha256: str

    def summary(self) -> str:
        """What was stored, in one sentence of the current language."""
        values = {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "original_width": self.original_width,
            "original_height": self.original_height,
            "size": _count(self.size),
            "uploaded": _count(self.original_size),
        }
        if self.kind == "logo":
            if self.resized:
                text = _(
                    "{format} logo, {width} x {height} px, downscaled from {original_width} x "
                    "{original_height} px, {size} bytes after re-encoding (uploaded: {uploaded} "
                    "bytes)."
                )
            else:
                text = _(
                    "{format} logo, {width} x {height} px, {size} bytes after re-encoding "
                    "(uploaded: {uploaded} bytes)."
                )
        elif self.resized:
            text = _(
                "{format} banner image, {width} x {height} px, downscaled from {original_width} "
                "x {original_height} px, {size} bytes after re-encoding (uploaded: {uploaded} "
                "bytes)."
            )
        else:
            text = _(
                "{format} banner image, {width} x {height} px, {size} bytes after re-encoding "
                "(uploaded: {uploaded} bytes)."
            )
        return text.format(**values)


def _refuse(kind: str, message: str, *, limit: object = None, actual: object = None) -> ImageError:
    return ImageError(message, field=kind, limit=limit, actual=actual)


def _check_header(kind: str, data: bytes, fit: bool) -> ImageFile.ImageFile:
    size = len(data)
    if size == 0:
        raise _refuse(kind, _("{file} is empty.").format(file=_the_file(kind)), actual=0)
    if kind == "banner" and size > BANNER_MAX_BYTES:
        raise _refuse(
            kind,
            _("The banner image weighs {size}; at most {limit} is accepted.").format(
                size=size_text(size), limit=size_text(BANNER_MAX_BYTES)
            ),
            limit=BANNER_MAX_BYTES,
            actual=size,
        )
    if size > UPLOAD_MAX_BYTES:
        raise _refuse(
            kind,
            _("{file} weighs {size}; files above {limit} are not read.").format(
                file=_the_file(kind), size=size_text(size), limit=size_text(UPLOAD_MAX_BYTES)
            ),
            limit=UPLOAD_MAX_BYTES,
            actual=size,
        )
    fmt = sniff_format(data)
    if fmt not in _MIME:
        raise _refuse(
            kind,
            _(
                "{image} is a {format} file; only JPEG and PNG images are accepted (the content "
                "is checked, not the file name)."
            ).format(image=_the(kind), format=_format_name(fmt)),
            limit="JPEG or PNG",
            actual=fmt,
        )
    try:
        header = open_header(data, fmt)
    except _HEADER_ERRORS as exc:
        raise _refuse(
            kind,
            _("{image} is a damaged {format} file: its header cannot be read ({problem}).").format(
                image=_the(kind), format=fmt, problem=exc
            ),
        ) from exc
    width, height = header.size
    pixels = width * height
    if pixels > MAX_DECODE_PIXELS:
        raise _refuse(
            kind,
            _(
                "{image} declares {width} x {height} px ({pixels} pixels), more than the "
                "{limit} pixels we agree to decode: it is refused without being decoded (too "
                "large, or a decompression bomb)."
            ).format(
                image=_the(kind),
                width=width,
                height=height,
                pixels=_count(pixels),
                limit=_count(MAX_DECODE_PIXELS),
            ),
            limit=MAX_DECODE_PIXELS,
            actual=pixels,
        )
    if kind == "banner" and (width > BANNER_MAX_SIDE or height > BANNER_MAX_SIDE):
        raise _refuse(
            kind,
            _(
                "The banner image is {width} x {height} px; at most {limit} px wide and {limit} "
                "px high is accepted."
            ).format(width=width, height=height, limit=BANNER_MAX_SIDE),
            limit=(BANNER_MAX_SIDE, BANNER_MAX_SIDE),
            actual=(width, height),
        )
    if kind == "logo" and not fit and max(width, height) > LOGO_MAX_SIDE:
        raise _refuse(
            kind,
            _(
                "The logo is {width} x {height} px; at most {limit} px on each side is accepted "
                "(fit it, --fit on the command line, to downscale it keeping its ratio)."
            ).format(width=width, height=height, limit=LOGO_MAX_SIDE),
            limit=LOGO_MAX_SIDE,
            actual=(width, height),
        )
    return header


def _decode(kind: str, data: bytes, header: ImageFile.ImageFile, fit: bool) -> Image.Image:
    """The pixels of an image whose header passed: a truncated or damaged body fails here."""
    fmt = str(header.format)
    try:
        if fmt == "PNG":  # chunk CRCs and the end marker, without decompressing pixels
            open_header(data, fmt).verify()
        if fmt == "JPEG" and fit:
            header.draft("RGB", (LOGO_MAX_SIDE * 2, LOGO_MAX_SIDE * 2))
        header.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _refuse(
            kind,
            _(
                "{image} is a truncated or damaged {format} file and cannot be decoded ({problem})."
            ).format(image=_the(kind), format=fmt, problem=exc),
        ) from exc
    return header


def _to_srgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return (
            ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode
            )
            or image
        )
    except Exception:  # a broken or unsupported profile: keep the pixels as they are
        return image


def _normalise_mode(image: Image.Image, fmt: str) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if fmt == "JPEG":
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    if has_alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    return image if image.mode in ("1", "L", "P", "RGB") else image.convert("RGB")


def reencode(image: Image.Image, fmt: str) -> bytes:
    """The pixels alone, saved anew: no EXIF, XMP, comments, text chunks or ICC profile."""
    clean = _normalise_mode(_to_srgb(image), fmt)
    clean = clean.copy()
    clean.info = {}
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=90, optimize=True)
    else:
        clean.save(out, "PNG", compress_level=6)
    return out.getvalue()


def check_image(data: bytes, kind: str, *, fit: bool = False) -> CheckedImage:
    """Validate an uploaded logo or banner and return it re-encoded, or raise ImageError."""
    if kind not in KINDS:
        raise ImageError(
            _("The image kind must be one of {kinds}, not {kind}.").format(
                kinds=", ".join(KINDS), kind=repr(kind)
            ),
            field="kind",
        )
    header = _check_header(kind, data, fit)
    fmt, original = str(header.format), header.size
    image = _decode(kind, data, header, fit)
    image = ImageOps.exif_transpose(image) or image
    if kind == "logo" and max(image.size) > LOGO_MAX_SIDE:
        image.thumbnail((LOGO_MAX_SIDE, LOGO_MAX_SIDE), Image.Resampling.LANCZOS)
    resized = image.size not in (original, original[::-1])  # an upright turn is no resize
    content = reencode(image, fmt)
    return CheckedImage(
        kind=kind,
        format=fmt,
        mime=_MIME[fmt],
        width=image.width,
        height=image.height,
        size=len(content),
        original_width=original[0],
        original_height=original[1],
        original_size=len(data),
        resized=resized,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def read_upload(path: str | Path, kind: str = "logo") -> bytes:
    """The bytes of an image file: a regular file only, refused above
    :data:`UPLOAD_MAX_BYTES` before reading, and never read past that limit."""

    def refuse(message: str, **sizes: object) -> ImageError:
        return _refuse(kind, message, **sizes)

    return read_regular_file(path, _the_file(kind), refuse, limit=UPLOAD_MAX_BYTES)
