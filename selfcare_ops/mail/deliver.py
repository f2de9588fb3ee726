"""Outbox delivery: worker threads send, one recorder owns the database and commits in groups.

Each of ``connections`` workers owns one :class:`~selfcare_ops.mail.transports.Transport` (an
SMTP connection, the Maildir) and loops: take the message handed to it, send it, hand the outcome
back. The recorder (the calling thread) owns the run's one database connection; in one
transaction per group of outcomes it:

1. **records** every outcome that arrived since the last commit: ``sent``; a temporary failure
   (4xx, dropped connection) back to ``queued`` with ``attempts`` + 1, ``last_error`` and a
   ``next_attempt_at`` pushed back exponentially; a permanent refusal (5xx) ``failed`` with the
   server's reason. Invitations follow (``sent``, ``bounced``); a final mail's link is blanked;
2. **claims** due messages when the claimed ones run low: queued ones whose ``next_attempt_at``
   has come, plus ones left in ``sending`` longer than the lease by a deliverer that died. They
   become ``sending`` with ``claimed_by``/``claimed_at``; on PostgreSQL ``FOR UPDATE SKIP
   LOCKED`` keeps two deliverers apart, on SQLite ``BEGIN IMMEDIATE``
   (:mod:`selfcare_ops.store.db`);
3. **hands out** one message to each idle worker, once this same transaction has checked that
   its invitation link still works (revoked, superseded or expired: ``cancelled``, never sent).

A worker gets its next message only once its previous outcome is committed, so a killed
deliverer leaves at most one message per connection sent but not recorded: that message, taken
over after the lease, is the only one that can be sent twice. Sends are paced to ``rate``. When
the transport is unavailable (server unreachable, login refused) the run stops: the message
being tried and every claimed one go back to ``queued`` untouched, and the report's ``error``
says why in one sentence.
"""

from __future__ import annotations

import os
import queue
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exc, func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import DatabaseError, MailError
from selfcare_ops.mail.content import load_templates
from selfcare_ops.mail.links import blank_links, redact_person, redact_text
from selfcare_ops.mail.mime import OutgoingMail
from selfcare_ops.mail.transports import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Transport,
    TransportUnavailableError,
    make_transport,
)
from selfcare_ops.store.db import translate_errors
from selfcare_ops.store.models import (
    MESSAGE_STATUSES,
    OPEN_INVITATION_STATUSES,
    Invitation,
    OutboundMessage,
    utcnow,
)

#: A claimed message not recorded after this long is taken over by the next deliverer.
LEASE = timedelta(minutes=5)
#: Sixteen connections cost the client and aiosmtpd less CPU per message than eight.
DEFAULT_SMTP_CONNECTIONS = 16
MAX_CONNECTIONS = 16
#: The longest the recorder waits for more outcomes to share a commit with the first one.
GROUP_SECONDS = 0.01

TABLE, INVITATIONS = OutboundMessage.__table__, Invitation.__table__
_MINE = and_(TABLE.c.id == bindparam("mid"), TABLE.c.status == "sending")
_MINE = and_(_MINE, TABLE.c.claimed_by == bindparam("me"))
_FREE = {"claimed_by": None, "claimed_at": None}
_COUNT = {"attempts": TABLE.c.attempts + 1}
# A final message keeps no live link: blanked by the statement that makes it final.
_FINAL = {"person": bindparam("person"), "body_text": bindparam("text")} | _COUNT
_FINAL |= {"body_html": bindparam("html")}
_WHY = {"last_error": bindparam("why"), **_FREE}
#: How each outcome is written, only while the message is still this run's; its counter.
_OUTCOMES = {
    kind: update(TABLE).where(_MINE).values(**values)
    for kind, values in (
        ("sent", {"status": "sent", "sent_at": bindparam("at"), **_FINAL}),
        ("failed", {"status": "failed", **_WHY, **_FINAL}),
        ("retry", {"status": "queued", "next_attempt_at": bindparam("later"), **_WHY, **_COUNT}),
        ("release", {"status": "queued", **_FREE}),
    )
}
_COUNTERS = {"sent": "sent", "retry": "retried", "failed": "failed", "release": "released"}
# An invitation follows its mail: sent when the server took it, bounced (with the server's
# reason) when it refused it for good.
_BY_MESSAGE = update(INVITATIONS).where(INVITATIONS.c.message_id == bindparam("mid"))
_INVITATIONS = {
    "sent": _BY_MESSAGE.where(INVITATIONS.c.status == "pending").values(
        status="sent", sent_at=bindparam("at")
    ),
    "failed": _BY_MESSAGE.where(INVITATIONS.c.status.in_(("pending", "sent"))).values(
        status="bounced", closed_at=bindparam("at"), status_reason=bindparam("why")
    ),
}
_LINKS = select(INVITATIONS.c.message_id, INVITATIONS.c.status, INVITATIONS.c.expires_at)
_LINKS = _LINKS.where(INVITATIONS.c.message_id.in_(bindparam("ids", expanding=True)))
#: Why a claimed mail is cancelled, by the state of its invitation.
_DEAD = {"revoked": "revoked", "superseded": "superseded", "expired": "expired"}
_DEAD["bounced"] = "revoked"
#: A worker's outcome by the error its transport raised (any other is a ``crash``).
_KINDS = {PermanentDeliveryError: "failed", TemporaryDeliveryError: "retry"}
_KINDS[TransportUnavailableError] = "halt"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for temporary failures: 1, 2, 4, ... minutes, capped, then give up."""

    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 for the first)."""
        return min(self.first_delay * 2 ** min(max(attempts - 1, 0), 30), self.max_delay)


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    transport: str
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    released: int = 0
    #: Claimed messages whose link no longer worked (revoked, superseded, expired): not sent.
    cancelled: int = 0
    seconds: float = 0.0
    error: str | None = None
    #: One entry per message that failed for good or will be retried: id, recipient, reason.
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"{self.sent} sent, {self.retried} to retry, {self.failed} failed "
            f"through the {self.transport} in {self.seconds:.1f} s"
        )
        if self.reclaimed:
            text += f" ({self.reclaimed} taken over from a deliverer that stopped)"
        if self.cancelled:
            text += f"; {self.cancelled} not sent: their link no longer worked"
        return text + "."


def _work(number: int, transport: Transport, inbox: queue.SimpleQueue[Any], out: Any) -> None:
    """A worker: send what it is handed, say how it went, until it is handed ``None``.

    An outcome is (worker, row, kind, reason): ``sent``, ``failed``, ``retry``, ``halt`` (the
    transport is unavailable) or ``crash`` (a bug: the message stays claimed, the lease decides).
    """
    try:
        while (job := inbox.get()) is not None:
            row, template = job
            try:  # the mail is filled here, off the recorder's path
                transport.send(OutgoingMail.from_row(row, template))
                out.put((number, row, "sent", None))
            except BaseException as error:
                kind = _KINDS.get(type(error), "crash")
                out.put((number, row, kind, error if kind == "crash" else str(error)))
    finally:
        transport.close()


class _Run:
    """One delivery run: the recorder (the calling thread) and its workers."""

    def __init__(self, engine: Engine, transports: list[Transport], **options: Any) -> None:
        self.engine, self.transports = engine, transports
        self.limit: int = options["limit"] or 1 << 62
        self.interval = 1 / options["rate"] if options["rate"] else 0.0
        self.progress: Callable[[int, int], None] | None = options["progress"]
        self.retry: RetryPolicy = options["retry"]
        self.fixed_now: datetime | None = options["now"]
        self.organisation_ids = options["organisation_ids"]
        # Who claims: host, process and a random tag (two runs in one process differ).
        self.me = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.report = DeliveryReport(transport=transports[0].label)
        # At a slow rate, few claimed-but-unsent messages: all must go well within the lease.
        batch = options["batch_size"]
        if self.interval:
            batch = min(batch, int(LEASE.total_seconds() / self.interval / 4))
        self.batch_size = max(1, batch)
        self.claimed: deque[Any] = deque()
        #: Stored templates by id, read once per run: a bulk invitation's messages share a few.
        self.templates: dict[int, Any] = {}
        self.claims = self.done = self.total = 0
        self.exhausted = self.halted = False
        self.crash: BaseException | None = None
        self.next_start = time.monotonic()

    def now(self) -> datetime:
        return self.fixed_now or utcnow()

    def pace(self) -> float:
        """Seconds until the next message may start under ``rate`` (0: now)."""
        return max(0.0, self.next_start - time.monotonic()) if self.interval else 0.0

    def run(self) -> DeliveryReport:
        started = time.perf_counter()
        outcomes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        inboxes: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in self.transports]
        for number, transport in enumerate(self.transports):
            args = (number, transport, inboxes[number], outcomes)
            threading.Thread(target=_work, args=args, daemon=True).start()
        idle, arrived = list(range(len(inboxes))), []
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    due = select(func.count()).select_from(TABLE).where(self._due(self.now()))
                    self.total = min(conn.scalar(due) or 0, self.limit)
                while True:
                    # A worker whose outcome this transaction commits may get the next message.
                    idle += [outcome[0] for outcome in arrived]
                    wanted = 0 if self.pace() else 1 if self.interval else len(idle)
                    if self.halted or (self.exhausted and not self.claimed):
                        wanted = 0
                    jobs = []
                    if arrived or wanted:
                        with conn.begin():
                            self.record(conn, arrived)
                            jobs = self.hand_out(conn, wanted)
                    if arrived and self.progress is not None:
                        self.progress(self.done, max(self.total, self.done))
                    for job in jobs:
                        inboxes[idle.pop()].put(job)
                        self.next_start = max(self.next_start, time.monotonic()) + self.interval
                    busy = len(inboxes) - len(idle)
                    if not busy and (self.halted or (self.exhausted and not self.claimed)):
                        break
                    pacing = idle and self.interval and not self.halted
                    arrived = self.wait(outcomes, busy, self.pace() if pacing else None)
                with conn.begin():
                    self.release(conn)
        except (self.engine.dialect.loaded_dbapi.Error, exc.OperationalError) as error:
            cause = str(error.orig if isinstance(error, exc.DBAPIError) else error).strip()
            raise DatabaseError(
                "The database connection was lost while delivering mail "
                f"({cause.splitlines()[0] if cause else 'no reason'}); nothing is lost: messages "
                "not recorded as sent stay claimed and the next `mail deliver` takes them back "
                f"after {LEASE.total_seconds() / 60:g} minutes."
            ) from error
        finally:
            for inbox in inboxes:
                inbox.put(None)
            if self.claimed:  # interrupted: give back what was claimed and not handed out
                try:
                    with self.engine.begin() as conn:
                        self.release(conn)
                except Exception:  # the lease gives them back to the next run anyway
                    pass
        if self.crash is not None:
            raise self.crash
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    @staticmethod
    def wait(outcomes: queue.SimpleQueue[Any], busy: int, pace: float | None) -> list[Any]:
        """The next outcomes: the first (none if ``pace`` runs out before), then, to share its
        commit, those that come within :data:`GROUP_SECONDS` while more than two are awaited."""
        arrived: list[Any] = []
        try:
            arrived.append(outcomes.get(timeout=pace if busy else max(pace or 0, 0.001)))
            until = time.monotonic() + GROUP_SECONDS
            while len(arrived) < busy - 2 and (left := until - time.monotonic()) > 0:
                arrived.append(outcomes.get(timeout=left))
            while True:
                arrived.append(outcomes.get_nowait())
        except queue.Empty:
            return arrived

    # --- the database, inside the recorder's transactions -----------------------------------

    def _due(self, now: datetime) -> Any:
        due = or_(
            and_(TABLE.c.status == "queued", TABLE.c.next_attempt_at <= now),
            and_(TABLE.c.status == "sending", TABLE.c.claimed_at < now - LEASE),
        )
        if self.organisation_ids is None:
            return due
        ids = sorted(self.organisation_ids)
        mine = select(INVITATIONS.c.message_id).where(INVITATIONS.c.organisation_id.in_(ids))
        return and_(due, TABLE.c.id.in_(mine))

    def record(self, conn: Connection, outcomes: list[Any]) -> None:
        """Write ``outcomes`` and count them in the report (the caller commits)."""
        now, report = self.now(), self.report
        rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _OUTCOMES}
        for _worker, row, kind, reason in outcomes:
            if kind == "crash":  # left claimed: whether it went out is unknown
                self.halted, self.crash = True, self.crash or reason
                continue
            if kind == "halt":
                self.halted, report.error = True, report.error or reason
                kind = "release"
            attempts = (row.attempts or 0) + 1
            if kind == "retry" and attempts >= self.retry.max_attempts:
                kind, reason = "failed", f"Given up after {attempts} attempts: {reason}"
            values = {"mid": row.id, "me": self.me, "at": now, "why": reason}
            if kind == "retry":
                values["later"] = now + self.retry.delay(attempts)
            if kind in ("sent", "failed"):
                values["person"] = redact_person(row.person) or row.person
                values["text"], values["html"] = (
                    redact_text(row.body_text),
                    redact_text(row.body_html),
                )
            if kind in ("retry", "failed"):
                problem = {"id": row.id, "recipient": row.recipient, "outcome": kind}
                report.problems.append({**problem, "reason": reason})
            rows[kind].append(values)
            self.done += kind != "release"
        for kind, values_list in rows.items():
            if values_list:
                conn.execute(_OUTCOMES[kind], values_list)
                if kind in _INVITATIONS:
                    conn.execute(_INVITATIONS[kind], values_list)
                counter = _COUNTERS[kind]
                setattr(report, counter, getattr(report, counter) + len(values_list))

    def hand_out(self, conn: Connection, wanted: int) -> list[tuple[Any, Any]]:
        """Up to ``wanted`` claimed messages whose link still works, with their templates."""
        jobs: list[tuple[Any, Any]] = []
        while len(jobs) < wanted and not self.halted:
            if len(self.claimed) < wanted - len(jobs) and not self.exhausted:
                self.claim(conn)
            count = min(wanted - len(jobs), len(self.claimed))
            if not count:
                break
            taken = [self.claimed.popleft() for _ in range(count)]
            dead = self.cancel_dead_links(conn, taken)
            jobs += [
                (row, self.templates.get(row.template_id)) for row in taken if row.id not in dead
            ]
        return jobs

    def claim(self, conn: Connection) -> None:
        """Claim the next due messages (a batch) for this run."""
        size, now, rows = min(self.batch_size, self.limit - self.claims), self.now(), []
        if size > 0:
            query = (
                select(TABLE).where(self._due(now)).order_by(TABLE.c.next_attempt_at, TABLE.c.id)
            )
            rows = conn.execute(query.limit(size).with_for_update(skip_locked=True)).all()
        self.exhausted = len(rows) < size or size <= 0
        if not rows:
            return
        stale = (
            f", which held it longer than its {LEASE.total_seconds():g}-second lease "
            "without a result (it may have been sent once already)."
        )
        taken_over = literal("Taken over from the deliverer ") + TABLE.c.claimed_by + stale
        conn.execute(
            update(TABLE)
            .where(TABLE.c.id.in_([row.id for row in rows]))
            .values(
                status="sending",
                claimed_by=self.me,
                claimed_at=now,
                last_error=case(
                    (TABLE.c.status == "sending", taken_over), else_=TABLE.c.last_error
                ),
            )
        )
        self.report.reclaimed += sum(row.status == "sending" for row in rows)
        missing = {row.template_id for row in rows} - self.templates.keys()
        self.templates |= load_templates(conn, missing)  # with their inline images
        self.claimed.extend(rows)
        self.claims += len(rows)

    def cancel_dead_links(self, conn: Connection, rows: list[Any]) -> set[int]:
        """Cancel the rows whose invitation link no longer works; returns their ids.

        Revoking or superseding cancels a queued mail at once; this is the last check, for a
        mail claimed before that, or an invitation past its expiry.
        """
        now, dead = self.now(), {}
        for message_id, status, expires_at in conn.execute(_LINKS, {"ids": [r.id for r in rows]}):
            if status in _DEAD:
                dead[message_id] = _DEAD[status]
            elif status in OPEN_INVITATION_STATUSES and expires_at <= now:
                dead[message_id] = "expired"
        if dead:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == bindparam("mid"))
                .values(status="cancelled", cancel_reason=bindparam("why"), **_FREE),
                [{"mid": mid, "why": why} for mid, why in dead.items()],
            )
            blank_links(conn, dead)
            self.report.cancelled += len(dead)
        return set(dead)

    def release(self, conn: Connection) -> None:
        """Give the claimed messages not handed out back to the queue, untouched."""
        if self.claimed:
            rows = [{"mid": row.id, "me": self.me} for row in self.claimed]
            conn.execute(_OUTCOMES["release"], rows)
            self.report.released += len(rows)
            self.claimed.clear()


def deliver(
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    *,
    limit: int | None = None,
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    connections: int | None = None,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    transport_factory: Callable[[Settings], Transport] | None = None,
    batch_size: int = 100,
    organisation_ids: Collection[int] | None = None,
) -> DeliveryReport:
    """Send the due messages of the outbox; see the module docstring for the guarantees.

    ``limit``: at most this many messages this run. ``rate``: at most this many messages per
    second. ``organisation_ids``: only the messages of invitations to these organisations (a
    client's dashboard delivers its own mail, nobody else's). ``connections``: workers, each
    with its own transport (default 16 over SMTP, 1 for the Maildir), made by
    ``transport_factory`` (default: the one the settings name). ``batch_size``: messages
    claimed at a time. ``progress(done, total)`` is called after each committed group of
    outcomes. ``now`` fixes the clock (tests, replays). The report's ``error`` is set when the
    run stopped early because the transport was unavailable; the unsent messages stay queued.
    """
    settings = settings or get_settings()
    if limit is not None and limit < 1:
        raise MailError(f"The delivery limit must be at least 1 message, not {limit}.")
    if rate is not None and rate <= 0:
        raise MailError(f"The delivery rate must be more than 0 messages per second, not {rate}.")
    if connections is None:
        connections = DEFAULT_SMTP_CONNECTIONS if settings.mail_transport == "smtp" else 1
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise MailError(
            f"The number of connections must be between 1 and {MAX_CONNECTIONS}, not {connections}."
        )
    if rate is not None:  # several connections cannot help below one message a second each
        connections = max(1, min(connections, int(rate) or 1))
    engine = session_factory.kw.get("bind")
    if not isinstance(engine, Engine):
        raise MailError("The session factory given to deliver() is not bound to a database engine.")
    transports = [(transport_factory or make_transport)(settings) for _ in range(connections)]
    options = {"limit": limit, "rate": rate, "progress": progress, "now": now}
    options |= {"organisation_ids": organisation_ids, "batch_size": batch_size}
    run = _Run(engine, transports, retry=retry or RetryPolicy(), **options)
    with translate_errors(engine):  # a database missing or unreachable: one sentence
        return run.run()


def mail_status(session: Session) -> dict[str, int]:
    """How many messages the outbox holds in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status)).all()
    return counts | dict(rows)
