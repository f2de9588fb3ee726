"""``invite ...`` and the account lifecycle commands of ``users``: thin shells over the services."""

from __future__ import annotations

from typing import IO

import click

from selfcare_ops.access_words import contracted
from selfcare_ops.accounts import lifecycle, supervision
from selfcare_ops.accounts.supervision_ledger import end_supervisions_of, open_supervisions
from selfcare_ops.accounts.users import NewUser
from selfcare_ops.cli import main
from selfcare_ops.cli.common import (
    CliContext,
    UsageError,
    confirm_or_abort,
    echo,
    echo_json,
    echo_table,
    pass_cli,
)
from selfcare_ops.cli.directory import users
from selfcare_ops.directory import status_words
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.invitations import acceptance, issuing
from selfcare_ops.invitations import admin as admin_invitations
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations import service as service
from selfcare_ops.invitations.ledger import MAX_LEDGER_ROWS, list_invitations
from selfcare_ops.store.models import CIVILITIES, CLIENT_ROLES, INVITATION_STATUSES, LANGUAGES
from selfcare_ops.support.dates import long_date_time


@main.group(help=N_("Send, resend, revoke, expire and accept Selfcare invitations."))
def invite() -> None:
    """Send, resend, revoke, expire and accept Selfcare invitations."""


def _sent(result: issuing.InvitationResult) -> str:
    # Queued, not sent: the mail leaves with `mail deliver` (the ledger then says "sent").
    if result.login:
        sentence = _(
            "Invitation queued for {email} ({login}); the link is valid until {until}. "
            "`selfcare-ops mail deliver` sends it."
        )
    else:
        sentence = _(
            "Invitation queued for {email} (administrator); the link is valid until {until}. "
            "`selfcare-ops mail deliver` sends it."
        )
    return sentence.format(
        email=result.email, login=result.login, until=long_date_time(result.expires_at)
    )


def _ledger_state(state: str) -> str:
    """An invitation's state (a stable code of the ledger) as words in the current language."""
    words = {
        "pending": _("waiting to be sent"),
        "sent": _("invitation sent"),
        "bounced": _("address refused"),
        "accepted": _("accepted"),
        "revoked": _("revoked"),
        "expired": _("invitation expired"),
        "superseded": _("replaced by a newer one"),
    }
    return words.get(state, state)


@invite.command(
    "list",
    help=N_(
        "The ledger of invitations, newest first: who, to which address, sent when, state, by whom."
    ),
)
@click.option(
    "--client", "client_ref", metavar="REF", help=N_("Only the invitations of this client.")
)
@click.option(
    "--status",
    type=click.Choice(INVITATION_STATUSES),
    help=N_("Only invitations in this state (expired includes open links past their expiry)."),
)
@click.option("--limit", type=click.IntRange(1, MAX_LEDGER_ROWS), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@click.option(
    "--requested",
    is_flag=True,
    help=N_("Instead: the invitees' requests for a new link (from an expired or replaced link)."),
)
@pass_cli
def invite_list(
    cli: CliContext,
    client_ref: str | None,
    status: str | None,
    limit: int,
    as_json: bool,
    requested: bool,
) -> None:
    if requested:
        _list_requests(cli, client_ref, limit, as_json)
        return
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
        state=[_ledger_state(state) for state in ledger["state"]],
        reason=[str(r)[:60] if r is not None and r == r else "" for r in ledger["reason"]],
    )
    echo_table(shown, ["login", "email", "client_ref", "state", "sent_at", "created_by", "reason"])
    echo(
        ngettext("{count} invitation", "{count} invitations", len(ledger)).format(count=len(ledger))
    )


def _list_requests(cli: CliContext, client_ref: str | None, limit: int, as_json: bool) -> None:
    from selfcare_ops.invitations.invitee import list_link_requests

    with cli.read_sessions()() as session:
        requests = list_link_requests(
            session, cli.actor(session), client_ref=client_ref, limit=limit
        )
    if as_json:
        echo_json(requests)
        return
    shown = requests.assign(
        requested_at=[f"{d:%Y-%m-%d %H:%M}" for d in requests["requested_at"]],
        reason=[str(r)[:60] for r in requests["reason"]],
    )
    echo_table(
        shown,
        [
            "requested_at",
            "login",
            "email",
            "client_ref",
            "outcome",
            "new_invitation_state",
            "reason",
        ],
    )
    echo(f"{len(requests)} requests for a new link")


@invite.command("user", help=N_("Invite one user (their account's email, or --email)."))
@click.argument("login")
@click.option("--email", metavar="EMAIL", help=N_("Send to this address and store it on the user."))
@pass_cli
def invite_user(cli: CliContext, login: str, email: str | None) -> None:
    with cli.sessions().begin() as session:
        result = service.invite_user(session, cli.actor(session), login, email=email)
        echo(_sent(result))


@invite.command(
    "client",
    help=N_("Invite every user of CLIENT_REF: shows the count and who is left out, then sends."),
)
@click.argument("client_ref")
@click.option("--sub-account", metavar="NAME", help=N_("Only the users of this sub-account."))
@click.option(
    "--min-days",
    type=click.IntRange(min=0),
    default=bulk_invitations.DEFAULT_MIN_DAYS,
    show_default=True,
    help=N_("Leave out users invited less than this many days ago."),
)
@click.option("--dry-run", is_flag=True, help=N_("Show what would be sent; send nothing."))
@click.option("--yes", is_flag=True, help=N_("Send without asking for confirmation."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON object."))
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
    if as_json and not (dry_run or yes):
        raise UsageError(_("--json needs --dry-run or --yes (there is no prompt in JSON)."))
    with cli.sessions()() as session:
        plan = bulk_invitations.plan_bulk(
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
        echo(bulk_invitations.plan_message(plan))
        if not left_out.empty:
            by_code = left_out["reason_code"].value_counts().items()
            counts = sorted(by_code, key=lambda c: (-c[1], c[0]))
            echo(
                _("Left out: {counts}").format(
                    counts=", ".join(
                        bulk_invitations.reason_count(code, int(n)) for code, n in counts
                    )
                )
            )
            echo_table(left_out.sort_values(["reason", "login"]), ["login", "reason"])
    if dry_run or to_send == 0:
        if as_json:
            echo_json({**report, "sent": 0})
        return
    confirm_or_abort(
        ngettext("Send {count} invitation?", "Send {count} invitations?", to_send).format(
            count=to_send
        ),
        yes,
    )
    with cli.sessions().begin() as session:
        outcome = bulk_invitations.apply_bulk(session, cli.actor(session), plan)
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
    echo(ngettext("{count} invitation sent.", "{count} invitations sent.", sent).format(count=sent))
    if not late.empty:
        echo(_("Not sent (changed since the plan):"))
        echo_table(late[["login", "reason"]])


@invite.command(
    "admin",
    help=N_("Invite EMAIL to administer an organisation (an existing account keeps its access)."),
)
@click.argument("email")
@click.option(
    "--org", "org_ref", required=True, metavar="REF", help=N_("Organisation to administer.")
)
@click.option(
    "--name", "display_name", metavar="TEXT", help=N_("Display name of a new administrator.")
)
@pass_cli
def invite_admin(cli: CliContext, email: str, org_ref: str, display_name: str | None) -> None:
    with cli.sessions().begin() as session:
        result = admin_invitations.invite_admin(
            session, cli.actor(session), email, org_ref, display_name=display_name
        )
        if result.had_account:
            echo(
                _(
                    "{email} already has the account {login}: it keeps it and now administers "
                    "{organisation}; a mail tells them so."
                ).format(
                    email=result.email, login=result.login, organisation=result.organisation_ref
                )
            )
        else:
            echo(
                _(
                    "{email} has no account: an invitation to create it and administer "
                    "{organisation} was sent, valid until {until}."
                ).format(
                    email=result.email,
                    organisation=result.organisation_ref,
                    until=long_date_time(result.invitation.expires_at),
                )
            )


@invite.command(
    "resend", help=N_("Send a new link to LOGIN (or --email); the previous link stops working.")
)
@click.argument("login", required=False)
@click.option("--email", metavar="EMAIL", help=N_("Resend the invitation sent to this address."))
@pass_cli
def invite_resend(cli: CliContext, login: str | None, email: str | None) -> None:
    if (login is None) == (email is None):
        raise UsageError(_("Give a LOGIN or --email, one of the two."))
    with cli.sessions().begin() as session:
        result = service.resend(session, cli.actor(session), login, email=email)
        echo(_sent(result) + " " + _("The previous link no longer works."))


@invite.command(
    "revoke", help=N_("Revoke the pending invitation of LOGIN, or those sent to --email.")
)
@click.argument("login", required=False)
@click.option(
    "--email", metavar="EMAIL", help=N_("Revoke every pending invitation to this address.")
)
@pass_cli
def invite_revoke(cli: CliContext, login: str | None, email: str | None) -> None:
    if (login is None) == (email is None):
        raise UsageError(_("Give a LOGIN or --email, one of the two."))
    with cli.sessions().begin() as session:
        count = service.revoke(session, cli.actor(session), login, email=email)
    echo(
        ngettext("{count} invitation revoked.", "{count} invitations revoked.", count).format(
            count=count
        )
    )


@invite.command(
    "expire", help=N_("Mark every overdue pending invitation as expired (for the scheduled job).")
)
@pass_cli
def invite_expire(cli: CliContext) -> None:
    with cli.sessions().begin() as session:
        count = service.expire_overdue(session, cli.actor(session))
    echo(
        ngettext("{count} invitation expired.", "{count} invitations expired.", count).format(
            count=count
        )
    )


#: Tokens are URL-safe base64 and may start with "-": read it as the TOKEN, not an option.
TOKEN_SETTINGS = {"ignore_unknown_options": True}


@invite.command(
    "accept",
    context_settings=TOKEN_SETTINGS,
    help=N_("Complete an account from its invitation TOKEN (the portal's side, for integration)."),
)
@click.argument("token")
@click.option("--civility", required=True, help=N_("M. or Mme."))
@click.option("--phone", required=True, help=N_("Phone number (French numbers without +33 too)."))
@click.option(
    "--password-file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help=N_("File whose first line is the password ('-' reads standard input)."),
)
@pass_cli
def invite_accept(
    cli: CliContext, token: str, civility: str, phone: str, password_file: IO[str]
) -> None:
    password = password_file.readline().rstrip("\r\n")
    with cli.sessions().begin() as session:
        result = acceptance.accept(
            session, token, civility=civility, phone=phone, password=password
        )
    who = result.login or result.email
    echo(_("The account {who} is active.").format(who=who))


@invite.command(
    "inspect",
    context_settings=TOKEN_SETTINGS,
    help=N_("Say whether TOKEN is usable, without spending it (what opening the link does)."),
)
@click.argument("token")
@pass_cli
def invite_inspect(cli: CliContext, token: str) -> None:
    with cli.sessions()() as session:
        info = acceptance.inspect_token(session, token)
    if info.kind == "admin":
        sentence = _("Valid administrator invitation for {who} at {organisation}, until {until}.")
    else:
        sentence = _("Valid user invitation for {who} at {organisation}, until {until}.")
    echo(
        sentence.format(
            who=info.login or info.email,
            organisation=info.organisation_name,
            until=long_date_time(info.expires_at),
        )
    )


# --- users: lifecycle ------------------------------------------------------------------------


@users.command(
    "deactivate", help=N_("Deactivate LOGIN's account (it stays listed and can be reactivated).")
)
@click.argument("login")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@pass_cli
def users_deactivate(cli: CliContext, login: str, yes: bool) -> None:
    confirm_or_abort(_("Deactivate the account {login}?").format(login=login), yes)
    with cli.sessions().begin() as session:
        result = lifecycle.deactivate(session, cli.actor(session), login)
    if result.invitations_revoked:
        sentence = ngettext(
            "{login} is deactivated (was {previous}); {count} pending invitation revoked.",
            "{login} is deactivated (was {previous}); {count} pending invitations revoked.",
            result.invitations_revoked,
        )
    else:
        sentence = _("{login} is deactivated (was {previous}).")
    echo(
        sentence.format(
            login=result.login,
            previous=status_words(result.previous_status),
            count=result.invitations_revoked,
        )
    )


@users.command("reactivate", help=N_("Reactivate LOGIN's deactivated account."))
@click.argument("login")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@pass_cli
def users_reactivate(cli: CliContext, login: str, yes: bool) -> None:
    confirm_or_abort(_("Reactivate the account {login}?").format(login=login), yes)
    with cli.sessions().begin() as session:
        result = lifecycle.reactivate(session, cli.actor(session), login)
    echo(
        _("{login} is {status} again.").format(
            login=result.login, status=status_words(result.status)
        )
    )


@users.command(
    "supervise",
    help=N_(
        "Open a time-limited, audited supervision of LOGIN's Selfcare; prints the "
        "signed link.\n\n"
        "With --end, end your open supervisions of LOGIN; with --list, list the open "
        "ones."
    ),
)
@click.argument("login", required=False)
@click.option("--reason", help=N_("Why; the user sees it in the banner (to open one)."))
@click.option(
    "--minutes",
    type=click.IntRange(1, 240),
    help=N_("How long the link and the banner last (to open one; default 30)."),
)
@click.option("--end", is_flag=True, help=N_("End your open supervisions of LOGIN instead."))
@click.option(
    "--list", "list_open", is_flag=True, help=N_("List the open supervisions you may see.")
)
@click.option("--json", "as_json", is_flag=True, help=N_("With --list: print a JSON array."))
@pass_cli
def users_supervise(
    cli: CliContext,
    login: str | None,
    reason: str | None,
    minutes: int | None,
    end: bool,
    list_open: bool,
    as_json: bool,
) -> None:
    _check_supervise_options(login, reason, minutes, end, list_open, as_json)
    if list_open:
        _list_supervisions(cli, as_json)
        return
    assert login is not None
    if end:
        with cli.sessions().begin() as session:
            ended = end_supervisions_of(session, cli.actor(session), login)
        echo(
            ngettext(
                "Supervision of {login} ended.",
                "{count} supervisions of {login} ended.",
                len(ended),
            ).format(login=login, count=len(ended))
        )
        return
    with cli.sessions().begin() as session:
        result = supervision.supervise(
            session, cli.actor(session), login, reason=reason or "", minutes=minutes or 30
        )
    echo(
        contracted(
            _("Supervision of {login} until {until}:").format(
                login=result.login, until=long_date_time(result.expires_at)
            )
        )
    )
    echo(result.link)


def _check_supervise_options(
    login: str | None,
    reason: str | None,
    minutes: int | None,
    end: bool,
    list_open: bool,
    as_json: bool,
) -> None:
    """One sentence for each way the options of ``users supervise`` contradict each other."""
    if end and list_open:
        raise click.UsageError(_("Choose --end LOGIN or --list, not both."))
    if list_open and login:
        raise click.UsageError(_("--list takes no LOGIN: it lists every open supervision."))
    if as_json and not list_open:
        raise click.UsageError(_("--json goes with --list."))
    if (end or list_open) and (reason is not None or minutes is not None):
        raise click.UsageError(_("--reason and --minutes are for opening a supervision."))
    if not list_open and not login:
        raise click.UsageError(_("Name the LOGIN of the user (or use --list)."))
    if not (end or list_open) and reason is None:
        raise click.UsageError(_("Opening a supervision needs --reason, which the user sees."))


def _list_supervisions(cli: CliContext, as_json: bool) -> None:
    import pandas as pd  # only for the table

    with cli.read_sessions()() as session:
        found = open_supervisions(session, cli.actor(session))
    if as_json:
        echo_json([item.as_dict() for item in found])
        return
    frame = pd.DataFrame(
        [
            {
                "id": item.id,
                "login": item.login,
                "client_ref": item.client_ref,
                "by": item.actor,
                "until": f"{item.expires_at:%Y-%m-%d %H:%M} UTC",
                "reason": item.reason[:60],
            }
            for item in found
        ]
    )
    echo_table(frame)
    echo(
        ngettext("{count} open supervision", "{count} open supervisions", len(found)).format(
            count=len(found)
        )
    )


ON_OFF = click.Choice(["on", "off"])


@users.command(
    "create",
    help=N_(
        "Create a user of CLIENT_REF; invited at once when an email is known, unless "
        "--draft.\n\n"
        "Rights set here follow the rule of `rights set`."
    ),
)
@click.argument("client_ref")
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--email", metavar="EMAIL")
@click.option("--login", metavar="LOGIN", help=N_("Instead of the generated one (initial + name)."))
@click.option("--civility", type=click.Choice(CIVILITIES))
@click.option("--phone", help=N_("Any usual form; stored as +33..."))
@click.option("--mobile", help=N_("A mobile number (SMS notices go there)."))
@click.option("--function")
@click.option("--role", type=click.Choice(CLIENT_ROLES))
@click.option("--sub-account", metavar="NAME")
@click.option("--language", type=click.Choice(LANGUAGES))
@click.option(
    "--manage-rights", type=ON_OFF, help=N_("May change other users' rights (default off).")
)
@click.option("--place-orders", type=ON_OFF, help=N_("May place orders (default off)."))
@click.option("--view-invoices", type=ON_OFF, help=N_("May see the invoices (default off)."))
@click.option("--draft", is_flag=True, help=N_("Create without inviting; `invite user` later."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON object."))
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
            _(
                "Created {login} and queued the invitation to {email} "
                "(`selfcare-ops mail deliver` sends it)."
            ).format(login=created.login, email=created.invitation.email)
        )
    elif draft:
        echo(
            _("Created {login} as a draft: `invite user {login}` activates.").format(
                login=created.login
            )
        )
    else:
        echo(
            _("Created {login} without email: it cannot be invited yet.").format(
                login=created.login
            )
        )


@users.command("activate", help=N_("Activate a draft user: sends their invitation."))
@click.argument("login")
@click.option("--email", metavar="EMAIL", help=N_("Send to this address and store it on the user."))
@pass_cli
def users_activate(cli: CliContext, login: str, email: str | None) -> None:
    """Activate a draft user: sends their invitation (seed 003)."""
    with cli.sessions().begin() as session:
        result = service.activate(session, cli.actor(session), login, email=email)
        echo(_sent(result))
