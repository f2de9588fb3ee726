"""Logo and banner rules on real images generated with Pillow (no database)."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from selfcare_ops.branding.images import (
    BANNER_MAX_BYTES,
    BANNER_MAX_SIDE,
    LOGO_MAX_SIDE,
    MAX_DECODE_PIXELS,
    check_image,
    read_upload,
    sniff_format,
)
from selfcare_ops.errors import ImageError


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


def png(width: int, height: int, mode: str = "RGB", colour="red", **params) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, "PNG", **params)
    return out.getvalue()


def jpeg(width: int, height: int, colour="blue", mode: str = "RGB", **params) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, "JPEG", **params)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge 1-bit image of zeros (compresses ~1000:1)."""
    rows = height * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    body = b"".join(compressor.compress(block) for _ in range(rows // len(block)))
    body += compressor.compress(b"\x00" * (rows % len(block))) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def padded_png(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes (an ancillary private chunk fills the gap)."""
    base = png(200, 100)
    filler = total - len(base) - 12
    assert filler >= 0
    iend = base.rindex(b"IEND") - 4
    return base[:iend] + _chunk(b"prVt", os.urandom(filler)) + base[iend:]


# --- sizes ------------------------------------------------------------------------------------


def test_logo_at_exactly_600_px_is_accepted():
    checked = check_image(png(LOGO_MAX_SIDE, LOGO_MAX_SIDE), "logo")
    assert (checked.width, checked.height, checked.format) == (600, 600, "PNG")
    assert checked.mime == "image/png" and not checked.resized


@pytest.mark.parametrize("size", [(601, 600), (600, 601), (1200, 40)])
def test_logo_above_600_px_is_refused_with_limit_and_actual(size):
    with pytest.raises(ImageError) as info:
        check_image(png(*size), "logo")
    message = str(info.value)
    assert f"{size[0]} x {size[1]} px" in message and "600 px" in message
    assert info.value.limit == 600 and info.value.actual == size


@pytest.mark.parametrize(
    ("maker", "size", "expected"),
    [
        (jpeg, (1200, 300), (600, 150)),
        (png, (300, 1200), (150, 600)),
        (png, (1000, 1000), (600, 600)),
    ],
)
def test_fit_downscales_keeping_the_aspect_ratio(maker, size, expected):
    checked = check_image(maker(*size), "logo", fit=True)
    assert (checked.width, checked.height) == expected
    assert checked.resized and (checked.original_width, checked.original_height) == size
    reopened = Image.open(io.BytesIO(checked.content))
    assert reopened.size == expected
    assert "downscaled from" in checked.summary()


def test_fit_leaves_small_logos_alone():
    checked = check_image(png(120, 40), "logo", fit=True)
    assert (checked.width, checked.height) == (120, 40) and not checked.resized


def test_banner_at_exactly_2000_px_is_accepted_and_2001_refused():
    assert check_image(jpeg(BANNER_MAX_SIDE, BANNER_MAX_SIDE), "banner").width == 2000
    with pytest.raises(ImageError, match="2001 x 10 px.*2000 px wide"):
        check_image(png(2001, 10), "banner")
    with pytest.raises(ImageError, match="10 x 2001 px"):
        check_image(png(10, 2001), "banner")


def test_banner_weight_limit_is_exact():
    at_limit = padded_png(BANNER_MAX_BYTES)
    assert len(at_limit) == BANNER_MAX_BYTES
    checked = check_image(at_limit, "banner")
    assert checked.size < 50_000  # the filler chunk is dropped by re-encoding
    with pytest.raises(ImageError) as info:
        check_image(padded_png(BANNER_MAX_BYTES + 1), "banner")
    assert "3.00 MB (3,145,729 bytes)" in str(info.value)
    assert "3,145,728 bytes" in str(info.value)
    assert info.value.actual == BANNER_MAX_BYTES + 1


def test_noisy_banner_above_3_mb_is_refused():
    noise = Image.frombytes("RGB", (1100, 1000), os.urandom(1100 * 1000 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    with pytest.raises(ImageError, match="at most 3.00 MB"):
        check_image(out.getvalue(), "banner")


# --- bombs and damaged files -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["logo", "banner"])
def test_decompression_bomb_is_refused_from_its_header(kind):
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 200_000  # 900 megapixels in a few kilobytes
    with pytest.raises(ImageError) as info:
        check_image(bomb, kind, fit=True)
    assert "30000 x 30000 px" in str(info.value)
    assert "decompression bomb" in str(info.value)
    assert info.value.limit == MAX_DECODE_PIXELS


def test_a_bomb_beyond_pillows_own_ceiling_is_still_named_by_its_size():
    # Pillow's Image.open would raise its DecompressionBombError before telling the size;
    # the header is read without that process-wide check, which is left as Pillow ships it.
    assert 30_000 * 30_000 > 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match="30000 x 30000 px"):
        check_image(png_bomb(30_000, 30_000), "banner")
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to declare another size."""
    data = bytearray(jpeg(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("fit", [False, True])
def test_jpeg_bomb_is_refused_from_its_frame_header(fit):
    with pytest.raises(ImageError) as info:
        check_image(jpeg_declaring(20_000, 10_000), "logo", fit=fit)
    assert "20000 x 10000 px (200,000,000 pixels)" in str(info.value)
    assert info.value.actual == 200_000_000


def test_a_header_declaring_no_pixel_is_refused():
    with pytest.raises(ImageError, match="damaged PNG file: its header cannot be read"):
        check_image(png_bomb(0, 10), "logo")


def test_bomb_within_pillow_limits_but_above_ours_is_refused():
    # 8,000 x 6,000 = 48 megapixels: Pillow alone would decode it (its limit is ~89M).
    with pytest.raises(ImageError, match="48,000,000 pixels"):
        check_image(png_bomb(8000, 6000), "logo", fit=True)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_png_is_refused(cut):
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noisy.save(out, "PNG")
    data = out.getvalue()
    with pytest.raises(ImageError, match="truncated or damaged PNG"):
        check_image(data[: int(len(data) * cut)], "logo")


def test_truncated_jpeg_is_refused():
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noisy.save(out, "JPEG")
    data = out.getvalue()
    with pytest.raises(ImageError, match="truncated or damaged JPEG"):
        check_image(data[: len(data) // 2], "logo")


def test_png_with_a_corrupted_chunk_is_refused():
    data = bytearray(png(50, 50))
    data[40] ^= 0xFF  # inside IDAT
    with pytest.raises(ImageError, match="damaged"):
        check_image(bytes(data), "logo")


def test_header_only_and_empty_files_are_refused():
    with pytest.raises(ImageError, match="empty"):
        check_image(b"", "logo")
    with pytest.raises(ImageError, match="header"):
        check_image(b"\x89PNG\r\n\x1a\n", "logo")
    with pytest.raises(ImageError, match="damaged JPEG"):
        check_image(b"\xff\xd8\xff\xe0\x00\x10JFIF", "banner")


# --- formats: by content, never by name ------------------------------------------------------


def _saved(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "green").save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (_saved("GIF"), "GIF"),
        (_saved("BMP"), "BMP"),
        (_saved("TIFF"), "TIFF"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24, "WebP"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b'<svg width="10" height="10"><script>alert(1)</script></svg>', "SVG"),
        (b"Ceci n'est pas une image.\n", "text"),
        (b"%PDF-1.7\n", "PDF"),
    ],
)
@pytest.mark.parametrize("kind", ["logo", "banner"])
def test_other_formats_are_refused_by_content(data, name, kind):
    assert sniff_format(data) == name
    with pytest.raises(ImageError) as info:
        check_image(data, kind)
    assert f"is a {name} file" in str(info.value)
    assert "JPEG and PNG" in str(info.value)


def test_real_webp_is_refused_when_pillow_can_write_one():
    from PIL import features

    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP encoder")
    with pytest.raises(ImageError, match="WebP"):
        check_image(_saved("WEBP"), "logo")


def test_file_name_does_not_matter(tmp_path):
    disguised_gif = tmp_path / "logo.png"
    disguised_gif.write_bytes(_saved("GIF"))
    with pytest.raises(ImageError, match="GIF"):
        check_image(read_upload(disguised_gif), "logo")
    png_named_jpg = tmp_path / "logo.jpg"
    png_named_jpg.write_bytes(png(50, 20))
    assert check_image(read_upload(png_named_jpg), "logo").format == "PNG"


def test_unreadable_file_is_reported(tmp_path):
    with pytest.raises(ImageError, match="cannot be read"):
        read_upload(tmp_path / "absent.png")


# --- re-encoding strips metadata -------------------------------------------------------------


def test_jpeg_exif_is_stripped_and_orientation_applied():
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x8298] = "Secret owner"  # Copyright
    exif[0x0112] = 6  # rotate 90 degrees on display
    source = jpeg(40, 20, exif=exif.tobytes(), comment=b"hidden comment")
    assert b"Canon" in source
    checked = check_image(source, "logo")
    assert b"Canon" not in checked.content and b"Secret owner" not in checked.content
    assert b"hidden comment" not in checked.content
    reopened = Image.open(io.BytesIO(checked.content))
    assert dict(reopened.getexif()) == {}
    assert reopened.size == (20, 40)  # upright, as people saw it
    assert not checked.resized


def test_png_text_and_exif_chunks_are_stripped():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jean Dupont")
    info.add_itxt("Comment", "gps 48.85,2.35")
    exif = Image.Exif()
    exif[0x010F] = "Nikon"
    source = png(30, 30, pnginfo=info, exif=exif.tobytes())
    assert b"Jean Dupont" in source and b"Nikon" in source
    checked = check_image(source, "banner")
    for secret in (b"Jean Dupont", b"gps", b"Nikon", b"tEXt", b"iTXt", b"eXIf"):
        assert secret not in checked.content
    assert Image.open(io.BytesIO(checked.content)).info.get("Author") is None


def test_transparency_survives_and_cmyk_becomes_rgb():
    logo = check_image(png(20, 20, mode="RGBA", colour=(255, 0, 0, 0)), "logo")
    assert Image.open(io.BytesIO(logo.content)).getpixel((0, 0))[3] == 0
    cmyk = check_image(jpeg(20, 20, mode="CMYK", colour=(0, 255, 255, 0)), "logo")
    assert Image.open(io.BytesIO(cmyk.content)).mode == "RGB"


def test_same_bytes_give_the_same_hash():
    first, second = check_image(png(30, 30), "logo"), check_image(png(30, 30), "logo")
    assert first.sha256 == second.sha256 and len(first.sha256) == 64


def test_unknown_kind_is_refused():
    with pytest.raises(ImageError, match="logo, banner"):
        check_image(png(10, 10), "favicon")


# --- robustness ------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_image_errors(data):
    for prefix in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"):
        try:
            check_image(prefix + data, "logo")
        except ImageError:
            pass


_VALID = png(64, 48, colour="purple")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(0, 255))
def test_any_cut_or_flipped_byte_is_handled(position, value):
    damaged = bytearray(_VALID)
    damaged[position] = value
    for candidate in (bytes(damaged), _VALID[:position]):
        try:
            checked = check_image(candidate, "logo")
        except ImageError:
            continue
        assert checked.format == "PNG"


@pytest.mark.parametrize("missing", [12, 13, 20])
def test_png_missing_its_end_is_refused(missing):
    data = png(50, 50)
    with pytest.raises(ImageError, match="truncated or damaged PNG"):
        check_image(data[:-missing], "logo")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 900), st.integers(1, 900), st.booleans())
def test_logo_size_rule_and_fit_as_properties(width, height, fit):
    data = png(width, height)
    try:
        checked = check_image(data, "logo", fit=fit)
    except ImageError:
        assert not fit and max(width, height) > LOGO_MAX_SIDE
        return
    assert fit or max(width, height) <= LOGO_MAX_SIDE
    assert max(checked.width, checked.height) == min(LOGO_MAX_SIDE, max(width, height))
    # the ratio is kept to within the rounding of one pixel
    assert abs(checked.width * height - checked.height * width) <= max(width, height)
    assert checked.resized == (max(width, height) > LOGO_MAX_SIDE)
