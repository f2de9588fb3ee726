"""Header recognition: French or English column names, any case, accents or spacing.

Each known field has aliases compared in a compact folded form ('Adresse e-mail',
'ADRESSE EMAIL' and 'adresse_e-mail' are the same). Unknown columns are reported, not fatal;
a file without the name columns, or naming a field twice, cannot be imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selfcare_ops.errors import ImportFileError
from selfcare_ops.i18n import _
from selfcare_ops.onboarding.values import compact

#: field -> (French label, English label, other aliases)
FIELDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "civility": ("Civilité", "Title", ("civility", "salutation", "titre")),
    "last_name": ("Nom", "Last name", ("nom de famille", "surname", "family name", "lastname")),
    "first_name": ("Prénom", "First name", ("given name", "firstname", "prenoms")),
    "email": (
        "Adresse e-mail",
        "Email",
        (
            "e-mail",
            "mail",
            "courriel",
            "adresse mail",
            "adresse email",
            "email address",
            "e-mail address",
            "adresse courriel",
        ),
    ),
    "phone": (
        "Téléphone",
        "Phone",
        (
            "tel",
            "tél.",
            "telephone fixe",
            "téléphone fixe",
            "phone number",
            "telephone number",
            "numéro de téléphone",
            "fixe",
            "landline",
            "ligne fixe",
        ),
    ),
    "mobile": (
        "Mobile",
        "Mobile phone",
        (
            "portable",
            "téléphone mobile",
            "téléphone portable",
            "gsm",
            "cell phone",
            "cellphone",
            "mobile number",
        ),
    ),
    "login": ("Identifiant", "Login", ("username", "user name", "nom d'utilisateur", "user id")),
    "function": ("Fonction", "Job title", ("poste", "function", "position", "intitulé de poste")),
    "sub_account": ("Sous-compte", "Sub-account", ("subaccount", "sous compte", "division")),
    "role": ("Rôle", "Role", ("profil", "profile")),
    "language": ("Langue", "Language", ("lang", "langue préférée", "preferred language")),
    "services": ("Services", "Services", ("service", "prestations")),
    "right_manage_rights": (
        "Gérer les droits",
        "Manage rights",
        ("gestion des droits", "droit gestion des droits", "droits", "rights management"),
    ),
    "right_place_orders": (
        "Passer commande",
        "Place orders",
        ("passer des commandes", "commandes", "commander", "orders", "droit commande"),
    ),
    "right_view_invoices": (
        "Voir les factures",
        "View invoices",
        ("consulter les factures", "factures", "invoices", "droit factures"),
    ),
    "client": (
        "Référence client",
        "Client ref",
        (
            "client",
            "ref client",
            "réf. client",
            "client reference",
            "code client",
            "customer",
            "customer ref",
            "référence du client",
        ),
    ),
}

REQUIRED_FIELDS = ("last_name", "first_name")
RIGHT_FIELDS = ("right_manage_rights", "right_place_orders", "right_view_invoices")

ALIASES: dict[str, str] = {}
for _field, (_fr, _en, _others) in FIELDS.items():
    for _alias in (_field, _fr, _en, *_others):
        ALIASES.setdefault(compact(_alias), _field)


def field_for(header: str) -> str | None:
    """The field a header names, or None when unknown."""
    return ALIASES.get(compact(header))


def template_headers(lang: str = "fr") -> list[str]:
    """The column labels of the template in French or English."""
    if lang not in ("fr", "en"):
        raise ImportFileError(
            _("The template language must be fr or en, not {language}.").format(language=repr(lang))
        )
    return [labels[0] if lang == "fr" else labels[1].strip() for labels in FIELDS.values()]


@dataclass
class HeaderMap:
    """Which column holds which field, and what was not recognised."""

    headers: list[str]
    #: column index -> field
    fields: dict[int, str] = field(default_factory=dict)
    #: field -> header as written in the file (for messages)
    labels: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.labels


def map_headers(headers: list[str], source_name: str | None = None) -> HeaderMap:
    """Recognise each header; raise when the file cannot be imported at all."""
    source_name = source_name or _("the file")
    mapping = HeaderMap(headers=[h.replace("\ufeff", "").strip() for h in headers])
    for index, header in enumerate(mapping.headers):
        if not header:
            continue  # trailing separators on the header line; values there are checked per row
        name = field_for(header)
        if name is None:
            mapping.unknown.append(header)
            continue
        if name in mapping.labels:
            raise ImportFileError(
                _(
                    "The header of {name} names the same column twice: {first} and {second} "
                    "(columns {first_number} and {second_number})."
                ).format(
                    name=source_name,
                    first=repr(mapping.labels[name]),
                    second=repr(header),
                    first_number=mapping.headers.index(mapping.labels[name]) + 1,
                    second_number=index + 1,
                )
            )
        mapping.fields[index] = name
        mapping.labels[name] = header
    missing = [FIELDS[name][0] for name in REQUIRED_FIELDS if name not in mapping.labels]
    if missing:
        shown = ", ".join(repr(h[:40]) for h in mapping.headers[:12])[:300] or _("nothing")
        columns = (
            _("no {first} and no {second} column").format(first=missing[0], second=missing[1])
            if len(missing) > 1
            else _("no {first} column").format(first=missing[0])
        )
        raise ImportFileError(
            _(
                "The header line of {name} has {columns} (found: {found}). The first line "
                "must name the columns, e.g. 'Nom;Prénom;Adresse e-mail' (see `selfcare-ops "
                "import template`)."
            ).format(name=source_name, columns=columns, found=shown)
        )
    return mapping
