"""A user's own profile, their company's details, and their notification preferences.

Seed 004 keeps the profile and the company in two sections saved separately: here they are two
services, :func:`update_profile` and :func:`update_company`, each writing its own audit event,
so a change to one never carries unsaved edits of the other. Phone numbers are stored in E.164
(``+33612345678``), read as French when written nationally (``06 12 34 56 78``). Notification
preferences (seed 003: "le type de notification, le canal") say which notices go on which
channel; SMS goes to the mobile number, so it is refused while the user has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_organisation, require_user
from selfcare_ops.access_words import contracted
from selfcare_ops.accounts.logins import clean_login
from selfcare_ops.accounts.rights import require_client_administrator
from selfcare_ops.accounts.users import (
    EmailChange,
    change_email,
    derived_columns,
    get_visible_user,
    lock_user,
    login_taken,
)
from selfcare_ops.errors import ConflictError, ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.invitations.issuing import InvitationResult
from selfcare_ops.invitations.service import invite_user
from selfcare_ops.organisations import clean_name, get_client
from selfcare_ops.store.models import CIVILITIES, LANGUAGES, Organisation, User, utcnow
from selfcare_ops.support.dates import long_date_time
from selfcare_ops.support.phones import normalise_phone
from selfcare_ops.support.textnorm import fold

PROFILE_FIELDS = ("civility", "first_name", "last_name", "function", "language", "phone", "mobile")
COMPANY_FIELDS = ("name", "address", "postcode", "city")
_LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "function": 150,
    "name": 200,
    "address": 300,
    "city": 120,
    "postcode": 16,
}
_POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,15}$")
#: Usual spellings of the civilities, folded and without the final dot.
_CIVILITY_SPELLINGS = {"m": "M.", "mr": "M.", "monsieur": "M.", "mme": "Mme", "madame": "Mme"}

#: Notices a user may receive, with the words the dashboards show.
NOTICES = {
    "invoice_available": "invoice available",
    "order_status": "order status",
    "new_user": "new user in the company",
    "security_alert": "security alerts",
}
CHANNELS = ("email", "sms")
#: What a user receives until they or an administrator choose otherwise.
DEFAULT_NOTIFICATION_PREFS: dict[str, list[str]] = {notice: ["email"] for notice in NOTICES}


def field_words(name: str) -> str:
    """A profile or company field for people, in the current language."""
    words = {
        "civility": _("civility"),
        "first_name": _("first name"),
        "last_name": _("last name"),
        "function": _("function"),
        "language": _("language"),
        "phone": _("phone"),
        "mobile": _("mobile"),
        "email": _("email"),
        "login": _("login"),
        "name": _("name"),
        "address": _("address"),
        "postcode": _("postcode"),
        "city": _("city"),
    }
    return words.get(name, name.replace("_", " "))


def notice_words(notice: str) -> str:
    """A notice's name for people, in the current language."""
    words = {
        "invoice_available": _("invoice available"),
        "order_status": _("order status"),
        "new_user": _("new user in the company"),
        "security_alert": _("security alerts"),
    }
    return words.get(notice, notice)


@dataclass(frozen=True)
class SaveResult:
    """One saved section: what it is about and the fields that changed (before, after)."""

    section: str
    target: str
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.changed:
            unchanged = {
                "profile": _("The profile of {target} was already as asked: nothing changed."),
                "company details": _(
                    "The company details of {target} were already as asked: nothing changed."
                ),
                "notification preferences": _(
                    "The notification preferences of {target} were already as asked: nothing "
                    "changed."
                ),
            }
            return contracted(unchanged[self.section].format(target=self.target))
        saved = {
            "profile": _("The profile of {target} is saved ({fields})."),
            "company details": _("The company details of {target} are saved ({fields})."),
            "notification preferences": _(
                "The notification preferences of {target} are saved ({fields})."
            ),
        }
        fields = ", ".join(
            notice_words(name) if self.section == "notification preferences" else field_words(name)
            for name in self.changed
        )
        return contracted(saved[self.section].format(target=self.target, fields=fields))


def _record_changes(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int,
    label: str,
    organisation_id: int,
    changed: dict[str, tuple[Any, Any]],
) -> None:
    """One audit event holding only the changed fields, before and after."""
    audit.record(
        session,
        actor,
        action,
        target_type,
        target_id,
        target_label=label,
        organisation_id=organisation_id,
        before={k: old for k, (old, _new) in changed.items()},
        after={k: new for k, (_old, new) in changed.items()},
    )


# --- text fields -----------------------------------------------------------------------------


def _text(name: str, value: str, *, required: bool) -> str | None:
    text = " ".join(str(value).split())
    if not text:
        if required:
            raise ValidationError(
                _("The {field} cannot be empty.").format(field=field_words(name)), field=name
            )
        return None
    limit = _LIMITS.get(name)
    if limit is not None and len(text) > limit:
        raise ValidationError(
            _("The {field} has at most {limit} characters; '{start}'... has {count}.").format(
                field=field_words(name), limit=limit, start=text[:30], count=len(text)
            ),
            field=name,
            limit=limit,
            actual=len(text),
        )
    return text


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str | None:
    text = str(value).strip()
    if not text:
        return None
    if text not in allowed:
        raise ValidationError(
            _("The {field} must be one of {known}, not '{value}'.").format(
                field=field_words(name), known=", ".join(allowed), value=text
            ),
            field=name,
            actual=text,
        )
    return text


def _profile_value(name: str, value: str) -> str | None:
    if name in ("first_name", "last_name"):
        return _text(name, value, required=True)
    if name == "function":
        return _text(name, value, required=False)
    if name == "civility":
        spelled = _CIVILITY_SPELLINGS.get(fold(value).rstrip("."), value)
        return _choice(name, spelled, CIVILITIES)
    if name == "language":
        return _choice(name, value.lower(), LANGUAGES)
    if not str(value).strip():
        return None
    return normalise_phone(value, field_name=name, mobile=name == "mobile")


# --- notification preferences ----------------------------------------------------------------


def effective_notification_prefs(stored: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The stored preferences over the defaults, every notice present, channels in order."""
    prefs = {notice: list(channels) for notice, channels in DEFAULT_NOTIFICATION_PREFS.items()}
    for notice, channels in (stored or {}).items():
        if notice in prefs and isinstance(channels, list):
            prefs[notice] = [c for c in CHANNELS if c in channels]
    return prefs


def validate_notification_prefs(
    prefs: Mapping[str, Any], *, email: str | None, mobile: str | None, who: str = "this user"
) -> dict[str, list[str]]:
    """Check ``{notice: [channels]}``; returns it with channels deduplicated and ordered.

    An empty list switches a notice off. SMS needs a mobile number and email an address.
    """
    if not isinstance(prefs, Mapping):
        raise ValidationError(
            _("Notification preferences map each notice to a list of channels, not {type}.").format(
                type=type(prefs).__name__
            ),
            field="notification_prefs",
        )
    cleaned: dict[str, list[str]] = {}
    for notice, channels in prefs.items():
        if notice not in NOTICES:
            raise ValidationError(
                _("'{notice}' is not a notice; choose among {known}.").format(
                    notice=notice, known=", ".join(NOTICES)
                ),
                field="notification_prefs",
                actual=notice,
            )
        if isinstance(channels, str) or not isinstance(channels, Iterable):
            raise ValidationError(
                _(
                    "The channels of the {notice} notice are a list (email, sms), not {value}."
                ).format(notice=notice, value=repr(channels)),
                field=notice,
                actual=channels,
            )
        channels = list(channels)
        for channel in channels:
            if channel not in CHANNELS:
                raise ValidationError(
                    _(
                        "'{channel}' is not a channel for the {notice} notice; choose among "
                        "{known}."
                    ).format(channel=channel, notice=notice, known=", ".join(CHANNELS)),
                    field=notice,
                    actual=channel,
                )
        if "sms" in channels and not mobile:
            raise ValidationError(
                _(
                    "{who} has no mobile number, so the {notice} notice cannot go by SMS: add a "
                    "mobile number to the profile first, or choose email."
                ).format(who=who, notice=notice_words(notice)),
                field=notice,
                actual="sms",
            )
        if "email" in channels and not email:
            raise ValidationError(
                _(
                    "{who} has no email address, so the {notice} notice cannot go by email: "
                    "choose SMS or switch the notice off."
                ).format(who=who, notice=notice_words(notice)),
                field=notice,
                actual="email",
            )
        cleaned[notice] = [c for c in CHANNELS if c in channels]
    return cleaned


def parse_notification_assignment(text: str) -> tuple[str, list[str]]:
    """``"order_status=email,sms"`` -> ``("order_status", ["email", "sms"])``; ``"x="`` is off."""
    notice, sep, channels = str(text).partition("=")
    notice = notice.strip().lower().replace("-", "_")
    if not sep or not notice:
        raise ValidationError(
            _(
                "Write a notification preference as NOTICE=CHANNELS (e.g. order_status=email,sms "
                "or new_user= to switch it off), not '{text}'."
            ).format(text=text),
            field="notification_prefs",
            actual=text,
        )
    values = [c.strip().lower() for c in channels.split(",") if c.strip()]
    if values in (["off"], ["none"]):
        values = []
    return notice, values


def get_notification_prefs(session: Session, actor: Actor, login: str) -> dict[str, list[str]]:
    user = get_visible_user(session, actor, login, "see the notification preferences of")
    return effective_notification_prefs(user.notification_prefs)


def set_notification_prefs(
    session: Session, actor: Actor, login: str, prefs: Mapping[str, Iterable[str]]
) -> SaveResult:
    """Change which notices a user receives on which channel (the notices named only)."""
    user = get_visible_user(session, actor, login, "change the notification preferences of")
    if not prefs:
        raise ValidationError(
            _("Name at least one notice to change among {known}.").format(known=", ".join(NOTICES)),
            field="notification_prefs",
        )
    cleaned = validate_notification_prefs(
        prefs, email=user.email, mobile=user.mobile, who=user.login
    )
    before = effective_notification_prefs(user.notification_prefs)
    after = {**before, **cleaned}
    changed = {k: (before[k], after[k]) for k in NOTICES if before[k] != after[k]}
    if changed:
        user.notification_prefs = after
        session.flush()
        _record_changes(
            session,
            actor,
            "user.notifications",
            "user",
            user.id,
            user.login,
            user.client_id,
            changed,
        )
    return SaveResult("notification preferences", user.login, changed)


# --- profile ---------------------------------------------------------------------------------


def get_profile(session: Session, actor: Actor, login: str) -> dict[str, Any]:
    user = get_visible_user(session, actor, login, "see the profile of")
    return {
        "login": user.login,
        "email": user.email,
        **{name: getattr(user, name) for name in PROFILE_FIELDS},
        "notification_prefs": effective_notification_prefs(user.notification_prefs),
    }


def update_profile(
    session: Session,
    actor: Actor,
    login: str,
    *,
    civility: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    function: str | None = None,
    language: str | None = None,
    phone: str | None = None,
    mobile: str | None = None,
) -> SaveResult:
    """Save the user-profile section: ``None`` leaves a field as it is, ``""`` empties it.

    The names cannot be emptied. Removing the mobile number is refused while a notice still
    goes by SMS, so nobody silently stops receiving their alerts.
    """
    given = {
        "civility": civility,
        "first_name": first_name,
        "last_name": last_name,
        "function": function,
        "language": language,
        "phone": phone,
        "mobile": mobile,
    }
    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        raise ValidationError(
            _("Name at least one profile field to change: {known}.").format(
                known=", ".join(PROFILE_FIELDS)
            ),
            field="profile",
        )
    cleaned = {name: _profile_value(name, value) for name, value in given.items()}
    user = get_visible_user(session, actor, login, "edit the profile of")
    changed = {
        name: (getattr(user, name), value)
        for name, value in cleaned.items()
        if getattr(user, name) != value
    }
    _refuse_mobile_removal(user, changed)
    if changed:
        for name, (_old, value) in changed.items():
            setattr(user, name, value)
        if "first_name" in changed or "last_name" in changed:
            for column, value in derived_columns(
                user.first_name, user.last_name, user.login, user.email
            ).items():
                setattr(user, column, value)
        session.flush()
        _record_changes(
            session, actor, "user.profile", "user", user.id, user.login, user.client_id, changed
        )
    return SaveResult("profile", user.login, changed)


def _refuse_mobile_removal(user: User, changed: Mapping[str, tuple[Any, Any]]) -> None:
    """Removing the mobile number is refused while a notice still goes by SMS, so nobody
    silently stops receiving their alerts."""
    if "mobile" in changed and changed["mobile"][1] is None:
        prefs = effective_notification_prefs(user.notification_prefs)
        by_sms = [notice for notice, channels in prefs.items() if "sms" in channels]
        if by_sms:
            raise ConflictError(
                _(
                    "{login} receives {notices} notices by SMS: switch those to email before "
                    "removing the mobile number."
                ).format(login=user.login, notices=", ".join(notice_words(n) for n in by_sms))
            )


# --- an administrator's edit of everything (seed 002) ----------------------------------------

EDIT_FIELDS = ("email", "login", *PROFILE_FIELDS)


@dataclass(frozen=True)
class EditResult:
    """One audited edit of a user: the fields changed (before, after), what the email change
    did to their invitation, and the new invitation when one was asked for."""

    login: str
    previous_login: str
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    email: EmailChange | None = None
    invitation: InvitationResult | None = None

    def describe(self) -> str:
        """What an analyst reads: what was saved and, after an email change, where the
        invitation stands and how to send a new one."""
        fields = ", ".join(field_words(name) for name in self.changed)
        if not self.changed:
            text = _("The details of {login} were already as asked: nothing changed.").format(
                login=self.login
            )
        elif self.login != self.previous_login:
            text = _("Saved {login} (formerly {previous}): {fields}.").format(
                login=self.login, previous=self.previous_login, fields=fields
            )
        else:
            text = _("Saved {login}: {fields}.").format(login=self.login, fields=fields)
        voided = self.email.invitations_voided if self.email is not None else 0
        old_address = self.email.before if self.email is not None else None
        if voided:
            text += " " + ngettext(
                "The invitation link sent to {address} no longer works.",
                "The {count} invitation links sent to {address} no longer work.",
                voided,
            ).format(count=voided, address=old_address)
        if self.invitation is not None:
            text += " " + _("A new invitation was queued for {email}, valid until {until}.").format(
                email=self.invitation.email, until=long_date_time(self.invitation.expires_at)
            )
        elif self.email is not None and self.email.uninvited:
            if self.email.after:
                sentence = _(
                    "{login} is not invited any more: `selfcare-ops invite user {login}` (or "
                    "users edit --invite) sends a new invitation to {email}."
                )
            else:
                sentence = _(
                    "{login} is not invited any more: `selfcare-ops invite user {login}` (or "
                    "users edit --invite) sends a new invitation to a new address."
                )
            text += " " + sentence.format(login=self.login, email=self.email.after)
        return contracted(text)


def edit_user(
    session: Session,
    actor: Actor,
    login: str,
    *,
    email: str | None = None,
    new_login: str | None = None,
    civility: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    function: str | None = None,
    language: str | None = None,
    phone: str | None = None,
    mobile: str | None = None,
    invite: bool = False,
    now: datetime | None = None,
) -> EditResult:
    """An administrator changes any of a user's details at once (seed 002): one audited save
    with every changed field before and after.

    ``None`` leaves a field as it is, ``""`` empties an optional one (``language=""``: the
    user's mails follow their client's language again). The email changes through
    :func:`.users.change_email` (an invited user's link is voided and they go back to
    ``not_invited``); ``invite=True`` then sends a new invitation at once. The login stays
    unique and valid; the derived search columns follow every change.
    """
    given = {
        "civility": civility,
        "first_name": first_name,
        "last_name": last_name,
        "function": function,
        "language": language,
        "phone": phone,
        "mobile": mobile,
    }
    given = {name: value for name, value in given.items() if value is not None}
    if not given and email is None and new_login is None and not invite:
        raise ValidationError(
            _("Name at least one field to change: {known}.").format(known=", ".join(EDIT_FIELDS)),
            field="user",
        )
    cleaned = {name: _profile_value(name, value) for name, value in given.items()}
    wanted_login = clean_login(new_login) if new_login is not None else None
    now = now or utcnow()
    user = lock_user(session, login)
    require_user(actor, user, "edit")
    previous_login = user.login
    changed = {
        name: (getattr(user, name), value)
        for name, value in cleaned.items()
        if getattr(user, name) != value
    }
    _refuse_mobile_removal(user, changed)
    if wanted_login is not None and wanted_login != user.login:
        if login_taken(session, wanted_login):
            raise ConflictError(_("The login {login} is already taken.").format(login=wanted_login))
        changed["login"] = (user.login, wanted_login)
    for name, (_old, value) in changed.items():
        setattr(user, name, value)
    email_change = None
    before = {name: old for name, (old, _new) in changed.items()}
    after = {name: new for name, (_old, new) in changed.items()}
    if email is not None:
        email_change = change_email(session, actor, user, email, now=now, record=False)
        if email_change.changed:
            changed["email"] = (email_change.before, email_change.after)
            email_before, email_after = email_change.audit_fields()
            before.update(email_before)
            after.update(email_after)
    if changed:
        for column, value in derived_columns(
            user.first_name, user.last_name, user.login, user.email
        ).items():
            setattr(user, column, value)
        session.flush()
        audit.record(
            session,
            actor,
            "user.update",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=user.client_id,
            before=before,
            after=after,
            occurred_at=now,
        )
    invitation = invite_user(session, actor, user.login, now=now) if invite else None
    return EditResult(user.login, previous_login, changed, email_change, invitation)


# --- company ---------------------------------------------------------------------------------


def get_company(session: Session, actor: Actor, client_ref: str) -> dict[str, Any]:
    client = get_client(session, client_ref)
    require_organisation(actor, client, "see the details of")
    return {"ref": client.ref, **{name: getattr(client, name) for name in COMPANY_FIELDS}}


def _company_value(name: str, value: str) -> str | None:
    """One field of the company section; the name follows the tree's one naming rule
    (:func:`~selfcare_ops.organisations.clean_name`, as ``orgs rename``)."""
    if name == "name":
        return clean_name(value)
    text = _text(name, value, required=False)
    if name == "postcode" and text is not None and not _POSTCODE.match(text):
        raise ValidationError(
            _(
                "The postcode '{postcode}' should be letters, digits, spaces or hyphens (2 to 16 "
                "characters), like 75010."
            ).format(postcode=text),
            field="postcode",
            actual=text,
        )
    return text


def update_company(
    session: Session,
    actor: Actor,
    client_ref: str,
    *,
    name: str | None = None,
    address: str | None = None,
    postcode: str | None = None,
    city: str | None = None,
) -> SaveResult:
    """Save the company section of a client; its administrators (not managers) only.

    ``None`` leaves a field as it is, ``""`` empties it (the name cannot be emptied).
    """
    given = {"name": name, "address": address, "postcode": postcode, "city": city}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        raise ValidationError(
            _("Name at least one company detail to change: {known}.").format(
                known=", ".join(COMPANY_FIELDS)
            ),
            field="company",
        )
    cleaned = {key: _company_value(key, value) for key, value in given.items()}
    client: Organisation = get_client(session, client_ref)
    require_client_administrator(actor, client, "edit the company details of")
    changed = {
        key: (getattr(client, key), value)
        for key, value in cleaned.items()
        if getattr(client, key) != value
    }
    if changed:
        for key, (_old, value) in changed.items():
            setattr(client, key, value)
        if "name" in changed:
            client.name_folded = fold(client.name)
        session.flush()
        _record_changes(
            session,
            actor,
            "organisation.details",
            "organisation",
            client.id,
            client.ref,
            client.id,
            changed,
        )
    return SaveResult("company details", client.ref, changed)


__all__ = [
    "CHANNELS",
    "DEFAULT_NOTIFICATION_PREFS",
    "NOTICES",
    "SaveResult",
    "EDIT_FIELDS",
    "EditResult",
    "edit_user",
    "effective_notification_prefs",
    "get_company",
    "get_notification_prefs",
    "get_profile",
    "normalise_phone",
    "parse_notification_assignment",
    "set_notification_prefs",
    "update_company",
    "update_profile",
    "validate_notification_prefs",
]
