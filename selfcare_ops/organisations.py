"""Write side of the organisation tree: operator, partners, clients, administrators."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .access import SYSTEM_ACTOR_EMAIL, Actor, actor_for_administrator, require_organisation
from .errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from .models import LANGUAGES, ORG_KINDS, Administrator, Organisation
from .textnorm import fold

ORG_FIELDS = ("kind", "ref", "name", "parent_id", "login_domain", "language")
_ALLOWED_PARENTS = {"partner": ("operator", "partner"), "client": ("operator", "partner")}


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
            f"The language must be one of {', '.join(LANGUAGES)}, not {language!r}.",
            field="language",
            actual=language,
        )


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
        raise ConflictError("An operator already exists: there is only one root.")
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
    """A partner or a client under ``parent_ref``, within the actor's subtree."""
    if kind not in ORG_KINDS or kind == "operator":
        raise ValidationError(
            f"An organisation created here is a partner or a client, not {kind!r}.",
            field="kind",
            actual=kind,
        )
    _check_language(language)
    parent = get_organisation(session, parent_ref)
    if parent.kind not in _ALLOWED_PARENTS[kind]:
        raise ValidationError(
            f"A {kind} cannot be placed under the {parent.kind} {parent.ref}.",
            field="parent",
            actual=parent.ref,
        )
    require_organisation(actor, parent, f"add a {kind} under")
    if session.scalar(select(Organisation.id).where(Organisation.ref == ref)) is not None:
        raise ConflictError(f"The reference {ref!r} is already used by another organisation.")
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
    session.add(org)
    session.flush()
    org.path = f"{parent.path}{org.id}/"
    _audit_created(session, actor, org)
    return org


def create_administrator(
    session: Session, actor: Actor, org_ref: str, email: str, display_name: str
) -> Administrator:
    """An administrator of ``org_ref``'s subtree (operator, partner or client)."""
    org = get_organisation(session, org_ref)
    require_organisation(actor, org, "add administrators to")
    if actor.kind == "manager":
        raise AccessDeniedError(f"{actor.describe()} may not add administrators.")
    email = email.strip().lower()
    if session.scalar(select(Administrator.id).where(Administrator.email == email)) is not None:
        raise ConflictError(f"{email} is already an administrator.")
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
