"""What is wrong with an effective branding: unreadable colours and missing images."""

from __future__ import annotations

from dataclasses import dataclass

from .colors import format_ratio, readability_warnings
from .resolve import ResolvedBranding

_MISSING = {
    "logo": "No logo is set at any level of the tree: the Selfcare shows no logo.",
    "banner_image": "No banner image is set at any level of the tree: the dashboard message "
    "block shows no image.",
}


@dataclass(frozen=True)
class BrandingIssue:
    """One problem: ``code`` is low_contrast, gradient_too_different or missing_asset."""

    code: str
    field: str
    message: str
    ratio: float | None = None
    suggestion: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "field": self.field,
            "message": self.message,
            "ratio": None if self.ratio is None else float(format_ratio(self.ratio)),
            "suggestion": self.suggestion,
        }


def issues_for(
    primary: str | None, gradient: str | None, text: str | None, logo: object, banner: object
) -> tuple[BrandingIssue, ...]:
    """Readability warnings, then missing images (cached per colour combination)."""
    found = [
        BrandingIssue(w.code, w.field, w.message, w.ratio, w.suggestion)
        for w in readability_warnings(primary, gradient, text)
    ]
    for field, value in (("logo", logo), ("banner_image", banner)):
        if value is None:
            found.append(BrandingIssue("missing_asset", field, _MISSING[field]))
    return tuple(found)


def branding_issues(branding: ResolvedBranding) -> tuple[BrandingIssue, ...]:
    return issues_for(
        branding.primary_color.value,
        branding.gradient_color.value,
        branding.text_color.value,
        branding.logo.value,
        branding.banner_image.value,
    )
