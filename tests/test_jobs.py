"""Job registry, parameter validation, runs recorded (success and failure), history, locks."""

from __future__ import annotations

import ast
import json
import os
import socket
import threading
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from sqlalchemy import func, select, text

from selfcare_ops.access import system_actor
from selfcare_ops.cli import main
from selfcare_ops.config import Settings
from selfcare_ops.errors import ConcurrentRunError, JobError, ValidationError
from selfcare_ops.jobs import JOBS, Job, get_job, job_history, locks, resolve_parameters
from selfcare_ops.jobs.registry import coerce, notebook_parameters
from selfcare_ops.jobs.runner import run_job
from selfcare_ops.store.models import JobLock, JobRun, utcnow

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str, parameters: str) -> Path:
    cells = [new_markdown_cell("# A test job"), new_code_cell(parameters)]
    cells[1].metadata["tags"] = ["parameters"]
    cells += [new_code_cell(source) for source in sources]
    nbformat.write(
        new_notebook(
            cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
        ),
        path,
    )
    return path


@pytest.fixture
def explode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    """A registered job whose notebook divides by its ``divisor`` parameter (default 0)."""
    notebook = _notebook(
        tmp_path / "explode.ipynb",
        "x = 1",
        "y = x / divisor",
        "print('never reached' if divisor == 0 else 'done')",
        parameters='database_url = ""\noutput_dir = ""\ndivisor = 0\nlabel = "run"\nloud = False',
    )
    job = Job("explode", notebook, "Fails on purpose.")
    monkeypatch.setitem(JOBS, "explode", job)
    return job


@pytest.fixture
def operator(session_factory) -> None:
    """The operator and its system actor: who a job runs as when nobody is named."""
    from selfcare_ops.organisations import create_operator

    with session_factory.begin() as session:
        create_operator(session, "OP", "Opérateur Télécom")


def _settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)  # the kernel inherits it
    return Settings.from_env()


# --- registry and parameters ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_registered_job_has_a_documented_parameterised_notebook(name: str) -> None:
    job = get_job(name)
    document = nbformat.read(job.notebook, as_version=4)
    assert document.cells[0].cell_type == "markdown" and len(document.cells[0].source) > 80
    tagged = [c for c in document.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    parameters = job.parameters()
    assert {"database_url", "output_dir"} <= set(parameters)
    assert parameters["database_url"] == "" and parameters["output_dir"] == ""
    assert set(job.defaults) <= set(notebook_parameters(job.notebook))
    # Every notebook acts as whoever runs it: the runner sets ``actor``, never the caller.
    assert notebook_parameters(job.notebook)["actor"] is None
    assert "actor" not in parameters


def test_unknown_job_names_the_known_ones() -> None:
    with pytest.raises(JobError, match="known jobs are .*adoption_report.*ping"):
        get_job("nope")


def test_unknown_parameter_is_refused_with_the_known_ones(explode: Job) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_parameters(explode, {"divisr": 2})
    message = str(caught.value)
    assert "'divisr'" in message
    assert "database_url, output_dir, divisor, label, loud" in message


def test_parameters_are_coerced_to_the_type_of_their_default(explode: Job) -> None:
    resolved = resolve_parameters(explode, {"divisor": "3", "loud": "oui", "label": 7})
    assert resolved == {
        "database_url": "",
        "output_dir": "",
        "divisor": 3,
        "label": "7",
        "loud": True,
    }
    with pytest.raises(ValidationError, match="divisor must be a whole number .* not 'x'"):
        resolve_parameters(explode, {"divisor": "x"})
    with pytest.raises(ValidationError, match="loud must be true or false"):
        resolve_parameters(explode, {"loud": "maybe"})


def test_registry_defaults_override_the_notebook_and_must_exist(explode: Job) -> None:
    assert Job("j", explode.notebook, "", defaults={"divisor": 5}).parameters()["divisor"] == 5
    with pytest.raises(JobError, match="does not declare in its parameters cell"):
        Job("j", explode.notebook, "", defaults={"ghost": 1}).parameters()


def test_a_notebook_without_parameters_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    with pytest.raises(JobError, match="no code cell tagged 'parameters'"):
        notebook_parameters(path)


def test_a_declared_type_wins_over_the_default_and_help_is_read(tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path / "typed.ipynb",
        parameters=(
            'database_url = ""\n'
            "ratio: float = 1  # how much\n"
            "count = 3  # type: int\n"
            'client = "C0001"  # client reference, digits kept as text\n'
            "actor = None\n"
        ),
    )
    job = Job("typed", notebook, "Typed parameters.")
    signature = job.signature()
    assert list(signature) == ["database_url", "ratio", "count", "client"]
    assert signature["ratio"].kind is float and signature["ratio"].help == "how much"
    resolved = resolve_parameters(job, {"ratio": "2,5", "count": "7", "client": "0042"})
    assert resolved["ratio"] == 2.5 and resolved["count"] == 7
    assert resolved["client"] == "0042"  # papermill's own -p would have made it the number 42
    with pytest.raises(ValidationError, match="ratio must be a number .*default is 1"):
        resolve_parameters(job, {"ratio": "lots"})
    with pytest.raises(ValidationError, match="actor of a run is whoever starts it"):
        resolve_parameters(job, {"actor": "boss@x.example"})


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("when = compute()", "when of .* must have a literal default value"),
        ("when: datetime = None", "declares the type datetime; a job parameter is one of bool"),
    ],
)
def test_a_parameters_cell_the_runner_cannot_honour_is_refused(
    tmp_path: Path, cell: str, message: str
) -> None:
    notebook = _notebook(tmp_path / "odd.ipynb", parameters=f'database_url = ""\n{cell}\n')
    with pytest.raises(JobError, match=message):
        Job("odd", notebook, "").parameters()


def test_a_file_that_is_not_a_notebook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(JobError, match="is not a readable notebook"):
        notebook_parameters(path)
    with pytest.raises(JobError, match="cannot be read"):
        notebook_parameters(tmp_path / "absent.ipynb")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_survive_the_command_line(number: int) -> None:
    assert coerce("n", str(number), 0) == number
    assert coerce("x", str(number), 0.5) == float(number)


@given(st.sampled_from(["1", "true", "YES", "on", "oui", "0", "false", "No", "off", "non"]))
def test_boolean_words(word: str) -> None:
    assert coerce("flag", word, False) is (word.lower() in {"1", "true", "yes", "on", "oui"})


@given(st.text())
def test_coercion_never_fails_other_than_with_a_validation_error(raw: str) -> None:
    for default in (0, 0.0, False, "", [], None):
        try:
            coerce("p", raw, default)
        except ValidationError as error:
            assert "The parameter p must be" in str(error)


def test_cli_refuses_an_unknown_parameter_before_running(db_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["jobs", "run", "ping", "-p", "colour", "red"],
        env={"SELFCARE_OPS_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "has no parameter 'colour': its parameters are database_url, output_dir" in (
        result.output
    )


def test_jobs_list_shows_every_job_with_its_parameters() -> None:
    result = CliRunner().invoke(main, ["jobs", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.output)}
    assert set(listed) == set(JOBS)
    assert listed["ping"]["notebook"] == "selfcare_ops/notebooks/ping.ipynb"
    assert listed["ping"]["parameters"] == {"database_url": "", "output_dir": ""}


# --- runs ------------------------------------------------------------------------------------


def test_a_failing_notebook_is_recorded_with_its_cell_and_exits_non_zero(
    db_url: str, explode: Job, session_factory, tmp_path: Path, operator
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["jobs", "run", "explode", "-p", "label", "nightly"],
        env={"SELFCARE_OPS_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "failed at cell 4" in result.output
    assert "ZeroDivisionError: division by zero" in result.output

    with session_factory() as session:
        run = session.scalars(select(JobRun)).one()
        assert session.scalars(select(JobLock)).all() == []  # released
    assert run.status == "failed"
    assert run.failed_cell == 4  # markdown, parameters, injected parameters, x = 1, y = x / 0
    assert run.error == "ZeroDivisionError: division by zero"
    assert run.parameters["label"] == "nightly" and run.parameters["divisor"] == 0
    assert run.finished_at is not None and run.finished_at >= run.started_at
    kept = Path(run.output_path)
    assert kept.exists() and kept.parent == tmp_path / "runs" / "explode"
    executed = nbformat.read(kept, as_version=4)
    failing = [
        c for c in executed.cells if c.get("metadata", {}).get("papermill", {}).get("exception")
    ]
    assert len(failing) == 1 and failing[0].source == "y = x / divisor"
    assert failing[0].outputs[0].ename == "ZeroDivisionError"

    history = runner.invoke(
        main, ["jobs", "history", "--json"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
    )
    assert history.exit_code == 0, history.output
    (row,) = json.loads(history.output)
    assert row["job"] == "explode" and row["status"] == "failed"
    assert row["failed_cell"] == 4 and row["error"] == "ZeroDivisionError: division by zero"
    assert row["parameters"]["label"] == "nightly"
    assert row["output_path"] == str(kept) and row["duration_s"] > 0
    plain = runner.invoke(main, ["jobs", "history"], env={"SELFCARE_OPS_DATABASE_URL": db_url})
    assert plain.exit_code == 0
    assert "explode" in plain.output and "failed" in plain.output
    assert "ZeroDivisionError" in plain.output and "label=nightly" in plain.output


def test_ping_runs_in_this_environment_and_is_recorded(
    db_url: str, session_factory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, operator
) -> None:
    import selfcare_ops

    result = run_job("ping", {}, settings=_settings(db_url, monkeypatch))
    assert result.ok, result.describe()
    shown = CliRunner().invoke(main, ["jobs", "run", "ping", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["status"] == "succeeded"
    assert result.output_path.parent == tmp_path / "runs" / "ping"
    assert result.output_dir == result.output_path.with_suffix("")
    executed = nbformat.read(result.output_path, as_version=4)
    # The run names the notebook it ran, the packaged one, in its result, its JSON and in the
    # executed notebook that job_runs.output_path points to.
    packaged = Path(str(files("selfcare_ops") / "notebooks" / "ping.ipynb"))
    assert result.notebook == packaged
    assert json.loads(shown.output)["notebook"] == str(packaged)
    assert executed.metadata["papermill"]["input_path"] == str(packaged)
    shown = ast.literal_eval(executed.cells[-1].outputs[0]["data"]["text/plain"])
    import sys

    assert Path(shown["python"]).resolve() == Path(sys.executable).resolve()
    assert Path(shown["selfcare_ops"]) == Path(selfcare_ops.__file__).resolve().parent
    assert shown["schema_revision"]
    with session_factory() as session:
        history = job_history(session, system_actor(session))
    assert list(history["status"]) == ["succeeded", "succeeded"]
    assert history["failed_cell"].isna().all()
    assert history.loc[1, "output_path"] == str(result.output_path)


def test_run_job_records_no_database_password(
    explode: Job, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selfcare_ops.jobs.runner import _recordable

    shown = _recordable({"database_url": "postgresql://u:secret@h/db", "x": 1})
    assert "secret" not in shown["database_url"] and shown["x"] == 1


# --- one run at a time -----------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_refuses_a_second_run_while_the_advisory_lock_is_held(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("postgres_schema_url")
    from selfcare_ops.organisations import create_operator
    from selfcare_ops.store.db import make_engine, make_session_factory
    from selfcare_ops.store.models import Base

    settings = _settings(db_url, monkeypatch)
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:  # who the run acts as
        create_operator(session, "OP", "Opérateur Télécom")
    holding, release = threading.Event(), threading.Event()

    def other_machine() -> None:  # another process's session: a separate connection and thread
        with engine.connect() as connection:
            connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": locks.advisory_key("ping")}
            )
            connection.commit()
            holding.set()
            release.wait(30)
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": locks.advisory_key("ping")}
            )
            connection.commit()

    thread = threading.Thread(target=other_machine)
    thread.start()
    try:
        assert holding.wait(30)
        with pytest.raises(ConcurrentRunError, match="'ping' is already running"):
            run_job("ping", {}, settings=settings)
        result = CliRunner().invoke(
            main, ["jobs", "run", "ping"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
        )
        assert result.exit_code == 1
        assert "Error: The job 'ping' is already running" in result.output
        with engine.connect() as connection:
            assert connection.scalar(select(JobRun.id).limit(1)) is None  # nothing recorded
    finally:
        release.set()
        thread.join()
    # Once the other holder is gone the lock can be taken (and is released again).
    handle = locks.acquire(engine, "ping")
    handle.release()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:  # the shared schema is left empty for the next tests
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def test_the_lock_is_exclusive_and_released(engine) -> None:
    first = locks.acquire(engine, "ping")
    try:
        with pytest.raises(ConcurrentRunError, match=socket.gethostname()):
            locks.acquire(engine, "ping")
        other = locks.acquire(engine, "adoption_report")  # another job is independent
        other.release()
    finally:
        first.release()
    locks.acquire(engine, "ping").release()


def _lock_row(session_factory, holder: str, age: timedelta, run_status: str = "running") -> int:
    with session_factory.begin() as session:
        run = JobRun(job_name="ping", status=run_status, started_at=utcnow() - age)
        session.add(run)
        session.flush()
        session.add(
            JobLock(job_name="ping", run_id=run.id, holder=holder, acquired_at=utcnow() - age)
        )
        return run.id


@pytest.mark.parametrize(
    ("holder", "age", "refused"),
    [
        ("live-here", timedelta(hours=30), True),  # this very process: alive, however old
        ("other-host:42", timedelta(minutes=5), True),  # cannot be checked: trusted while young
        ("dead-here", timedelta(minutes=1), False),  # same host, no such process: abandoned
        ("other-host:42", timedelta(hours=13), False),  # too old to be believed
    ],
)
def test_a_lock_row_is_respected_unless_stale(
    engine, session_factory, holder: str, age: timedelta, refused: bool
) -> None:
    if engine.dialect.name == "postgresql" and holder == "live-here":
        pytest.skip("on PostgreSQL the advisory lock, not the row, decides")
    host = socket.gethostname()
    holder = {"live-here": f"{host}:{os.getpid()}", "dead-here": f"{host}:999999999"}.get(
        holder, holder
    )
    run_id = _lock_row(session_factory, holder, age)
    if refused and engine.dialect.name == "sqlite":
        with pytest.raises(ConcurrentRunError, match="already running on .*run"):
            locks.acquire(engine, "ping")
        return
    handle = locks.acquire(engine, "ping")
    with session_factory() as session:
        abandoned = session.get(JobRun, run_id)
        assert abandoned.status == "failed" and "Abandoned" in abandoned.error
        assert session.get(JobLock, "ping").holder == handle.holder
    handle.release()


def test_the_domain_side_of_jobs_never_imports_papermill() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import selfcare_ops.jobs, selfcare_ops.jobs.context, selfcare_ops.jobs.tasks\n"
        "import selfcare_ops.jobs.history, selfcare_ops.reports, selfcare_ops.charts\n"
        "heavy = {'papermill', 'nbformat', 'nbclient', 'IPython', 'click', 'matplotlib.pyplot'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


# --- the compositions the notebooks call ----------------------------------------------------


def test_remind_invited_sends_a_new_link_once_and_only_in_scope(session_factory, tree) -> None:
    from datetime import timedelta

    from selfcare_ops.access import SYSTEM_ACTOR_EMAIL
    from selfcare_ops.invitations.service import invite_user
    from selfcare_ops.jobs.tasks import remind_invited
    from selfcare_ops.store.models import AuditEvent, Invitation, OutboundMessage, User

    jp, vero = tree.client_a_users[2], tree.client_a_users[4]
    now = utcnow()
    with session_factory.begin() as session:
        invite_user(session, tree.system, jp, now=now - timedelta(days=10))
        invite_user(session, tree.system, vero, now=now - timedelta(days=2))
    with session_factory.begin() as session:
        assert remind_invited(session, tree.partner_b_admin, older_than_days=5) == 0  # scope
        assert remind_invited(session, tree.system, older_than_days=5, now=now) == 1
    with session_factory.begin() as session:
        assert remind_invited(session, tree.system, older_than_days=5, now=now) == 0  # once
        user = session.scalar(select(User).where(User.login == jp))
        assert user.status == "invited" and user.invited_at == now
        statuses = sorted(
            session.scalars(select(Invitation.status).where(Invitation.user_id == user.id))
        )
        assert statuses == ["pending", "superseded"]  # the old link no longer works
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 3
        actors = set(
            session.scalars(
                select(AuditEvent.actor_label).where(AuditEvent.target_label.like("%bubu%"))
            )
        )
        assert actors == {SYSTEM_ACTOR_EMAIL}
    with session_factory() as session, pytest.raises(ValidationError, match="at least 1 day"):
        remind_invited(session, tree.system, older_than_days=0)


def test_worst_branding_cases_rank_by_problems_then_contrast() -> None:
    import pandas as pd

    from selfcare_ops.jobs.tasks import worst_branding_cases

    audit = pd.DataFrame(
        {
            "organisation_ref": ["A", "B", "C", "D"],
            "primary_color": ["#999999", "#333333", "#ffffff", "#eeeeee"],
            "gradient_color": [None, None, "", "#000000"],
            "text_color": ["#ffffff", "#444444", "#000000", "#ffffff"],
            "issues": [1, 1, 1, 2],
        }
    )
    worst = worst_branding_cases(audit, 3)
    # D has two problems; then B (1.3:1) before A (2.8:1); C (21:1) is left out.
    assert list(worst["organisation_ref"]) == ["D", "B", "A"]
    assert worst["min_contrast"].tolist() == pytest.approx([1.16, 1.3, 2.85], abs=0.02)
    assert worst_branding_cases(audit.iloc[0:0], 3).empty


def test_an_unavailable_mail_transport_fails_the_maintenance_job(
    db_url: str, session_factory, tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket as sockets

    from selfcare_ops.invitations.service import invite_user
    from selfcare_ops.store.models import OutboundMessage

    with sockets.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with session_factory.begin() as session:
        invite_user(session, tree.system, tree.client_a_users[2])
    monkeypatch.setenv("SELFCARE_OPS_MAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_PORT", str(port))
    result = CliRunner().invoke(
        main, ["jobs", "run", "invitation_maintenance"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
    )
    assert result.exit_code == 1
    assert "MailError" in result.output and "stay queued for the next run" in result.output
    with session_factory() as session:
        run = session.scalars(select(JobRun)).one()
        assert run.status == "failed" and run.failed_cell is not None
        queued = session.scalars(select(OutboundMessage.status)).all()
    assert queued == ["queued"]  # nothing lost


def test_papermill_is_imported_without_the_rfc3987_grammar() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from selfcare_ops.jobs.runner import _import_papermill\n"
        "_import_papermill()\n"
        "import jsonschema, nbformat, papermill\n"
        "print('rfc3987_syntax' in sys.modules)\n"
        "import rfc3987_syntax\n"  # still importable by whoever really needs it
        "print(rfc3987_syntax is not None)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.split() == ["False", "True"]


def test_input_paths_are_found_here_else_in_the_package(tmp_path: Path, monkeypatch) -> None:
    """A relative name is the current folder's file when there is one, else the packaged file
    of that name (the onboarding default), else left as given for the reader to refuse."""
    from importlib.resources import files

    from selfcare_ops.jobs.context import JobContext

    context = JobContext("x", Settings(), None, None, tmp_path)  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)
    packaged = Path(str(files("selfcare_ops") / "demo" / "data" / "onboarding_sample.csv"))
    assert context.input_path("demo/data/onboarding_sample.csv") == packaged
    assert packaged.is_file()
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "onboarding_sample.csv").write_text("x")
    assert context.input_path("demo/data/onboarding_sample.csv") == Path(
        "demo/data/onboarding_sample.csv"
    )
    assert context.input_path("data/demo/users.csv") == Path("data/demo/users.csv")
    assert context.input_path("/elsewhere/drop.csv") == Path("/elsewhere/drop.csv")
    # A folder of the package is not an input file, nor is anything above the package.
    assert context.input_path("notebooks") == Path("notebooks")
    assert context.input_path("../selfcare_ops/demo/data/users.csv") == Path(
        "../selfcare_ops/demo/data/users.csv"
    )


def test_a_kernel_that_dies_is_recorded_at_its_cell(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_factory, operator
) -> None:
    notebook = _notebook(
        tmp_path / "die.ipynb",
        "x = 1",
        "import os\nos._exit(3)",
        "x = 2",
        parameters='database_url = ""\noutput_dir = ""',
    )
    monkeypatch.setitem(JOBS, "die", Job("die", notebook, "Its kernel dies."))
    result = run_job("die", settings=_settings(db_url, monkeypatch))
    assert not result.ok and result.error == "DeadKernelError: Kernel died"
    assert result.failed_cell == 4 and result.output_path.exists()
    with session_factory() as session:
        run = session.get(JobRun, result.run_id)
    assert (run.status, run.failed_cell) == ("failed", 4)


def test_a_second_run_is_refused_while_the_first_really_runs(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_factory, operator
) -> None:
    """Two real runs: the first waits in its notebook for a file the test writes once the
    second has been refused, so the overlap is certain without any timing assumption."""
    release = tmp_path / "release"
    notebook = _notebook(
        tmp_path / "wait.ipynb",
        "from pathlib import Path\nimport time\n"
        "while not Path(release).exists():\n    time.sleep(0.05)",
        parameters=f'database_url = ""\noutput_dir = ""\nrelease = "{release}"',
    )
    monkeypatch.setitem(JOBS, "wait", Job("wait", notebook, "Waits for a file."))
    settings = _settings(db_url, monkeypatch)
    outcome: dict = {}
    first = threading.Thread(
        target=lambda: outcome.update(result=run_job("wait", {}, settings=settings))
    )
    first.start()
    try:
        for _ in range(1200):  # until the first run holds the lock and has named its run
            with session_factory() as session:
                if session.scalar(select(JobLock.run_id)) is not None:
                    break
            first.join(0.05)
        with pytest.raises(ConcurrentRunError, match="'wait' is already running on .*run 1"):
            run_job("wait", {}, settings=settings)
    finally:
        release.write_text("go")
        first.join(120)
    assert outcome["result"].ok, outcome["result"].describe()
    with session_factory() as session:
        assert session.scalars(select(JobRun.status)).all() == ["succeeded"]


def test_the_notebook_speaks_the_language_of_whoever_runs_the_job(
    db_url: str, monkeypatch: pytest.MonkeyPatch, operator
) -> None:
    """``--lang fr`` reaches the kernel even when the environment says English."""
    from selfcare_ops import i18n

    settings = _settings(db_url, monkeypatch)  # SELFCARE_OPS_LANG=en (the suite's)
    i18n.set_language("fr")
    try:
        result = run_job("ping", {}, settings=settings)
    finally:
        i18n.set_language(None)
    assert result.ok, result.describe()
    executed = nbformat.read(result.output_path, as_version=4)
    title = executed.cells[1].outputs[0]["data"]["text/markdown"]
    assert title.startswith("# Ping\n\nUne vérification")
