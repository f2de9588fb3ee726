"""Invitation benchmark: invite 5,000 users and deliver their mails over SMTP.

Builds a fresh SQLite database with the demo data (``data/demo/``) plus one client holding 5,000
invitable users (bulk inserted), starts an aiosmtpd server on loopback in its own process, and
times:

- OURS: plan and apply the bulk invitation of that client (``invitations.plan_bulk`` +
  ``apply_bulk``: tokens, the branded fr template stored once, invitations and outbox rows with
  each person's slot values in one transaction), then ``mail.deliver`` over SMTP (several
  connections, one commit per group of outcomes, each mail filled from its template);
- BASELINE: a raw ``smtplib`` loop sending the same 5,000 messages, built beforehand with the
  standard library (untimed), over one connection to the same server.

Each side runs ``--rounds`` times (a fresh database per round of OURS) and the best time of each
is kept, so that a burst of load from elsewhere on the machine does not decide the ratio.
Prints both times and the ratio; the last line is ``ratio=<ours/baseline>``.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy import insert, select

from selfcare_ops.access import system_actor
from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.config import Settings
from selfcare_ops.demo import DEMO_DIR, load_demo
from selfcare_ops.invitations.bulk import apply_bulk, plan_bulk
from selfcare_ops.mail.content import load_templates, message_content
from selfcare_ops.mail.deliver import deliver
from selfcare_ops.mail.mime import sender_address
from selfcare_ops.store.db import make_engine, make_session_factory, upgrade
from selfcare_ops.store.models import Organisation, OutboundMessage, User
from selfcare_ops.support.textnorm import fold

ROOT = Path(__file__).resolve().parent.parent
CLIENT_REF = "CBENCH"
MAIL_FROM = "Selfcare <no-reply@selfcare.example>"
FIRST = ["Jean", "Marie", "Cédric", "Véronique", "Hélène", "Loïc", "Zoé", "Noël", "Anaïs"]
LAST = ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Bubu", "Pichon", "Duduche"]

# The SMTP server runs in its own process: it must not share this process's interpreter lock.
SERVER = """
import sys
from aiosmtpd.controller import Controller

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counter.count += 1
        return "250 2.0.0 Ok"

controller = Controller(Counter(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    print(Counter.count, flush=True)
controller.stop()
"""


class Server:
    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("The aiosmtpd server did not start.")

    def received(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def build_database(path: Path, users: int) -> None:
    """The demo data, plus client CBENCH with ``users`` users who can be invited."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        load_demo(session, ROOT / DEMO_DIR)
        try:
            from selfcare_ops.branding import seed_default_branding

            seed_default_branding(session)
        except ImportError:
            pass
        partner = session.scalar(
            select(Organisation).where(Organisation.kind == "partner").order_by(Organisation.id)
        )
        client = Organisation(
            kind="client",
            parent_id=partner.id,
            ref=CLIENT_REF,
            name="Client du banc d'essai",
            name_folded="client du banc d'essai",
            path=partner.path,
            login_domain="banc.sewan.eu",
        )
        session.add(client)
        session.flush()
        client.path = f"{partner.path}{client.id}/"
        rows = []
        for number in range(users):
            first, last = FIRST[number % len(FIRST)], LAST[number // len(FIRST) % len(LAST)]
            login = f"u{number:05d}@banc.sewan.eu"
            email = f"{fold(first)}.{number}@banc-client.example"
            rows.append(
                {
                    "client_id": client.id,
                    "login": login,
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "status": "not_invited",
                    **derived_columns(first, last, login, email),
                }
            )
        session.execute(insert(User), rows)
    engine.dispose()


def ours(
    path: Path, settings: Settings, users: int, connections: int | None
) -> tuple[float, float, float]:
    """Invite every user of CBENCH and deliver: (total, invite, deliver) seconds."""
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    with sessions.begin() as session:
        actor = system_actor(session)
        plan = plan_bulk(session, actor, client_ref=CLIENT_REF)
        outcome = apply_bulk(session, actor, plan)
    invited = time.perf_counter()
    report = deliver(sessions, settings, connections=connections)
    finished = time.perf_counter()
    engine.dispose()
    if int(outcome.invited) != users or report.sent != users or report.error:
        raise SystemExit(
            f"OURS invited {outcome.invited} and sent {report.sent} of {users} "
            f"({report.error or 'no error'})."
        )
    return finished - started, invited - started, finished - invited


def prebuilt_messages(path: Path) -> list[tuple[str, bytes]]:
    """The messages OURS sent, built the standard way (untimed) for the baseline."""
    engine = make_engine(f"sqlite:///{path}")
    with make_session_factory(engine)() as session:
        rows = session.execute(
            select(
                OutboundMessage.recipient,
                OutboundMessage.subject,
                OutboundMessage.body_text,
                OutboundMessage.body_html,
                OutboundMessage.template_id,
                OutboundMessage.person,
                OutboundMessage.language,
            ).order_by(OutboundMessage.id)
        ).all()
        templates = load_templates(session, (row.template_id for row in rows))
    engine.dispose()
    messages = []
    for row in rows:
        mail = message_content(row, templates.get(row.template_id))
        message = EmailMessage()
        message["From"] = MAIL_FROM
        message["To"] = row.recipient
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        if mail.html:
            message.add_alternative(mail.html, subtype="html")
            for image in mail.inline:  # the logo travels as OURS sends it (multipart/related)
                maintype, _, subtype = image.mime.partition("/")
                html_part = message.get_payload()[1]
                html_part.add_related(image.data, maintype, subtype, cid=f"<{image.content_id}>")
        messages.append((row.recipient, message.as_bytes(policy=SMTP)))
    return messages


def baseline(port: int, messages: list[tuple[str, bytes]]) -> float:
    sender = sender_address(MAIL_FROM)
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for recipient, data in messages:
            smtp.sendmail(sender, [recipient], data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--connections", type=int, default=None, help="SMTP connections (default: deliver's)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="A tiny size that only proves the benchmark runs (CI)."
    )
    args = parser.parse_args()
    if args.smoke:
        args.users, args.rounds = 200, 1

    server = Server()
    settings = Settings(
        mail_transport="smtp", smtp_host="127.0.0.1", smtp_port=server.port, mail_from=MAIL_FROM
    )
    ours_times: list[tuple[float, float, float]] = []
    base_times: list[float] = []
    expected = 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_number in range(1, args.rounds + 1):
                path = Path(folder) / f"bench-{round_number}.db"
                started = time.perf_counter()
                build_database(path, args.users)
                print(
                    f"round {round_number}: database built in "
                    f"{time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                ours_times.append(ours(path, settings, args.users, args.connections))
                expected += args.users
                messages = prebuilt_messages(path)
                base_times.append(baseline(server.port, messages))
                expected += len(messages)
                total, invite, send = ours_times[-1]
                print(
                    f"round {round_number}: ours {total:.2f} s (invite {invite:.2f} s + "
                    f"deliver {send:.2f} s), baseline {base_times[-1]:.2f} s",
                    flush=True,
                )
        received = server.received()
    finally:
        server.close()
    if received != expected:
        raise SystemExit(f"The server received {received} messages, not {expected}.")

    best_ours = min(ours_times)
    best_base = min(base_times)
    ratio = best_ours[0] / best_base
    print(
        f"users={args.users} rounds={args.rounds} server=aiosmtpd on 127.0.0.1 "
        f"(every message received: {received})"
    )
    print(
        f"OURS     invite + deliver {best_ours[0]:.2f} s "
        f"(invite {best_ours[1]:.2f} s, deliver {best_ours[2]:.2f} s)"
    )
    print(
        f"BASELINE raw smtplib loop  {best_base:.2f} s "
        f"({best_base / args.users * 1000:.2f} ms per message, one connection)"
    )
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
