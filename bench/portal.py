"""Portal benchmark: GET of a real invitation page against a fixed-string route, same server.

Builds a SQLite database (or ``--url``) with an operator, a partner, a client of 2,000 users and
the operator's default branding (logo, colours, message), invites one user, then starts
``uvicorn`` on a loopback port in a child process serving the portal plus one extra Starlette
route, ``/fixed``, that returns a fixed string.

- OURS: ``GET /invitation/<token>``: token lookup, the user and their client, the effective
  branding, the language chain, the CSRF value, the Jinja template (the whole page).
- FIXED: ``GET /fixed`` on the same server, the same keep-alive client, the same run.

Each round times ``--requests`` sequential requests of OURS, then as many of FIXED; the ratio is
the median of the per-round ratios of time per request. The last line is ``ratio=<ours/fixed>``
(must be <= 4.0).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT = 4.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(url: str, users: int) -> str:
    """The database and one open invitation; returns its token."""
    from selfcare_ops.access import actor_for_administrator
    from selfcare_ops.accounts.users import NewUser, create_user
    from selfcare_ops.branding import seed_default_branding
    from selfcare_ops.invitations.service import invite_user
    from selfcare_ops.organisations import create_operator, create_organisation
    from selfcare_ops.store.db import make_engine, make_session_factory, upgrade

    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        _, admin = create_operator(session, "OP", "Opérateur", login_domain="op.fr")
        system = actor_for_administrator(admin)
        create_organisation(session, system, kind="partner", parent_ref="OP", ref="PA", name="P")
        create_organisation(
            session,
            system,
            kind="client",
            parent_ref="PA",
            ref="CA",
            name="Virginie Télécom",
            login_domain="virginie.example",
        )
        seed_default_branding(session)
        first = None
        for n in range(users):
            user = create_user(
                session,
                system,
                "CA",
                NewUser(f"Prénom{n}", f"Nom{n}", email=f"user{n}@virginie.example"),
            )
            first = first or user.login
        assert first is not None
        token = invite_user(session, system, first).token
    engine.dispose()
    return token


def serve(url: str, port: int, secret: str) -> None:
    """The child process: the portal plus ``/fixed`` under uvicorn."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from selfcare_ops.config import Settings
    from selfcare_ops.web.app import create_app

    async def fixed(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fixed")

    settings = Settings(database_url=url, secret_key=secret, portal_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    app.router.routes.insert(0, Route("/fixed", fixed, methods=["GET"]))
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300, help="requests per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny size: proves it runs")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", default="bench-" + "k" * 42, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.url, args.port, args.secret)
        return 0
    if args.smoke:
        args.users, args.requests, args.rounds = 20, 20, 2

    import httpx

    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'portal.db'}"
        token = build(url, args.users)
        port = _free_port()
        env = {**os.environ, "SELFCARE_OPS_DATA_DIR": folder}
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--url", url, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:  # readiness wait
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if child.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start")
                        return 1
                    time.sleep(0.1)
            ours_path, fixed_path = f"/invitation/{token}", "/fixed"
            with httpx.Client(base_url=base) as client:
                page = client.get(ours_path)
                assert page.status_code == 200 and "csrf" in page.text, page.status_code
                assert client.get(fixed_path).text == "fixed"
                for _ in range(10):  # warm both paths
                    client.get(ours_path)
                    client.get(fixed_path)
                ours: list[float] = []
                fixed: list[float] = []
                for _ in range(args.rounds):
                    for path, times in ((ours_path, ours), (fixed_path, fixed)):
                        start = time.perf_counter()
                        for _ in range(args.requests):
                            response = client.get(path)
                            assert response.status_code == 200
                        times.append((time.perf_counter() - start) / args.requests)
        finally:
            child.terminate()
            child.wait(timeout=20)
    print(f"backend: {url.split(':', 1)[0]}; {args.users} users; {args.rounds} rounds")
    print(
        f"OURS GET /invitation/<token> (lookup, branding, language, template): "
        f"best {min(ours) * 1000:.2f} ms/request ({1 / min(ours):.0f} req/s), "
        f"median {statistics.median(ours) * 1000:.2f} ms"
    )
    print(
        f"FIXED GET /fixed (a Starlette route returning a fixed string): "
        f"best {min(fixed) * 1000:.2f} ms/request ({1 / min(fixed):.0f} req/s), "
        f"median {statistics.median(fixed) * 1000:.2f} ms"
    )
    ratio = statistics.median(o / f for o, f in zip(ours, fixed, strict=True))
    print(f"ours/fixed={ratio:.2f}, median of the per-round ratios (must be <= {LIMIT})")
    print(f"ratio={ratio:.2f}")
    return 0 if ratio <= LIMIT or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
