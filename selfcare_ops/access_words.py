"""The words of a refusal, in the current language: who acts, what they tried, on what.

The services name what was attempted with a stable English verb phrase (``"list the users
of"``); a refusal reads it through :func:`action_words`, so the French sentence says "lister
les utilisateurs" without every caller translating. A phrase missing here still reads, in
English: add it to the table when a new service passes a new one.
"""

from __future__ import annotations

import re

from selfcare_ops.i18n import _, current_language

#: French merges "de le" into "du" and "à le" into "au", and elides "de" and "que" before a
#: vowel ("les droits d'adupont"): the refusals put a phrase and a name side by side, so the
#: merge happens once the sentence is built.
_FRENCH_CONTRACTIONS = (
    (re.compile(r"\bde le\b"), "du"),
    (re.compile(r"\bà le\b"), "au"),
    (re.compile(r"\bde les\b"), "des"),
    (re.compile(r"\bà les\b"), "aux"),
    (re.compile(r"\b(d|qu)e ([aeiouyàâéèêëîïôûüAEIOUYÉÈ])"), r"\1'\2"),
)


def _actions() -> dict[str, str]:
    """Every phrase the services pass as ``action``, translated now (not at import time)."""
    return {
        "see": _("see"),
        "change": _("change"),
        "edit": _("edit"),
        "move": _("move"),
        "rename": _("rename"),
        "invite": _("invite"),
        "supervise": _("supervise"),
        "deactivate": _("deactivate"),
        "reactivate": _("reactivate"),
        "demote": _("demote"),
        "create": _("create"),
        "regenerate": _("regenerate"),
        "revoke": _("revoke"),
        "add users to": _("add users to"),
        "add administrators to": _("add administrators to"),
        "add a partner under": _("add a partner under"),
        "add a client under": _("add a client under"),
        "invite administrators to": _("invite administrators to"),
        "invite the users of": _("invite the users of"),
        "onboard users into": _("onboard users into"),
        "list the clients of": _("list the clients of"),
        "list the users of": _("list the users of"),
        "list the sub-accounts of": _("list the sub-accounts of"),
        "list the invitations of": _("list the invitations of"),
        "count the users of": _("count the users of"),
        "see the details of": _("see the details of"),
        "edit the company details of": _("edit the company details of"),
        "set the language of": _("set the language of"),
        "create sub-accounts in": _("create sub-accounts in"),
        "rename the sub-accounts of": _("rename the sub-accounts of"),
        "create the API key of": _("create the API key of"),
        "regenerate the API key of": _("regenerate the API key of"),
        "revoke the API key of": _("revoke the API key of"),
        "see the API keys of": _("see the API keys of"),
        "see the modules of": _("see the modules of"),
        "change the modules of": _("change the modules of"),
        "plan module changes under": _("plan module changes under"),
        "see the branding of": _("see the branding of"),
        "change the branding of": _("change the branding of"),
        "reset the branding of": _("reset the branding of"),
        "preview the branding of": _("preview the branding of"),
        "export the audit trail of": _("export the audit trail of"),
        "see the rights of": _("see the rights of"),
        "change the rights of": _("change the rights of"),
        "see the restrictions of": _("see the restrictions of"),
        "change the restrictions of": _("change the restrictions of"),
        "change the role of": _("change the role of"),
        "change the email of": _("change the email of"),
        "see the profile of": _("see the profile of"),
        "edit the profile of": _("edit the profile of"),
        "see the notification preferences of": _("see the notification preferences of"),
        "change the notification preferences of": _("change the notification preferences of"),
        "revoke the invitation of": _("revoke the invitation of"),
        "end the supervision of": _("end the supervision of"),
        "change the rights of others": _("change the rights of others"),
        "change the restrictions of others": _("change the restrictions of others"),
        "set rights through an import": _("set rights through an import"),
        "grant rights to the users they create": _("grant rights to the users they create"),
        "deliver the queued mail": _("deliver the queued mail"),
        "read the queued mail of": _("read the queued mail of"),
        "deliver the mail of": _("deliver the mail of"),
        "read the outbox counts": _("read the outbox counts"),
        "run the invitation maintenance (it delivers every queued mail)": _(
            "run the invitation maintenance (it delivers every queued mail)"
        ),
        "run the demo chain": _("run the demo chain"),
        "migrate the database": _("migrate the database"),
        "recount the users of every client": _("recount the users of every client"),
        "load the demo data": _("load the demo data"),
    }


def contracted(sentence: str) -> str:
    """``sentence`` with the contractions its language makes once the words are in place
    (French: "de le client" -> "du client", "de adupont" -> "d'adupont")."""
    if current_language() != "fr":
        return sentence
    for pattern, replacement in _FRENCH_CONTRACTIONS:
        sentence = pattern.sub(replacement, sentence)
    return sentence


def action_words(action: str) -> str:
    """``action`` (a stable English verb phrase) in the current language."""
    return _actions().get(action, action)


def actor_words(kind: str, label: str) -> str:
    """'client administrator alice@…' in the current language (lower case: it follows
    'Error:' or starts a refusal the way the English always did)."""
    if kind == "system":
        return _("the system actor")
    names = {
        "operator_admin": _("operator administrator {label}"),
        "partner_admin": _("partner administrator {label}"),
        "client_admin": _("client administrator {label}"),
        "manager": _("sub-account manager {label}"),
    }
    return names[kind].format(label=label)


def organisation_words(kind: str, ref: str, name: str | None = None) -> str:
    """'client C0001 (Virginie Télécom)' in the current language (no name: the reference)."""
    if name:
        names = {
            "operator": _("operator {ref} ({name})"),
            "partner": _("partner {ref} ({name})"),
            "client": _("client {ref} ({name})"),
        }
        return names.get(kind, "{ref} ({name})").format(ref=ref, name=name)
    names = {
        "operator": _("operator {ref}"),
        "partner": _("partner {ref}"),
        "client": _("client {ref}"),
    }
    return names.get(kind, "{ref}").format(ref=ref)


def kind_words(kind: str) -> str:
    """An organisation's kind as a word ("client", "partner", "operator")."""
    return {"operator": _("operator"), "partner": _("partner"), "client": _("client")}.get(
        kind, kind
    )


def status_words(status: str) -> str:
    """An account status or a user state (stable codes) as words in the current language,
    for sentences ("non invité", "not invited"); an unknown code is shown as is."""
    words = {
        "not_invited": _("not invited"),
        "draft": _("draft"),
        "invited": _("invited"),
        "pending": _("waiting to be sent"),
        "sent": _("invitation sent"),
        "expired": _("invitation expired"),
        "bounced": _("address refused"),
        "active": _("active"),
        "deactivated": _("deactivated"),
    }
    return words.get(status, status)
