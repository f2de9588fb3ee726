"""Outbox delivery: claim due messages, send them, record what happened to each.

A run repeats three steps until nothing is due (or ``limit`` is reached):

1. **Claim** a small batch in a short transaction: queued messages whose ``next_attempt_at`` has
   come, plus messages left in ``sending`` longer than the lease by a deliverer that died. They
   become ``sending`` with ``claimed_by``/``claimed_at``. On PostgreSQL the rows are selected
   ``FOR UPDATE SKIP LOCKED`` so that two deliverers never claim the same row; on SQLite the
   transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`selfcare_ops.db`), which serialises
   claims.
2. **Send** through the transport, over several SMTP connections in parallel threads if asked
   (``connections``), paced to ``rate`` messages per second at most.
3. **Record** each outcome as soon as it is known: ``sent`` with ``sent_at``; a temporary failure
   (4xx, dropped connection) goes back to ``queued`` with ``attempts`` + 1, ``last_error`` and a
   ``next_attempt_at`` pushed back exponentially; a permanent refusal (5xx) becomes ``failed``
   with the server's reason. A sending thread waits for its outcome to be committed before it
   sends its next message, so that a killed deliverer leaves at most one message per connection
   sent but not recorded: that message, reclaimed after the lease, is the only one that can be
   sent twice. Outcomes that arrive together are committed together (one transaction).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings, get_settings
from ..errors import MailError
from ..models import MESSAGE_STATUSES, OutboundMessage, utcnow
from .transports import (
    OutgoingMail,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Transport,
    TransportUnavailableError,
    make_transport,
)

#: A claimed message not recorded after this long is taken over by the next deliverer.
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SMTP_CONNECTIONS = 4
DEFAULT_BATCH_SIZE = 100
MAX_CONNECTIONS = 16
#: How long the recorder waits for the other connections' outcomes to commit them together.
GROUP_COMMIT_WAIT = 0.002

TABLE = OutboundMessage.__table__
_CLAIM_COLUMNS = [
    TABLE.c.id,
    TABLE.c.message_key,
    TABLE.c.recipient,
    TABLE.c.subject,
    TABLE.c.body_text,
    TABLE.c.body_html,
    TABLE.c.language,
    TABLE.c.attempts,
    TABLE.c.status,
    TABLE.c.claimed_by,
]


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
        return text + "."


@dataclass
class _Outcome:
    mail: OutgoingMail
    kind: str  # sent | retry | failed | release
    reason: str | None = None
    at: datetime = field(default_factory=utcnow)
    recorded: threading.Event = field(default_factory=threading.Event)


class _Pacer:
    """Spaces message starts ``1/rate`` seconds apart across every sending thread."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self.lock:
            slot = max(self.next, time.monotonic())
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def _engine_of(session_factory: sessionmaker[Session]) -> Engine:
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise MailError("The session factory given to deliver() is not bound to a database engine.")
    return bind


def worker_name() -> str:
    """Who claims: host, process and a random tag (two runs in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class _Run:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        limit: int | None,
        rate: float | None,
        progress: Callable[[int, int], None] | None,
        connections: int,
        lease: timedelta,
        retry: RetryPolicy,
        now: datetime | None,
        transport_factory: Callable[[Settings], Transport],
        batch_size: int,
    ) -> None:
        self.engine = _engine_of(session_factory)
        self.conn: Connection | None = None
        self.settings = settings
        self.limit = limit
        self.progress = progress
        self.connections = connections
        self.lease = lease
        self.retry = retry
        self.fixed_now = now
        self.transport_factory = transport_factory
        self.me = worker_name()
        self.pacer = _Pacer(rate)
        self.stop = threading.Event()
        self.work: queue.Queue[OutgoingMail | None] = queue.Queue()
        self.results: queue.Queue[_Outcome] = queue.Queue()
        # Keep few claimed-but-unsent messages: at a slow rate they must all go out well within
        # the lease, or another deliverer would take them over.
        if rate:
            batch_size = min(batch_size, max(1, int(rate * lease.total_seconds() / 4)))
        self.batch_size = max(1, batch_size)
        self.low_water = 2 * connections
        probe = transport_factory(settings)
        self.report = DeliveryReport(transport=probe.label)
        probe.close()

    def now(self) -> datetime:
        return self.fixed_now or utcnow()

    # --- database ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A short transaction on the run's one connection (BEGIN IMMEDIATE on SQLite)."""
        if self.conn is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self.conn.begin():
            yield self.conn

    # Statements built once: a run records thousands of outcomes.
    _mine = and_(
        TABLE.c.id == bindparam("mid"),
        TABLE.c.status == "sending",
        TABLE.c.claimed_by == bindparam("me"),
    )
    _mark_sent = (
        update(TABLE)
        .where(_mine)
        .values(status="sent", sent_at=bindparam("at"), attempts=TABLE.c.attempts + 1)
    )
    _mark_retry = (
        update(TABLE)
        .where(_mine)
        .values(
            status="queued",
            attempts=TABLE.c.attempts + 1,
            last_error=bindparam("why"),
            next_attempt_at=bindparam("next"),
            claimed_by=None,
            claimed_at=None,
        )
    )
    _mark_failed = (
        update(TABLE)
        .where(_mine)
        .values(
            status="failed",
            attempts=TABLE.c.attempts + 1,
            last_error=bindparam("why"),
            claimed_by=None,
            claimed_at=None,
        )
    )
    _mark_released = (
        update(TABLE).where(_mine).values(status="queued", claimed_by=None, claimed_at=None)
    )

    def _due(self, now: datetime) -> Any:
        return or_(
            and_(TABLE.c.status == "queued", TABLE.c.next_attempt_at <= now),
            and_(TABLE.c.status == "sending", TABLE.c.claimed_at < now - self.lease),
        )

    def count_due(self) -> int:
        query = select(func.count()).select_from(TABLE).where(self._due(self.now()))
        with self._transaction() as conn:
            return conn.scalar(query) or 0

    def claim(self, size: int) -> list[OutgoingMail]:
        with self._transaction() as conn:
            now = self.now()
            rows = conn.execute(
                select(*_CLAIM_COLUMNS)
                .where(self._due(now))
                .order_by(TABLE.c.next_attempt_at, TABLE.c.id)
                .limit(size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id.in_(ids))
                .values(status="sending", claimed_by=self.me, claimed_at=now)
            )
            stale = [row for row in rows if row.status == "sending"]
            if stale:
                conn.execute(
                    update(TABLE)
                    .where(TABLE.c.id == bindparam("mid"))
                    .values(last_error=bindparam("why")),
                    [
                        {
                            "mid": row.id,
                            "why": f"Taken over from the deliverer {row.claimed_by}, which "
                            f"held it longer than its {self.lease.total_seconds():g}-second lease "
                            "without a result "
                            "(it may have been sent once already).",
                        }
                        for row in stale
                    ],
                )
                self.report.reclaimed += len(stale)
        return [OutgoingMail.from_row(row) for row in rows]

    def record(self, outcomes: list[_Outcome]) -> None:
        sent: list[dict[str, Any]] = []
        retry: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        release: list[dict[str, Any]] = []
        for outcome in outcomes:
            mail = outcome.mail
            attempts = mail.attempts + 1
            if outcome.kind == "sent":
                sent.append({"mid": mail.id, "at": outcome.at})
            elif outcome.kind == "release":
                release.append({"mid": mail.id})
            elif outcome.kind == "retry" and attempts < self.retry.max_attempts:
                retry.append(
                    {
                        "mid": mail.id,
                        "why": outcome.reason,
                        "next": outcome.at + self.retry.delay(attempts),
                    }
                )
            else:
                reason = outcome.reason or "unknown reason"
                if outcome.kind == "retry":
                    outcome.kind = "failed"
                    reason = f"Given up after {attempts} attempts: {reason}"
                failed.append({"mid": mail.id, "why": reason})
        with self._transaction() as conn:
            for statement, rows in (
                (self._mark_sent, sent),
                (self._mark_retry, retry),
                (self._mark_failed, failed),
                (self._mark_released, release),
            ):
                if rows:
                    for row in rows:
                        row["me"] = self.me
                    conn.execute(statement, rows)
        report = self.report
        for outcome in outcomes:
            if outcome.kind == "sent":
                report.sent += 1
            elif outcome.kind == "release":
                report.released += 1
            else:
                if outcome.kind == "retry":
                    report.retried += 1
                else:
                    report.failed += 1
                report.problems.append(
                    {
                        "id": outcome.mail.id,
                        "recipient": outcome.mail.recipient,
                        "outcome": outcome.kind,
                        "reason": outcome.reason,
                    }
                )

    # --- sending -------------------------------------------------------------------------

    def _halt(self, reason: str) -> None:
        if self.report.error is None:
            self.report.error = reason
        self.stop.set()

    def worker(self) -> None:
        transport: Transport | None = None
        previous: _Outcome | None = None

        def previous_recorded() -> None:
            # At most one message per connection is handed over and not yet recorded.
            if previous is not None and previous.kind != "release":
                previous.recorded.wait()

        try:
            while True:
                mail = self.work.get()
                if mail is None:
                    return
                if not self.stop.is_set():
                    self.pacer.wait(self.stop)
                if self.stop.is_set():
                    self.results.put(_Outcome(mail, "release"))
                    continue
                try:
                    if transport is None:
                        transport = self.transport_factory(self.settings)
                    transport.send(mail, before_handover=previous_recorded)
                    outcome = _Outcome(mail, "sent")
                except PermanentDeliveryError as error:
                    outcome = _Outcome(mail, "failed", str(error))
                except TemporaryDeliveryError as error:
                    outcome = _Outcome(mail, "retry", str(error))
                except TransportUnavailableError as error:
                    self._halt(str(error))
                    outcome = _Outcome(mail, "release")
                except Exception as error:  # a bug must not lose the message: retry it later
                    outcome = _Outcome(mail, "retry", f"Unexpected {type(error).__name__}: {error}")
                outcome.at = self.now()
                self.results.put(outcome)
                previous = outcome
        finally:
            if transport is not None:
                transport.close()

    def run(self) -> DeliveryReport:
        with self.engine.connect() as conn:
            self.conn = conn
            try:
                return self._run()
            finally:
                self.conn = None

    def _run(self) -> DeliveryReport:
        started = time.perf_counter()
        total = self.count_due()
        if self.limit is not None:
            total = min(total, self.limit)
        threads = [
            threading.Thread(target=self.worker, name=f"mail-{i}", daemon=True)
            for i in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        claimed = outstanding = done = 0
        exhausted = False
        waiting: list[_Outcome] = []
        try:
            while True:
                if not exhausted and not self.stop.is_set() and outstanding < self.low_water:
                    size = self.batch_size
                    if self.limit is not None:
                        size = min(size, self.limit - claimed)
                    batch = self.claim(size) if size > 0 else []
                    claimed += len(batch)
                    outstanding += len(batch)
                    for mail in batch:
                        self.work.put(mail)
                    exhausted = len(batch) < size or size <= 0
                    total = max(total, claimed)
                if outstanding == 0:
                    break
                waiting = self._collect(min(outstanding, self.connections))
                self.record(waiting)
                outstanding -= len(waiting)
                done += sum(1 for o in waiting if o.kind != "release")
                if self.progress is not None:
                    self.progress(done, total)
                for outcome in waiting:
                    outcome.recorded.set()
                waiting = []
        finally:
            self._shutdown(threads, waiting)
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _collect(self, busy: int) -> list[_Outcome]:
        """Outcomes to commit together: wait a moment for every busy connection to report."""
        collected = [self.results.get()]
        deadline = time.monotonic() + GROUP_COMMIT_WAIT
        while len(collected) < busy:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    collected.append(self.results.get(timeout=remaining))
                else:
                    collected.append(self.results.get_nowait())
            except queue.Empty:
                break
        return collected

    def _shutdown(self, threads: list[threading.Thread], waiting: list[_Outcome]) -> None:
        """Stop the threads; on an interruption, give back what was claimed but not sent."""
        self.stop.set()
        unsent: list[_Outcome] = []
        while True:
            try:
                mail = self.work.get_nowait()
            except queue.Empty:
                break
            if mail is not None:
                unsent.append(_Outcome(mail, "release"))
        for outcome in waiting:
            outcome.recorded.set()
        for _ in threads:
            self.work.put(None)
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.1)
                self._drain_results(unsent)
        self._drain_results(unsent)
        if unsent:
            try:
                self.record(unsent)
            except Exception:  # the lease gives them back to the next run anyway
                pass

    def _drain_results(self, into: list[_Outcome]) -> None:
        while True:
            try:
                outcome = self.results.get_nowait()
            except queue.Empty:
                return
            into.append(outcome)
            outcome.recorded.set()


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
    second. ``connections``: parallel SMTP connections (default 4; the Maildir uses one).
    ``progress(done, total)`` is called after each recorded group of outcomes. ``now`` fixes the
    clock (tests, replays). The report's ``error`` is set when the run stopped early because the
    transport was unavailable; the unsent messages are then still queued.
    """
    settings = settings or get_settings()
    factory = transport_factory or make_transport
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
    run = _Run(
        session_factory,
        settings,
        limit=limit,
        rate=rate,
        progress=progress,
        connections=connections,
        lease=lease,
        retry=retry or RetryPolicy(),
        now=now,
        transport_factory=factory,
        batch_size=batch_size,
    )
    return run.run()


def mail_status(session: Session) -> dict[str, int]:
    """How many messages the outbox holds in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status)).all()
    for status, count in rows:
        counts[status] = count
    return counts
