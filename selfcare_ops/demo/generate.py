"""Deterministic generator of the demo data committed under ``selfcare_ops/demo/data/``.

Run ``python -m selfcare_ops.demo.generate [FOLDER]`` (needs the ``dev`` extra for Faker) to
rebuild the CSV files; the same seed gives the same files. Without FOLDER it rewrites the
packaged folder the loader reads (:data:`selfcare_ops.support.resources.DEMO_DIR`: one folder
for both), which only a checkout or an editable install can do. The loader
(:mod:`selfcare_ops.demo`) reads only the CSV files, so Faker is not a runtime dependency.
"""

from __future__ import annotations

import csv
import random
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from selfcare_ops.accounts.logins import make_login
from selfcare_ops.errors import SelfcareError
from selfcare_ops.support.resources import DEMO_DIR
from selfcare_ops.support.textnorm import fold

SEED = 20261123
EPOCH = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
SERVICES = [
    "Pack téléphonie hébergée",
    "Pont de conférence",
    "Administration",
    "Trunk SIP Renté",
    "Communications unifiées",
    "Mobile",
    "Fax to mail",
    "Standard automatique",
]
STATUS_WEIGHTS = {"not_invited": 40, "invited": 22, "active": 33, "deactivated": 5}
SUB_ACCOUNT_NAMES = [
    "Siège",
    "Agence Lyon",
    "Agence Nantes",
    "Support",
    "Commercial",
    "Comptabilité",
    "Logistique",
    "Direction",
]
NESTED_PARTNERS = [
    ("P001", "OP", "Sewan Interne"),
    ("P002", "P001", "Sewan France (Cité Paradis)"),
    ("P003", "OP", "New Leader Global Services"),
]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(name))[:30] or "client"


def packaged_demo_folder() -> Path:
    """The packaged demo folder as a writable directory (a checkout or an editable install)."""
    if not isinstance(DEMO_DIR, Path) or not DEMO_DIR.is_dir():
        raise SelfcareError(
            f"The packaged demo folder {DEMO_DIR} is not a directory on disk: name the folder "
            "to write, e.g. python -m selfcare_ops.demo.generate selfcare_ops/demo/data."
        )
    return DEMO_DIR


def generate(
    out_dir: Path | None = None,
    *,
    clients: int = 700,
    users: int = 20_000,
    partners: int = 32,
    seed: int = SEED,
) -> dict[str, int]:
    from faker import Faker  # dev-only dependency

    out_dir = packaged_demo_folder() if out_dir is None else out_dir

    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)

    orgs = [
        {
            "ref": "OP",
            "kind": "operator",
            "parent_ref": "",
            "name": "Sewan Communications",
            "login_domain": "sewan.eu",
            "language": "fr",
        }
    ]
    partner_refs = []
    for ref, parent, name in NESTED_PARTNERS:
        orgs.append(
            {
                "ref": ref,
                "kind": "partner",
                "parent_ref": parent,
                "name": name,
                "login_domain": "",
                "language": "",
            }
        )
        partner_refs.append(ref)
    seen_names: set[str] = {fold(o["name"]) for o in orgs}
    for number in range(len(NESTED_PARTNERS) + 1, partners + 1):
        name = fake.unique.company() + rng.choice([" Télécom", " Telecom", " Networks", " IT", ""])
        seen_names.add(fold(name))
        parent = "OP" if number % 5 else rng.choice(partner_refs[: number // 2 or 1])
        orgs.append(
            {
                "ref": f"P{number:03d}",
                "kind": "partner",
                "parent_ref": parent,
                "name": name,
                "login_domain": "",
                "language": "en" if number % 11 == 0 else "",
            }
        )
        partner_refs.append(f"P{number:03d}")

    client_rows = [
        {
            "ref": "C0001",
            "kind": "client",
            "parent_ref": "P003",
            "name": "Virginie Télécom",
            "login_domain": "virginietelecom.sewan.eu",
            "language": "",
        }
    ]
    seen_names.add(fold("Virginie Télécom"))
    while len(client_rows) < clients:
        name = fake.company()
        if rng.random() < 0.12:
            name += rng.choice([" Télécom", " Télécoms", " Telecom"])
        if fold(name) in seen_names:
            continue
        seen_names.add(fold(name))
        ref = f"C{len(client_rows) + 1:04d}"
        client_rows.append(
            {
                "ref": ref,
                "kind": "client",
                "parent_ref": rng.choice(partner_refs),
                "name": name,
                "login_domain": f"{_slug(name)}.sewan.eu",
                "language": "en" if rng.random() < 0.04 else "",
            }
        )
    orgs.extend(client_rows)

    # Skewed client sizes (a few large customers, many small ones), adding up to `users`.
    weights = [1.0 / (rank + 8) ** 0.9 for rank in range(clients)]
    rng.shuffle(weights)
    weights[0] = max(weights) * 1.5  # the seed's client is one of the larger ones
    scale = (users - 3 * clients) / sum(weights)
    sizes = [3 + int(w * scale) for w in weights]
    sizes[0] += users - sum(sizes)

    sub_rows = []
    user_rows = []
    taken: set[str] = set()
    emails: set[str] = set()
    for client, size in zip(client_rows, sizes, strict=True):
        subs = []
        if size >= 20 and rng.random() < 0.35:
            subs = rng.sample(SUB_ACCOUNT_NAMES, rng.randint(2, 4))
            sub_rows.extend({"client_ref": client["ref"], "name": s} for s in subs)
        domain = client["login_domain"].removesuffix(".sewan.eu") + ".example"
        for index in range(size):
            female = rng.random() < 0.5
            first = fake.first_name_female() if female else fake.first_name_male()
            last = fake.last_name()
            login = make_login(first, last, client["login_domain"], taken)
            taken.add(login)
            email = ""
            if rng.random() >= 0.08:
                local = f"{_slug(first)}.{_slug(last)}"
                email = f"{local}@{domain}"
                n = 2
                while email in emails:
                    email = f"{local}{n}@{domain}"
                    n += 1
                emails.add(email)
            status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
            if index == 0:
                status = "active" if email else "not_invited"
            if status == "invited" and not email:
                status = "not_invited"
            created = EPOCH - timedelta(days=rng.randint(30, 400))
            invited = created + timedelta(days=rng.randint(1, 25), hours=rng.randint(0, 9))
            activated = invited + timedelta(hours=rng.randint(1, 24 * 12))
            deactivated = activated + timedelta(days=rng.randint(1, 60))
            role = "administrator" if index == 0 else "user"
            sub = ""
            if subs and role != "administrator":
                sub = rng.choice(subs)
                if index < 1 + len(subs) and rng.random() < 0.8:
                    role = "manager"
            services = sorted(rng.sample(SERVICES, rng.choice([1, 1, 2, 2, 3])))
            user_rows.append(
                {
                    "client_ref": client["ref"],
                    "login": login,
                    "civility": "Mme" if female else "M.",
                    "first_name": first,
                    "last_name": last,
                    "function": fake.job()[:150] if rng.random() < 0.7 else "",
                    "language": "en" if rng.random() < 0.03 else "",
                    "email": email,
                    "phone": f"+33{rng.choice('12345')}{rng.randint(10_000_000, 99_999_999)}"
                    if rng.random() < 0.8
                    else "",
                    "mobile": f"+33{rng.choice('67')}{rng.randint(10_000_000, 99_999_999)}"
                    if rng.random() < 0.5
                    else "",
                    "services": ", ".join(services),
                    "sub_account": sub,
                    "role": role,
                    "right_manage_rights": int(role != "user" or rng.random() < 0.05),
                    "right_place_orders": int(role == "administrator" or rng.random() < 0.2),
                    "right_view_invoices": int(role == "administrator" or rng.random() < 0.3),
                    "status": status,
                    "created_at": created.isoformat(),
                    "invited_at": invited.isoformat() if status != "not_invited" else "",
                    "activated_at": activated.isoformat()
                    if status in ("active", "deactivated")
                    else "",
                    "deactivated_at": deactivated.isoformat() if status == "deactivated" else "",
                }
            )

    admins = [
        {"email": "admin@sewan.example", "display_name": "Abraham Tewa", "org_ref": "OP"},
        {
            "email": "admin@newleader.example",
            "display_name": "Matthias Neuvialle",
            "org_ref": "P003",
        },
        {"email": "admin@sewaninterne.example", "display_name": "Claire Martin", "org_ref": "P001"},
    ]
    _write(out_dir / "organisations.csv", orgs)
    _write(out_dir / "sub_accounts.csv", sub_rows)
    _write(out_dir / "users.csv", user_rows)
    _write(out_dir / "administrators.csv", admins)
    return {"organisations": len(orgs), "sub_accounts": len(sub_rows), "users": len(user_rows)}


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
