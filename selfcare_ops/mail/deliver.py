"""Outbox delivery: claim due messages, send them, record what happened to each.

A run repeats three steps until nothing is due (or ``limit`` is reached):

1. **Claim** a small batch in a short transaction: queued messages whose ``next_attempt_at`` has
   come, plus messages left in ``sending`` longer than the lease by a deliverer that died. They
   become ``sending`` with ``claimed_by``/``claimed_at``. On PostgreSQL the rows are selected
   ``FOR UPDATE SKIP LOCKED`` so that two deliverers never claim the same row; on SQLite the
   transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`selfcare_ops.store.db`), which serialises
   claims.
2. **Send**. Over SMTP, several connections (``connections``, default 8) are driven by one
   thread (:class:`~selfcare_ops.mail.transports.SmtpPool`), so that the server works on several
   messages at once; other transports (the Maildir) send one message at a time. Sends are paced
   to ``rate`` messages per second at most.
3. **Record** each outcome as soon as it is known: ``sent`` with ``sent_at``; a temporary failure
   (4xx, dropped connection) goes back to ``queued`` with ``attempts`` + 1, ``last_error`` and a
   ``next_attempt_at`` pushed back exponentially; a permanent refusal (5xx) becomes ``failed``
   with the server's reason. A connection hands its next message over (the SMTP payload after
   ``354``) only once its previous outcome is committed, so a killed deliverer leaves at most one
   message per connection sent but not recorded: that message, taken over after the lease, is
   the only one that can be sent twice. Outcomes that arrive together are committed together.

When the transport is unavailable (server unreachable, login refused) the run stops: the message
being tried and every claimed one go back to ``queued`` untouched, and the report's ``error``
says why in one sentence.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exc, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import DatabaseError, MailError
from selfcare_ops.mail.content import load_templates
from selfcare_ops.mail.links import blank_links, redact_person, redact_text
from selfcare_ops.mail.render import MailTemplate
from selfcare_ops.mail.transports import (
    Finished,
    OutgoingMail,
    PermanentDeliveryError,
    SmtpPool,
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
#: The longest the loop waits between two looks at the connections.
POLL_SECONDS = 1.0

TABLE = OutboundMessage.__table__
INVITATIONS = Invitation.__table__
_CLAIM_COLUMNS = [
    TABLE.c.id,
    TABLE.c.message_key,
    TABLE.c.recipient,
    TABLE.c.subject,
    TABLE.c.body_text,
    TABLE.c.body_html,
    TABLE.c.template_id,
    TABLE.c.person,
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


class _Pacer:
    """Spaces message starts ``1/rate`` seconds apart."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()

    def delay(self) -> float:
        """Seconds until the next message may start (0: now)."""
        return max(0.0, self.next - time.monotonic()) if self.interval else 0.0

    def take(self) -> None:
        if self.interval:
            self.next = max(self.next, time.monotonic()) + self.interval


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
        transport_factory: Callable[[Settings], Transport] | None,
        batch_size: int,
        organisation_ids: Collection[int] | None = None,
    ) -> None:
        self.engine = _engine_of(session_factory)
        self.organisation_ids = None if organisation_ids is None else sorted(organisation_ids)
        self.conn: Connection | None = None
        self._time_processor = TABLE.c.sent_at.type.dialect_impl(
            self.engine.dialect
        ).bind_processor(self.engine.dialect)
        self.settings = settings
        self.limit = limit
        self.progress = progress
        self.connections = connections
        self.lease = lease
        self.retry = retry
        self.fixed_now = now
        self.me = worker_name()
        self.pacer = _Pacer(rate)
        self.halted = False
        self.done = 0
        self.total = 0
        #: Stored templates by id, read once per run: a bulk invitation's 100,000 messages
        #: share a handful of them.
        self.templates: dict[int, MailTemplate] = {}
        #: What each claimed message holds (person, bodies), to blank its link once final.
        self.contents: dict[int, tuple[Any, str | None, str | None]] = {}
        # Keep few claimed-but-unsent messages: at a slow rate they must all go out well within
        # the lease, or another deliverer would take them over.
        if rate:
            batch_size = min(batch_size, max(1, int(rate * lease.total_seconds() / 4)))
        self.batch_size = max(1, batch_size)
        # The next batch is claimed while half of this one is still to go: no connection waits.
        self.low_water = max(2 * connections, self.batch_size // 2)
        # Over SMTP (unless the caller brings its own transport) the pool drives the connections.
        self.pooled = transport_factory is None and settings.mail_transport == "smtp"
        self.transport_factory = transport_factory or make_transport
        probe = self.transport_factory(settings)
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

    # The hot statements go to the driver as they are (``?`` becomes the driver's placeholder):
    # a run records thousands of outcomes, and SQLAlchemy's per-row work would cost more CPU
    # than the database itself. Times are converted once by the column type's own processor.
    _MARK_CLAIMED = (
        "UPDATE outbound_messages SET status = 'sending', claimed_by = ?, claimed_at = ? "
        "WHERE id = ?"
    )
    _MARK_SENT = (
        "UPDATE outbound_messages SET status = 'sent', sent_at = ?, attempts = attempts + 1 "
        "WHERE id = ? AND status = 'sending' AND claimed_by = ?"
    )
    _MARK_RETRY = (
        "UPDATE outbound_messages SET status = 'queued', attempts = attempts + 1, "
        "last_error = ?, next_attempt_at = ?, claimed_by = NULL, claimed_at = NULL "
        "WHERE id = ? AND status = 'sending' AND claimed_by = ?"
    )
    _MARK_FAILED = (
        "UPDATE outbound_messages SET status = 'failed', attempts = attempts + 1, "
        "last_error = ?, claimed_by = NULL, claimed_at = NULL "
        "WHERE id = ? AND status = 'sending' AND claimed_by = ?"
    )
    _MARK_RELEASED = (
        "UPDATE outbound_messages SET status = 'queued', claimed_by = NULL, claimed_at = NULL "
        "WHERE id = ? AND status = 'sending' AND claimed_by = ?"
    )
    # An invitation follows its mail: ``sent`` when the server accepted it, ``bounced`` (with
    # the server's reason) when it refused it for good.
    _INVITATION_SENT = (
        "UPDATE invitations SET status = 'sent', sent_at = ? "
        "WHERE message_id = ? AND status = 'pending'"
    )
    _INVITATION_BOUNCED = (
        "UPDATE invitations SET status = 'bounced', closed_at = ?, status_reason = ? "
        "WHERE message_id = ? AND status IN ('pending', 'sent')"
    )
    # A final message keeps no live link (only when it did reach its final state).
    _BLANK_PERSON = (
        "UPDATE outbound_messages SET person = ? "
        "WHERE id = ? AND status IN ('sent', 'failed', 'cancelled')"
    )
    _BLANK_BODIES = (
        "UPDATE outbound_messages SET body_text = ?, body_html = ? "
        "WHERE id = ? AND status IN ('sent', 'failed', 'cancelled')"
    )

    @contextmanager
    def _driver_transaction(self) -> Iterator[Any]:
        """A transaction straight on the driver's connection (a cursor), for the hot path.

        Used only between SQLAlchemy transactions of the run's own connection, so SQLAlchemy
        never sees it half done. SQLite takes the write lock at once, as everywhere else.
        """
        if self.conn is None:  # no run connection (clean-up): a one-off SQLAlchemy transaction
            with self._transaction() as conn:
                yield conn.connection.dbapi_connection.cursor()
            return
        driver = self.conn.connection.dbapi_connection
        cursor = driver.cursor()
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException as error:
            try:
                driver.rollback()
            except Exception:  # the connection is gone: drop it, never hand it back to the pool
                self.conn.invalidate(error if isinstance(error, Exception) else None)
            raise
        if sqlite:
            cursor.execute("COMMIT")
        else:
            driver.commit()
        cursor.close()

    def _driver_sql(self, statement: str) -> str:
        """``statement`` with the driver's placeholders (``?`` for sqlite3, ``%s`` for psycopg)."""
        if self.engine.dialect.paramstyle == "qmark":
            return statement
        return statement.replace("?", "%s")

    def _db_time(self, value: datetime) -> Any:
        """``value`` as the driver stores it in a time column (a text on SQLite)."""
        return self._time_processor(value) if self._time_processor else value

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
            dead = self._cancel_dead_links(conn, rows, now)
            if dead:
                rows = [row for row in rows if row.id not in dead]
                if not rows:
                    return []
            at = self._db_time(now)
            conn.exec_driver_sql(
                self._driver_sql(self._MARK_CLAIMED), [(self.me, at, row.id) for row in rows]
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
            self._load_templates(conn, rows)
        for row in rows:
            self.contents[row.id] = (row.person, row.body_text, row.body_html)
        # Filled outside the transaction: SQLite's write lock is not held while mails are built.
        templates = self.templates
        return [OutgoingMail.from_row(row, templates.get(row.template_id)) for row in rows]

    def _cancel_dead_links(self, conn: Connection, rows: Any, now: datetime) -> set[int]:
        """Cancel the claimed rows whose invitation link no longer works; returns their ids.

        Revoking or superseding cancels a queued mail at once; this is the last check, for a
        mail that was already claimed then, or an invitation past its expiry.
        """
        ids = [row.id for row in rows]
        dead: dict[int, str] = {}
        for message_id, status, expires_at in conn.execute(
            select(INVITATIONS.c.message_id, INVITATIONS.c.status, INVITATIONS.c.expires_at).where(
                INVITATIONS.c.message_id.in_(ids)
            )
        ):
            if status in ("revoked", "superseded", "expired", "bounced"):
                dead[message_id] = "revoked" if status == "bounced" else status
            elif status in OPEN_INVITATION_STATUSES and expires_at <= now:
                dead[message_id] = "expired"
        if dead:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == bindparam("mid"))
                .values(
                    status="cancelled",
                    cancel_reason=bindparam("why"),
                    claimed_by=None,
                    claimed_at=None,
                ),
                [{"mid": mid, "why": why} for mid, why in dead.items()],
            )
            blank_links(conn, dead)
            self.report.cancelled += len(dead)
        return set(dead)

    def _load_templates(self, conn: Connection, rows: Any) -> None:
        """Read the templates of ``rows`` that this run has not read yet (one query)."""
        missing = {row.template_id for row in rows if row.template_id is not None}
        missing -= self.templates.keys()
        if missing:
            self.templates.update(load_templates(conn, missing))  # with their inline images

    def record(self, outcomes: list[Finished]) -> None:
        """Commit ``outcomes`` in one transaction, then count them and report progress."""
        if not outcomes:
            return
        now = self.now()
        at = self._db_time(now)
        me = self.me
        sent: list[tuple[Any, ...]] = []
        retry: list[tuple[Any, ...]] = []
        failed: list[tuple[Any, ...]] = []
        release: list[tuple[Any, ...]] = []
        invitation_sent: list[tuple[Any, ...]] = []
        invitation_bounced: list[tuple[Any, ...]] = []
        final: list[int] = []
        for outcome in outcomes:
            mail = outcome.mail
            attempts = mail.attempts + 1
            if outcome.kind == "sent":
                sent.append((at, mail.id, me))
                invitation_sent.append((at, mail.id))
                final.append(mail.id)
            elif outcome.kind == "release":
                release.append((mail.id, me))
            elif outcome.kind == "retry" and attempts < self.retry.max_attempts:
                later = self._db_time(now + self.retry.delay(attempts))
                retry.append((outcome.reason, later, mail.id, me))
            else:
                reason = outcome.reason or "unknown reason"
                if outcome.kind == "retry":
                    outcome.kind = "failed"
                    reason = f"Given up after {attempts} attempts: {reason}"
                failed.append((reason, mail.id, me))
                invitation_bounced.append((at, reason, mail.id))
                final.append(mail.id)
        blank_person, blank_bodies = self._blanked(final)
        for outcome in outcomes:
            self.contents.pop(outcome.mail.id, None)
        with self._driver_transaction() as cursor:
            for statement, rows in (
                (self._MARK_SENT, sent),
                (self._MARK_RETRY, retry),
                (self._MARK_FAILED, failed),
                (self._MARK_RELEASED, release),
                (self._INVITATION_SENT, invitation_sent),
                (self._INVITATION_BOUNCED, invitation_bounced),
                (self._BLANK_PERSON, blank_person),
                (self._BLANK_BODIES, blank_bodies),
            ):
                if rows:
                    cursor.executemany(self._driver_sql(statement), rows)
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
        self.done += sum(1 for outcome in outcomes if outcome.kind != "release")
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))

    def _blanked(
        self, message_ids: list[int]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Driver rows that blank the links of these finished messages (person, then bodies)."""
        person_rows: list[tuple[Any, ...]] = []
        body_rows: list[tuple[Any, ...]] = []
        contents = self.contents
        for message_id in message_ids:
            content = contents.get(message_id)
            if content is None:
                continue
            person, body_text, body_html = content
            if person is not None:
                redacted = redact_person(person)
                if redacted is not None:
                    person_rows.append((json.dumps(redacted), message_id))
                continue
            text, html = redact_text(body_text), redact_text(body_html)
            if text != body_text or html != body_html:
                body_rows.append((text, html, message_id))
        return person_rows, body_rows

    # --- sending -------------------------------------------------------------------------

    def _halt(self, reason: str) -> None:
        if self.report.error is None:
            self.report.error = reason
        self.halted = True

    def _claim_more(self, pending: deque[OutgoingMail], claimed: int) -> tuple[int, bool]:
        """Claim the next batch into ``pending``; returns (claimed so far, nothing left)."""
        size = self.batch_size
        if self.limit is not None:
            size = min(size, self.limit - claimed)
        if size <= 0:
            return claimed, True
        batch = self.claim(size)
        pending.extend(batch)
        claimed += len(batch)
        self.total = max(self.total, claimed)
        return claimed, len(batch) < size

    def run(self) -> DeliveryReport:
        driver_error = self.engine.dialect.loaded_dbapi.Error
        with translate_errors(self.engine):  # a database missing or unreachable: one sentence
            try:
                return self._run()
            except (driver_error, exc.OperationalError) as error:  # lost mid-run
                cause = error.orig if isinstance(error, exc.DBAPIError) else error
                reason = str(cause).strip().splitlines()[0] if str(cause).strip() else "no reason"
                minutes = f"{self.lease.total_seconds() / 60:g}"
                raise DatabaseError(
                    f"The database connection was lost while delivering mail ({reason}); "
                    "nothing is lost: messages not recorded as sent stay claimed and the next "
                    f"`mail deliver` takes them back after {minutes} minutes."
                ) from error

    def _run(self) -> DeliveryReport:
        started = time.perf_counter()
        self.total = self.count_due()
        if self.limit is not None:
            self.total = min(self.total, self.limit)
        if self.pooled:
            self._run_pool()
        else:
            with self.engine.connect() as conn:
                self.conn = conn
                try:
                    self._run_one_by_one()
                finally:
                    self.conn = None
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def _run_one_by_one(self) -> None:
        """Any transport, one message at a time, each outcome committed before the next send."""
        transport = self.transport_factory(self.settings)
        pending: deque[OutgoingMail] = deque()
        claimed, exhausted = 0, False
        try:
            while not self.halted:
                if not pending:
                    if exhausted:
                        break
                    claimed, exhausted = self._claim_more(pending, claimed)
                    continue
                time.sleep(self.pacer.delay())
                self.pacer.take()
                mail = pending.popleft()
                try:
                    transport.send(mail)
                    outcome = Finished(mail, "sent")
                except PermanentDeliveryError as error:
                    outcome = Finished(mail, "failed", str(error))
                except TemporaryDeliveryError as error:
                    outcome = Finished(mail, "retry", str(error))
                except TransportUnavailableError as error:
                    self._halt(str(error))
                    outcome = Finished(mail, "release")
                self.record([outcome])
        finally:
            transport.close()
            self._record_quietly([Finished(mail, "release") for mail in pending])

    def _run_pool(self) -> None:
        """SMTP: several connections in one loop, the database in a thread of its own."""
        pool = SmtpPool(self.settings, self.connections)
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        pool.add_waker(wake_read)
        database = _DatabaseThread(self, wake_write)
        database.start()
        pending: deque[OutgoingMail] = deque()
        outcomes: list[Finished] = []
        claimed, exhausted, claiming = 0, False, False
        try:
            while True:
                if pool.woken:  # news from the database thread: claims, committed outcomes
                    pool.woken = False
                    with contextlib.suppress(BlockingIOError):
                        while wake_read.recv(4096):
                            pass
                    if database.error is not None:
                        raise database.error
                    for size, batch in database.take_claims():
                        pending.extend(batch)
                        claimed += len(batch)
                        exhausted = exhausted or len(batch) < size
                        claiming = False
                        self.total = max(self.total, claimed)
                    pool.recorded(database.recorded_upto)
                if not claiming and not exhausted and not self.halted:
                    if len(pending) < self.low_water:
                        size = self.batch_size
                        if self.limit is not None:
                            size = min(size, self.limit - claimed)
                        if size > 0:
                            database.claim(size)
                            claiming = True
                        else:
                            exhausted = True
                wait = POLL_SECONDS
                while pending and pool.idle() and not self.halted:
                    delay = self.pacer.delay()
                    if delay > 0:
                        wait = min(wait, delay)
                        break
                    mail = pending.popleft()
                    try:
                        pool.start(mail)
                    except TransportUnavailableError as error:
                        pending.appendleft(mail)
                        self._halt(str(error))
                    self.pacer.take()
                if pool.error:
                    self._halt(pool.error)
                if self.halted:
                    # Nothing more goes out: what was not handed over is given back untouched.
                    released = pool.abort_unsent() + list(pending)
                    pending.clear()
                    if released:
                        database.record([Finished(mail, "release") for mail in released])
                # Outcomes go to the database in groups: as soon as a connection waits for its
                # previous one, when every connection has one, or when nothing else is going on.
                # (A commit costs about as much as the rows in it: fewer, larger ones.)
                if outcomes and (
                    pool.waiting_for_record()
                    or len(outcomes) >= self.connections
                    or not pool.busy()
                ):
                    database.record(outcomes)
                    outcomes = []
                if (
                    not pool.busy()
                    and not pool.has_results()
                    and not pending
                    and not outcomes
                    and not claiming
                    and (exhausted or self.halted)
                ):
                    break
                outcomes += pool.poll(wait)
        finally:
            # Interrupted (an exception, ^C): give back what was claimed and not handed over.
            leftovers = outcomes + [Finished(mail, "release") for mail in pool.abort_unsent()]
            leftovers += [Finished(mail, "release") for mail in pending]
            if leftovers:
                database.record(leftovers)
            database.stop()
            database.join()
            pool.close()
            wake_read.close()
            wake_write.close()
            if database.error is not None and leftovers:
                self._record_quietly(leftovers)

    def _record_quietly(self, outcomes: list[Finished]) -> None:
        try:
            self.record(outcomes)
        except Exception:  # the lease gives them back to the next run anyway
            pass


class _DatabaseThread(threading.Thread):
    """The run's database work, in a thread of its own so that commits overlap the network.

    The drivers (sqlite3, psycopg) release the interpreter lock while they wait, so the sending
    loop keeps serving its connections during a commit. Requests that queue up while one is
    served are served together: outcomes that arrive during a commit share the next one.
    """

    def __init__(self, run: _Run, waker: socket.socket) -> None:
        super().__init__(name="mail-database", daemon=True)
        self.owner = run
        self.waker = waker
        self.requests: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.lock = threading.Lock()
        self.claims: list[tuple[int, list[OutgoingMail]]] = []
        self.recorded_upto = 0
        self.error: BaseException | None = None

    def claim(self, size: int) -> None:
        self.requests.put(("claim", size))

    def record(self, outcomes: list[Finished]) -> None:
        self.requests.put(("record", outcomes))

    def stop(self) -> None:
        self.requests.put(("stop", None))

    def take_claims(self) -> list[tuple[int, list[OutgoingMail]]]:
        with self.lock:
            claims, self.claims = self.claims, []
        return claims

    def run(self) -> None:
        try:
            with self.owner.engine.connect() as conn:
                self.owner.conn = conn
                try:
                    self._serve()
                finally:
                    self.owner.conn = None
        except BaseException as error:  # handed to the sending loop, which raises it
            self.error = error
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self.waker.send(b"!")

    def _serve(self) -> None:
        while True:
            batch = [self.requests.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.requests.get_nowait())
            outcomes = [outcome for kind, value in batch if kind == "record" for outcome in value]
            if outcomes:
                self.owner.record(outcomes)
                with self.lock:
                    self.recorded_upto = max(self.recorded_upto, *(o.ticket for o in outcomes))
            for kind, value in batch:
                if kind == "claim":
                    mails = self.owner.claim(value)
                    with self.lock:
                        self.claims.append((value, mails))
            self._wake()
            if any(kind == "stop" for kind, _ in batch):
                return


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
    client's dashboard delivers its own mail, nobody else's). ``connections``: SMTP
    connections in parallel (default 8; the Maildir uses one).
    ``transport_factory``: another transport, driven one message at a time.
    ``progress(done, total)`` is called after each committed group of outcomes (over SMTP, from
    the run's database thread). ``now`` fixes the clock (tests, replays). The report's ``error``
    is set when the run stopped early because the transport was unavailable; the unsent
    messages are then still queued.
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
        transport_factory=transport_factory,
        batch_size=batch_size,
        organisation_ids=organisation_ids,
    )
    return run.run()


def mail_status(session: Session) -> dict[str, int]:
    """How many messages the outbox holds in each state (every state present, zeros included)."""
    counts = dict.fromkeys(MESSAGE_STATUSES, 0)
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status)).all()
    for status, count in rows:
        counts[status] = count
    return counts
