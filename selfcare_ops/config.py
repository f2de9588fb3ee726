"""Settings from environment variables, with an embedded default that needs nothing.

The default is a SQLite file and a Maildir outbox under ``data/`` in the current directory, so
``make demo`` works on a fresh machine. ``SELFCARE_OPS_SETTINGS`` may name a ``KEY=VALUE`` file
whose values are used where the environment is silent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from selfcare_ops.errors import ConfigurationError
from selfcare_ops.i18n import _
from selfcare_ops.support.yesno import YES_NO_HINT, yes_no

PREFIX = "SELFCARE_OPS_"


def _read_settings_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        message = f"The settings file {path} cannot be read: {exc.strerror}."
        raise ConfigurationError(message) from exc
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigurationError(
                f"Line {number} of the settings file {path} is not of the form KEY=VALUE."
            )
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _bool(name: str, raw: str) -> bool:
    """A switch in the one yes/no vocabulary (:mod:`.yesno`); an empty value is off."""
    if not raw.strip():
        return False
    value = yes_no(raw)
    if value is None:
        raise ConfigurationError(f"{name} must be true or false ({YES_NO_HINT}), not {raw!r}.")
    return value


#: Bounds of an invitation link's life: shorter than an hour nobody can open the mail in time,
#: longer than a month a forwarded or stolen mail stays a key to the account for too long.
MIN_INVITATION_TTL_DAYS = 1 / 24
MAX_INVITATION_TTL_DAYS = 30


def _ttl_days(name: str, raw: str) -> float:
    """Days an invitation link stays valid, bounded: a zero or huge value is a typo, and one
    past the calendar's end broke every invitation with a date overflow."""
    try:
        days = float(raw.strip().replace(",", "."))
    except ValueError:
        days = float("nan")
    if not MIN_INVITATION_TTL_DAYS <= days <= MAX_INVITATION_TTL_DAYS:  # NaN fails too
        raise ConfigurationError(
            f"{name} must be a number of days from 0.0417 (one hour) to "
            f"{MAX_INVITATION_TTL_DAYS}, such as 7 or 0.5, not {raw!r}."
        )
    return int(days) if days.is_integer() else days


#: How a branded mail shows its logo: carried inside the mail (``cid:``), or linked.
MAIL_LOGO_MODES = ("inline", "url")


def _mail_logo(name: str, raw: str) -> str:
    """``inline`` (the image travels with the mail) or ``url`` (linked on the portal)."""
    mode = raw.strip().lower()
    if mode not in MAIL_LOGO_MODES:
        raise ConfigurationError(
            _("{name} must be 'inline' or 'url', not {value!r}.").format(name=name, value=raw)
        )
    return mode


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from exc


@dataclass(frozen=True)
class Settings:
    """Everything the toolkit reads from its environment."""

    data_dir: Path = Path("data")
    database_url: str = ""
    actor: str | None = None
    portal_url: str = "https://montableaudebord.fr"
    #: May be fractional (0.5 is 12 hours); from 1 hour to 30 days.
    invitation_ttl_days: float = 7
    mail_transport: str = "maildir"
    maildir: Path = Path("data/outbox")
    mail_from: str = "Selfcare <no-reply@selfcare.example>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    #: ``inline``: logos travel inside the mails; ``url``: they link the portal's copy.
    mail_logo: str = "inline"
    secret_key: str = field(default="", repr=False)
    runs_dir: Path = Path("runs")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        file_name = env.get(PREFIX + "SETTINGS")
        merged = {**(_read_settings_file(file_name) if file_name else {}), **env}

        def get(key: str, default: str | None = None) -> str | None:
            value = merged.get(PREFIX + key)
            return default if value is None or value == "" else value

        data_dir = Path(get("DATA_DIR", "data") or "data")
        database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'selfcare.db'}"
        transport = (get("MAIL_TRANSPORT", "maildir") or "maildir").lower()
        if transport not in {"maildir", "smtp"}:
            raise ConfigurationError(
                f"SELFCARE_OPS_MAIL_TRANSPORT must be 'maildir' or 'smtp', not {transport!r}."
            )
        portal_url = (get("PORTAL_URL", cls.portal_url) or cls.portal_url).rstrip("/")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            # Kept as given: an empty actor is refused by access.resolve_actor, not read as
            # "nobody named" (which means the system actor).
            actor=merged.get(PREFIX + "ACTOR"),
            portal_url=portal_url,
            invitation_ttl_days=_ttl_days(
                PREFIX + "INVITATION_TTL_DAYS", get("INVITATION_TTL_DAYS", "7") or "7"
            ),
            mail_transport=transport,
            maildir=Path(get("MAILDIR") or str(data_dir / "outbox")),
            mail_from=get("MAIL_FROM", cls.mail_from) or cls.mail_from,
            smtp_host=get("SMTP_HOST", "127.0.0.1") or "127.0.0.1",
            smtp_port=_int(PREFIX + "SMTP_PORT", get("SMTP_PORT", "25") or "25"),
            smtp_starttls=_bool(PREFIX + "SMTP_STARTTLS", get("SMTP_STARTTLS", "0") or "0"),
            smtp_ssl=_bool(PREFIX + "SMTP_SSL", get("SMTP_SSL", "0") or "0"),
            smtp_user=get("SMTP_USER"),
            smtp_password=get("SMTP_PASSWORD"),
            mail_logo=_mail_logo(PREFIX + "MAIL_LOGO", get("MAIL_LOGO", "inline") or "inline"),
            secret_key=get("SECRET_KEY", "") or "",
            runs_dir=Path(get("RUNS_DIR", "runs") or "runs"),
        )


def get_settings() -> Settings:
    """Settings as the environment says now (read each time: tests and notebooks change it)."""
    return Settings.from_env()
