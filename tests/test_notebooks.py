"""Every job notebook executed with papermill on the demo data, then checked with nbval.

One demo database (SQLite) per module: migrated, demo data and default branding loaded once
(about 5 s). The main job runs twice on it (the second run must change nothing); the other
notebooks run through the job runner, and nbval (``--nbval-lax``: only cells marked
``# NBVAL_CHECK_OUTPUT`` are compared, so timestamps and ids cannot make it flaky) executes
them once more with their default parameters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import func, select, update

from selfcare_ops.access import SYSTEM_ACTOR_EMAIL
from selfcare_ops.config import Settings
from selfcare_ops.demo import load_demo
from selfcare_ops.jobs import JOBS, run_main_job
from selfcare_ops.jobs.runner import run_job
from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.store.models import (
    AuditEvent,
    ImportRun,
    Invitation,
    JobRun,
    OutboundMessage,
    User,
    utcnow,
)

REPO = Path(__file__).resolve().parents[1]
JOB_NOTEBOOKS = sorted(str(job.notebook_path().relative_to(REPO)) for job in JOBS.values())

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from selfcare_ops.branding import seed_default_branding

    path = tmp_path_factory.mktemp("demo") / "selfcare.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        load_demo(session)
        seed_default_branding(session)
    engine.dispose()
    yield url


@pytest.fixture
def settings(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", demo_url)  # kernels inherit it
    return Settings.from_env()


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        counts = {
            "users": session.scalar(select(func.count()).select_from(User)),
            "messages": session.scalar(select(func.count()).select_from(OutboundMessage)),
            "invited": session.scalar(
                select(func.count()).select_from(User).where(User.status == "invited")
            ),
        }
    engine.dispose()
    return counts


@pytest.mark.parametrize("notebook", JOB_NOTEBOOKS)
def test_notebook_cells_only_call_the_package(notebook: str) -> None:
    """Imports from selfcare_ops (and IPython.display), calls, assignments, ``with`` sessions
    and display loops: no function, class, branch, loop with logic or exception handling."""
    import ast

    document = nbformat.read(REPO / notebook, as_version=4)
    assert sum(c.cell_type == "markdown" for c in document.cells) >= 1
    forbidden = (ast.FunctionDef, ast.ClassDef, ast.If, ast.While, ast.Try, ast.Lambda, ast.Global)
    for cell in document.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, forbidden), f"{notebook}: {ast.dump(node)[:80]}"
            if isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] in ("selfcare_ops", "IPython"), node.module
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "selfcare_ops" for a in node.names)
            if isinstance(node, ast.For):  # only to display what the package returned
                assert all(
                    isinstance(s, ast.Expr)
                    and isinstance(s.value, ast.Call)
                    and getattr(s.value.func, "id", "") in ("display", "print")
                    for s in node.body
                ), f"{notebook}: a loop does more than display"


def test_the_main_job_runs_end_to_end_and_a_second_run_changes_nothing(
    settings: Settings, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make demo runs from the repository root: relative paths as a user would have them
    monkeypatch.chdir(REPO)
    first = run_main_job(settings)
    assert set(first.runs) == {"onboarding", "invitation_maintenance", "adoption_report"}
    for run in first.runs.values():
        assert run.ok and run.output_path.exists()
        assert run.output_path.parent == settings.runs_dir / run.job
    assert first.onboarding_report is not None and first.onboarding_report.exists()
    delivered = first.maintenance["delivery"]["sent"]
    assert delivered > 0 and first.maintenance["delivery"]["failed"] == 0
    maildir = settings.maildir / "new"
    assert len(list(maildir.iterdir())) == delivered
    assert {p.name for p in first.charts} >= {"adoption_funnel.png", "adoption_activations.png"}
    assert any(p.name == "adoption_funnel_clients.csv" for p in first.report_csv)
    assert first.report_html is not None and first.report_html.read_text().startswith(
        "<!DOCTYPE html>"
    )
    assert first.demo_invited > 0  # the demo client's users, delivered by the maintenance
    assert first.preview is not None and first.preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.onboarding["create"] > 0 and first.onboarding["reject"] > 0
    text = "\n".join(first.lines())
    for where in (first.onboarding_report, settings.maildir, first.report_html, first.preview):
        assert str(where) in text
    assert "Onboarding: " in text
    before = _counts(demo_url)

    second = run_main_job(settings)
    assert all(run.ok for run in second.runs.values())
    assert second.maintenance["reminded"] == 0
    assert second.demo_invited == 0
    assert second.maintenance["delivery"]["sent"] == 0
    assert _counts(demo_url) == before
    assert len(list(maildir.iterdir())) == delivered
    with open(second.onboarding_report, encoding="utf-8-sig") as handle:
        outcomes = {line.split(";")[3] for line in list(handle)[1:]}
    assert outcomes <= {"unchanged", "rejected"}  # the report speaks the run's language (en)

    engine = make_engine(demo_url)
    with make_session_factory(engine)() as session:
        actors = set(
            session.scalars(
                select(AuditEvent.actor_label).where(
                    AuditEvent.action.like("invitation.%") | AuditEvent.action.like("import%")
                )
            )
        )
        runs = session.scalar(select(func.count()).select_from(JobRun))
        imports = session.scalar(select(func.count()).select_from(ImportRun))
    engine.dispose()
    assert actors == {SYSTEM_ACTOR_EMAIL}  # every change of the jobs is audited as theirs
    assert runs == 6 and imports >= 2


def test_the_branding_audit_writes_its_csv_and_previews(settings: Settings) -> None:
    result = run_job("branding_audit", {"worst": 3}, settings=settings)
    assert result.ok, result.describe()
    names = {p.name for p in result.files}
    assert "branding_audit.csv" in names
    assert len([n for n in names if n.startswith("preview_") and n.endswith(".png")]) <= 3
    executed = nbformat.read(result.output_path, as_version=4)
    assert any(
        o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", [])
    ) == any(n.startswith("preview_") for n in names)


def test_ping_and_a_dry_run_onboarding(settings: Settings, tmp_path: Path) -> None:
    assert run_job("ping", settings=settings).ok
    sample = tmp_path / "drop.csv"
    sample.write_bytes(
        "Civilité;Nom;Prénom;Adresse e-mail;Référence client\r\n"
        "Mme;Nouvelle;Zoé;zoe.nouvelle@example.com;C0002\r\n".encode("cp1252")
    )
    before = _counts(settings.database_url)
    result = run_job(
        "onboarding",
        {"csv_path": str(sample), "dry_run": "yes", "invite": "yes"},
        settings=settings,
    )
    assert result.ok, result.describe()
    assert _counts(settings.database_url) == before  # a dry run writes no user and no mail
    report = (result.output_dir / "onboarding_report.csv").read_text(encoding="utf-8-sig")
    assert "zoe.nouvelle@example.com" in report


def test_the_adoption_report_notebook_on_each_backend(
    db_url: str, tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    result = run_job("adoption_report", settings=Settings.from_env())
    assert result.ok, result.describe()
    clients = (result.output_dir / "adoption_funnel_clients.csv").read_text(encoding="utf-8-sig")
    assert "CA;Virginie Télécom;PA;Partenaire Alpha;3;0;2;1;6" in clients
    assert result.html_path is not None and "Funnel by partner" in result.html_path.read_text()


def test_onboarding_maintenance_and_branding_notebooks_on_each_backend(
    db_url: str, tree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    settings = Settings.from_env()
    drop = tmp_path / "drop.csv"
    drop.write_bytes(
        "Civilité;Nom;Prénom;Adresse e-mail\r\n"
        "Mme;Martin;Inès;ines.martin@virginie.example\r\n"
        "M.;Petit;Noé;noe.petit@virginie.example\r\n".encode("cp1252")
    )
    onboarding = run_job(
        "onboarding", {"csv_path": str(drop), "client": "CA", "invite": "oui"}, settings=settings
    )
    assert onboarding.ok, onboarding.describe()
    first = run_job("invitation_maintenance", settings=settings)
    assert first.ok, first.describe()
    summary = json.loads((first.output_dir / "maintenance.json").read_text())
    assert summary["delivery"]["sent"] == 2 and summary["outbox"]["queued"] == 0
    assert len(list((settings.maildir / "new").iterdir())) == 2
    second = run_job("invitation_maintenance", settings=settings)
    assert json.loads((second.output_dir / "maintenance.json").read_text())["delivery"]["sent"] == 0
    # A week on, nobody accepted: the job lists the expired links and what to do about each.
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(update(Invitation).values(expires_at=utcnow() - timedelta(hours=1)))
    engine.dispose()
    third = run_job("invitation_maintenance", {"remind_after_days": 30}, settings=settings)
    assert third.ok, third.describe()
    attention = (third.output_dir / "attention.csv").read_text(encoding="utf-8-sig")
    assert attention.count(";expired;") == 2 and "invite resend" in attention
    assert "imartin@" in attention and "npetit@" in attention
    audit = run_job("branding_audit", {"worst": 1}, settings=settings)
    assert audit.ok, audit.describe()
    assert (audit.output_dir / "branding_audit.csv").exists()


def test_nbval_executes_every_job_notebook(demo_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFCARE_OPS_")}
    env.update(
        SELFCARE_OPS_DATABASE_URL=demo_url,
        SELFCARE_OPS_DATA_DIR=str(tmp_path / "data"),
        SELFCARE_OPS_RUNS_DIR=str(tmp_path / "runs"),
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            *JOB_NOTEBOOKS,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (tmp_path / "nbval.log").write_text(completed.stdout + completed.stderr)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", completed.stdout)
    problems = [
        line for line in plain.splitlines() if line.startswith("FAILED") or "Error: " in line
    ]
    assert completed.returncode == 0, "\n".join(problems[:40]) or completed.stdout[-4000:]
    summary = completed.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "passed" in summary
    # nbval ran the default parameters: every notebook wrote to its default output folder
    written = {p.parent.parent.name for p in (tmp_path / "runs").glob("*/output/*")}
    assert {"adoption_report", "branding_audit", "onboarding", "invitation_maintenance"} <= written
    assert (
        json.loads(
            (
                tmp_path / "runs" / "invitation_maintenance" / "output" / "maintenance.json"
            ).read_text()
        )["outbox"]["failed"]
        == 0
    )
