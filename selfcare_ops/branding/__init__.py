"""Personalisation of the Selfcare: inherited branding, validated images, readable colours.

Public API (stable; mail rendering and the demo loader call it):

- :func:`resolve_branding` -> :class:`ResolvedBranding` (each field's value and source ref)
- :func:`asset_content`, :func:`asset_data_uri` for the bytes of a resolved logo or banner
- :func:`seed_default_branding` stores the operator's defaults (demo loader)
- :func:`set_branding`, :func:`reset_branding`, :func:`show_branding` (scope-checked, audited)
- :func:`resolve_all` (branding and modules of every client in one call), :func:`branding_audit`
- :func:`render_preview_html`, :func:`render_preview_png`, :func:`write_preview`
- :func:`check_image`, :func:`parse_color`, :func:`contrast_ratio`, :func:`remaining_characters`
"""

from __future__ import annotations

from selfcare_ops.branding.colors import (
    CSS_COLOURS,
    MIN_CONTRAST,
    ReadabilityWarning,
    contrast_ratio,
    format_ratio,
    parse_color,
    readability_warnings,
    relative_luminance,
    suggest_text_color,
)
from selfcare_ops.branding.defaults import SeedResult, seed_default_branding
from selfcare_ops.branding.images import (
    BANNER_MAX_BYTES,
    BANNER_MAX_SIDE,
    LOGO_MAX_SIDE,
    CheckedImage,
    check_image,
    read_upload,
)
from selfcare_ops.branding.issues import BrandingIssue, branding_issues
from selfcare_ops.branding.preview import (
    preview_html,
    preview_png,
    render_preview_html,
    render_preview_png,
    write_preview,
)
from selfcare_ops.branding.resolve import (
    BUILTIN_DEFAULTS,
    FIELDS,
    NO_GRADIENT,
    AssetRef,
    ResolvedBranding,
    ResolvedField,
    asset_content,
    asset_data_uri,
    resolve_branding,
)
from selfcare_ops.branding.service import (
    BrandingChange,
    describe_branding,
    reset_branding,
    set_branding,
    show_branding,
)
from selfcare_ops.branding.tree import branding_audit, resolve_all, write_audit_csv, write_safe_csv
from selfcare_ops.branding.values import (
    MESSAGE_MAX_CHARS,
    clean_link,
    clean_message,
    remaining_characters,
)

__all__ = [
    "BANNER_MAX_BYTES",
    "BANNER_MAX_SIDE",
    "BUILTIN_DEFAULTS",
    "CSS_COLOURS",
    "FIELDS",
    "LOGO_MAX_SIDE",
    "MESSAGE_MAX_CHARS",
    "MIN_CONTRAST",
    "NO_GRADIENT",
    "AssetRef",
    "BrandingChange",
    "BrandingIssue",
    "CheckedImage",
    "ReadabilityWarning",
    "ResolvedBranding",
    "ResolvedField",
    "SeedResult",
    "asset_content",
    "branding_audit",
    "preview_html",
    "preview_png",
    "render_preview_html",
    "render_preview_png",
    "resolve_all",
    "write_audit_csv",
    "write_safe_csv",
    "write_preview",
    "asset_data_uri",
    "branding_issues",
    "check_image",
    "describe_branding",
    "clean_link",
    "clean_message",
    "contrast_ratio",
    "format_ratio",
    "parse_color",
    "read_upload",
    "readability_warnings",
    "relative_luminance",
    "remaining_characters",
    "reset_branding",
    "resolve_branding",
    "seed_default_branding",
    "set_branding",
    "show_branding",
    "suggest_text_color",
]
