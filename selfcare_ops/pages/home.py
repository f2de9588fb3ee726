"""The client's Selfcare home as its users see it: header, menu of enabled modules, message.

One template (``selfcare.html``) draws it for the portal (``/selfcare``, ``/supervision``,
``/preview``) and for ``branding preview --out x.html``; the portal links its images and
stylesheet, the standalone preview carries them inline (data URIs, one ``<style>``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.branding.resolve import AssetRef, ResolvedBranding, resolve_branding
from selfcare_ops.modules import ModuleState, resolve_modules
from selfcare_ops.pages.render import Theme, base_css, module_labels, render
from selfcare_ops.store.models import Organisation

#: Modules that are settings, not menu entries.
NOT_IN_MENU = ("offres_mobiles",)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}

__all__ = ["HomeView", "asset_path", "home_view", "module_labels", "render_standalone", "view_of"]


def asset_path(asset: AssetRef | None) -> str | None:
    """Where the portal serves an image: ``/assets/<sha256>.<ext>`` (immutable)."""
    if asset is None:
        return None
    return f"/assets/{asset.sha256}.{_EXTENSIONS.get(asset.mime, 'png')}"


@dataclass(frozen=True)
class HomeView:
    """Everything the home template shows of one client, read once."""

    organisation_id: int | None
    organisation_name: str
    theme: Theme
    logo: AssetRef | None
    banner: AssetRef | None
    banner_link: str | None
    banner_message: str
    modules: tuple[str, ...]
    mobile_offers: bool

    def context(self, *, logo_src: str | None, banner_src: str | None) -> dict[str, Any]:
        return {
            "home": self,
            "theme": self.theme,
            "logo_src": logo_src,
            "banner_src": banner_src,
        }


def _safe_link(link: Any) -> str | None:
    text = str(link or "").strip()
    return text if text.lower().startswith("https://") else None


def view_of(
    branding: ResolvedBranding, modules: Mapping[str, ModuleState], organisation_name: str
) -> HomeView:
    """The home of an effective branding and module set (a stored one or a draft)."""
    logo, banner = branding.logo.value, branding.banner_image.value
    offers = modules.get("offres_mobiles")
    return HomeView(
        organisation_id=getattr(branding, "organisation_id", None),
        organisation_name=organisation_name,
        theme=Theme.of(
            branding.primary_color.value, branding.gradient_color.value, branding.text_color.value
        ),
        logo=logo if isinstance(logo, AssetRef) else None,
        banner=banner if isinstance(banner, AssetRef) else None,
        banner_link=_safe_link(branding.banner_link.value),
        banner_message=str(branding.banner_message.value or ""),
        modules=tuple(k for k, s in modules.items() if s.enabled and k not in NOT_IN_MENU),
        mobile_offers=bool(offers and offers.enabled),
    )


def home_view(session: Session, organisation_id: int) -> HomeView:
    """The home of a stored organisation (no scope check: the caller has one)."""
    name = session.scalar(select(Organisation.name).where(Organisation.id == organisation_id))
    return view_of(
        resolve_branding(session, organisation_id),
        resolve_modules(session, organisation_id),
        str(name or ""),
    )


def render_standalone(
    view: HomeView,
    *,
    logo_uri: str | None,
    banner_uri: str | None,
    issues: Sequence[Any] = (),
    language: str = "fr",
    popup: bool = True,
) -> str:
    """The home as one self-contained fragment (its styles inline, images as given), with the
    sample buttons and pop-up that show where the colours reach (``popup=False``: no pop-up,
    which beside a real save button would read like a real confirmation)."""
    return render(
        "preview.html",
        language,
        {
            **view.context(logo_src=logo_uri, banner_src=banner_uri),
            "styles": base_css() + view.theme.css(),
            "issues": [getattr(issue, "message", str(issue)) for issue in issues],
            "sample": True,
            "popup": popup,
            "banner_text": None,
            "greeting": None,
            "links": None,
        },
    )
