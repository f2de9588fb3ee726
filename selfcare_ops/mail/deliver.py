"""Outbox delivery: worker threads send, one recorder owns the database and commits in groups.

Each of ``connections`` workers owns one :class:`~selfcare_ops.mail.transports.Transport` (an
SMTP connection, the Maildir) and loops: take the message handed to it, send it, hand the
outcome back. The recorder (the calling thread) owns the run's one database connection and
repeats one transaction until nothing is due (or ``limit`` is reached):

1. **Record** every outcome that arrived since the last commit: ``sent``; a temporary failure
   (4xx, dropped connection) back to ``queued`` with ``attempts`` + 1, ``last_error`` and a
   ``next_attempt_at`` pushed back exponentially; a permanent refusal (5xx) ``failed`` with the
   server's reason. Invitations follow (``sent``, ``bounced``); a final mail's link is blanked.
2. **Claim** due messages when the claimed ones run low: queued ones whose ``next_attempt_at``
   has come, plus ones left in ``sending`` longer than the lease by a deliverer that died. They
   become ``sending`` with ``claimed_by``/``claimed_at``; on PostgreSQL ``FOR UPDATE SKIP
   LOCKED`` keeps two deliverers apart, on SQLite ``BEGIN IMMEDIATE`` (:mod:`selfcare_ops.db`).
3. **Hand out** one message to each idle worker, after checking in this same transaction that
   its invitation link still works (revoked, superseded or expired: ``cancelled``, never sent).

A worker gets its next message only once its previous outcome is committed, so a killed
deliverer leaves at most one message per connection sent but not recorded: that message, taken
over after the lease, is the only one that can be sent twice. Sends are paced to ``rate``.

When the transport is unavailable (server unreachable, login refused) the run stops: the message
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exc, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.db import translate_errors
from selfcare_ops.errors import DatabaseError, MailError
from selfcare_ops.mail.content import TEMPLATES, stored_template
from selfcare_ops.mail.links import blank_links, redact_person, redact_text
from selfcare_ops.mail.transports import (
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Transport,
    TransportUnavailableError,
    make_transport,
)
from selfcare_ops.models import (
    MESSAGE_STATUSES,
    OPEN_INVITATION_STATUSES,
    Invitation,
    OutboundMessage,
    utcnow,
)

#: A claimed message not recorded after this long is taken over by the next deliverer.
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SMTP_CONNECTIONS = 8
DEFAULT_BATCH_SIZE = 100
MAX_CONNECTIONS = 16
#: The longest the recorder waits for more outcomes to commit with the first one.
GROUP_SECONDS = 0.005

TABLE = OutboundMessage.__table__
INVITATIONS = Invitation.__table__
_MINE = and_(
    TABLE.c.id == bindparam("mid"),
    TABLE.c.status == "sending",
    TABLE.c.claimed_by == bindparam("me"),
)
_UNCLAIMED = {"claimed_by": None, "claimed_at": None}
_ONE_MORE = TABLE.c.attempts + 1
# A final message keeps no live link: blanked by the same statement, only if it is still ours.
_BLANKED = {
    "person": bindparam("person"),
    "body_text": bindparam("text"),
    "body_html": bindparam("html"),
}
#: How each outcome is written, when the message is still this run's.
_OUTCOMES = {
    "sent": update(TABLE)
    .where(_MINE)
    .values(status="sent", sent_at=bindparam("at"), attempts=_ONE_MORE, **_BLANKED),
    "retry": update(TABLE)
    .where(_MINE)
    .values(
        status="queued",
        attempts=_ONE_MORE,
        last_error=bindparam("why"),
        next_attempt_at=bindparam("later"),
        **_UNCLAIMED,
    ),
    "failed": update(TABLE)
    .where(_MINE)
    .values(
        status="failed", attempts=_ONE_MORE, last_error=bindparam("why"), **_UNCLAIMED, **_BLANKED
    ),
    "release": update(TABLE).where(_MINE).values(status="queued", **_UNCLAIMED),
}
_LINKS = select(INVITATIONS.c.message_id, INVITATIONS.c.status, INVITATIONS.c.expires_at).where(
    INVITATIONS.c.message_id.in_(bindparam("ids", expanding=True))
)
_COUNTERS = {"sent": "sent", "retry": "retried", "failed": "failed"}
# An invitation follows its mail: ``sent`` when the server accepted it, ``bounced`` (with the
# server's reason) when it refused it for good.
_INVITATION_SENT = (
    update(INVITATIONS)
    .where(INVITATIONS.c.message_id == bindparam("mid"), INVITATIONS.c.status == "pending")
    .values(status="sent", sent_at=bindparam("at"))
)
_INVITATION_BOUNCED = (
    update(INVITATIONS)
    .where(
        INVITATIONS.c.message_id == bindparam("mid"),
        or_(INVITATIONS.c.status == "pending", INVITATIONS.c.status == "sent"),
    )
    .values(status="bounced", closed_at=bindparam("at"), status_reason=bindparam("why"))
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for temporary failures: 1, 2, 4, ... minutes, capped, then give up."""

    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 for the first)."""
        factor = 2 ** min(max(attempts - 1, 0), 30)
        return min(self.first_delay * factor, self.max_delay)


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


@dataclass
class _Outcome:
    """What a worker says about one message: ``sent``, ``retry``, ``failed`` or ``release``."""

    worker: int
    mail: OutgoingMail
    kind: str
    reason: str | None = None
    #: The transport is unavailable (``halt``) or the worker crashed (``crash``): stop the run.
    halt: str | None = None
    crash: BaseException | None = None


def _work(
    number: int, transport: Transport, inbox: queue.Queue[Any], out: queue.Queue[Any]
) -> None:
    """A worker's loop: send what it is handed until it is handed ``None``."""
    try:
        while (mail := inbox.get()) is not None:
            try:
                transport.send(mail)
                outcome = _Outcome(number, mail, "sent")
            except PermanentDeliveryError as error:
                outcome = _Outcome(number, mail, "failed", str(error))
            except TemporaryDeliveryError as error:
                outcome = _Outcome(number, mail, "retry", str(error))
            except TransportUnavailableError as error:
                outcome = _Outcome(number, mail, "release", halt=str(error))
            except BaseException as error:  # a bug: the message stays claimed, the lease decides
                outcome = _Outcome(number, mail, "crash", crash=error)
            out.put(outcome)
    finally:
        transport.close()


def _engine_of(session_factory: sessionmaker[Session]) -> Engine:
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise MailError("The session factory given to deliver() is not bound to a database engine.")
    return bind


def worker_name() -> str:
    """Who claims: host, process and a random tag (two runs in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class _Run:
    """One delivery run: the recorder's state, on the calling thread."""

    def __init__(
        self, engine: Engine, settings: Settings, transports: list[Transport], **options: Any
    ) -> None:
        self.engine, self.settings, self.transports = engine, settings, transports
        self.limit: int | None = options["limit"]
        self.rate: float | None = options["rate"]
        self.progress: Callable[[int, int], None] | None = options["progress"]
        self.lease: timedelta = options["lease"]
        self.retry: RetryPolicy = options["retry"]
        self.fixed_now: datetime | None = options["now"]
        self.me = worker_name()
        self.report = DeliveryReport(transport=transports[0].label)
        # Keep few claimed-but-unsent messages: at a slow rate they must all go out well within
        # the lease, or another deliverer would take them over.
        batch = options["batch_size"]
        if self.rate:
            batch = min(batch, max(1, int(self.rate * self.lease.total_seconds() / 4)))
        self.batch_size = max(1, batch)
        self.claimed: deque[Any] = deque()
        self.claims = self.done = self.total = 0
        self.exhausted = self.halted = False
        self.crash: BaseException | None = None
        self.next_start = time.monotonic()
        #: Stored templates by id, read once per run: a bulk invitation's messages share a few.
        self.templates: dict[int, Any] = {}
        #: The claimed row of each message in flight, to blank its link once it is final.
        self.rows: dict[int, Any] = {}

    def now(self) -> datetime:
        return self.fixed_now or utcnow()

    def _due(self, now: datetime) -> Any:
        return or_(
            and_(TABLE.c.status == "queued", TABLE.c.next_attempt_at <= now),
            and_(TABLE.c.status == "sending", TABLE.c.claimed_at < now - self.lease),
        )

    def pace(self) -> float:
        """Seconds until the next message may start under ``rate`` (0: now)."""
        return max(0.0, self.next_start - time.monotonic()) if self.rate else 0.0

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> DeliveryReport:
        started = time.perf_counter()
        outcomes: queue.Queue[_Outcome] = queue.Queue()
        inboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in self.transports]
        for number, transport in enumerate(self.transports):
            threading.Thread(
                target=_work,
                args=(number, transport, inboxes[number], outcomes),
                name=f"mail-worker-{number}",
                daemon=True,
            ).start()
        idle = list(range(len(self.transports)))
        arrived: list[_Outcome] = []
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    count = conn.scalar(
                        select(func.count()).select_from(TABLE).where(self._due(self.now()))
                    )
                self.total = min(count or 0, self.limit or count or 0)
                while True:
                    wanted = 0 if self.halted or self.pace() else len(idle) if not self.rate else 1
                    wanted = min(wanted, len(idle))
                    handed: list[OutgoingMail] = []
                    if arrived or wanted:
                        with conn.begin():
                            self.record(conn, arrived)
                            handed = self.hand_out(conn, wanted)
                    if arrived and self.progress is not None:
                        self.progress(self.done, max(self.total, self.done))
                    idle += [outcome.worker for outcome in arrived]
                    arrived = []
                    for mail in handed:
                        inboxes[idle.pop()].put(mail)
                        self.next_start = max(self.next_start, time.monotonic()) + 1 / (
                            self.rate or 1e9
                        )
                    busy = len(self.transports) - len(idle)
                    if not busy and (self.halted or (self.exhausted and not self.claimed)):
                        break
                    # Wait for an outcome (or the pacer); take every other that came meanwhile.
                    wait = self.pace() if idle and not self.halted and self.rate else None
                    try:
                        arrived.append(
                            outcomes.get(timeout=wait if busy else max(wait or 0, 0.001))
                        )
                        # Group commit: half the busy workers' outcomes (or a few ms) per commit.
                        until = time.monotonic() + GROUP_SECONDS
                        while len(arrived) < (busy + 1) // 2 and time.monotonic() < until:
                            arrived.append(outcomes.get(timeout=until - time.monotonic()))
                        while True:
                            arrived.append(outcomes.get_nowait())
                    except queue.Empty:
                        pass
                with conn.begin():
                    self.release(conn)
        except (self.engine.dialect.loaded_dbapi.Error, exc.OperationalError) as error:
            cause = error.orig if isinstance(error, exc.DBAPIError) else error
            reason = str(cause).strip().splitlines()[0] if str(cause).strip() else "no reason"
            raise DatabaseError(
                f"The database connection was lost while delivering mail ({reason}); "
                "nothing is lost: messages not recorded as sent stay claimed and the next "
                f"`mail deliver` takes them back after {self.lease.total_seconds() / 60:g} minutes."
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

    # --- the database, in the recorder's transaction ------------------------------------------

    def record(self, conn: Connection, outcomes: list[_Outcome]) -> None:
        """Write ``outcomes`` (the caller commits), then count them in the report."""
        now = self.now()
        rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _OUTCOMES}
        sent: list[dict[str, Any]] = []
        bounced: list[dict[str, Any]] = []
        report = self.report
        for outcome in outcomes:
            mail, row = outcome.mail, self.rows.pop(outcome.mail.id)
            values: dict[str, Any] = {"mid": mail.id, "me": self.me, "at": now}
            if outcome.crash is not None or outcome.halt is not None:
                self.halted = True
                self.crash = self.crash or outcome.crash
                report.error = report.error or outcome.halt
                if outcome.crash is not None:
                    continue
            attempts = mail.attempts + 1
            if outcome.kind == "retry" and attempts >= self.retry.max_attempts:
                outcome.kind = "failed"
                outcome.reason = f"Given up after {attempts} attempts: {outcome.reason}"
            if outcome.kind == "retry":
                values.update(why=outcome.reason, later=now + self.retry.delay(attempts))
            elif outcome.kind == "failed":
                values["why"] = outcome.reason or "unknown reason"
                bounced.append(values)
            elif outcome.kind == "sent":
                sent.append(values)
            if outcome.kind in ("sent", "failed"):
                values.update(
                    person=redact_person(row.person) or row.person,
                    text=redact_text(row.body_text),
                    html=redact_text(row.body_html),
                )
            rows[outcome.kind].append(values)
            if outcome.kind == "release":
                report.released += 1
                continue
            self.done += 1
            counter = _COUNTERS[outcome.kind]
            setattr(report, counter, getattr(report, counter) + 1)
            if outcome.kind != "sent":
                report.problems.append(
                    {
                        "id": mail.id,
                        "recipient": mail.recipient,
                        "outcome": outcome.kind,
                        "reason": outcome.reason,
                    }
                )
        for kind, values_list in rows.items():
            if values_list:
                conn.execute(_OUTCOMES[kind], values_list)
        if sent:
            conn.execute(_INVITATION_SENT, sent)
        if bounced:
            conn.execute(_INVITATION_BOUNCED, bounced)

    def hand_out(self, conn: Connection, wanted: int) -> list[OutgoingMail]:
        """Up to ``wanted`` claimed messages whose link still works, ready to send."""
        mails: list[OutgoingMail] = []
        while len(mails) < wanted:
            if len(self.claimed) < wanted - len(mails) and not self.exhausted:
                self.claim(conn)
            if not self.claimed:
                break
            taken = [
                self.claimed.popleft() for _ in range(min(wanted - len(mails), len(self.claimed)))
            ]
            dead = self.cancel_dead_links(conn, taken)
            for row in taken:
                if row.id not in dead:
                    self.rows[row.id] = row
                    mails.append(OutgoingMail.from_row(row, self.templates.get(row.template_id)))
        return mails

    def claim(self, conn: Connection) -> None:
        size = (
            self.batch_size
            if self.limit is None
            else min(self.batch_size, self.limit - self.claims)
        )
        now = self.now()
        rows = (
            conn.execute(
                select(TABLE)
                .where(self._due(now))
                .order_by(TABLE.c.next_attempt_at, TABLE.c.id)
                .limit(size)
                .with_for_update(skip_locked=True)
            ).all()
            if size > 0
            else []
        )
        self.exhausted = size <= 0 or len(rows) < size
        if not rows:
            return
        conn.execute(
            update(TABLE)
            .where(TABLE.c.id.in_([row.id for row in rows]))
            .values(status="sending", claimed_by=self.me, claimed_at=now)
        )
        stale = [
            {
                "mid": row.id,
                "why": f"Taken over from the deliverer {row.claimed_by}, which held it longer "
                f"than its {self.lease.total_seconds():g}-second lease without a result "
                "(it may have been sent once already).",
            }
            for row in rows
            if row.status == "sending"
        ]
        if stale:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == bindparam("mid"))
                .values(last_error=bindparam("why")),
                stale,
            )
            self.report.reclaimed += len(stale)
        missing = {
            row.template_id for row in rows if row.template_id is not None
        } - self.templates.keys()
        if missing:
            found = conn.execute(select(TEMPLATES).where(TEMPLATES.c.id.in_(sorted(missing))))
            self.templates.update((row.id, stored_template(row)) for row in found)
        self.claimed.extend(rows)
        self.claims += len(rows)

    def cancel_dead_links(self, conn: Connection, rows: list[Any]) -> set[int]:
        """Cancel the rows whose invitation link no longer works; returns their ids.

        Revoking or superseding cancels a queued mail at once; this is the last check, for a
        mail claimed before that, or an invitation past its expiry.
        """
        now, dead = self.now(), {}
        for message_id, status, expires_at in conn.execute(
            _LINKS, {"ids": [row.id for row in rows]}
        ):
            if status in ("revoked", "superseded", "expired", "bounced"):
                dead[message_id] = "revoked" if status == "bounced" else status
            elif status in OPEN_INVITATION_STATUSES and expires_at <= now:
                dead[message_id] = "expired"
        if dead:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == bindparam("mid"))
                .values(status="cancelled", cancel_reason=bindparam("why"), **_UNCLAIMED),
                [{"mid": mid, "why": why} for mid, why in dead.items()],
            )
            blank_links(conn, dead)
            self.report.cancelled += len(dead)
        return set(dead)

    def release(self, conn: Connection) -> None:
        """Give the claimed messages not handed out back to the queue, untouched."""
        if self.claimed:
            conn.execute(
                _OUTCOMES["release"], [{"mid": row.id, "me": self.me} for row in self.claimed]
            )
            self.report.released += len(self.claimed)
            self.claimed.clear()


def deliver(
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    *,
    limit: int | None = None,
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    connections: int | None = None,
    lease: timedelta = DEFAULT_LEASE,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    transport_factory: Callable[[Settings], Transport] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> DeliveryReport:
    """Send the due messages of the outbox; see the module docstring for the guarantees.

    ``limit``: at most this many messages this run. ``rate``: at most this many messages per
    second. ``connections``: workers, each with its own transport (default 8 over SMTP, 1 for
    the Maildir). ``transport_factory`` makes each worker's transport (default: the settings').
    ``progress(done, total)`` is called after each committed group of outcomes. ``now`` fixes the
    clock (tests, replays). The report's ``error`` is set when the run stopped early because the
    transport was unavailable; the unsent messages are then still queued.
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
    if rate is not None:
        # Several connections cannot help below one message per connection per second.
        connections = max(1, min(connections, int(rate) or 1))
    engine = _engine_of(session_factory)
    factory = transport_factory or make_transport
    transports = [factory(settings) for _ in range(connections)]
    run = _Run(
        engine,
        settings,
        transports,
        limit=limit,
        rate=rate,
        progress=progress,
        lease=lease,
        retry=retry or RetryPolicy(),
        now=now,
        batch_size=batch_size,
    )
    with translate_errors(engine):  # a database missing or unreachable: one sentence
        return run.run()


def mail_status(session: Session) -> dict[str, int]:
    """How many messages the outbox holds in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status)).all()
    for status, count in rows:
        counts[status] = count
    return counts
