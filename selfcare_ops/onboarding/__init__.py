"""CSV bulk onboarding: read the files customers send, validate every row, plan, apply, report.

Library first (the CLI and the notebooks are thin shells)::

    plan = build_plan(session, actor, "users.csv", client_ref="C0001")   # dry run: a DataFrame
    report = apply_plan(session_factory, actor, plan)                   # idempotent, batched
    write_report(report, "report.csv")                                  # ';' + UTF-8 BOM

or everything streamed in one call: :func:`import_users`.
"""

from __future__ import annotations

from .apply import REPORT_COLUMNS, ImportReport, apply_plan
from .headers import FIELDS, field_for, template_headers
from .pipeline import import_users
from .plan import PLAN_COLUMNS, Plan, build_plan
from .progress import progress_bar
from .reading import RawRow, RowSource, read_rows, sniff_separator
from .report import neutralise, write_report
from .template import template_text, write_template

__all__ = [
    "FIELDS",
    "PLAN_COLUMNS",
    "REPORT_COLUMNS",
    "ImportReport",
    "Plan",
    "RawRow",
    "RowSource",
    "apply_plan",
    "build_plan",
    "field_for",
    "import_users",
    "neutralise",
    "progress_bar",
    "read_rows",
    "sniff_separator",
    "template_headers",
    "template_text",
    "write_report",
    "write_template",
]
