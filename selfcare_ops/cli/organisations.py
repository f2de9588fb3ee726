"""``orgs create|rename|set-language``: partners and clients of the tree, from a terminal."""

from __future__ import annotations

import click

from selfcare_ops import organisations as service
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, pass_cli
from selfcare_ops.i18n import N_, _
from selfcare_ops.store.models import LANGUAGES

INHERIT = "inherit"


@main.group("orgs", help=N_("Create partners and clients, rename them, set their mail language."))
def orgs() -> None:
    """Create partners and clients, rename them, set their mail language."""


@orgs.command(
    "create", help=N_("Create a partner or a client REF under --parent (within your scope).")
)
@click.argument("kind", type=click.Choice(["partner", "client"]))
@click.argument("ref")
@click.option("--name", required=True, help=N_("The name people read."))
@click.option(
    "--parent", "parent_ref", required=True, metavar="REF", help=N_("Operator or partner.")
)
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    help=N_("Mail language of it and everything below (default: inherited from the parent)."),
)
@click.option(
    "--login-domain",
    metavar="DOMAIN",
    help=N_("Domain of generated logins, e.g. virginietelecom.sewan.eu."),
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON object."))
@pass_cli
def orgs_create(
    cli: CliContext,
    kind: str,
    ref: str,
    name: str,
    parent_ref: str,
    language: str | None,
    login_domain: str | None,
    as_json: bool,
) -> None:
    with cli.sessions().begin() as session:
        org = service.create_organisation(
            session,
            cli.actor(session),
            kind=kind,
            parent_ref=parent_ref,
            ref=ref,
            name=name,
            login_domain=login_domain,
            language=language,
        )
        spoken, source = service.effective_language(session, org)
        created = {
            "kind": org.kind,
            "ref": org.ref,
            "name": org.name,
            "parent": parent_ref,
            "language": org.language,
            "effective_language": spoken,
            "login_domain": org.login_domain,
        }
    if as_json:
        echo_json(created)
        return
    if kind == "partner":
        sentence = _("Created the partner {ref} ({name}) under {parent}; {language}")
    else:
        sentence = _("Created the client {ref} ({name}) under {parent}; {language}")
    echo(
        sentence.format(
            ref=created["ref"],
            name=created["name"],
            parent=parent_ref,
            language=_language_sentence(spoken, source, created["ref"]),
        )
    )


@orgs.command("rename", help=N_("Give the partner or client REF a new NAME (its reference stays)."))
@click.argument("ref")
@click.argument("name")
@pass_cli
def orgs_rename(cli: CliContext, ref: str, name: str) -> None:
    with cli.sessions().begin() as session:
        change = service.rename_organisation(session, cli.actor(session), ref, name)
    if not change.changed:
        same = {
            "operator": _("The operator {ref} is already named {name}: nothing changed."),
            "partner": _("The partner {ref} is already named {name}: nothing changed."),
            "client": _("The client {ref} is already named {name}: nothing changed."),
        }
        echo(same[change.kind].format(ref=change.ref, name=change.after))
        return
    renamed = {
        "operator": _("The operator {ref} is now named {name} (was {previous})."),
        "partner": _("The partner {ref} is now named {name} (was {previous})."),
        "client": _("The client {ref} is now named {name} (was {previous})."),
    }
    echo(renamed[change.kind].format(ref=change.ref, name=change.after, previous=change.before))


@orgs.command(
    "set-language",
    help=N_(
        "Set the mail language of REF and everything below it that has none of its own "
        "(users -> client -> partners -> operator); ``inherit`` takes the parent's "
        "again."
    ),
)
@click.argument("ref")
@click.argument("language", type=click.Choice([*LANGUAGES, INHERIT]))
@pass_cli
def orgs_set_language(cli: CliContext, ref: str, language: str) -> None:
    wanted = None if language == INHERIT else language
    with cli.sessions().begin() as session:
        change = service.set_language(session, cli.actor(session), ref, wanted)
        spoken, source = service.effective_language(
            session, service.get_organisation(session, change.ref)
        )
    sentence = _language_sentence(spoken, source, change.ref)
    echo(sentence if change.changed else _("Nothing changed: {sentence}").format(sentence=sentence))


def _language_sentence(spoken: str, source: str | None, ref: str) -> str:
    """Where the mails of ``ref`` take their language from (a language, not the analyst's)."""
    language = {"fr": _("French"), "en": _("English")}.get(spoken, spoken)
    if source == ref:
        return _("mails of {ref} are in {language}.").format(ref=ref, language=language)
    if source is None:
        return _("mails of {ref} are in {language} (no level sets a language).").format(
            ref=ref, language=language
        )
    return _("mails of {ref} are in {language}, inherited from {source}.").format(
        ref=ref, language=language, source=source
    )
