"""The operator's default personalisation, stored explicitly at the root of the tree.

The demo loader calls :func:`seed_default_branding` so that every organisation has a logo, the
operator's colours, a banner and the default welcome message, each visibly inherited from the
operator. Only fields the operator has not set are filled, so a second call changes nothing.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.access import system_actor
from selfcare_ops.branding.colors import rgb
from selfcare_ops.branding.resolve import BUILTIN_DEFAULTS, FIELD_COLUMNS
from selfcare_ops.branding.service import BrandingChange, set_branding
from selfcare_ops.config import get_settings
from selfcare_ops.errors import NotFoundError
from selfcare_ops.store.models import BrandingSetting, Organisation

DEFAULT_PRIMARY = "#e2001a"
DEFAULT_TEXT = "#ffffff"
DEFAULT_MESSAGE = "Bienvenue sur votre Selfcare utilisateur"


def _dejavu_path() -> Path | None:
    """DejaVu Sans as shipped inside matplotlib (a dependency): accents, same on every machine."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data/fonts/ttf/DejaVuSans.ttf"
    return path if path.is_file() else None


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A scalable font with French accents; Pillow's bundled one if DejaVu is not found."""
    path = _dejavu_path()
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def default_logo_png(primary: str = DEFAULT_PRIMARY, text: str = DEFAULT_TEXT) -> bytes:
    """A 240 x 64 PNG word mark: "selfcare" on a rounded block of the primary colour."""
    image = Image.new("RGBA", (240, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 239, 63), radius=14, fill=rgb(primary))
    draw.text((120, 32), "selfcare", fill=rgb(text), font=font(34), anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def default_banner_png(primary: str = DEFAULT_PRIMARY, text: str = DEFAULT_TEXT) -> bytes:
    """A 1200 x 300 PNG banner: a horizontal shade of the primary colour with a greeting."""
    width, height = 1200, 300
    start = rgb(primary)
    end = tuple(round(c * 0.55) for c in start)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x in range(width):
        t = x / (width - 1)
        draw.line(
            [(x, 0), (x, height)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True)),
        )
    draw.text((60, 150), "Votre espace Selfcare", fill=rgb(text), font=font(64), anchor="lm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class SeedResult:
    operator_ref: str
    fields_set: tuple[str, ...]
    change: BrandingChange | None


def seed_default_branding(session: Session) -> SeedResult:
    """Store the operator's defaults for every field the operator has not set (idempotent)."""
    operator = session.scalar(select(Organisation).where(Organisation.kind == "operator"))
    if operator is None:
        raise NotFoundError("operator", "(root of the tree)")
    actor = system_actor(session)
    setting = session.get(BrandingSetting, operator.id)

    def unset(name: str) -> bool:
        return setting is None or getattr(setting, FIELD_COLUMNS[name]) is None

    portal = get_settings().portal_url
    wanted = {
        "logo": default_logo_png(),
        "primary_color": DEFAULT_PRIMARY,
        "text_color": DEFAULT_TEXT,
        "banner": default_banner_png(),
        "banner_link": portal if portal.startswith("https://") else None,
        "banner_message": BUILTIN_DEFAULTS["banner_message"] or DEFAULT_MESSAGE,
    }
    field_of = {"banner": "banner_image"}
    todo = {
        key: value
        for key, value in wanted.items()
        if value is not None and unset(field_of.get(key, key))
    }
    if not todo:
        return SeedResult(operator.ref, (), None)
    change = set_branding(session, actor, operator.ref, **todo)
    return SeedResult(operator.ref, tuple(field_of.get(k, k) for k in todo), change)
