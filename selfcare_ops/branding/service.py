"""Write side of branding: set and reset fields of one organisation, store images once.

Every change is scope-checked (administrators of the organisation's subtree, or the client's
own administrators; never sub-account managers), validated as a whole before anything is
written, audited in the same transaction, and answered with the new effective branding and its
readability warnings. Warnings never block a change: the seed asks for a warning, not a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_organisation, require_organisation_admin
from selfcare_ops.branding.colors import parse_color
from selfcare_ops.branding.images import CheckedImage, check_image
from selfcare_ops.branding.issues import BrandingIssue, branding_issues
from selfcare_ops.branding.resolve import (
    ASSET_FIELDS,
    FIELD_COLUMNS,
    FIELDS,
    NO_GRADIENT,
    ResolvedBranding,
    resolve_branding,
)
from selfcare_ops.branding.values import clean_link, clean_message
from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.organisations import get_organisation
from selfcare_ops.store.models import Asset, BrandingSetting, Organisation

#: Words accepted for "explicitly no gradient at this level".
NO_GRADIENT_WORDS = ("", "none", "aucun", "no")


@dataclass(frozen=True)
class BrandingChange:
    """What a set or reset did: the stored fields before and after, and the new result."""

    organisation_ref: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    effective: ResolvedBranding
    issues: tuple[BrandingIssue, ...]
    images: tuple[CheckedImage, ...] = ()

    @property
    def changed(self) -> list[str]:
        return [name for name in FIELDS if self.before.get(name) != self.after.get(name)]


def store_asset(session: Session, image: CheckedImage) -> int:
    """The id of the stored copy of ``image``, inserting it unless the same bytes exist."""
    existing = session.scalar(select(Asset.id).where(Asset.sha256 == image.sha256))
    if existing is not None:
        return existing
    asset = Asset(
        sha256=image.sha256,
        mime=image.mime,
        width=image.width,
        height=image.height,
        size=image.size,
        content=image.content,
    )
    try:
        with session.begin_nested():  # another session may store the same image right now
            session.add(asset)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Asset.id).where(Asset.sha256 == image.sha256))
        if existing is None:
            raise
        return existing
    return asset.id


def _stored(setting: BrandingSetting | None, sha: dict[int, str]) -> dict[str, Any]:
    """The organisation's own settings for the audit record (images by sha256)."""
    out: dict[str, Any] = {}
    for name, column in FIELD_COLUMNS.items():
        value = getattr(setting, column) if setting is not None else None
        if name in ASSET_FIELDS and value is not None:
            value = sha.get(value, value)
        out[name] = value
    return out


def _asset_hashes(session: Session, *settings: BrandingSetting | None) -> dict[int, str]:
    ids = {
        getattr(s, FIELD_COLUMNS[name]) for s in settings if s is not None for name in ASSET_FIELDS
    } - {None}
    if not ids:
        return {}
    return dict(session.execute(select(Asset.id, Asset.sha256).where(Asset.id.in_(ids))).all())


def admin_only(actor: Actor, org: Organisation, action: str) -> None:
    """Scope, then "administrators only", both refusals naming the organisation."""
    require_organisation_admin(actor, org, action)


def _admin_target(session: Session, actor: Actor, organisation_ref: str, action: str):
    org = get_organisation(session, organisation_ref)
    admin_only(actor, org, action)
    return org


def clean_values(
    *,
    logo: bytes | None = None,
    fit: bool = False,
    primary_color: str | None = None,
    gradient_color: str | None = None,
    text_color: str | None = None,
    banner: bytes | None = None,
    banner_link: str | None = None,
    banner_message: str | None = None,
) -> tuple[dict[str, Any], list[CheckedImage]]:
    """Every given value validated (images checked and re-encoded), nothing written yet."""
    values: dict[str, Any] = {}
    images: list[CheckedImage] = []
    if logo is not None:
        images.append(check_image(logo, "logo", fit=fit))
        values["logo"] = images[-1]
    if primary_color is not None:
        values["primary_color"] = parse_color(primary_color, field="primary_color")
    if gradient_color is not None:
        if gradient_color.strip().lower() in NO_GRADIENT_WORDS:
            values["gradient_color"] = NO_GRADIENT
        else:
            values["gradient_color"] = parse_color(gradient_color, field="gradient_color")
    if text_color is not None:
        values["text_color"] = parse_color(text_color, field="text_color")
    if banner is not None:
        images.append(check_image(banner, "banner"))
        values["banner_image"] = images[-1]
    if banner_link is not None:
        values["banner_link"] = clean_link(banner_link)
    if banner_message is not None:
        values["banner_message"] = clean_message(banner_message)
    return values, images


def set_branding(
    session: Session,
    actor: Actor,
    organisation_ref: str,
    *,
    logo: bytes | None = None,
    fit: bool = False,
    primary_color: str | None = None,
    gradient_color: str | None = None,
    text_color: str | None = None,
    banner: bytes | None = None,
    banner_link: str | None = None,
    banner_message: str | None = None,
) -> BrandingChange:
    """Set one or several fields of one organisation (others keep inheriting).

    ``gradient_color='none'`` stores "explicitly no gradient here". Images are bytes, checked by
    content; ``fit`` downscales a logo larger than 600 px. All values are validated before any
    is written, so a bad one leaves the organisation unchanged.
    """
    org = _admin_target(session, actor, organisation_ref, _("change the branding of"))
    values, images = clean_values(
        logo=logo,
        fit=fit,
        primary_color=primary_color,
        gradient_color=gradient_color,
        text_color=text_color,
        banner=banner,
        banner_link=banner_link,
        banner_message=banner_message,
    )
    if not values:
        raise ValidationError(
            _(
                "Nothing to change: give at least one of logo, primary colour, gradient, text "
                "colour, banner image, banner link or message."
            ),
            field="branding",
        )
    setting = session.get(BrandingSetting, org.id)
    before = _stored(setting, _asset_hashes(session, setting))
    if setting is None:
        setting = BrandingSetting(organisation_id=org.id)
        session.add(setting)
    for name, value in values.items():
        if isinstance(value, CheckedImage):
            value = store_asset(session, value)
        setattr(setting, FIELD_COLUMNS[name], value)
    session.flush()
    after = _stored(setting, _asset_hashes(session, setting))
    return _finish(session, actor, org, "branding.set", before, after, tuple(images))


def reset_branding(
    session: Session,
    actor: Actor,
    organisation_ref: str,
    fields: str | list[str] | tuple[str, ...] | None = None,
) -> BrandingChange:
    """Make fields of one organisation inherit again: the named ones, or all (``None``)."""
    org = _admin_target(session, actor, organisation_ref, _("reset the branding of"))
    names = FIELDS if fields is None else ((fields,) if isinstance(fields, str) else tuple(fields))
    unknown = [n for n in names if n not in FIELD_COLUMNS]
    if unknown:
        raise ValidationError(
            _("Unknown branding field {field}; the fields are {fields}.").format(
                field=repr(unknown[0]), fields=", ".join(FIELDS)
            ),
            field="field",
            actual=unknown[0],
        )
    setting = session.get(BrandingSetting, org.id)
    before = _stored(setting, _asset_hashes(session, setting))
    if setting is not None:
        for name in names:
            setattr(setting, FIELD_COLUMNS[name], None)
        if all(getattr(setting, column) is None for column in FIELD_COLUMNS.values()):
            session.delete(setting)
        session.flush()
    after = {**before, **dict.fromkeys(names)}
    return _finish(session, actor, org, "branding.reset", before, after)


def _finish(
    session: Session,
    actor: Actor,
    org: Organisation,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    images: tuple[CheckedImage, ...] = (),
) -> BrandingChange:
    old, new = audit.changed(before, after)
    if new:  # a change that changes nothing is not worth an audit line
        audit.record(
            session,
            actor,
            action,
            "organisation",
            org.id,
            target_label=org.ref,
            organisation_id=org.id,
            before=old,
            after=new,
        )
    effective = resolve_branding(session, org.id)
    return BrandingChange(
        organisation_ref=org.ref,
        action=action,
        before=before,
        after=after,
        effective=effective,
        issues=branding_issues(effective),
        images=images,
    )


def show_branding(session: Session, actor: Actor, organisation_ref: str) -> ResolvedBranding:
    """The effective branding of an organisation the actor may see."""
    org = get_organisation(session, organisation_ref)
    require_organisation(actor, org, _("see the branding of"))
    return resolve_branding(session, org.id)


def describe_branding(session: Session, actor: Actor, organisation_ref: str) -> dict[str, Any]:
    """JSON-ready: one key per field (``{"value", "source"}``) plus ``"warnings"``."""
    effective = show_branding(session, actor, organisation_ref)
    return {
        **effective.as_dict(),
        "warnings": [issue.as_dict() for issue in branding_issues(effective)],
    }
