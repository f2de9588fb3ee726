"""``rights``, ``subaccounts``, ``apikeys``, the ``users role|move|profile|notifications|remove``
and ``clients details`` commands: per-user rights, roles, sub-accounts, profiles, API keys."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from selfcare_ops.accounts import apikeys, lifecycle, profile, subaccounts
from selfcare_ops.accounts import rights as rights_service
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
from selfcare_ops.cli.directory import clients, users
from selfcare_ops.directory import role_words, status_words
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.store.models import CLIENT_ROLES, RESTRICTION_KINDS

ON_OFF = click.Choice(["on", "off"])


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


# --- rights ----------------------------------------------------------------------------------


@main.group(
    help=N_("Per-user rights (manage rights, place orders, view invoices) and restrictions.")
)
def rights() -> None:
    """Per-user rights (manage rights, place orders, view invoices) and restrictions."""


@rights.command(
    "set",
    help=N_("Switch rights of LOGIN on or off; saved at once, audited, the user is not notified."),
)
@click.argument("login")
@click.option("--manage-rights", type=ON_OFF, help=N_("May change other users' rights."))
@click.option("--place-orders", type=ON_OFF, help=N_("May place orders."))
@click.option("--view-invoices", type=ON_OFF, help=N_("May see the invoices."))
@click.option(
    "--json", "as_json", is_flag=True, help=N_("Print the rights after the change as JSON.")
)
@pass_cli
def rights_set(
    cli: CliContext,
    login: str,
    manage_rights: str | None,
    place_orders: str | None,
    view_invoices: str | None,
    as_json: bool,
) -> None:
    with cli.sessions().begin() as session:
        result = rights_service.set_rights(
            session,
            cli.actor(session),
            login,
            manage_rights=_switch(manage_rights),
            place_orders=_switch(place_orders),
            view_invoices=_switch(view_invoices),
        )
    if as_json:
        echo_json({"login": result.login, "rights": result.rights, "changed": list(result.changed)})
        return
    echo(result.describe())


@rights.command("show", help=N_("Role, sub-account, rights and restrictions of LOGIN."))
@click.argument("login")
@click.option("--json", "as_json", is_flag=True, help=N_("Print one JSON object."))
@pass_cli
def rights_show(cli: CliContext, login: str, as_json: bool) -> None:
    with cli.sessions()() as session:
        access = rights_service.describe_access(session, cli.actor(session), login)
    if as_json:
        echo_json(access)
        return
    echo(f"{access['login']} ({access['client']}, {status_words(access['status'])})")
    echo(_("role: {role}").format(role=role_words(access["role"])))
    echo(_("sub-account: {name}").format(name=access["sub_account"] or _("(none)")))
    for name, value in access["rights"].items():
        echo(
            _("{right}: {value}").format(
                right=rights_service.right_words(name), value=rights_service.on_off_words(value)
            )
        )
    restricted = {
        "contract": _("contracts: {values}"),
        "billing_account": _("billing accounts: {values}"),
        "application": _("applications: {values}"),
    }
    for kind in RESTRICTION_KINDS:
        values = access["restrictions"].get(kind)
        shown = ", ".join(values) if values else _("all (no restriction)")
        echo(restricted[kind].format(values=shown))


@rights.command(
    "restrict",
    help=N_(
        "Restrict LOGIN to some contracts, billing accounts or applications.\n\n"
        "No restriction of a kind means all of that kind."
    ),
)
@click.argument("login")
@click.option("--contract", "contracts", multiple=True, metavar="REF", help=N_("Repeatable."))
@click.option("--billing-account", "billing_accounts", multiple=True, metavar="REF")
@click.option("--application", "applications", multiple=True, metavar="NAME")
@click.option("--remove", is_flag=True, help=N_("Remove the values given instead of adding them."))
@click.option(
    "--replace", is_flag=True, help=N_("Replace each kind given by exactly the values given.")
)
@click.option(
    "--clear",
    "cleared",
    multiple=True,
    type=click.Choice(RESTRICTION_KINDS),
    help=N_("Lift every restriction of this kind (repeatable)."),
)
@pass_cli
def rights_restrict(
    cli: CliContext,
    login: str,
    contracts: tuple[str, ...],
    billing_accounts: tuple[str, ...],
    applications: tuple[str, ...],
    remove: bool,
    replace: bool,
    cleared: tuple[str, ...],
) -> None:
    """Restrict LOGIN to some contracts, billing accounts or applications (seed 001).

    No restriction of a kind means all of that kind.
    """
    if remove and replace:
        raise UsageError(_("Choose --remove or --replace, not both."))
    values = {
        "contract": list(contracts),
        "billing_account": list(billing_accounts),
        "application": list(applications),
    }
    values = {kind: items for kind, items in values.items() if items}
    changes: dict[str, Any] = {"replace": {kind: [] for kind in cleared}}
    if replace:
        changes["replace"].update(values)
    elif remove:
        changes["remove"] = values
    else:
        changes["add"] = values
    with cli.sessions().begin() as session:
        result = rights_service.change_restrictions(session, cli.actor(session), login, **changes)
    echo(result.describe())


# --- users: role, move, profile, notifications -----------------------------------------------


@users.command("role", help=N_("Make LOGIN administrator, manager or user of their client."))
@click.argument("login")
@click.argument("role", type=click.Choice(CLIENT_ROLES))
@click.option("--sub-account", metavar="NAME", help=N_("For a manager or user: their sub-account."))
@pass_cli
def users_role(cli: CliContext, login: str, role: str, sub_account: str | None) -> None:
    """Make LOGIN administrator, manager or user of their client (seed 002)."""
    with cli.sessions().begin() as session:
        result = rights_service.change_role(
            session, cli.actor(session), login, role, sub_account=sub_account
        )
    echo(result.describe())


@users.command(
    "move", help=N_("Place LOGIN in SUB_ACCOUNT of their client (or in none with --none).")
)
@click.argument("login")
@click.argument("sub_account", required=False)
@click.option("--none", "to_none", is_flag=True, help=N_("Take LOGIN out of every sub-account."))
@pass_cli
def users_move(cli: CliContext, login: str, sub_account: str | None, to_none: bool) -> None:
    if bool(sub_account) == to_none:
        raise UsageError(_("Give a SUB_ACCOUNT, or --none, but not both."))
    with cli.sessions().begin() as session:
        result = subaccounts.move_user(session, cli.actor(session), login, sub_account)
    echo(result.describe())


@users.command(
    "profile", help=N_("Show LOGIN's profile, or save the fields given (one audited save).")
)
@click.argument("login")
@click.option("--civility", metavar="M.|Mme", help=N_("Empty text clears it."))
@click.option("--first-name")
@click.option("--last-name")
@click.option("--function")
@click.option("--language", metavar="fr|en")
@click.option("--phone", help=N_("Any usual form; stored as +33...; empty text clears it."))
@click.option("--mobile", help=N_("A mobile number (SMS notices go there); empty text clears it."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print the profile as JSON."))
@pass_cli
def users_profile(cli: CliContext, login: str, as_json: bool, **fields: str | None) -> None:
    changes = {name: value for name, value in fields.items() if value is not None}
    if not changes:
        with cli.sessions()() as session:
            shown = profile.get_profile(session, cli.actor(session), login)
        _print_mapping(shown, as_json)
        return
    with cli.sessions().begin() as session:
        result = profile.update_profile(session, cli.actor(session), login, **changes)
    echo(result.describe())


@users.command(
    "notifications",
    help=N_("Show which notices LOGIN receives on which channel, or change them with --set."),
)
@click.argument("login")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NOTICE=CHANNELS",
    # The notices named as profile.NOTICES has them (tests/test_i18n_help.py checks).
    help=N_(
        "e.g. order_status=email,sms or new_user= (off); notices: invoice_available, "
        "order_status, new_user, security_alert."
    ),
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print the preferences as JSON."))
@pass_cli
def users_notifications(
    cli: CliContext, login: str, assignments: tuple[str, ...], as_json: bool
) -> None:
    if not assignments:
        with cli.sessions()() as session:
            prefs = profile.get_notification_prefs(session, cli.actor(session), login)
        if as_json:
            echo_json(prefs)
            return
        for notice, channels in prefs.items():
            shown = ", ".join(channels) if channels else rights_service.on_off_words(False)
            echo(f"{notice}: {shown}")
        return
    wanted = dict(profile.parse_notification_assignment(text) for text in assignments)
    with cli.sessions().begin() as session:
        result = profile.set_notification_prefs(session, cli.actor(session), login, wanted)
    echo(result.describe())


@users.command(
    "remove",
    help=N_(
        "Remove LOGIN's account: after confirmation it is deactivated, "
        "stays listed (struck through) and can be reactivated (same as ``users "
        "deactivate``)."
    ),
)
@click.argument("login")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@pass_cli
def users_remove(cli: CliContext, login: str, yes: bool) -> None:
    """Remove LOGIN's account as seed 004 does: after confirmation it is deactivated, stays
    listed (struck through) and can be reactivated (same as ``users deactivate``)."""
    confirm_or_abort(
        _(
            "Remove the account {login}? It stays listed, struck through, and can be reactivated."
        ).format(login=login),
        yes,
    )
    with cli.sessions().begin() as session:
        result = lifecycle.deactivate(session, cli.actor(session), login, cancel_reason="removed")
    echo(
        _(
            "{login} is removed: the account is deactivated (was {previous}), stays listed "
            "struck through, and `users reactivate` brings it back."
        ).format(login=result.login, previous=status_words(result.previous_status))
    )


# --- clients: company details ----------------------------------------------------------------


@clients.command(
    "details",
    help=N_("Show the company details of CLIENT_REF, or save the fields given (one audited save)."),
)
@click.argument("client_ref")
@click.option("--name")
@click.option("--address", help=N_("Empty text clears it."))
@click.option("--postcode")
@click.option("--city")
@click.option("--json", "as_json", is_flag=True, help=N_("Print the details as JSON."))
@pass_cli
def clients_details(cli: CliContext, client_ref: str, as_json: bool, **fields: str | None) -> None:
    changes = {name: value for name, value in fields.items() if value is not None}
    if not changes:
        with cli.sessions()() as session:
            shown = profile.get_company(session, cli.actor(session), client_ref)
        _print_mapping(shown, as_json)
        return
    with cli.sessions().begin() as session:
        result = profile.update_company(session, cli.actor(session), client_ref, **changes)
    echo(result.describe())


def _print_mapping(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            off = rights_service.on_off_words(False)
            value = "; ".join(f"{k}: {', '.join(v) or off}" for k, v in value.items())
        echo(f"{key}: {'' if value is None else value}")


# --- sub-accounts ----------------------------------------------------------------------------


@main.group(
    "subaccounts", help=N_("Sub-accounts of a client: list, create, rename (administrators only).")
)
def subaccounts_group() -> None:
    """Sub-accounts of a client: list, create, rename (administrators only)."""


@subaccounts_group.command(
    "list", help=N_("The sub-accounts of CLIENT_REF with their users counted.")
)
@click.argument("client_ref")
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def subaccounts_list(cli: CliContext, client_ref: str, as_json: bool) -> None:
    with cli.sessions()() as session:
        frame = subaccounts.list_sub_accounts(session, cli.actor(session), client_ref)
    if as_json:
        echo_json(frame)
        return
    echo_table(frame, ["name", "users", "active", "managers"])
    if "without_sub_account" in frame.attrs:
        count = frame.attrs["without_sub_account"]
        echo(
            ngettext(
                "{count} user in no sub-account", "{count} users in no sub-account", count
            ).format(count=count)
        )


@subaccounts_group.command("create", help=N_("Add the sub-account NAME to CLIENT_REF."))
@click.argument("client_ref")
@click.argument("name")
@pass_cli
def subaccounts_create(cli: CliContext, client_ref: str, name: str) -> None:
    with cli.sessions().begin() as session:
        result = subaccounts.create_sub_account(session, cli.actor(session), client_ref, name)
    echo(result.describe())


@subaccounts_group.command(
    "rename", help=N_("Rename the sub-account OLD_NAME of CLIENT_REF to NEW_NAME.")
)
@click.argument("client_ref")
@click.argument("old_name")
@click.argument("new_name")
@pass_cli
def subaccounts_rename(cli: CliContext, client_ref: str, old_name: str, new_name: str) -> None:
    with cli.sessions().begin() as session:
        result = subaccounts.rename_sub_account(
            session, cli.actor(session), client_ref, old_name, new_name
        )
    echo(result.describe())


# --- API keys --------------------------------------------------------------------------------


@main.group(
    "apikeys",
    help=N_("A client's API key: create, regenerate, revoke, list (administrators only)."),
)
def apikeys_group() -> None:
    """A client's API key: create, regenerate, revoke, list (administrators only)."""


def _echo_new_key(result: apikeys.ApiKeyResult, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "client": result.client_ref,
                "id": result.id,
                "prefix": result.prefix,
                "key": result.key,
                "replaced_prefix": result.replaced_prefix,
            }
        )
        return
    echo(result.describe(), err=True)
    echo(result.key)


@apikeys_group.command(
    "create", help=N_("Make the API key of CLIENT_REF and print it (the only time it can be read).")
)
@click.argument("client_ref")
@click.option("--json", "as_json", is_flag=True, help=N_("Print the key and its prefix as JSON."))
@pass_cli
def apikeys_create(cli: CliContext, client_ref: str, as_json: bool) -> None:
    with cli.sessions().begin() as session:
        result = apikeys.create_api_key(session, cli.actor(session), client_ref)
    _echo_new_key(result, as_json)


@apikeys_group.command(
    "regenerate", help=N_("Revoke the API key of CLIENT_REF and print a new one.")
)
@click.argument("client_ref")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print the key and its prefix as JSON."))
@pass_cli
def apikeys_regenerate(cli: CliContext, client_ref: str, yes: bool, as_json: bool) -> None:
    confirm_or_abort(
        _("Regenerate the API key of {ref}? Integrations using the old key stop at once.").format(
            ref=client_ref
        ),
        yes,
    )
    with cli.sessions().begin() as session:
        result = apikeys.regenerate_api_key(session, cli.actor(session), client_ref)
    _echo_new_key(result, as_json)


@apikeys_group.command("revoke", help=N_("Revoke the API key of CLIENT_REF."))
@click.argument("client_ref")
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@pass_cli
def apikeys_revoke(cli: CliContext, client_ref: str, yes: bool) -> None:
    confirm_or_abort(
        _("Revoke the API key of {ref}? Integrations using it stop at once.").format(
            ref=client_ref
        ),
        yes,
    )
    with cli.sessions().begin() as session:
        result = apikeys.revoke_api_key(session, cli.actor(session), client_ref)
    echo(result.describe())


@apikeys_group.command(
    "list",
    help=N_("The API keys of CLIENT_REF by prefix, newest first (never the keys themselves)."),
)
@click.argument("client_ref")
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def apikeys_list(cli: CliContext, client_ref: str, as_json: bool) -> None:
    with cli.sessions()() as session:
        frame = apikeys.list_api_keys(session, cli.actor(session), client_ref)
    if as_json:
        echo_json(frame)
        return

    def minute(value: Any) -> str:
        return "" if pd.isna(value) else f"{value:%Y-%m-%d %H:%M}"

    shown = frame.assign(
        created_at=frame["created_at"].map(minute), revoked_at=frame["revoked_at"].map(minute)
    )
    echo_table(shown, ["prefix", "status", "created_at", "created_by", "revoked_at"])
