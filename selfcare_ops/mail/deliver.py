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
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, exc, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import DatabaseError, MailError
from selfcare_ops.mail.content import load_templates
from selfcare_ops.mail.links import blank_links, redact_person, redact_text
from selfcare_ops.mail.transports import (
    OutgoingMail,
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
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SMTP_CONNECTIONS = 8
DEFAULT_BATCH_SIZE = 100
MAX_CONNECTIONS = 16
#: The longest the recorder waits for more outcomes to share a commit with the first one.
GROUP_SECONDS = 0.01

TABLE = OutboundMessage.__table__
INVITATIONS = Invitation.__table__
_MINE = and_(
    TABLE.c.id == bindparam("mid"),
    TABLE.c.status == "sending",
    TABLE.c.claimed_by == bindparam("me"),
)
_FREE = {"claimed_by": None, "claimed_at": None}
# A final message keeps no live link: blanked by the statement that makes it final, if ours.
_FINAL = {"attempts": TABLE.c.attempts + 1, "person": bindparam("person")}
_FINAL |= {"body_text": bindparam("text"), "body_html": bindparam("html")}
#: How each outcome is written, only while the message is still this run's.
_OUTCOMES = {
    "sent": update(TABLE).where(_MINE).values(status="sent", sent_at=bindparam("at"), **_FINAL),
    "failed": update(TABLE)
    .where(_MINE)
    .values(status="failed", last_error=bindparam("why"), **_FINAL, **_FREE),
    "retry": update(TABLE)
    .where(_MINE)
    .values(
        status="queued",
        attempts=TABLE.c.attempts + 1,
        last_error=bindparam("why"),
        next_attempt_at=bindparam("later"),
        **_FREE,
    ),
    "release": update(TABLE).where(_MINE).values(status="queued", **_FREE),
}
# An invitation follows its mail: ``sent`` when the server took it, ``bounced`` (with the
# server's reason) when it refused it for good.
_BY_MESSAGE = INVITATIONS.c.message_id == bindparam("mid")
_INVITATION_SENT = update(INVITATIONS).where(_BY_MESSAGE, INVITATIONS.c.status == "pending")
_INVITATION_SENT = _INVITATION_SENT.values(status="sent", sent_at=bindparam("at"))
_INVITATION_BOUNCED = (
    update(INVITATIONS)
    .where(_BY_MESSAGE, or_(INVITATIONS.c.status == "pending", INVITATIONS.c.status == "sent"))
    .values(status="bounced", closed_at=bindparam("at"), status_reason=bindparam("why"))
)
_LINKS = select(INVITATIONS.c.message_id, INVITATIONS.c.status, INVITATIONS.c.expires_at)
_LINKS = _LINKS.where(INVITATIONS.c.message_id.in_(bindparam("ids", expanding=True)))
_COUNTERS = {"sent": "sent", "retry": "retried", "failed": "failed", "release": "released"}


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
    """A worker's word on one message: ``sent``, ``retry``, ``failed``, ``release``, ``crash``."""

    worker: int
    message_id: int
    kind: str
    reason: str | None = None
    #: Why the run must stop: the transport is unavailable, or the worker crashed.
    halt: str | None = None
    crash: BaseException | None = None


def _work(
    number: int, transport: Transport, inbox: queue.Queue[Any], out: queue.Queue[Any]
) -> None:
    """A worker: send what it is handed, say how it went, until it is handed ``None``."""
    try:
        while (job := inbox.get()) is not None:
            message_id, make_mail = job
            try:
                transport.send(make_mail())  # the mail is filled here, off the recorder's path
                out.put(_Outcome(number, message_id, "sent"))
            except PermanentDeliveryError as error:
                out.put(_Outcome(number, message_id, "failed", str(error)))
            except TemporaryDeliveryError as error:
                out.put(_Outcome(number, message_id, "retry", str(error)))
            except TransportUnavailableError as error:
                out.put(_Outcome(number, message_id, "release", halt=str(error)))
            except BaseException as error:  # a bug: the message stays claimed, the lease decides
                out.put(_Outcome(number, message_id, "crash", crash=error))
    finally:
        transport.close()


def worker_name() -> str:
    """Who claims: host, process and a random tag (two runs in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class _Run:
    """One delivery run: the recorder (the calling thread) and its workers."""

    def __init__(self, engine: Engine, transports: list[Transport], **options: Any) -> None:
        self.engine, self.transports = engine, transports
        self.limit: int | None = options["limit"]
        self.interval = 1 / options["rate"] if options["rate"] else 0.0
        self.progress: Callable[[int, int], None] | None = options["progress"]
        self.lease: timedelta = options["lease"]
        self.retry: RetryPolicy = options["retry"]
        self.fixed_now: datetime | None = options["now"]
        ids = options.get("organisation_ids")
        self.organisation_ids = None if ids is None else sorted(ids)
        self.me = worker_name()
        self.report = DeliveryReport(transport=transports[0].label)
        # Few claimed-but-unsent messages at a slow rate: they must all go out well within the
        # lease, or another deliverer would take them over.
        batch = options["batch_size"]
        if self.interval:
            batch = min(batch, int(self.lease.total_seconds() / self.interval / 4))
        self.batch_size = max(1, batch)
        self.claimed: deque[Any] = deque()
        #: The claimed row of each message handed out, to blank its link once it is final.
        self.rows: dict[int, Any] = {}
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
        outcomes: queue.Queue[_Outcome] = queue.Queue()
        inboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in self.transports]
        for number, (transport, inbox) in enumerate(zip(self.transports, inboxes, strict=True)):
            worker = threading.Thread(target=_work, args=(number, transport, inbox, outcomes))
            worker.daemon = True
            worker.start()
        idle = list(range(len(self.transports)))
        arrived: list[_Outcome] = []
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    due = select(func.count()).select_from(TABLE).where(self._due(self.now()))
                    self.total = min(conn.scalar(due) or 0, self.limit or 1 << 62)
                while True:
                    # A worker whose outcome this transaction commits may get the next message.
                    idle += [outcome.worker for outcome in arrived]
                    wanted = 0 if self.pace() else 1 if self.interval else len(idle)
                    if self.halted or (self.exhausted and not self.claimed):
                        wanted = 0
                    handed: list[tuple[int, Callable[[], Any]]] = []
                    if arrived or wanted:
                        with conn.begin():
                            self.record(conn, arrived)
                            handed = self.hand_out(conn, 0 if self.halted else wanted)
                    if arrived and self.progress is not None:
                        self.progress(self.done, max(self.total, self.done))
                    for mail in handed:
                        inboxes[idle.pop()].put(mail)
                        self.next_start = max(self.next_start, time.monotonic()) + self.interval
                    busy = len(self.transports) - len(idle)
                    if not busy and (self.halted or (self.exhausted and not self.claimed)):
                        break
                    pacing = idle and self.interval and not self.halted
                    arrived = self.wait(outcomes, busy, self.pace() if pacing else None)
                with conn.begin():
                    self.release(conn)
        except (self.engine.dialect.loaded_dbapi.Error, exc.OperationalError) as error:
            cause = error.orig if isinstance(error, exc.DBAPIError) else error
            reason = str(cause).strip().splitlines()[0] if str(cause).strip() else "no reason"
            raise DatabaseError(
                f"The database connection was lost while delivering mail ({reason}); nothing is "
                "lost: messages not recorded as sent stay claimed and the next `mail deliver` "
                f"takes them back after {self.lease.total_seconds() / 60:g} minutes."
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
    def wait(outcomes: queue.Queue[_Outcome], busy: int, pace: float | None) -> list[_Outcome]:
        """The next outcomes: at least one (unless ``pace`` runs out first), and for a group
        commit, up to half the busy workers' if they come within :data:`GROUP_SECONDS`."""
        arrived: list[_Outcome] = []
        try:
            arrived.append(outcomes.get(timeout=pace if busy else max(pace or 0, 0.001)))
            until = time.monotonic() + GROUP_SECONDS
            while len(arrived) < busy - 2 and time.monotonic() < until:
                arrived.append(outcomes.get(timeout=until - time.monotonic()))
            while True:
                arrived.append(outcomes.get_nowait())
        except queue.Empty:
            return arrived

    # --- the database, inside the recorder's transactions -----------------------------------

    def _due(self, now: datetime) -> Any:
        due = or_(
            and_(TABLE.c.status == "queued", TABLE.c.next_attempt_at <= now),
            and_(TABLE.c.status == "sending", TABLE.c.claimed_at < now - self.lease),
        )
        if self.organisation_ids is None:
            return due
        mine = select(INVITATIONS.c.message_id).where(
            INVITATIONS.c.organisation_id.in_(self.organisation_ids)
        )
        return and_(due, TABLE.c.id.in_(mine))

    def record(self, conn: Connection, outcomes: list[_Outcome]) -> None:
        """Write ``outcomes`` and count them in the report (the caller commits)."""
        now, report = self.now(), self.report
        rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _OUTCOMES}
        for outcome in outcomes:
            row = self.rows.pop(outcome.message_id)
            if outcome.halt or outcome.crash:
                self.halted = True
                self.crash = self.crash or outcome.crash
                report.error = report.error or outcome.halt
                if outcome.crash:  # left claimed: whether it went out is unknown
                    continue
            attempts = (row.attempts or 0) + 1
            if outcome.kind == "retry" and attempts >= self.retry.max_attempts:
                outcome.kind = "failed"
                outcome.reason = f"Given up after {attempts} attempts: {outcome.reason}"
            values = {"mid": row.id, "me": self.me, "at": now, "why": outcome.reason}
            if outcome.kind == "retry":
                values["later"] = now + self.retry.delay(attempts)
            if outcome.kind in ("sent", "failed"):
                values["person"] = redact_person(row.person) or row.person
                values["text"] = redact_text(row.body_text)
                values["html"] = redact_text(row.body_html)
            rows[outcome.kind].append(values)
            counter = _COUNTERS[outcome.kind]
            setattr(report, counter, getattr(report, counter) + 1)
            if outcome.kind in ("retry", "failed"):
                problem = {"id": row.id, "recipient": row.recipient, "outcome": outcome.kind}
                report.problems.append({**problem, "reason": outcome.reason})
            self.done += outcome.kind != "release"
        for kind, values_list in rows.items():
            if values_list:
                conn.execute(_OUTCOMES[kind], values_list)
        if rows["sent"]:
            conn.execute(_INVITATION_SENT, rows["sent"])
        if rows["failed"]:
            conn.execute(_INVITATION_BOUNCED, rows["failed"])

    def hand_out(self, conn: Connection, wanted: int) -> list[tuple[int, Callable[[], Any]]]:
        """Up to ``wanted`` claimed messages whose link still works: (id, its mail's maker)."""
        mails: list[tuple[int, Callable[[], Any]]] = []
        while len(mails) < wanted:
            if len(self.claimed) < wanted - len(mails) and not self.exhausted:
                self.claim(conn)
            taken = [
                self.claimed.popleft() for _ in range(min(wanted - len(mails), len(self.claimed)))
            ]
            if not taken:
                break
            dead = self.cancel_dead_links(conn, taken)
            for row in taken:
                if row.id not in dead:
                    self.rows[row.id] = row
                    template = self.templates.get(row.template_id)
                    mails.append((row.id, partial(OutgoingMail.from_row, row, template)))
        return mails

    def claim(self, conn: Connection) -> None:
        """Claim the next due messages (a batch) for this run."""
        size = min(self.batch_size, (self.limit or 1 << 62) - self.claims)
        now = self.now()
        query = select(TABLE).where(self._due(now)).order_by(TABLE.c.next_attempt_at, TABLE.c.id)
        rows = (
            conn.execute(query.limit(size).with_for_update(skip_locked=True)).all()
            if size > 0
            else []
        )
        self.exhausted = size <= 0 or len(rows) < size
        if not rows:
            return
        claimed = TABLE.c.id.in_([row.id for row in rows])
        conn.execute(
            update(TABLE)
            .where(claimed)
            .values(status="sending", claimed_by=self.me, claimed_at=now)
        )
        why = (
            "Taken over from the deliverer {}, which held it longer than its "
            f"{self.lease.total_seconds():g}-second lease without a result (it may have been "
            "sent once already)."
        )
        stale = [
            {"mid": row.id, "why": why.format(row.claimed_by)}
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
        missing = {row.template_id for row in rows} - self.templates.keys() - {None}
        if missing:
            self.templates.update(load_templates(conn, missing))  # with their inline images
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
                .values(status="cancelled", cancel_reason=bindparam("why"), **_FREE),
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
    organisation_ids: Collection[int] | None = None,
) -> DeliveryReport:
    """Send the due messages of the outbox; see the module docstring for the guarantees.

    ``limit``: at most this many messages this run. ``rate``: at most this many messages per
    second. ``organisation_ids``: only the messages of invitations to these organisations (a
    client's dashboard delivers its own mail, nobody else's). ``connections``: workers, each
    with its own transport (default 8 over SMTP, 1 for the Maildir), made by
    ``transport_factory`` (default: the one the settings name).
    ``progress(done, total)`` is called after each committed group of outcomes. ``now`` fixes
    the clock (tests, replays). The report's ``error`` is set when the run stopped early because
    the transport was unavailable; the unsent messages are then still queued.
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
    options = {"limit": limit, "rate": rate, "progress": progress, "lease": lease, "now": now}
    options["organisation_ids"] = organisation_ids
    run = _Run(engine, transports, retry=retry or RetryPolicy(), batch_size=batch_size, **options)
    with translate_errors(engine):  # a database missing or unreachable: one sentence
        return run.run()


def mail_status(session: Session) -> dict[str, int]:
    """How many messages the outbox holds in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status)).all()
    for status, count in rows:
        counts[status] = count
    return counts
