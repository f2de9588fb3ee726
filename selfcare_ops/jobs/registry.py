"""The named jobs: which notebook, with which default parameters, and what each is for.

A job's known parameters are what papermill's own inspection (:func:`papermill.inspect_notebook`)
reads in its notebook's cell tagged ``parameters``: each name, its default (a Python literal),
its declared type (``days: int = 3``, or ``# type: int``) and the comment after it as help; so
the runner and ``papermill --help-notebook`` agree on what a notebook takes. Listing jobs or
validating a command line starts no kernel. Values given as text on a command line are coerced
to the declared type, or else to the type of the default, so ``-p dry_run no`` is the boolean
``False`` and ``-p days 3`` the integer 3 (papermill's own ``-p`` guesses from the text instead,
which would turn ``-p client 0042`` into the number 42).

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
from dataclasses import dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfcare_ops.errors import JobError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.support.resources import NOTEBOOKS_DIR, PACKAGE, real_path
from selfcare_ops.support.yesno import yes_no

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from selfcare_ops.access import Actor

#: Parameters the runner sets itself, never the caller: who runs the job.
RUNNER_PARAMETERS = ("actor",)

#: ``check(session, actor, parameters)`` raises when the run would reach beyond the actor.
JobCheck = Callable[["Session", "Actor", Mapping[str, Any]], None]

#: Types a parameters cell may declare, by the name papermill reports.
_DECLARED_TYPES: dict[str, type] = {t.__name__: t for t in (bool, int, float, str, list, dict)}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a job notebook: its default, the type a given value is coerced to
    (``None``: any value, for a ``None`` default without declared type) and its help."""

    name: str
    default: Any
    kind: type | None
    help: str = ""

    def coerce(self, value: Any) -> Any:
        """``value`` (text from a command line included) as this parameter's type."""
        return _coerce(self.name, value, self.kind, self.default)


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

    def signature(self) -> dict[str, Parameter]:
        """Every parameter a caller may give, in the notebook's order, with its effective
        default (registry over notebook); the runner's own (:data:`RUNNER_PARAMETERS`) are
        left out."""
        merged = {
            name: parameter
            for name, parameter in inspect_parameters(self.notebook).items()
            if name not in RUNNER_PARAMETERS
        }
        unknown = sorted(set(self.defaults) - set(merged))
        if unknown:
            raise JobError(
                _(
                    "The job '{job}' sets defaults for {names}, which its notebook {notebook} "
                    "does not declare in its parameters cell."
                ).format(job=self.name, names=", ".join(unknown), notebook=self.notebook.name)
            )
        for name, default in self.defaults.items():
            merged[name] = replace(merged[name], default=default)
        return merged

    def parameters(self) -> dict[str, Any]:
        """Every parameter a caller may give, with its effective default."""
        return {name: parameter.default for name, parameter in self.signature().items()}


def _job(name: str, notebook: str, description: str, **kwargs: Any) -> Job:
    return Job(name=name, notebook=NOTEBOOKS_DIR / notebook, description=description, **kwargs)


def _check_onboarding(session: Session, actor: Actor, parameters: Mapping[str, Any]) -> None:
    """The client named by ``client`` must be one the actor may add users to. (A file's client
    column is checked line by line by the onboarding planner, as the same actor.)"""
    from selfcare_ops.access import require_organisation
    from selfcare_ops.organisations import get_client

    if parameters.get("client"):
        client = get_client(session, str(parameters["client"]))
        require_organisation(actor, client, "onboard users into")


def _check_maintenance(session: Session, actor: Actor, parameters: Mapping[str, Any]) -> None:
    """The maintenance delivers the whole outbox: only those who may deliver mail run it."""
    from selfcare_ops.access import require_mail_delivery

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


def job_description(job: Job) -> str:
    """What ``job`` does, in the current language (``Job.description`` stays the English)."""
    words = {
        "onboarding": _(
            "Onboard the users of a CSV drop (validate, plan, apply, report; optionally invite)."
        ),
        "invitation_maintenance": _(
            "Expire overdue invitations, remind users invited long ago, deliver the outbox."
        ),
        "adoption_report": _(
            "Invitation funnel, time to accept, weekly activations and failed mails, as CSV "
            "tables, charts and an HTML page."
        ),
        "branding_audit": _(
            "Readability audit of the resolved branding of every client, with previews of the "
            "worst cases."
        ),
        "ping": _("A trivial job: checks the kernel and the database."),
    }
    return words.get(job.name, job.description)


def get_job(name: str) -> Job:
    """The registered job ``name``, or an error listing the known jobs."""
    try:
        return JOBS[name]
    except KeyError:
        known = ", ".join(sorted(JOBS))
        raise JobError(
            _("No job is called '{name}': the known jobs are {known}.").format(
                name=name, known=known
            )
        ) from None


def inspect_parameters(notebook: Traversable) -> dict[str, Parameter]:
    """The parameters of ``notebook`` as papermill reads its ``parameters`` cell, in order.

    This is :func:`papermill.inspect_notebook`'s own reading (the first cell tagged
    ``parameters``, parsed by papermill's Python translator), given the language the runner
    runs every job in rather than the one the notebook's metadata may or may not name.
    """
    from selfcare_ops.jobs.runner import KERNEL_NAME, _import_papermill

    _import_papermill()  # here, not with the module, and the runner's quick way
    from papermill.iorw import load_notebook_node
    from papermill.translators import papermill_translators
    from papermill.utils import find_first_tagged_cell_index

    try:
        document = load_notebook_node(str(real_path(notebook)))
    except OSError as exc:
        raise JobError(
            _("The notebook {notebook} cannot be read: {error}.").format(
                notebook=notebook, error=exc.strerror or exc
            )
        ) from exc
    except ValueError as exc:  # nbformat's NotJSONError, an unknown nbformat version
        raise JobError(
            _("The notebook {notebook} is not a readable notebook: {error}").format(
                notebook=notebook, error=exc
            )
        ) from exc
    index = find_first_tagged_cell_index(document, "parameters")
    if index < 0 or document.cells[index].cell_type != "code":
        raise JobError(
            _("The notebook {notebook} has no code cell tagged 'parameters'.").format(
                notebook=notebook
            )
        )
    translator = papermill_translators.find_translator(KERNEL_NAME, "python")
    found = translator.inspect(document.cells[index])
    return {spec.name: _parameter(notebook, spec._asdict()) for spec in found}


def _parameter(notebook: Traversable, spec: Mapping[str, str]) -> Parameter:
    """A :class:`Parameter` from one entry of papermill's inspection (its fields are text)."""
    name = spec["name"]
    try:
        default = ast.literal_eval(spec["default"])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise JobError(
            _("The parameter {name} of {notebook} must have a literal default value.").format(
                name=name, notebook=notebook
            )
        ) from exc
    declared = spec.get("inferred_type_name") or "None"
    if declared == "None":
        kind = None if default is None else type(default)
    elif declared in _DECLARED_TYPES:
        kind = _DECLARED_TYPES[declared]
    else:
        known = ", ".join(_DECLARED_TYPES)
        raise JobError(
            _(
                "The parameter {name} of {notebook} declares the type {declared}; a job "
                "parameter is one of {known} (or undeclared: the type of its default)."
            ).format(name=name, notebook=notebook, declared=declared, known=known)
        )
    return Parameter(name=name, default=default, kind=kind, help=spec.get("help") or "")


def notebook_parameters(notebook: Traversable) -> dict[str, Any]:
    """Names and default values assigned in the notebook's ``parameters`` cell, in order."""
    return {name: parameter.default for name, parameter in inspect_parameters(notebook).items()}


def coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (text from a command line included)."""
    return _coerce(name, value, None if default is None else type(default), default)


def _coerce(name: str, value: Any, kind: type | None, default: Any) -> Any:
    if kind is None:
        return value
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    wanted = {bool: _("true or false"), int: _("a whole number"), float: _("a number")}.get(
        kind, kind.__name__
    )

    def refuse() -> ValidationError:
        return ValidationError(
            _(
                "The parameter {name} must be {wanted} (its default is {default}), not {value}."
            ).format(name=name, wanted=wanted, default=repr(default), value=repr(value)),
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
    signature = job.signature()
    given = dict(given or {})
    for name in RUNNER_PARAMETERS:
        if name in given:
            raise ValidationError(
                _(
                    "The {name} of a run is whoever starts it (--as or SELFCARE_OPS_ACTOR), not a "
                    "parameter: leave out '{name}'."
                ).format(name=name),
                field=name,
            )
    unknown = sorted(set(given) - set(signature))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        known = ", ".join(signature) or _("none")
        raise ValidationError(
            _("The job '{job}' has no parameter {names}: its parameters are {known}.").format(
                job=job.name, names=names, known=known
            ),
            field=unknown[0],
        )
    resolved = {name: parameter.default for name, parameter in signature.items()}
    for key, value in given.items():
        resolved[key] = signature[key].coerce(value)
    return resolved
