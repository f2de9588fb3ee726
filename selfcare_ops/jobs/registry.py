"""The named jobs: which notebook, with which default parameters, and what each is for.

A job's known parameters are the names assigned in its notebook's cell tagged ``parameters``
(read with :mod:`ast`, so listing jobs or validating a command line costs no kernel and no
papermill import). Values given as text on a command line are coerced to the type of the
default, so ``-p dry_run no`` is the boolean ``False`` and ``-p days 3`` the integer 3.

Every job notebook also declares ``actor``: the email of whoever runs it, which the runner
sets itself (``selfcare-ops --as EMAIL jobs run``; nobody named: the system actor). It is not a
parameter a caller may give, or ``-p actor`` would let anyone act as anyone. A job may also
name a :attr:`Job.check`: a refusal of parameters beyond the actor's scope, run before the job
starts (the services inside the notebook check again, line by line).

The notebooks are package data (``selfcare_ops/notebooks/``), read through
:mod:`importlib.resources`: an installed wheel runs its jobs without a checkout.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import JobError, ValidationError
from ..resources import NOTEBOOKS_DIR, PACKAGE, real_path
from ..yesno import yes_no

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..access import Actor

#: Parameters the runner sets itself, never the caller: who runs the job.
RUNNER_PARAMETERS = ("actor",)

#: ``check(session, actor, parameters)`` raises when the run would reach beyond the actor.
JobCheck = Callable[["Session", "Actor", Mapping[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """A notebook run on a schedule: its name, notebook, defaults and purpose."""

    name: str
    #: The packaged notebook (or any notebook file, e.g. a test's).
    notebook: Traversable
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Also keep the executed notebook as HTML (next to it) when the run succeeds.
    export_html: bool = False
    #: Refuses, before the run starts, parameters beyond the running actor's scope.
    check: JobCheck | None = None

    @property
    def notebook_name(self) -> str:
        """How listings name the notebook, whatever the install: ``selfcare_ops/notebooks/X``
        for a packaged one, else its file path."""
        if self.notebook == NOTEBOOKS_DIR / self.notebook.name:
            return f"{PACKAGE}/notebooks/{self.notebook.name}"
        return str(self.notebook)

    def notebook_path(self) -> Path:
        """The notebook as a file papermill (or Airflow's PapermillOperator) can open."""
        return real_path(self.notebook)

    def parameters(self) -> dict[str, Any]:
        """Every parameter a caller may give, with its effective default (registry over
        notebook); the runner's own (:data:`RUNNER_PARAMETERS`) are left out."""
        merged = {
            name: value
            for name, value in notebook_parameters(self.notebook).items()
            if name not in RUNNER_PARAMETERS
        }
        unknown = sorted(set(self.defaults) - set(merged))
        if unknown:
            raise JobError(
                f"The job {self.name!r} sets defaults for {', '.join(unknown)}, which its "
                f"notebook {self.notebook.name} does not declare in its parameters cell."
            )
        merged.update(self.defaults)
        return merged


def _job(name: str, notebook: str, description: str, **kwargs: Any) -> Job:
    return Job(name=name, notebook=NOTEBOOKS_DIR / notebook, description=description, **kwargs)


def _check_onboarding(session: Session, actor: Actor, parameters: Mapping[str, Any]) -> None:
    """The client named by ``client`` must be one the actor may add users to. (A file's client
    column is checked line by line by the onboarding planner, as the same actor.)"""
    from ..access import require_organisation
    from ..organisations import get_client

    if parameters.get("client"):
        client = get_client(session, str(parameters["client"]))
        require_organisation(actor, client, "onboard users into")


def _check_maintenance(session: Session, actor: Actor, parameters: Mapping[str, Any]) -> None:
    """The maintenance delivers the whole outbox: only those who may deliver mail run it."""
    from ..access import require_mail_delivery

    require_mail_delivery(actor, "run the invitation maintenance (it delivers every queued mail)")


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        _job(
            "onboarding",
            "onboarding.ipynb",
            "Onboard the users of a CSV drop (validate, plan, apply, report; optionally invite).",
            check=_check_onboarding,
        ),
        _job(
            "invitation_maintenance",
            "invitation_maintenance.ipynb",
            "Expire overdue invitations, remind users invited long ago, deliver the outbox.",
            check=_check_maintenance,
        ),
        _job(
            "adoption_report",
            "adoption_report.ipynb",
            "Invitation funnel, time to accept, weekly activations and failed mails, "
            "as CSV tables, charts and an HTML page.",
            export_html=True,
        ),
        _job(
            "branding_audit",
            "branding_audit.ipynb",
            "Readability audit of the resolved branding of every client, with previews of the "
            "worst cases.",
        ),
        _job("ping", "ping.ipynb", "A trivial job: checks the kernel and the database."),
    )
}


def get_job(name: str) -> Job:
    """The registered job ``name``, or an error listing the known jobs."""
    try:
        return JOBS[name]
    except KeyError:
        known = ", ".join(sorted(JOBS))
        raise JobError(f"No job is called {name!r}: the known jobs are {known}.") from None


def _parameters_cell(notebook: Traversable) -> str:
    try:
        document = json.loads(notebook.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobError(f"The notebook {notebook} cannot be read: {exc.strerror}.") from exc
    except ValueError as exc:
        raise JobError(f"The notebook {notebook} is not valid JSON: {exc}.") from exc
    for cell in document.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
            "tags", []
        ):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    raise JobError(f"The notebook {notebook} has no code cell tagged 'parameters'.")


def notebook_parameters(notebook: Traversable) -> dict[str, Any]:
    """Names and default values assigned in the notebook's ``parameters`` cell, in order."""
    source = _parameters_cell(notebook)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise JobError(
            f"The parameters cell of {notebook} is not valid Python (line {exc.lineno})."
        ) from exc
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            found[target.id] = ast.literal_eval(value)
        except ValueError as exc:
            raise JobError(
                f"The parameter {target.id} of {notebook} must have a literal default value."
            ) from exc
    return found


def coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (text from a command line included)."""
    if default is None:
        return value
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(
        kind, kind.__name__
    )

    def refuse() -> ValidationError:
        return ValidationError(
            f"The parameter {name} must be {wanted} (its default is {default!r}), not {value!r}.",
            field=name,
            actual=value,
        )

    if kind is bool:
        word = yes_no(value) if isinstance(value, str) else None  # the one vocabulary
        if word is not None:
            return word
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise refuse()
    if kind is int:
        if isinstance(value, bool):
            raise refuse()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise refuse() from None
        raise refuse()
    if kind is float:
        if isinstance(value, bool):
            raise refuse()
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip().replace(",", "."))
            except ValueError:
                raise refuse() from None
        raise refuse()
    if kind is str:
        if isinstance(value, bool | int | float):
            return str(value)
        raise refuse()
    if kind in (list, dict) and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise refuse() from None
        if isinstance(parsed, kind):
            return parsed
    raise refuse()


def resolve_parameters(job: Job, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The full parameter set of a run: defaults, overridden by ``given`` after validation."""
    defaults = job.parameters()
    given = dict(given or {})
    for name in RUNNER_PARAMETERS:
        if name in given:
            raise ValidationError(
                f"The {name} of a run is whoever starts it (--as or SELFCARE_OPS_ACTOR), "
                f"not a parameter: leave out {name!r}.",
                field=name,
            )
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        known = ", ".join(defaults) or "none"
        raise ValidationError(
            f"The job {job.name!r} has no parameter {names}: its parameters are {known}.",
            field=unknown[0],
        )
    resolved = dict(defaults)
    for key, value in given.items():
        resolved[key] = coerce(key, value, defaults[key])
    return resolved
