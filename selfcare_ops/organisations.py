"""Write side of the organisation tree: operator, partners, clients, administrators.

Partners and clients are created, renamed and given a language here and nowhere else, each
change scope-checked and audited. The mail language of a person is the nearest one set along
user -> client -> partner(s) -> operator; ``None`` on a partner or client means "inherit".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import (
    SYSTEM_ACTOR_EMAIL,
    Actor,
    actor_for_administrator,
    require_organisation,
    require_organisation_admin,
)
from selfcare_ops.access_words import organisation_words
from selfcare_ops.errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.store.models import LANGUAGES, ORG_KINDS, Administrator, Organisation
from selfcare_ops.support.textnorm import clean_label, fold

ORG_FIELDS = ("kind", "ref", "name", "parent_id", "login_domain", "language")
_ALLOWED_PARENTS = {"partner": ("operator", "partner"), "client": ("operator", "partner")}
#: References are typed in commands and CSV files: one word (no spaces), at most 64 characters.
_REF = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}\Z")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
MAX_NAME_LENGTH = 200
#: The language every mail falls back to when no level of the tree sets one.
FALLBACK_LANGUAGE = "fr"


@dataclass(frozen=True)
class OrganisationChange:
    """One field of an organisation changed (``before == after`` when nothing changed)."""

    ref: str
    kind: str
    field: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def get_organisation(session: Session, ref: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.ref == ref))
    if org is None:
        raise NotFoundError("organisation", ref)
    return org


def get_client(session: Session, ref: str) -> Organisation:
    org = session.scalar(
        select(Organisation).where(Organisation.ref == ref, Organisation.kind == "client")
    )
    if org is None:
        raise NotFoundError("client", ref)
    return org


def _check_language(language: str | None) -> None:
    if language is not None and language not in LANGUAGES:
        raise ValidationError(
            _("The language must be one of {known}, not '{language}'.").format(
                known=", ".join(LANGUAGES), language=language
            ),
            field="language",
            actual=language,
        )


def clean_ref(ref: str) -> str:
    """A reference as typed, checked: it names the organisation in every command and file."""
    text = (ref or "").strip()
    if not _REF.match(text):
        raise ValidationError(
            _(
                "The reference '{ref}' is not valid: it is one word of 1 to 64 characters, "
                "without spaces, like C0042."
            ).format(ref=text),
            field="ref",
            actual=text,
        )
    return text


def clean_name(name: str) -> str:
    """An organisation's name with its spaces tidied; never empty, at most 200 characters."""
    return clean_label(name, what="An organisation", limit=MAX_NAME_LENGTH)


def clean_login_domain(domain: str | None) -> str | None:
    """The domain after the ``@`` of generated logins (``virginietelecom.sewan.eu``)."""
    if domain is None or not domain.strip():
        return None
    text = domain.strip().lower().lstrip("@")
    if len(text) > 200 or not _DOMAIN.match(text):
        raise ValidationError(
            _(
                "The login domain '{domain}' is not a domain name like virginietelecom.sewan.eu."
            ).format(domain=domain.strip()),
            field="login_domain",
            actual=domain,
        )
    return text


def _audit_created(session: Session, actor: Actor, org: Organisation) -> None:
    audit.record(
        session,
        actor,
        "organisation.create",
        "organisation",
        org.id,
        target_label=org.ref,
        organisation_id=org.id,
        after=audit.snapshot(org, ORG_FIELDS),
    )


def create_operator(
    session: Session,
    ref: str,
    name: str,
    *,
    login_domain: str | None = None,
    language: str = "fr",
    system_email: str = SYSTEM_ACTOR_EMAIL,
) -> tuple[Organisation, Administrator]:
    """Bootstrap the root and its named system actor (the only call without an actor)."""
    if session.scalar(select(Organisation).where(Organisation.kind == "operator")) is not None:
        raise ConflictError(_("An operator already exists: there is only one root."))
    _check_language(language)
    org = Organisation(
        kind="operator",
        ref=ref,
        name=name,
        name_folded=fold(name),
        path="/",
        login_domain=login_domain,
        language=language,
    )
    session.add(org)
    session.flush()
    org.path = f"/{org.id}/"
    system = Administrator(
        organisation=org, kind="system", email=system_email, display_name=f"{name} (system)"
    )
    session.add(system)
    session.flush()
    actor = actor_for_administrator(system)
    _audit_created(session, actor, org)
    return org, system


def create_organisation(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    parent_ref: str,
    ref: str,
    name: str,
    login_domain: str | None = None,
    language: str | None = None,
) -> Organisation:
    """A partner or a client under ``parent_ref``, within the actor's subtree.

    Client-side actors (client administrators, managers) create neither: their scope is one
    client. A reference already used, even outside the actor's scope, is refused.
    """
    if kind not in ORG_KINDS or kind == "operator":
        raise ValidationError(
            _("An organisation created here is a partner or a client, not '{kind}'.").format(
                kind=kind
            ),
            field="kind",
            actual=kind,
        )
    if actor.is_client_side:
        raise AccessDeniedError(
            _(
                "{actor} may not create partners or clients: only operator and partner "
                "administrators may."
            ).format(actor=actor.describe())
        )
    ref, name = clean_ref(ref), clean_name(name)
    login_domain = clean_login_domain(login_domain)
    _check_language(language)
    parent = get_organisation(session, parent_ref)
    if parent.kind not in _ALLOWED_PARENTS[kind]:
        raise ValidationError(
            (
                _("A partner cannot be placed under {parent}.")
                if kind == "partner"
                else _("A client cannot be placed under {parent}.")
            ).format(parent=organisation_words(parent.kind, parent.ref)),
            field="parent",
            actual=parent.ref,
        )
    require_organisation(actor, parent, f"add a {kind} under")
    if session.scalar(select(Organisation.id).where(Organisation.ref == ref)) is not None:
        raise ConflictError(
            _("The reference '{ref}' is already used by another organisation.").format(ref=ref)
        )
    org = Organisation(
        kind=kind,
        parent_id=parent.id,
        ref=ref,
        name=name,
        name_folded=fold(name),
        path=parent.path,
        login_domain=login_domain,
        language=language,
    )
    try:
        with session.begin_nested():  # another session may take the reference meanwhile
            session.add(org)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            _("The reference '{ref}' is already used by another organisation.").format(ref=ref)
        ) from exc
    org.path = f"{parent.path}{org.id}/"
    _audit_created(session, actor, org)
    return org


def _changeable(session: Session, actor: Actor, ref: str, action: str) -> Organisation:
    """The organisation, if the actor administers it: in scope and not a manager."""
    org = get_organisation(session, ref)
    require_organisation_admin(actor, org, action)
    return org


def _record_change(
    session: Session, actor: Actor, org: Organisation, action: str, field: str, before: object
) -> None:
    audit.record(
        session,
        actor,
        action,
        "organisation",
        org.id,
        target_label=org.ref,
        organisation_id=org.id,
        before={field: before},
        after={field: getattr(org, field)},
    )


def rename_organisation(session: Session, actor: Actor, ref: str, name: str) -> OrganisationChange:
    """Give a partner, a client (or the operator) a new name; its reference stays."""
    name = clean_name(name)
    org = _changeable(session, actor, ref, "rename")
    before = org.name
    if name != before:
        org.name, org.name_folded = name, fold(name)
        session.flush()
        _record_change(session, actor, org, "organisation.rename", "name", before)
    return OrganisationChange(org.ref, org.kind, "name", before, name)


def set_language(
    session: Session, actor: Actor, ref: str, language: str | None
) -> OrganisationChange:
    """Set the mail language of an organisation and everything below that does not set its
    own; ``None`` makes a partner or client inherit again. The operator, the root, keeps one."""
    _check_language(language)
    org = _changeable(session, actor, ref, "set the language of")
    if language is None and org.kind == "operator":
        raise ValidationError(
            _(
                "The operator {ref} is the root of the tree: it has nothing to inherit a "
                "language from, so it keeps one of {known}."
            ).format(ref=org.ref, known=", ".join(LANGUAGES)),
            field="language",
        )
    before = org.language
    if language != before:
        org.language = language
        session.flush()
        _record_change(session, actor, org, "organisation.language", "language", before)
    return OrganisationChange(org.ref, org.kind, "language", before, language)


def effective_language(session: Session, org: Organisation) -> tuple[str, str | None]:
    """The language mails of ``org`` use and the reference of the level that sets it
    (``None`` when no level does and the fallback applies)."""
    ids = [int(part) for part in org.path.strip("/").split("/") if part]
    rows = dict(
        (row.id, row)
        for row in session.execute(
            select(Organisation.id, Organisation.ref, Organisation.language).where(
                Organisation.id.in_(ids)
            )
        )
    )
    for org_id in reversed(ids):
        row = rows.get(org_id)
        if row is not None and row.language:
            return row.language, row.ref
    return FALLBACK_LANGUAGE, None


def create_administrator(
    session: Session, actor: Actor, org_ref: str, email: str, display_name: str
) -> Administrator:
    """An administrator of ``org_ref``'s subtree (operator, partner or client)."""
    org = get_organisation(session, org_ref)
    require_organisation(actor, org, "add administrators to")
    if actor.kind == "manager":
        raise AccessDeniedError(
            _("{actor} may not add administrators.").format(actor=actor.describe())
        )
    email = email.strip().lower()
    if session.scalar(select(Administrator.id).where(Administrator.email == email)) is not None:
        raise ConflictError(_("{email} is already an administrator.").format(email=email))
    admin = Administrator(organisation=org, email=email, display_name=display_name)
    session.add(admin)
    session.flush()
    audit.record(
        session,
        actor,
        "administrator.create",
        "administrator",
        admin.id,
        target_label=email,
        organisation_id=org.id,
        after={"email": email, "organisation": org.ref},
    )
    return admin
