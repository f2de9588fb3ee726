"""The few compositions the job notebooks need that no single service offers.

Each takes the session and the actor like every service (the notebooks pass whoever runs
the job), and calls the services that own the rules: :mod:`selfcare_ops.invitations` for
reminders, :mod:`selfcare_ops.mail.deliver` for the outbox, :mod:`selfcare_ops.branding`
for the audit and its previews.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, user_scope
from selfcare_ops.config import Settings
from selfcare_ops.errors import MailError, ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.store.models import Organisation, User, utcnow

if TYPE_CHECKING:
    from selfcare_ops.mail.deliver import DeliveryReport


def remind_invited(
    session: Session,
    actor: Actor,
    *,
    older_than_days: int,
    limit: int = 0,
    now: datetime | None = None,
) -> int:
    """Send a new link to every user invited more than ``older_than_days`` ago who has not
    accepted (oldest first, at most ``limit`` when it is positive); returns how many.

    The previous link of each is voided and ``invited_at`` moves to now, so a second run the
    same day reminds nobody twice.
    """
    from selfcare_ops.invitations.bulk import invite_user_ids

    if older_than_days < 1:
        raise ValidationError(
            _("Reminders go to users invited at least 1 day ago, not {days}.").format(
                days=older_than_days
            ),
            field="older_than_days",
            limit=1,
            actual=older_than_days,
        )
    now = now or utcnow()
    cutoff = now - timedelta(days=older_than_days)
    query = (
        select(User.id)
        .join(Organisation, Organisation.id == User.client_id)
        .where(
            User.status == "invited",
            User.invited_at < cutoff,
            User.email.is_not(None),
            user_scope(actor),
        )
        .order_by(User.invited_at, User.id)
    )
    if limit > 0:
        query = query.limit(limit)
    ids = list(session.scalars(query))
    if not ids:
        return 0
    return invite_user_ids(session, actor, ids, min_days=older_than_days, now=now)


@dataclass(frozen=True)
class BrandingAuditOutcome:
    """The audit table, its CSV, the worst cases and their preview images."""

    audit: pd.DataFrame
    worst: pd.DataFrame
    csv_path: Path
    previews: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{len(self.audit)} organisations with a branding problem; previews of the "
            f"{len(self.previews)} worst in {self.csv_path.parent}."
        )


def worst_branding_cases(audit: pd.DataFrame, count: int) -> pd.DataFrame:
    """The ``count`` least readable: most problems first, then the lowest text contrast."""
    from selfcare_ops.branding import contrast_ratio

    if audit.empty:
        return audit.assign(min_contrast=pd.Series(dtype=float))

    def lowest(row: pd.Series) -> float:
        ratios = [
            contrast_ratio(row["text_color"], background)
            for background in (row["primary_color"], row["gradient_color"])
            if isinstance(background, str) and background and isinstance(row["text_color"], str)
        ]
        # Truncated, never rounded up: 4.497 shows as 4.49, which fails, not as 4.50.
        return math.floor(min(ratios) * 100) / 100 if ratios else float("nan")

    ranked = audit.assign(min_contrast=audit.apply(lowest, axis=1))
    ranked = ranked.sort_values(
        ["issues", "min_contrast", "organisation_ref"],
        ascending=[False, True, True],
        na_position="last",
    )
    return ranked.head(count).reset_index(drop=True)


def audit_branding(
    session: Session, actor: Actor, folder: Path, *, worst: int = 5
) -> BrandingAuditOutcome:
    """Run the readability audit, export it as CSV and preview the ``worst`` cases as PNG."""
    from selfcare_ops.branding import branding_audit, write_audit_csv, write_preview

    folder = Path(folder)
    audit = branding_audit(session, actor)
    csv_path = write_audit_csv(audit, folder / "branding_audit.csv")
    cases = worst_branding_cases(audit, worst)
    previews = {
        ref: write_preview(session, actor, ref, folder / f"preview_{ref}.png")
        for ref in cases["organisation_ref"]
    }
    return BrandingAuditOutcome(audit=audit, worst=cases, csv_path=csv_path, previews=previews)


def deliver_outbox(
    sessions: sessionmaker[Session], settings: Settings, actor: Actor, *, limit: int = 0
) -> DeliveryReport:
    """Deliver the due messages (all, or at most ``limit``) as ``actor`` (who must be allowed
    to: :func:`~selfcare_ops.access.can_deliver_mail`); an unavailable transport fails the
    job, so the run is recorded as failed while the messages stay queued for the next."""
    from selfcare_ops.invitations.service import deliver_and_redact

    report = deliver_and_redact(sessions, settings, actor=actor, limit=limit or None)
    if report.error:
        raise MailError(
            ngettext(
                "{error}: delivery stopped after {count} message sent; the others stay queued "
                "for the next run.",
                "{error}: delivery stopped after {count} messages sent; the others stay queued "
                "for the next run.",
                report.sent,
            ).format(error=report.error.rstrip("."), count=report.sent)
        )
    return report
