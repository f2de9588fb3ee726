"""Every file of the corpus (tests/data/csv/) gives its expected outcome, on SQLite and PostgreSQL.

The expectations live beside the files in ``expected.json``. For every readable file the plan
is applied and the file planned again: the second plan must change nothing (idempotence).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from selfcare_ops import errors
from selfcare_ops.onboarding import apply_plan, build_plan, write_report


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


CORPUS = Path(__file__).parent / "data" / "csv"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
FILES = sorted(path.name for path in CORPUS.glob("*.csv"))


def test_every_file_has_an_expectation() -> None:
    described = {name for name in EXPECTED if not name.startswith("_")}
    assert described == set(FILES)


def _by_line(frame, line: str) -> dict:
    rows = frame[frame["line"] == int(line)]
    assert len(rows) == 1, f"no single plan row for line {line}"
    return rows.iloc[0].to_dict()


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name: str, session_factory, tree, tmp_path: Path) -> None:
    expected = EXPECTED[name]
    path = CORPUS / name
    client = expected.get("client", "CA")
    if "error" in expected:
        kind, fragment = expected["error"]
        with (
            session_factory() as session,
            pytest.raises(getattr(errors, kind), match=re.escape(fragment)),
        ):
            build_plan(session, tree.system, path, client_ref=client)
        return

    with session_factory() as session:
        plan = build_plan(session, tree.system, path, client_ref=client)
    counts = {key: plan.counts[key] for key in expected["counts"]}
    assert counts == expected["counts"]
    assert plan.encoding == expected["encoding"]
    assert plan.separator == expected["separator"]
    assert plan.unknown_columns == expected.get("unknown", [])
    for fragment in expected.get("warnings", []):
        assert any(fragment in warning for warning in plan.warnings), plan.warnings
    for line, fragment in expected.get("reasons", {}).items():
        row = _by_line(plan.frame, line)
        assert row["action"] == "reject"
        assert fragment in row["reason"]
    for line, fragments in expected.get("reasons_also", {}).items():
        reason = _by_line(plan.frame, line)["reason"]
        assert all(fragment in reason for fragment in fragments), reason
    for line, login in expected.get("logins", {}).items():
        assert _by_line(plan.frame, line)["login"] == login
    for line, values in expected.get("values", {}).items():
        row = _by_line(plan.frame, line)
        assert {key: row[key] for key in values} == values
    for line, changes in expected.get("changes", {}).items():
        assert _by_line(plan.frame, line)["changes"] == tuple(filter(None, changes.split(", ")))
    # Every rejected line says where: its line number and, for cell problems, the column.
    for _, row in plan.frame[plan.frame["action"] == "reject"].iterrows():
        assert f"line {row['line']}" in row["reason"]

    report = apply_plan(session_factory, tree.system, plan)
    assert report.counts["create"] == plan.counts["create"]
    assert report.counts["update"] == plan.counts["update"]
    assert report.counts["reject"] == plan.counts["reject"]
    assert list(report.frame["line"]) == list(plan.frame["line"])
    written = write_report(report, tmp_path / "report.csv").read_text(encoding="utf-8-sig")
    assert written.splitlines()[0].startswith("Line;Client;Action;Outcome")
    cells = {cell for record in csv.reader(io.StringIO(written), delimiter=";") for cell in record}
    for cell in expected.get("report_cells", []):
        assert cell in cells

    with session_factory() as session:
        again = build_plan(session, tree.system, path, client_ref=client)
    assert again.counts["create"] == 0
    assert again.counts["update"] == 0
    assert again.counts["reject"] == plan.counts["reject"]
    assert again.counts["unchanged"] == plan.counts["rows"] - plan.counts["reject"]
    kept = plan.frame["action"] != "reject"
    assert list(again.frame.loc[kept, "login"]) == list(plan.frame.loc[kept, "login"])
