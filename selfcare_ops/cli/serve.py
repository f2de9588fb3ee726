"""``selfcare-ops serve``: the invitee's and supervisor's pages, on uvicorn."""

from __future__ import annotations

import logging
import sys

import click

from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, pass_cli
from selfcare_ops.i18n import N_

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _log_to_stderr() -> None:
    """Our access log (tokens redacted) and uvicorn's error log on stderr; uvicorn's own
    access log stays off: it would print every token in its paths."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access = logging.getLogger("selfcare_ops.web.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


@main.command(
    "serve",
    help=N_(
        "Serve the links the mails carry: invitations, the Selfcare home, supervision, "
        "images.\n\n"
        "SELFCARE_OPS_PORTAL_URL stays the public base written in every link; put this "
        "server behind it (a reverse proxy with TLS), or set it to this address for a "
        "local try."
    ),
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help=N_("Address to listen on."))
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(1, 65535),
    help=N_("Port to listen on."),
)
@pass_cli
def serve(cli: CliContext, host: str, port: int) -> None:
    import uvicorn

    from selfcare_ops.web.app import create_app

    cli.sessions()  # a database that is reachable and migrated, or one sentence
    app = create_app(cli.settings, engine=cli.engine)
    _log_to_stderr()
    echo(
        f"Serving the portal on http://{host}:{port}/ for links under "
        f"{cli.settings.portal_url} (Ctrl+C stops)."
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        log_level="warning",
        proxy_headers=True,
    )
