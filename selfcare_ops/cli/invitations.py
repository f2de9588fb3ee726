"""``invite ...`` and the account lifecycle commands of ``users``: thin shells over the services."""

from __future__ import annotations

from typing import IO

import click

from selfcare_ops.accounts.users import NewUser
from selfcare_ops.cli import main
from selfcare_ops.cli.common import (
    CliContext,
    confirm_or_abort,
    echo,
    echo_json,
    echo_table,
    pass_cli,
)
from selfcare_ops.cli.directory import users
from selfcare_ops.invitations import service as service
from selfcare_ops.invitations.ledger import MAX_LEDGER_ROWS, list_invitations
from selfcare_ops.store.models import CIVILITIES, CLIENT_ROLES, INVITATION_STATUSES, LANGUAGES


@main.group()
def invite() -> None:
    """Send, resend, revoke, expire and accept Selfcare invitations."""


def _sent(result: service.InvitationResult) -> str:
    # Queued, not sent: the mail leaves with `mail deliver` (the ledger then says "sent").
    return (
        f"Invitation queued for {result.email} ({result.login or 'administrator'}); "
        f"the link is valid until {result.expires_at:%Y-%m-%d %H:%M} UTC. "
        "`selfcare-ops mail deliver` sends it."
    )


@invite.command("list")
@click.option("--client", "client_ref", metavar="REF", help="Only the invitations of this client.")
@click.option(
    "--status",
    type=click.Choice(INVITATION_STATUSES),
    help="Only invitations in this state (expired includes open links past their expiry).",
)
@click.option("--limit", type=click.IntRange(1, MAX_LEDGER_ROWS), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@pass_cli
def invite_list(
    cli: CliContext, client_ref: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """The ledger of invitations, newest first: who, to which address, sent when, state, by whom."""
    with cli.read_sessions()() as session:
        ledger = list_invitations(
            session, cli.actor(session), client_ref=client_ref, status=status, limit=limit
        )
    if as_json:
        echo_json(ledger)
        return
    shown = ledger.assign(
        sent_at=[
            f"{d:%Y-%m-%d %H:%M}" if d is not None and d == d else "" for d in ledger["sent_at"]
        ],
        reason=[str(r)[:60] if r is not None and r == r else "" for r in ledger["reason"]],
    )
    echo_table(shown, ["login", "email", "client_ref", "state", "sent_at", "created_by", "reason"])
    echo(f"{len(ledger)} invitations")


@invite.command("user")
@click.argument("login")
@click.option("--email", metavar="EMAIL", help="Send to this address and store it on the user.")
@pass_cli
def invite_user(cli: CliContext, login: str, email: str | None) -> None:
    """Invite one user (their account's email, or --email)."""
    with cli.sessions().begin() as session:
        result = service.invite_user(session, cli.actor(session), login, email=email)
        echo(_sent(result))


@invite.command("client")
@click.argument("client_ref")
@click.option("--sub-account", metavar="NAME", help="Only the users of this sub-account.")
@click.option(
    "--min-days",
    type=click.IntRange(min=0),
    default=service.DEFAULT_MIN_DAYS,
    show_default=True,
    help="Leave out users invited less than this many days ago.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_cli
def invite_client(
    cli: CliContext,
    client_ref: str,
    sub_account: str | None,
    min_days: int,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Invite every user of CLIENT_REF: shows the count and who is left out, then sends."""
    if as_json and not (dry_run or yes):
        raise click.UsageError("--json needs --dry-run or --yes (there is no prompt in JSON).")
    with cli.sessions()() as session:
        plan = service.plan_bulk(
            session,
            cli.actor(session),
            client_ref=client_ref,
            sub_account=sub_account,
            min_days=min_days,
        )
    left_out = plan.frame.loc[plan.frame["action"] == "skip", ["login", "reason", "reason_code"]]
    to_send = plan.to_send
    report: dict[str, object] = {
        "client": client_ref,
        "sub_account": sub_account,
        "to_send": to_send,
        "left_out": left_out.to_dict(orient="records"),
        "dry_run": dry_run,
    }
    if not as_json:
        echo(service.plan_message(plan))
        if not left_out.empty:
            counts = sorted(left_out["reason"].value_counts().items(), key=lambda c: (-c[1], c[0]))
            echo("Left out: " + ", ".join(f"{n} {reason}" for reason, n in counts))
            echo_table(left_out.sort_values(["reason", "login"]), ["login", "reason"])
    if dry_run or to_send == 0:
        if as_json:
            echo_json({**report, "sent": 0})
        return
    noun = "invitation" if to_send <= 1 else "invitations"
    confirm_or_abort(f"Envoyer {to_send} {noun} ?", yes)
    with cli.sessions().begin() as session:
        outcome = service.apply_bulk(session, cli.actor(session), plan)
    sent, done = outcome.invited, outcome.frame
    late = done.loc[(done["action"] == "invite") & (done["outcome"] != "invited")]
    if as_json:
        echo_json(
            {
                **report,
                "sent": sent,
                "not_sent": late[["login", "reason"]].to_dict(orient="records"),
            }
        )
        return
    echo(f"{sent} invitation envoyée." if sent <= 1 else f"{sent} invitations envoyées.")
    if not late.empty:
        echo("Not sent (changed since the plan):")
        echo_table(late[["login", "reason"]])


@invite.command("admin")
@click.argument("email")
@click.option("--org", "org_ref", required=True, metavar="REF", help="Organisation to administer.")
@click.option("--name", "display_name", metavar="TEXT", help="Display name of a new administrator.")
@pass_cli
def invite_admin(cli: CliContext, email: str, org_ref: str, display_name: str | None) -> None:
    """Invite EMAIL to administer an organisation (an existing account keeps its access)."""
    with cli.sessions().begin() as session:
        result = service.invite_admin(
            session, cli.actor(session), email, org_ref, display_name=display_name
        )
        if result.had_account:
            echo(
                f"{result.email} already has the account {result.login}: it keeps it and now "
                f"administers {result.organisation_ref}; a mail tells them so."
            )
        else:
            echo(
                f"{result.email} has no account: an invitation to create it and administer "
                f"{result.organisation_ref} was sent, valid until "
                f"{result.invitation.expires_at:%Y-%m-%d %H:%M} UTC."
            )


@invite.command("resend")
@click.argument("login", required=False)
@click.option("--email", metavar="EMAIL", help="Resend the invitation sent to this address.")
@pass_cli
def invite_resend(cli: CliContext, login: str | None, email: str | None) -> None:
    """Send a new link to LOGIN (or --email); the previous link stops working."""
    if (login is None) == (email is None):
        raise click.UsageError("Give a LOGIN or --email, one of the two.")
    with cli.sessions().begin() as session:
        result = service.resend(session, cli.actor(session), login, email=email)
        echo(_sent(result) + " The previous link no longer works.")


@invite.command("revoke")
@click.argument("login", required=False)
@click.option("--email", metavar="EMAIL", help="Revoke every pending invitation to this address.")
@pass_cli
def invite_revoke(cli: CliContext, login: str | None, email: str | None) -> None:
    """Revoke the pending invitation of LOGIN, or those sent to --email."""
    if (login is None) == (email is None):
        raise click.UsageError("Give a LOGIN or --email, one of the two.")
    with cli.sessions().begin() as session:
        count = service.revoke(session, cli.actor(session), login, email=email)
    echo(f"{count} invitation{'s' if count != 1 else ''} revoked.")


@invite.command("expire")
@pass_cli
def invite_expire(cli: CliContext) -> None:
    """Mark every overdue pending invitation as expired (for the scheduled job)."""
    with cli.sessions().begin() as session:
        count = service.expire_overdue(session, cli.actor(session))
    echo(f"{count} invitation{'s' if count != 1 else ''} expired.")


#: Tokens are URL-safe base64 and may start with "-": read it as the TOKEN, not an option.
TOKEN_SETTINGS = {"ignore_unknown_options": True}


@invite.command("accept", context_settings=TOKEN_SETTINGS)
@click.argument("token")
@click.option("--civility", required=True, help="M. or Mme.")
@click.option("--phone", required=True, help="Phone number (French numbers without +33 too).")
@click.option(
    "--password-file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="File whose first line is the password ('-' reads standard input).",
)
@pass_cli
def invite_accept(
    cli: CliContext, token: str, civility: str, phone: str, password_file: IO[str]
) -> None:
    """Complete an account from its invitation TOKEN (the portal's side, for integration)."""
    password = password_file.readline().rstrip("\r\n")
    with cli.sessions().begin() as session:
        result = service.accept(session, token, civility=civility, phone=phone, password=password)
    who = result.login or result.email
    echo(f"The account {who} is active.")


@invite.command("inspect", context_settings=TOKEN_SETTINGS)
@click.argument("token")
@pass_cli
def invite_inspect(cli: CliContext, token: str) -> None:
    """Say whether TOKEN is usable, without spending it (what opening the link does)."""
    with cli.sessions()() as session:
        info = service.inspect_token(session, token)
    echo(
        f"Valid {info.kind} invitation for {info.login or info.email} at "
        f"{info.organisation_name}, until {info.expires_at:%Y-%m-%d %H:%M} UTC."
    )


# --- users: lifecycle ------------------------------------------------------------------------


@users.command("deactivate")
@click.argument("login")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def users_deactivate(cli: CliContext, login: str, yes: bool) -> None:
    """Deactivate LOGIN's account (it stays listed and can be reactivated)."""
    confirm_or_abort(f"Deactivate the account {login}?", yes)
    with cli.sessions().begin() as session:
        result = service.deactivate(session, cli.actor(session), login)
    extra = (
        f"; {result.invitations_revoked} pending invitation(s) revoked"
        if result.invitations_revoked
        else ""
    )
    echo(f"{result.login} is deactivated (was {result.previous_status}){extra}.")


@users.command("reactivate")
@click.argument("login")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def users_reactivate(cli: CliContext, login: str, yes: bool) -> None:
    """Reactivate LOGIN's deactivated account."""
    confirm_or_abort(f"Reactivate the account {login}?", yes)
    with cli.sessions().begin() as session:
        result = service.reactivate(session, cli.actor(session), login)
    echo(f"{result.login} is {result.status} again.")


@users.command("supervise")
@click.argument("login")
@click.option("--reason", required=True, help="Why; the user sees it in the banner.")
@click.option(
    "--minutes",
    type=click.IntRange(1, 240),
    default=30,
    show_default=True,
    help="How long the link and the banner last.",
)
@pass_cli
def users_supervise(cli: CliContext, login: str, reason: str, minutes: int) -> None:
    """Open a time-limited, audited supervision of LOGIN's Selfcare; prints the signed link."""
    with cli.sessions().begin() as session:
        result = service.supervise(
            session, cli.actor(session), login, reason=reason, minutes=minutes
        )
    echo(f"Supervision of {result.login} until {result.expires_at:%Y-%m-%d %H:%M} UTC:")
    echo(result.link)


ON_OFF = click.Choice(["on", "off"])


@users.command("create")
@click.argument("client_ref")
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--email", metavar="EMAIL")
@click.option("--login", metavar="LOGIN", help="Instead of the generated one (initial + name).")
@click.option("--civility", type=click.Choice(CIVILITIES))
@click.option("--phone", help="Any usual form; stored as +33...")
@click.option("--mobile", help="A mobile number (SMS notices go there).")
@click.option("--function")
@click.option("--role", type=click.Choice(CLIENT_ROLES))
@click.option("--sub-account", metavar="NAME")
@click.option("--language", type=click.Choice(LANGUAGES))
@click.option("--manage-rights", type=ON_OFF, help="May change other users' rights (default off).")
@click.option("--place-orders", type=ON_OFF, help="May place orders (default off).")
@click.option("--view-invoices", type=ON_OFF, help="May see the invoices (default off).")
@click.option("--draft", is_flag=True, help="Create without inviting; `invite user` later.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_cli
def users_create(
    cli: CliContext,
    client_ref: str,
    first_name: str,
    last_name: str,
    draft: bool,
    as_json: bool,
    manage_rights: str | None,
    place_orders: str | None,
    view_invoices: str | None,
    **details: str | None,
) -> None:
    """Create a user of CLIENT_REF; invited at once when an email is known, unless --draft.

    Rights set here follow the rule of `rights set` (seed 004's invite form sets them).
    """
    switches = {
        "manage_rights": manage_rights,
        "place_orders": place_orders,
        "view_invoices": view_invoices,
    }
    new = NewUser(
        first_name,
        last_name,
        rights={name: value == "on" for name, value in switches.items() if value is not None},
        **details,
    )
    with cli.sessions().begin() as session:
        created = service.add_user(session, cli.actor(session), client_ref, new, draft=draft)
    if as_json:
        echo_json(
            {
                "login": created.login,
                "status": created.status,
                "invited": created.invitation is not None,
            }
        )
        return
    if created.invitation is not None:
        echo(
            f"Created {created.login} and queued the invitation to {created.invitation.email} "
            "(`selfcare-ops mail deliver` sends it)."
        )
    elif draft:
        echo(f"Created {created.login} as a draft: `invite user {created.login}` activates.")
    else:
        echo(f"Created {created.login} without email: it cannot be invited yet.")


@users.command("activate")
@click.argument("login")
@click.option("--email", metavar="EMAIL", help="Send to this address and store it on the user.")
@pass_cli
def users_activate(cli: CliContext, login: str, email: str | None) -> None:
    """Activate a draft user: sends their invitation (seed 003)."""
    with cli.sessions().begin() as session:
        result = service.activate(session, cli.actor(session), login, email=email)
        echo(_sent(result))
