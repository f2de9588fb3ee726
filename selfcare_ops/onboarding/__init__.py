"""CSV bulk onboarding: read the files customers send, validate every row, plan, apply, report.

Library first (the CLI and the notebooks are thin shells)::

    plan = build_plan(session, actor, "users.csv", client_ref="C0001")   # dry run: a DataFrame
    report = apply_plan(session_factory, actor, plan)                   # idempotent, batched
    write_report(report, "report.csv")                                  # ';' + UTF-8 BOM

or everything streamed in one call: :func:`import_users`.

Existing users (matched by login, then email): an empty cell keeps the stored value (rights
included); a cell holding exactly ``-`` clears an optional field (civility, email, phones,
function, language, services, sub-account) and turns a right off, as ``non``/``no`` do; the
names, login, role and client cannot be cleared. A line whose login is a user's but whose
first name, last name and email all differ from theirs is rejected as another person. An
email change voids the user's open invitation links (an invited user goes back to
``not_invited``; with ``invite`` a new link goes to the new address). New users: an empty right
means no. Role cells: see :func:`.values.role`. The import's audit event exists from its first
committed batch and holds the counts so far (``finished`` once done).
"""

from __future__ import annotations

from selfcare_ops.onboarding.apply import REPORT_COLUMNS, ImportReport, apply_plan
from selfcare_ops.onboarding.headers import FIELDS, field_for, template_headers
from selfcare_ops.onboarding.pipeline import import_users
from selfcare_ops.onboarding.plan import PLAN_COLUMNS, Plan, build_plan
from selfcare_ops.onboarding.progress import progress_bar
from selfcare_ops.onboarding.reading import RawRow, RowSource, read_rows, sniff_separator
from selfcare_ops.onboarding.report import neutralise, write_report
from selfcare_ops.onboarding.template import template_text, write_template

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
