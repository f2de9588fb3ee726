"""``clients list`` and ``users list``: the directory from a terminal."""

from __future__ import annotations

import click

from selfcare_ops import directory
from selfcare_ops.cli import SpreadGroup, main
from selfcare_ops.cli.common import CliContext, UsageError, echo, echo_json, echo_table, pass_cli
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.store.models import ACCOUNT_STATUSES


@main.group(cls=SpreadGroup, spread={"details": "rights"}, help=N_("Search and list clients."))
def clients() -> None:
    """Search and list clients."""


@clients.command("list", help=N_("One page of clients with their users counted by account status."))
@click.option(
    "--search", metavar="TEXT", help=N_("Part of the name or reference (accents ignored).")
)
@click.option(
    "--partner", "partner_ref", metavar="REF", help=N_("Only clients under this partner.")
)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--page-size", type=click.IntRange(1, directory.MAX_PAGE_SIZE), default=20, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def clients_list(
    cli: CliContext,
    search: str | None,
    partner_ref: str | None,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    with cli.read_sessions()() as session:
        result = directory.search_clients(
            session,
            cli.actor(session),
            search,
            page=page,
            page_size=page_size,
            partner_ref=partner_ref,
        ).ensure_exists()
    if as_json:
        echo_json(result.rows)
        return
    echo_table(result.rows)
    count = ngettext("{count} client", "{count} clients", result.total).format(count=result.total)
    echo(f"{result.label} ({count})")


@main.group(
    cls=SpreadGroup,
    spread={
        **dict.fromkeys(
            ("activate", "create", "deactivate", "reactivate", "supervise"), "invitations"
        ),
        **dict.fromkeys(("move", "notifications", "profile", "remove", "role"), "rights"),
        "edit": "users",
    },
    help=N_("List and manage users."),
)
def users() -> None:
    """List and manage users."""


@users.command(
    "list", help=N_("The users of CLIENT_REF in name order, deactivated ones included and flagged.")
)
@click.argument("client_ref")
@click.option(
    "--status",
    type=click.Choice((*ACCOUNT_STATUSES, *directory.STATE_FILTERS)),
    help=N_(
        "An account status, or the state of the latest invitation (sent, expired, bounced), "
        "or draft."
    ),
)
@click.option("--no-email", is_flag=True, help=N_("Only users without an email address."))
@click.option("--sub-account", metavar="NAME")
@click.option(
    "--search", metavar="TEXT", help=N_("Part of a name, login or email (accents ignored).")
)
@click.option("--limit", type=click.IntRange(min=1), help=N_("At most this many users."))
@click.option(
    "--page", type=click.IntRange(min=1), help=N_("Only this page (default: every user).")
)
@click.option(
    "--page-size", type=click.IntRange(1, directory.MAX_PAGE_SIZE), default=50, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def users_list(
    cli: CliContext,
    client_ref: str,
    status: str | None,
    no_email: bool,
    sub_account: str | None,
    search: str | None,
    limit: int | None,
    page: int | None,
    page_size: int,
    as_json: bool,
) -> None:
    if page is not None and limit is not None:
        raise UsageError(_("Give --page or --limit, not both."))
    label = None
    with cli.read_sessions()() as session:
        actor = cli.actor(session)
        filters = {
            "status": status,
            "has_email": False if no_email else None,
            "sub_account": sub_account,
            "search": search,
        }
        if page is not None:
            found = directory.list_users(
                session, actor, client_ref, page=page, page_size=page_size, **filters
            ).ensure_exists()
            rows = found.rows
            total = found.total or 0
            label = ngettext(
                "Page {page} / {pages} ({count} user)",
                "Page {page} / {pages} ({count} users)",
                total,
            ).format(page=page, pages=max(found.pages or 0, 1), count=total)
        elif limit:
            rows = directory.list_users(
                session, actor, client_ref, page_size=min(limit, 1000), with_total=False, **filters
            ).rows
        else:
            rows = directory.iter_users(session, actor, client_ref, **filters)
    if as_json:
        echo_json(rows.drop(columns=["id"]))
        return
    shown = rows.assign(
        status=[
            directory.state_label(state, sent_at, expires_at, reason, invited_at)
            for state, sent_at, expires_at, reason, invited_at in zip(
                rows["state"],
                rows["invitation_sent_at"],
                rows["invitation_expires_at"],
                rows["invitation_reason"],
                rows["invited_at"],
                strict=True,
            )
        ],
        role=[directory.role_words(role) for role in rows["role"]],
    )
    echo_table(
        shown, ["login", "first_name", "last_name", "email", "status", "sub_account", "role"]
    )
    echo(label or ngettext("{count} user", "{count} users", len(rows)).format(count=len(rows)))
    if not status and not search and not no_email and not sub_account and not limit:
        with cli.read_sessions()() as session:
            counts = directory.state_counts(session, cli.actor(session), client_ref)
        invited = {k: counts[k] for k in ("pending", "sent", "expired", "bounced") if counts[k]}
        if invited:
            echo(
                _("Invitations: {counts}").format(
                    counts=", ".join(
                        _invitation_count(state, number) for state, number in invited.items()
                    )
                )
            )


def _invitation_count(state: str, number: int) -> str:
    """'3 waiting to be sent', '1 envoyée': one count of the invitations line."""
    forms = {
        "pending": ngettext("{count} waiting to be sent", "{count} waiting to be sent", number),
        "sent": ngettext("{count} sent", "{count} sent", number),
        "expired": ngettext("{count} expired", "{count} expired", number),
        "bounced": ngettext("{count} bounced", "{count} bounced", number),
    }
    return forms[state].format(count=number)
