"""What is wrong with an effective branding: unreadable colours and missing images."""

from __future__ import annotations

from selfcare_ops.branding.colors import BrandingIssue, readability_warnings
from selfcare_ops.branding.resolve import ResolvedBranding


def issues_for(
    primary: str | None, gradient: str | None, text: str | None, logo: object, banner: object
) -> tuple[BrandingIssue, ...]:
    """Readability warnings, then missing images (cached per colour combination)."""
    found = list(readability_warnings(primary, gradient, text))
    for field, value in (("logo", logo), ("banner_image", banner)):
        if value is None:
            found.append(BrandingIssue("missing_asset", field))
    return tuple(found)


def branding_issues(branding: ResolvedBranding) -> tuple[BrandingIssue, ...]:
    return issues_for(
        branding.primary_color.value,
        branding.gradient_color.value,
        branding.text_color.value,
        branding.logo.value,
        branding.banner_image.value,
    )
