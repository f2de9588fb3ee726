"""Run a registered job: lock, record, execute the notebook with papermill, record the end.

The executed notebook is kept as ``<runs_dir>/<job>/<timestamp>.ipynb`` whatever happens, and
the files the notebook writes go to ``<runs_dir>/<job>/<timestamp>/`` unless the caller names
another ``output_dir``. The kernel is always this interpreter's ipykernel (not whatever
``python3`` kernelspec the machine has), so the notebook imports the same ``selfcare_ops``;
it is launched as soon as the lock is held and boots while the run is recorded and papermill
is imported, then papermill executes the notebook on it (a small engine, see
:func:`_engine_name`). Papermill, nbformat, nbconvert and jupyter_client are imported here only.

The notebook run is the packaged one (:meth:`Job.notebook_path`, through importlib.resources):
the result names it, and papermill writes it in the executed notebook's metadata
(``metadata.papermill.input_path``), the file ``job_runs.output_path`` points to.

A run acts as whoever starts it: the actor is resolved and the job's own check applied before
anything is locked or recorded, the notebook receives the actor's email as its ``actor``
parameter (its services check it again), and ``job_runs.actor_label`` records who it was.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, check_actor_name, resolve_actor
from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import JobError
from selfcare_ops.i18n import LANGUAGE_ENV, _, current_language
from selfcare_ops.jobs import locks
from selfcare_ops.jobs.history_words import seconds
from selfcare_ops.jobs.registry import RUNNER_PARAMETERS, Job, get_job, resolve_parameters
from selfcare_ops.store.db import check_ready, make_engine
from selfcare_ops.store.models import JobRun, utcnow

KERNEL_NAME = "python3"
ENGINE_NAME = "selfcare_ops"
KERNEL_EXIT_WAIT_S = 0.5


class VenvKernelManager(AsyncKernelManager):
    """Starts ``sys.executable -m ipykernel_launcher``: the kernel of this very environment.

    The kernel's own stderr (start-up warnings, shutdown notices, a crash's last words) goes to
    ``kernel_log`` when a subclass sets it, so that cron mails and the demo stay readable.
    """

    kernel_log: Path | None = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # The notebook speaks the language of whoever runs the job (``--lang`` included).
        kw["env"] = {**(kw.get("env") or os.environ), LANGUAGE_ENV: current_language()}
        if self.kernel_log is not None:
            log = self.kernel_log.open("ab")
            try:
                kw["stderr"] = log
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                log.close()  # the child keeps its own descriptor
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    @property
    def kernel_spec(self) -> KernelSpec:
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(
                argv=[
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    # Unattended runs keep no input history: no SQLite file in the home
                    # directory shared (and locked) by every kernel that starts at once.
                    "--HistoryManager.enabled=False",
                ],
                display_name="Python 3 (selfcare-ops)",
                language="python",
                name=KERNEL_NAME,
            )
        return self._kernel_spec


@dataclass(frozen=True)
class JobRunResult:
    """How one run ended and where its record is."""

    run_id: int
    job: str
    status: str
    parameters: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    output_path: Path
    output_dir: Path | None
    actor: str = ""
    #: The notebook file papermill executed (the packaged one for a registered job).
    notebook: Path | None = None
    html_path: Path | None = None
    failed_cell: int | None = None
    error: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def describe(self) -> str:
        values = {
            "job": self.job,
            "seconds": seconds(self.duration_s),
            "run": self.run_id,
            "path": self.output_path,
            "cell": self.failed_cell,
            "error": (self.error or _("unknown error")).rstrip("."),
        }
        if self.ok:
            return _(
                "Job '{job}' succeeded in {seconds} s (run {run}); executed notebook: {path}."
            ).format(**values)
        if self.failed_cell is not None:
            failed = _("Job '{job}' failed at cell {cell} after {seconds} s (run {run}): {error}.")
        else:
            failed = _("Job '{job}' failed after {seconds} s (run {run}): {error}.")
        kept = (
            _("The executed notebook is kept at {path}.")
            if self.output_path.exists()
            else _("No executed notebook was written.")
        )
        return failed.format(**values) + " " + kept.format(**values)

    def raise_for_status(self) -> JobRunResult:
        """Raise :class:`JobError` with :meth:`describe` unless the run succeeded."""
        if not self.ok:
            raise JobError(self.describe(), run_id=self.run_id, failed_cell=self.failed_cell)
        return self


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H-%M-%SZ")


def _output_path(runs_dir: Path, job: Job, started: datetime) -> Path:
    folder = (runs_dir / job.name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    base = _stamp(started)
    candidate, n = folder / f"{base}.ipynb", 1
    while candidate.exists() or candidate.with_suffix("").exists():
        candidate, n = folder / f"{base}-{n}.ipynb", n + 1
    return candidate


def _recordable(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as stored in ``job_runs`` (a database password is never stored; the actor
    has its own column)."""
    shown = {k: v for k, v in parameters.items() if k not in RUNNER_PARAMETERS}
    if shown.get("database_url"):
        try:
            url = make_url(shown["database_url"])
            shown["database_url"] = url.render_as_string(hide_password=True)
        except Exception:  # a malformed URL fails later, in the notebook
            shown["database_url"] = "<unparsable>"
    return shown


def _failed_cell_from_output(path: Path) -> int | None:
    """Where execution stopped abnormally (a dead kernel, a timeout): the cell papermill marked
    as running or failed, else the last cell it started."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception:  # the notebook may not have been written at all
        return None
    started = None
    for index, cell in enumerate(notebook.cells):
        papermill = cell.get("metadata", {}).get("papermill", {})
        if papermill.get("status") in ("running", "failed"):
            return index
        if papermill.get("start_time"):
            started = index
    return started


def _kernel_log(output: Path) -> Path:
    return output.with_name(output.stem + ".kernel.log")


def _export_html(notebook_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    notebook = nbformat.read(notebook_path, as_version=4)
    # The page is for analysts: without the developers' notes and the code that shows the
    # headings (see jobs.prose).
    exporter = HTMLExporter()
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, remove_input_tags={"remove-input"}),
        enabled=True,
    )
    # Its template ignores the images' alt text (kept in the outputs' metadata) and says so on
    # stderr for every chart: not worth a line in every cron mail.
    level = exporter.log.level
    exporter.log.setLevel(logging.ERROR)
    try:
        body, _resources = exporter.from_notebook_node(notebook)
    finally:
        exporter.log.setLevel(level)
    target = notebook_path.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _import_papermill() -> None:
    """Import papermill without jsonschema's optional ``rfc3987_syntax``.

    jsonschema imports that package, if installed, for its 'iri' format checks, and it compiles
    a grammar at import (about a second, on every job run). nbformat's schema checks no such
    format, so the import is skipped; the package stays importable directly afterwards.
    """
    if "papermill" in sys.modules:
        return
    skipped = "rfc3987_syntax" not in sys.modules
    if skipped:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        import papermill  # noqa: F401
    finally:
        if skipped and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


def _start_kernel(output: Path) -> VenvKernelManager:
    """Launch the kernel now; it boots while the run is recorded and papermill is imported."""
    manager = type("RunKernelManager", (VenvKernelManager,), {"kernel_log": _kernel_log(output)})
    # A finished kernel gets half a second to exit by itself after the shutdown request before
    # it is killed: every cell has returned and the notebook is written by then.
    kernel = manager(kernel_name=KERNEL_NAME, shutdown_wait_time=KERNEL_EXIT_WAIT_S)
    # jupyter_core's run_sync reuses this thread's event loop, the one nbclient runs on later.
    run_sync(kernel.start_kernel)()
    return kernel


def _stop_kernel(kernel: VenvKernelManager) -> None:
    try:
        if run_sync(kernel.is_alive)():
            run_sync(kernel.shutdown_kernel)(now=False)
    finally:
        run_sync(kernel.cleanup_resources)()


def _engine_name() -> str:
    """A papermill engine that executes on an already started kernel and closes its client."""
    _import_papermill()
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class StartedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            **kwargs: Any,
        ) -> Any:
            # As papermill's own NBClientEngine, except that the client is closed here: a
            # client given a kernel manager (``km``) does not own it and would leave it open.
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, **final_kwargs)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(ENGINE_NAME, StartedKernelEngine)
    return ENGINE_NAME


def _execute(
    notebook: Path, output: Path, parameters: dict[str, Any], kernel: VenvKernelManager
) -> None:
    _import_papermill()
    import papermill

    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        engine_name=_engine_name(),
        kernel_name=KERNEL_NAME,
        language="python",
        km=kernel,
        progress_bar=False,
        log_output=False,
        request_save_on_cell_execute=True,
    )


def run_job(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    actor: str | None = None,
) -> JobRunResult:
    """Run job ``name`` once as ``actor`` (an administrator's or manager's email; None: the
    system actor); a failing notebook is a recorded ``failed`` run, not an exception.

    Raises :class:`~selfcare_ops.errors.ValidationError` for unknown or ill-typed parameters,
    :class:`~selfcare_ops.errors.AccessDeniedError` (nothing recorded) when the actor may not
    run the job with these parameters, :class:`~selfcare_ops.errors.ConcurrentRunError` when
    the job is already running, and :class:`JobError` when the notebook cannot be started.
    """
    job = get_job(name)
    check_actor_name(actor)
    given = dict(parameters or {})
    resolved = resolve_parameters(job, given)
    environment = get_settings()
    # The kernel reads the same environment; a database named only in ``settings`` is passed
    # as the notebook's ``database_url`` (so it is written in the executed notebook).
    explicit_settings = settings is not None and settings.database_url != environment.database_url
    settings = settings or environment
    engine = make_engine(settings.database_url)
    try:
        check_ready(engine)
        acting = _checked_actor(engine, job, actor, resolved)
        resolved["actor"] = acting.label
        lock = locks.acquire(engine, job.name)
        try:
            return _run_locked(job, resolved, given, settings, explicit_settings, engine, lock)
        finally:
            lock.release()
    finally:
        engine.dispose()


def _checked_actor(engine: Any, job: Job, actor: str | None, parameters: dict[str, Any]) -> Actor:
    """The running actor, refused here (before the lock and the record) when the job's check
    says its parameters reach beyond the actor's scope."""
    with Session(engine) as session:
        acting = resolve_actor(session, actor)
        if job.check is not None:
            job.check(session, acting, parameters)
    return acting


def _run_locked(
    job: Job,
    resolved: dict[str, Any],
    given: Mapping[str, Any],
    settings: Settings,
    explicit_settings: bool,
    engine: Any,
    lock: locks.JobLockHandle,
) -> JobRunResult:
    started = utcnow()
    output = _output_path(settings.runs_dir, job, started)
    output_dir: Path | None = None
    if "output_dir" in resolved and not resolved["output_dir"]:
        output_dir = output.with_suffix("")
        resolved["output_dir"] = str(output_dir)
    elif resolved.get("output_dir"):
        output_dir = Path(resolved["output_dir"])
    if explicit_settings and "database_url" in resolved and not given.get("database_url"):
        resolved["database_url"] = settings.database_url

    try:
        kernel = _start_kernel(output)
    except Exception as exc:
        raise JobError(
            _(
                "The kernel for job '{job}' could not be started: {name}: {error} (see {log})."
            ).format(job=job.name, name=type(exc).__name__, error=exc, log=_kernel_log(output))
        ) from exc
    try:
        return _record_and_execute(job, resolved, engine, lock, started, output, output_dir, kernel)
    finally:
        _stop_kernel(kernel)


def _record_and_execute(
    job: Job,
    resolved: dict[str, Any],
    engine: Any,
    lock: locks.JobLockHandle,
    started: datetime,
    output: Path,
    output_dir: Path | None,
    kernel: VenvKernelManager,
) -> JobRunResult:
    with Session(engine) as session, session.begin():
        run = JobRun(
            job_name=job.name,
            parameters=_recordable(resolved),
            status="running",
            started_at=started,
            actor_label=resolved.get("actor"),
            output_path=str(output),
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        session.add(run)
        session.flush()
        run_id = run.id
    lock.attach_run(run_id)

    status, failed_cell, error = "succeeded", None, None
    notebook = job.notebook_path()
    try:
        _execute(notebook, output, resolved, kernel)
    except KeyboardInterrupt:
        _finish(engine, run_id, "failed", _failed_cell_from_output(output), "Interrupted.")
        raise
    except Exception as exc:  # every failure is recorded, then reported
        from papermill.exceptions import PapermillExecutionError

        status = "failed"
        if isinstance(exc, PapermillExecutionError):
            failed_cell, error = exc.cell_index, f"{exc.ename}: {exc.evalue}"
        else:
            failed_cell = _failed_cell_from_output(output)
            error = f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"
    html_path = None
    if status == "succeeded" and job.export_html:
        try:
            html_path = _export_html(output)
        except Exception as exc:  # the run did its work; the page is a bonus
            status = "failed"
            error = _("HTML export failed: {name}: {error}").format(
                name=type(exc).__name__, error=exc
            )
    finished = _finish(engine, run_id, status, failed_cell, error)
    files = sorted(p for p in output_dir.rglob("*") if p.is_file()) if output_dir else []
    return JobRunResult(
        run_id=run_id,
        job=job.name,
        status=status,
        parameters=_recordable(resolved),
        started_at=started,
        finished_at=finished,
        output_path=output,
        output_dir=output_dir if output_dir and output_dir.exists() else None,
        actor=str(resolved.get("actor") or ""),
        notebook=notebook,
        html_path=html_path,
        failed_cell=failed_cell,
        error=error,
        files=files,
    )


def _finish(
    engine: Any, run_id: int, status: str, failed_cell: int | None, error: str | None
) -> datetime:
    finished = utcnow()
    with Session(engine) as session, session.begin():
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, finished_at=finished, failed_cell=failed_cell, error=error)
        )
    return finished
