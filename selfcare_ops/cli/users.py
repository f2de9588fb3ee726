"""``users edit``: an administrator changes any of a user's details at once (seed 002)."""

from __future__ import annotations

import click

from selfcare_ops.accounts import profile
from selfcare_ops.cli.common import CliContext, echo, echo_json, pass_cli
from selfcare_ops.cli.directory import users
from selfcare_ops.i18n import N_
from selfcare_ops.store.models import LANGUAGES

INHERIT = "inherit"


@users.command(
    "edit",
    help=N_(
        "Change LOGIN's email, names, login, civility, phones, function or language in "
        "one audited save. A new email voids the invitation links sent to the old one."
    ),
)
@click.argument("login")
@click.option(
    "--email", metavar="EMAIL", help=N_("New address; voids the links sent to the old one.")
)
@click.option("--first-name")
@click.option("--last-name")
@click.option("--login", "new_login", metavar="LOGIN", help=N_("New login (unique)."))
@click.option("--civility", metavar="M.|Mme", help=N_("Empty text clears it."))
@click.option("--phone", help=N_("Any usual form; stored as +33...; empty text clears it."))
@click.option("--mobile", help=N_("A mobile number (SMS notices go there); empty text clears it."))
@click.option("--function", help=N_("Empty text clears it."))
@click.option(
    "--language",
    type=click.Choice([*LANGUAGES, INHERIT]),
    help=N_("Language of their mails; inherit: their client's."),
)
@click.option(
    "--invite", is_flag=True, help=N_("Then send a new invitation (after an email change).")
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON object."))
@pass_cli
def users_edit(
    cli: CliContext,
    login: str,
    email: str | None,
    new_login: str | None,
    language: str | None,
    invite: bool,
    as_json: bool,
    **fields: str | None,
) -> None:
    with cli.sessions().begin() as session:
        result = profile.edit_user(
            session,
            cli.actor(session),
            login,
            email=email,
            new_login=new_login,
            language="" if language == INHERIT else language,
            invite=invite,
            **fields,
        )
    if as_json:
        echo_json(
            {
                "login": result.login,
                "previous_login": result.previous_login,
                "changed": {
                    name: {"before": before, "after": after}
                    for name, (before, after) in result.changed.items()
                },
                "invitations_voided": result.email.invitations_voided if result.email else 0,
                "uninvited": bool(result.email and result.email.uninvited),
                "invited": result.invitation is not None,
            }
        )
        return
    echo(result.describe())
