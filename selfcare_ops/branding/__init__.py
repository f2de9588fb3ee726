"""Personalisation of the Selfcare: inherited branding, validated images, readable colours.

Public API (stable; mail rendering and the demo loader call it):

- :func:`resolve_branding` -> :class:`ResolvedBranding` (each field's value and source ref)
- :func:`asset_content`, :func:`asset_data_uri` for the bytes of a resolved logo or banner
"""

from __future__ import annotations

from .resolve import (
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

__all__ = [
    "BUILTIN_DEFAULTS",
    "FIELDS",
    "NO_GRADIENT",
    "AssetRef",
    "ResolvedBranding",
    "ResolvedField",
    "asset_content",
    "asset_data_uri",
    "resolve_branding",
]
