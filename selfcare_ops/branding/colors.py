"""Colours: parsing (``#rgb``, ``#rrggbb``, CSS names) and WCAG 2.x readability.

Contrast follows WCAG 2.x: relative luminance of linearised sRGB, ratio
``(L1 + 0.05) / (L2 + 0.05)``. The threshold is 4.5:1 (AA, normal text) and is compared on the
exact ratio, never a rounded one: 4.49 fails. Ratios shown to people are truncated to two
decimals, so a failing ratio never prints as 4.50.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageColor

from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _

MIN_CONTRAST = 4.5

_HEX6 = re.compile(r"#[0-9a-fA-F]{6}")
_HEX3 = re.compile(r"#[0-9a-fA-F]{3}")

#: The 148 CSS named colours (CSS Color Module Level 4), name -> ``#rrggbb``.
CSS_COLOURS: dict[str, str] = {
    name: "#{:02x}{:02x}{:02x}".format(*ImageColor.getrgb(name)[:3])
    for name in sorted(ImageColor.colormap)
}


def color_label(field: str) -> str:
    """How a sentence names a colour field, in the current language."""
    labels = {
        "primary_color": _("primary colour"),
        "gradient_color": _("gradient end colour"),
        "text_color": _("text colour"),
    }
    return labels.get(field, _("colour"))


def parse_color(text: str, *, field: str = "colour") -> str:
    """``#rgb``, ``#rrggbb`` or a CSS colour name, as lower-case ``#rrggbb``."""
    raw = text.strip() if isinstance(text, str) else ""
    if _HEX6.fullmatch(raw):
        return raw.lower()
    if _HEX3.fullmatch(raw):
        return "#" + "".join(c * 2 for c in raw[1:]).lower()
    named = CSS_COLOURS.get(raw.lower().replace(" ", ""))
    if named is not None:
        return named
    raise ValidationError(
        _(
            "The {field} {value} is not a colour: give #rgb, #rrggbb (hexadecimal) or a CSS "
            "colour name such as 'navy'."
        ).format(field=color_label(field), value=repr(text)),
        field=field,
        actual=text,
    )


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def to_hex(red: int, green: int, blue: int) -> str:
    return f"#{red:02x}{green:02x}{blue:02x}"


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


@lru_cache(maxsize=4096)
def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of a ``#rrggbb`` colour, 0 (black) to 1 (white)."""
    red, green, blue = (_linear(c) for c in rgb(color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """The exact WCAG contrast ratio, 1 to 21 (symmetric)."""
    a, b = relative_luminance(first), relative_luminance(second)
    light, dark = max(a, b), min(a, b)
    return (light + 0.05) / (dark + 0.05)


def format_ratio(ratio: float) -> str:
    """Truncated (never rounded up) to two decimals: 4.4999 -> '4.49'."""
    return f"{math.floor(ratio * 100) / 100:.2f}"


def readable(text: str, background: str) -> bool:
    return contrast_ratio(text, background) >= MIN_CONTRAST


def _mix(color: str, target: tuple[int, int, int], step: int, steps: int) -> str:
    return to_hex(
        *(round(c + (t - c) * step / steps) for c, t in zip(rgb(color), target, strict=True))
    )


@lru_cache(maxsize=4096)
def suggest_text_color(text: str, backgrounds: tuple[str, ...]) -> str | None:
    """The text colour closest to ``text`` that reaches 4.5:1 on every background.

    Tries darker then lighter shades of ``text`` (the smallest change first), then greys from
    black to white; ``None`` when nothing reaches 4.5:1 on all of them.
    """
    steps = 255
    best: tuple[int, str] | None = None
    for target in ((0, 0, 0), (255, 255, 255)):
        for step in range(steps + 1):
            candidate = _mix(text, target, step, steps)
            if all(readable(candidate, bg) for bg in backgrounds):
                if best is None or step < best[0]:
                    best = (step, candidate)
                break
    if best is not None:
        return best[1]
    greys = [to_hex(v, v, v) for v in range(256)]
    lum = relative_luminance(text)
    fitting = [g for g in greys if all(readable(g, bg) for bg in backgrounds)]
    if not fitting:
        return None
    return min(fitting, key=lambda g: abs(relative_luminance(g) - lum))


@lru_cache(maxsize=4096)
def any_readable_text(backgrounds: tuple[str, ...]) -> bool:
    """Whether some grey reaches 4.5:1 on every background (greys span all luminances)."""
    return any(all(readable(to_hex(v, v, v), bg) for bg in backgrounds) for v in range(256))


@dataclass(frozen=True)
class BrandingIssue:
    """One problem of an effective branding; ``message`` is the sentence to show.

    ``code`` is low_contrast or gradient_too_different (made here) or missing_asset (made by
    :mod:`.issues`). The issue keeps its facts, not its sentence: issues are cached per colour
    combination, and :attr:`message` is worded in the language current when it is read.
    """

    code: str  # "low_contrast" | "gradient_too_different" | "missing_asset"
    field: str  # the field concerned: primary_color, gradient_color, logo or banner_image
    ratio: float | None = None
    suggestion: str | None = None
    text: str | None = None  # the text colour
    background: str | None = None  # the background the text is on
    gradient: tuple[str, str] | None = None  # both ends, when they are too different

    @property
    def message(self) -> str:
        if self.code == "low_contrast":
            return _(
                "The text colour {text} on the {background_name} {background} has a contrast of "
                "{ratio}:1, below the {minimum}:1 needed to stay readable; {suggestion} would "
                "reach it."
            ).format(
                text=self.text,
                background_name=color_label(self.field),
                background=self.background,
                ratio=format_ratio(self.ratio or 0.0),
                minimum=MIN_CONTRAST,
                suggestion=self.suggestion,
            )
        if self.code == "gradient_too_different":
            first, second = self.gradient or ("", "")
            return _(
                "The two gradient colours {first} and {second} are too different: no text "
                "colour reaches {minimum}:1 on both ends; choose two ends that are both dark or "
                "both light."
            ).format(first=first, second=second, minimum=MIN_CONTRAST)
        if self.field == "logo":
            return _("No logo is set at any level of the tree: the Selfcare shows no logo.")
        return _(
            "No banner image is set at any level of the tree: the dashboard message block shows "
            "no image."
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "field": self.field,
            "message": self.message,
            "ratio": None if self.ratio is None else float(format_ratio(self.ratio)),
            "suggestion": self.suggestion,
        }


#: Readability problems are branding issues; the older name stays for callers.
ReadabilityWarning = BrandingIssue


@lru_cache(maxsize=4096)
def readability_warnings(
    primary: str | None, gradient: str | None, text: str | None
) -> tuple[BrandingIssue, ...]:
    """Warnings for text on the primary colour and on both ends of the gradient.

    The gradient runs from the primary colour to ``gradient``; the text must reach 4.5:1 on
    both ends. When no text colour at all can (the two ends are too far apart in lightness),
    the seed's warning "les deux couleurs du dégradé sont trop différentes" is added.
    """
    if primary is None or text is None:
        return ()
    ends = (primary,) if gradient is None or gradient == primary else (primary, gradient)
    warnings: list[BrandingIssue] = []
    feasible = any_readable_text(ends)
    suggestion_all = suggest_text_color(text, ends) if feasible else None
    for field, background in zip(("primary_color", "gradient_color"), ends, strict=False):
        ratio = contrast_ratio(text, background)
        if ratio >= MIN_CONTRAST:
            continue
        suggestion = suggestion_all or suggest_text_color(text, (background,))
        warnings.append(
            BrandingIssue(
                code="low_contrast",
                field=field,
                ratio=ratio,
                suggestion=suggestion,
                text=text,
                background=background,
            )
        )
    if not feasible:
        warnings.append(
            BrandingIssue(
                code="gradient_too_different",
                field="gradient_color",
                gradient=(primary, gradient or primary),
            )
        )
    return tuple(warnings)
