"""What a client's Selfcare looks like: the effective branding drawn as HTML and as a PNG.

Both show the parts the seed says the colours reach: the top bar with the logo, the menu (the
dashboard plus every module switched on), buttons, a pop-up and the dashboard message block
(banner image, link, message). Every piece of text that a person typed is escaped in the HTML;
the PNG is drawn with Pillow's bundled font, so it looks the same on every machine.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, require_organisation
from selfcare_ops.branding.colors import rgb
from selfcare_ops.branding.defaults import font
from selfcare_ops.branding.issues import BrandingIssue, branding_issues
from selfcare_ops.branding.resolve import (
    ResolvedBranding,
    asset_content,
    asset_data_uri,
    resolve_branding,
)
from selfcare_ops.i18n import _
from selfcare_ops.modules import ModuleState, resolve_modules
from selfcare_ops.organisations import effective_language, get_organisation
from selfcare_ops.store.models import Organisation

PAGE_BACKGROUND = "#f4f5f7"
BODY_TEXT = "#222222"
LINK_COLOUR = "#0b57d0"
#: Modules that are settings, not menu entries.
NOT_IN_MENU = ("offres_mobiles",)


def menu_labels(modules: Mapping[str, ModuleState]) -> list[str]:
    """The user's menu: the dashboard, then every module switched on."""
    return ["Tableau de bord"] + [
        s.label for k, s in modules.items() if s.enabled and k not in NOT_IN_MENU
    ]


def preview_html(
    branding: ResolvedBranding,
    modules: Mapping[str, ModuleState],
    *,
    organisation_name: str,
    logo_uri: str | None = None,
    banner_uri: str | None = None,
    issues: tuple[BrandingIssue, ...] = (),
    language: str = "fr",
    popup: bool = True,
) -> str:
    """A self-contained HTML fragment (styles inline, images as given), text escaped.

    The portal's own template (``selfcare_ops/web/templates/selfcare.html``), so the preview
    cannot disagree with what the client's users see.
    """
    from selfcare_ops.pages.home import render_standalone, view_of  # pages import branding

    return render_standalone(
        view_of(branding, modules, organisation_name),
        logo_uri=logo_uri,
        banner_uri=banner_uri,
        issues=issues,
        language=language,
        popup=popup,
    )


def _gradient_fill(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], start: str, end: str | None
) -> None:
    left, top, right, bottom = box
    a = rgb(start)
    b = rgb(end) if end else a
    width = max(right - left, 1)
    for x in range(left, right):
        t = (x - left) / width
        colour = tuple(round(p + (q - p) * t) for p, q in zip(a, b, strict=True))
        draw.line([(x, top), (x, bottom - 1)], fill=colour)


def _wrap(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    face = font(size)
    for word in words:
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=face) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def _fit_text(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> str:
    face = font(size)
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def _paste_fitted(canvas: Image.Image, data: bytes, box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGBA")
        image.thumbnail((right - left, bottom - top), Image.Resampling.LANCZOS)
        y = top + (bottom - top - image.height) // 2
        canvas.paste(image, (left, y), image)


def preview_png(
    branding: ResolvedBranding,
    modules: Mapping[str, ModuleState],
    *,
    organisation_name: str,
    logo: bytes | None = None,
    banner: bytes | None = None,
    issues: tuple[BrandingIssue, ...] = (),
) -> bytes:
    """The same page as :func:`preview_html`, drawn as a 1000 x 680 PNG."""
    width, height = 1000, 680
    primary = str(branding.primary_color.value)
    gradient = branding.gradient_color.value
    text = rgb(str(branding.text_color.value))
    canvas = Image.new("RGB", (width, height), rgb(PAGE_BACKGROUND))
    draw = ImageDraw.Draw(canvas)
    # top bar and menu
    _gradient_fill(draw, (0, 0, width, 72), primary, gradient)
    _gradient_fill(draw, (0, 72, width, 112), primary, gradient)
    draw.line([(0, 72), (width, 72)], fill=(0, 0, 0))
    logo_right = 16
    if logo:
        _paste_fitted(canvas, logo, (16, 10, 216, 62))
        logo_right = 232
    else:
        draw.text((16, 36), "[logo]", fill=text, font=font(20), anchor="lm")
        logo_right = 100
    draw.text(
        (logo_right, 36),
        _fit_text(draw, organisation_name, 20, 560),
        fill=text,
        font=font(20),
        anchor="lm",
    )
    draw.text((width - 16, 36), "Mon compte", fill=text, font=font(16), anchor="rm")
    x = 16
    for label in menu_labels(modules):
        size = draw.textlength(label, font=font(15))
        if x + size > width - 16:
            break
        draw.text((x, 92), label, fill=text, font=font(15), anchor="lm")
        x += int(size) + 24
    # dashboard message block
    card = (24, 136, 624, 520)
    draw.rounded_rectangle(card, radius=8, fill=(255, 255, 255), outline=(210, 210, 210))
    if banner:
        _paste_fitted(canvas, banner, (40, 152, 608, 372))
    else:
        draw.rectangle((40, 152, 608, 372), fill=(221, 221, 221))
    y = 392
    for line in _wrap(draw, str(branding.banner_message.value or ""), 18, 560)[:4]:
        draw.text((40, y), line, fill=rgb(BODY_TEXT), font=font(18))
        y += 26
    if branding.banner_link.value:
        link = _fit_text(draw, str(branding.banner_link.value), 14, 560)
        draw.text((40, 492), link, fill=rgb(LINK_COLOUR), font=font(14))
    # buttons
    for i, label in enumerate(("Enregistrer", "Inviter")):
        box = (24 + i * 150, 548, 158 + i * 150, 588)
        _gradient_fill(draw, box, primary, gradient)
        draw.text(((box[0] + box[2]) // 2, 568), label, fill=text, font=font(16), anchor="mm")
    # pop-up
    popup = (650, 150, 976, 360)
    draw.rounded_rectangle(
        (popup[0] + 4, popup[1] + 6, popup[2] + 4, popup[3] + 6), radius=8, fill=(190, 190, 190)
    )
    draw.rounded_rectangle(popup, radius=8, fill=(255, 255, 255), outline=(200, 200, 200))
    _gradient_fill(draw, (popup[0] + 1, popup[1] + 1, popup[2], popup[1] + 44), primary, gradient)
    draw.text((popup[0] + 14, popup[1] + 22), "Confirmation", fill=text, font=font(17), anchor="lm")
    for n, line in enumerate(_wrap(draw, "Vos modifications ont été enregistrées.", 15, 290)):
        draw.text((popup[0] + 14, popup[1] + 64 + n * 22), line, fill=rgb(BODY_TEXT), font=font(15))
    ok = (popup[2] - 94, popup[3] - 52, popup[2] - 14, popup[3] - 14)
    _gradient_fill(draw, ok, primary, gradient)
    draw.text(
        ((ok[0] + ok[2]) // 2, (ok[1] + ok[3]) // 2), "OK", fill=text, font=font(16), anchor="mm"
    )
    # problems, if any
    y = 606
    for issue in issues[:3]:
        line = _fit_text(draw, f"! {issue.message}", 12, width - 48)
        draw.text((24, y), line, fill=(160, 0, 0), font=font(12))
        y += 18
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


def _gather(session: Session, organisation_id: int):  # type: ignore[no-untyped-def]
    branding = resolve_branding(session, organisation_id)
    modules = resolve_modules(session, organisation_id)
    name = session.scalar(select(Organisation.name).where(Organisation.id == organisation_id))
    return branding, modules, str(name), branding_issues(branding)


def render_preview_html(session: Session, organisation_id: int) -> str:
    """The preview of one organisation's effective look as an HTML fragment (no scope check)."""
    branding, modules, name, issues = _gather(session, organisation_id)
    logo = branding.logo.value
    banner = branding.banner_image.value
    org = session.get(Organisation, organisation_id)
    return preview_html(
        branding,
        modules,
        organisation_name=name,
        logo_uri=asset_data_uri(session, logo) if logo else None,
        banner_uri=asset_data_uri(session, banner) if banner else None,
        issues=issues,
        language=effective_language(session, org)[0] if org is not None else "fr",
    )


def render_preview_png(session: Session, organisation_id: int) -> bytes:
    """The preview of one organisation's effective look as PNG bytes (no scope check)."""
    branding, modules, name, issues = _gather(session, organisation_id)
    logo = branding.logo.value
    banner = branding.banner_image.value
    return preview_png(
        branding,
        modules,
        organisation_name=name,
        logo=asset_content(session, logo) if logo else None,
        banner=asset_content(session, banner) if banner else None,
        issues=issues,
    )


def write_preview(session: Session, actor: Actor, organisation_ref: str, out: str | Path) -> Path:
    """Write the PNG (or, for a ``.html`` path, the HTML) preview of an organisation in scope."""
    org = get_organisation(session, organisation_ref)
    require_organisation(actor, org, _("preview the branding of"))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".html", ".htm"):
        target.write_text(render_preview_html(session, org.id), encoding="utf-8")
    else:
        target.write_bytes(render_preview_png(session, org.id))
    return target
