"""The package carries its own files: an installed wheel runs its jobs and its demo without a
checkout (notebooks, demo data, mail templates and migrations are package data read through
importlib.resources, and no module computes a path from the source tree).

CI (``.ci/run``) also installs the built wheel with its dependencies in a fresh virtualenv and
runs ``selfcare-ops demo`` and ``selfcare-ops jobs run ping`` there; the last test here does the
same with this environment's dependencies, so a developer sees it in ``make test``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner

import selfcare_ops
from selfcare_ops import demo
from selfcare_ops.cli import main
from selfcare_ops.demo import generate as demo_generate
from selfcare_ops.jobs import JOBS
from selfcare_ops.mail.render import KINDS, environment
from selfcare_ops.store.models import LANGUAGES
from selfcare_ops.support import resources

PACKAGE = Path(selfcare_ops.__file__).parent
REPO = Path(__file__).resolve().parents[1]
DEMO_FILES = ("organisations.csv", "sub_accounts.csv", "users.csv", "administrators.csv")


def _package_data_globs() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["selfcare_ops"]


def _declared(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in _package_data_globs())


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_job_notebook_is_package_data(name: str) -> None:
    job = JOBS[name]
    packaged = files("selfcare_ops") / "notebooks" / job.notebook.name
    assert job.notebook == packaged and packaged.is_file()
    assert job.notebook_name == f"selfcare_ops/notebooks/{job.notebook.name}"
    assert _declared(f"notebooks/{job.notebook.name}"), "not in [tool.setuptools.package-data]"
    assert job.notebook_path().read_bytes() == packaged.read_bytes()


def test_demo_data_and_mail_templates_are_package_data() -> None:
    # One demo folder, the packaged one, for the loader and the generator alike.
    assert demo.DEMO_DIR is resources.DEMO_DIR is demo_generate.DEMO_DIR
    assert resources.DEMO_DIR == files("selfcare_ops") / "demo" / "data"
    for name in (*DEMO_FILES, "onboarding_sample.csv"):
        assert (resources.DEMO_DIR / name).is_file(), name
        assert _declared(f"demo/data/{name}"), name
    templates = set(environment().list_templates())
    for kind in KINDS:
        for language in LANGUAGES:
            for part in ("html", "txt"):
                name = f"{kind}.{language}.{part}"
                assert name in templates and _declared(f"mail/templates/{name}"), name


def _source_tree_paths(source: str) -> list[str]:
    """What a module does to find files from its own location: ``__file__``, ``.parents[...]``,
    or a constant named after the project folder."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in ("__file__", "PROJECT_DIR"):
            found.append(node.id)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
        ):
            found.append("parents[...]")
    return found


def test_no_module_computes_a_path_from_the_source_tree() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        found = _source_tree_paths(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert offenders == {}


def test_the_checker_sees_source_tree_paths() -> None:
    source = (
        "from pathlib import Path\n"
        "ROOT = Path(__file__).resolve().parents[2]\n"
        "parents = {}\nparents[1]\n"  # a dict called parents is not a path
    )
    assert _source_tree_paths(source) == ["parents[...]", "__file__"]


def test_jobs_path_prints_the_packaged_notebook_and_refuses_unknown_jobs() -> None:
    shown = CliRunner().invoke(main, ["jobs", "path", "onboarding"])
    assert shown.exit_code == 0, shown.output
    printed = Path(shown.output.strip())
    assert printed.is_file() and printed == files("selfcare_ops") / "notebooks/onboarding.ipynb"
    unknown = CliRunner().invoke(main, ["jobs", "path", "nightly"])
    assert unknown.exit_code == 1
    assert "No job is called 'nightly': the known jobs are" in unknown.output
    assert "Traceback" not in unknown.output


def test_the_generator_writes_what_the_loader_reads(tmp_path: Path, session_factory) -> None:
    pytest.importorskip("faker")
    folder = tmp_path / "demo"
    counts = demo_generate.generate(folder, clients=40, users=500, partners=2)
    assert sorted(p.name for p in folder.iterdir()) == sorted(DEMO_FILES)
    with session_factory.begin() as session:
        summary = demo.load_demo(session, folder)
    assert summary.users_added == counts["users"] == 500
    assert summary.organisations == counts["organisations"]


def _checkout_copy(destination: Path) -> Path:
    """The files a clean clone has (tracked and new, not ignored), as they are now."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the wheel is built from the checkout's files")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.mark.slow
def test_the_built_wheel_runs_the_demo_and_a_job_outside_the_checkout(tmp_path: Path) -> None:
    source = _checkout_copy(tmp_path / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("selfcare_ops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for job in JOBS.values():
        assert f"selfcare_ops/notebooks/{job.notebook.name}" in names
    assert {f"selfcare_ops/demo/data/{n}" for n in DEMO_FILES} <= names
    assert "selfcare_ops/mail/templates/invitation_user.fr.html" in names
    for language in ("fr", "en"):  # the compiled catalogs: without them everything is English
        assert f"selfcare_ops/locale/{language}/LC_MESSAGES/selfcare_ops.mo" in names
    assert any(n.startswith("selfcare_ops/store/migrations/versions/0001_") for n in names)

    # The wheel's package, this environment's dependencies, an empty folder to work in.
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFCARE_OPS_")}
    env.update(
        PYTHONPATH=str(site),
        SELFCARE_OPS_DATA_DIR=str(work / "data"),
        SELFCARE_OPS_RUNS_DIR=str(work / "runs"),
    )

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from selfcare_ops.cli import main; main()", *arguments]
        return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)

    loaded = cli("demo", "--no-jobs", "--quiet")
    assert loaded.returncode == 0, loaded.stderr
    ran = cli("jobs", "run", "ping", "--json")
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded"
    assert run["notebook"] == str(site / "selfcare_ops" / "notebooks" / "ping.ipynb")
    assert Path(run["output_path"]).is_relative_to(work / "runs")
    assert not any((work / name).exists() for name in ("notebooks", "demo_data"))
