"""``mail deliver`` and ``mail status``: the outbox from a terminal.

Both act as the named actor: the system actor and operator or partner administrators only
(the outbox is the whole tree's; see ``access.can_deliver_mail``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from selfcare_ops.access import require_mail_delivery
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, pass_cli
from selfcare_ops.errors import MailError
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.invitations.service import deliver_and_redact, outbox_status, redact_final_links
from selfcare_ops.mail.deliver import MAX_CONNECTIONS


@main.group(help=N_("Deliver the queued mail and see the outbox."))
def mail() -> None:
    """Deliver the queued mail and see the outbox."""


def _progress_bar() -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A tqdm bar on stderr when it is a terminal; nothing otherwise (logs, pipes, tests)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="msg", file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


@mail.command(
    "deliver", help=N_("Send the queued messages that are due through the configured transport.")
)
@click.option("--limit", type=click.IntRange(min=1), help=N_("Send at most N messages this run."))
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help=N_("Send at most N messages per second."),
)
@click.option(
    "--connections",
    type=click.IntRange(1, MAX_CONNECTIONS),
    help=N_("Parallel SMTP connections (default 16; the Maildir uses 1)."),
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print the report as a JSON object."))
@pass_cli
def deliver_command(
    cli: CliContext,
    limit: int | None,
    rate: float | None,
    connections: int | None,
    as_json: bool,
) -> None:
    actor = cli.require_actor(require_mail_delivery)  # refused before any bar or connection
    progress, close_bar = _progress_bar()
    try:
        report = deliver_and_redact(
            cli.sessions(),
            cli.settings,
            actor=actor,
            limit=limit,
            rate=rate,
            connections=connections,
            progress=progress,
        )
    finally:
        close_bar()
    if as_json:
        echo_json(report.as_dict())
    else:
        echo(report.summary())
        for problem in report.problems:
            if problem["outcome"] == "retry":
                line = _("message {id} to {recipient} will be retried: {reason}")
            else:
                line = _("message {id} to {recipient} failed: {reason}")
            echo("  " + line.format(**problem))
    if report.error:
        raise MailError(_("{error} The unsent messages stay queued.").format(error=report.error))


@mail.command(
    "status", help=N_("How many messages are queued, being sent, sent, failed and cancelled.")
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON object of counts."))
@pass_cli
def status_command(cli: CliContext, as_json: bool) -> None:
    with cli.sessions()() as session:
        counts = outbox_status(session, cli.actor(session))
    if as_json:
        echo_json(counts)
        return
    words = {
        "queued": _("queued"),
        "sending": _("sending"),
        "sent": _("sent"),
        "failed": _("failed"),
        "cancelled": _("cancelled"),
    }
    width = max(len(word) for word in words.values())
    for status, count in counts.items():
        echo(f"{words.get(status, status):<{width}} {count}")


@mail.command(
    "redact",
    help=N_(
        "Blank the links still readable in mails that will never leave again (sent, "
        "failed or cancelled): a repair for rows written before links were blanked as "
        "mails finished."
    ),
)
@pass_cli
def redact_command(cli: CliContext) -> None:
    with cli.sessions().begin() as session:
        redacted = redact_final_links(session, cli.actor(session))
    echo(
        ngettext(
            "{count} mail had a live link; none is left in a sent, failed or cancelled mail.",
            "{count} mails had a live link; none is left in a sent, failed or cancelled mail.",
            redacted,
        ).format(count=redacted)
    )
