"""The command starts at once: ``--help`` lists every command without importing one of them."""

from __future__ import annotations

import gettext
import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from selfcare_ops.cli import COMMAND_MODULES, COMMANDS, QUIET_LIBRARY_LOGGERS, main
from selfcare_ops.i18n import translations

#: What ``--help`` must not pay for: pandas, SQLAlchemy (and so the models), the services.
HEAVY = (
    "pandas",
    "numpy",
    "sqlalchemy",
    "alembic",
    "selfcare_ops.store.models",
    "selfcare_ops.store.db",
    "selfcare_ops.access",
    "selfcare_ops.directory",
    "selfcare_ops.invitations",
    "selfcare_ops.onboarding",
    "selfcare_ops.cli.common",
    *(f"selfcare_ops.cli.{name}" for name in COMMAND_MODULES),
)

#: Lighter modules ``--help`` does without, each a few milliseconds that ``python -c "import
#: click"`` does not pay (bench/cli.py): logging (set up when a command runs), the errors
#: (caught when a command runs), importlib.resources with zipfile and tempfile (the catalog is
#: read through the package's loader), shutil with the compression modules (the help measures
#: the terminal itself), locale (imported by the stdlib gettext's search of locale folders,
#: for our catalog or for click's words).
LIGHT = (
    "logging",
    "selfcare_ops.errors",
    "selfcare_ops.support.resources",
    "importlib.resources",
    "zipfile",
    "tempfile",
    "shutil",
    "locale",
)


def _imported_after(code: str, watched: tuple[str, ...] = HEAVY) -> tuple[list[str], str]:
    """Run ``code`` in a fresh interpreter; (the ``watched`` modules it imported, what it
    printed). Modules already there before ``code`` (the interpreter's, a coverage hook's) do
    not count."""
    probe = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {list(watched)!r} "
        "if m in sys.modules and m not in before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    *printed, last = result.stdout.rstrip("\n").split("\n")
    return json.loads(last), "\n".join(printed)


def test_importing_the_entry_point_imports_no_command_nor_pandas():
    heavy, _ = _imported_after("from selfcare_ops.cli import main")
    assert heavy == []


def test_help_in_a_fresh_process_lists_every_command_and_imports_none():
    heavy, printed = _imported_after(
        "from selfcare_ops.cli import main\n"
        "try:\n"
        "    main(['--help'], prog_name='selfcare-ops')\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert heavy == []
    assert "Usage: selfcare-ops" in printed
    for name in COMMANDS:
        assert f"\n  {name} " in printed, name


def test_the_translated_help_imports_none_of_the_lighter_modules():
    heavy, printed = _imported_after(
        "from selfcare_ops.cli import main\n"
        "try:\n"
        "    main(['--lang', 'fr', '--help'], prog_name='selfcare-ops')\n"
        "except SystemExit:\n"
        "    pass",
        watched=LIGHT,
    )
    assert "Utilisation\u00a0: selfcare-ops" in printed
    assert heavy == []


def test_a_catalog_is_its_one_file_read_without_searching_the_locale_folders(monkeypatch):
    searched: list[tuple] = []
    real_find = gettext.find
    monkeypatch.setattr(gettext, "find", lambda *a, **k: searched.append(a) or real_find(*a, **k))
    translations.cache_clear()
    try:
        french, english, unknown = translations("fr"), translations("en"), translations("de")
    finally:
        translations.cache_clear()
    assert searched == []
    assert french.gettext("Interrupted.") == "Interrompu."
    assert french.ngettext("{count} user", "{count} users", 0) == "{count} utilisateur"
    assert english.gettext("Interrupted.") == "Interrupted."
    assert unknown.gettext("Interrupted.") == "Interrupted."  # no catalog: the English as is


def test_help_lists_every_command_with_its_own_one_line_help():
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name, (short_help, _) in COMMANDS.items():
        command = main.get_command(click.Context(main), name)
        assert command is not None, name
        # The registry's line is the command's own (its docstring's first sentence).
        assert command.get_short_help_str(200) == short_help, name
        line = next(line for line in result.output.splitlines() if line.split()[:1] == [name])
        assert line.split(None, 1)[1] == short_help


def test_the_registry_names_every_command_the_modules_define():
    for module in COMMAND_MODULES:
        importlib.import_module(f"selfcare_ops.cli.{module}")
    assert sorted(main.commands) == sorted(COMMANDS)
    assert {module for _, modules in COMMANDS.values() for module in modules} <= set(
        COMMAND_MODULES
    )


def test_every_subcommand_another_module_adds_is_known_to_its_group():
    """A subcommand missing from ``spread`` would be found only after another command ran."""
    from selfcare_ops.cli.directory import clients, users

    for module in COMMAND_MODULES:
        importlib.import_module(f"selfcare_ops.cli.{module}")
    for group in (users, clients):
        for name, command in group.commands.items():
            defined_in = command.callback.__module__.rsplit(".", 1)[-1]
            if defined_in != "directory":
                assert group.spread.get(name) == defined_in, (group.name, name)


def test_a_group_completed_by_several_modules_has_all_its_subcommands():
    """``users`` is defined with ``clients`` but gets subcommands from three more modules."""
    result = CliRunner().invoke(main, ["users", "--help"])
    assert result.exit_code == 0
    for sub in ("list", "create", "deactivate", "role", "edit", "profile", "move"):
        assert f"\n  {sub} " in result.output, sub


def test_an_unknown_command_is_a_usage_error_naming_it():
    result = CliRunner().invoke(main, ["userz", "list"])
    assert result.exit_code == 2
    assert "No such command 'userz'" in result.output


def test_the_schema_check_knows_alembics_head_without_alembic():
    """``check_ready`` reads the newest revision from the scripts; Alembic agrees, reading the
    same folder (both derive from the one spelling in ``support.resources``)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from selfcare_ops.store.db import head_revision
    from selfcare_ops.support.resources import MIGRATION_SCRIPTS, MIGRATIONS, real_path

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    scripts = ScriptDirectory.from_config(config)
    assert head_revision() == scripts.get_current_head()
    assert Path(scripts.versions).resolve() == real_path(MIGRATION_SCRIPTS).resolve()


def test_listing_users_imports_neither_alembic_nor_the_invitation_services(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    heavy, printed = _imported_after(
        "import os\n"
        f"os.environ['SELFCARE_OPS_DATABASE_URL'] = {url!r}\n"
        "from selfcare_ops.store.db import make_engine, upgrade, make_session_factory\n"
        "from selfcare_ops.demo import load_demo\n"
        f"engine = make_engine({url!r}); upgrade(engine)\n"
        "with make_session_factory(engine).begin() as session:\n"
        "    load_demo(session)\n"
        "engine.dispose()\n"
        "for name in [m for m in sys.modules if m.startswith(('alembic', 'selfcare_ops'))]:\n"
        "    del sys.modules[name]\n"
        "from selfcare_ops.cli import main\n"
        "try:\n"
        "    main(['users', 'list', 'C0001', '--json'])\n"
        "except SystemExit as end:\n"
        "    assert not end.code, end.code"
    )
    assert '"login"' in printed
    assert "alembic" not in heavy
    assert "selfcare_ops.invitations" not in heavy
    assert "selfcare_ops.cli.rights" not in heavy


def test_a_command_quiets_the_library_loggers_once_unless_debugging(monkeypatch):
    """Set up when a command runs (``--help`` imports no logging), without piling up handlers
    over the invocations of one process."""
    loggers = [logging.getLogger(name) for name in QUIET_LIBRARY_LOGGERS]
    for logger in loggers:
        monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setenv("SELFCARE_OPS_DEBUG", "1")
    assert CliRunner().invoke(main, ["db", "--help"]).exit_code == 0
    assert [logger.handlers for logger in loggers] == [[], []]
    monkeypatch.delenv("SELFCARE_OPS_DEBUG")
    for _ in range(2):
        assert CliRunner().invoke(main, ["db", "--help"]).exit_code == 0
    for logger in loggers:
        assert [type(handler) for handler in logger.handlers] == [logging.NullHandler]
