"""What an analyst reads in the job notebooks follows the language (issue 14): headings and
their text come from :mod:`selfcare_ops.jobs.prose` through the catalogs, shown by cells whose
input is hidden; the one markdown cell left is the developers' notes, collapsed and left out of
the HTML page. The notebooks themselves are executed by tests/test_notebooks.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from selfcare_ops import i18n
from selfcare_ops.jobs import JOBS, prose
from selfcare_ops.jobs.runner import _export_html

NOTEBOOKS = {name: job.notebook_path() for name, job in JOBS.items()}
NBSP = "\u00a0"
ENGLISH_WORDS = ["the", "and", "of", "report", "invitation expired", "Warning", "chart"]
FRENCH_WORDS = ["le", "la", "les", "des", "et", "rapport", "Avertissement", "Graphique"]


def betrayed(text: str, language: str) -> list[str]:
    others = ENGLISH_WORDS if language == "fr" else FRENCH_WORDS
    return [w for w in others if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def shown_sections(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The (job, key) of every ``prose.section(...)`` call in the notebook's code cells."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "section":
                found.append(tuple(arg.value for arg in node.args))  # type: ignore[attr-defined]
    return found  # type: ignore[return-value]


def test_every_job_notebook_has_its_texts() -> None:
    assert set(prose.SECTIONS) == set(JOBS)
    assert all("title" in sections for sections in prose.SECTIONS.values())


@pytest.mark.parametrize("job", sorted(prose.SECTIONS))
def test_the_notebook_shows_each_section_once_through_hidden_inputs(job: str) -> None:
    notebook = nbformat.read(NOTEBOOKS[job], as_version=4)
    assert shown_sections(notebook) == [(job, key) for key in prose.SECTIONS[job]]
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert markdown == [notebook.cells[0]]  # the developers' notes only
    assert "remove-cell" in markdown[0].metadata["tags"]
    assert markdown[0].metadata["jupyter"]["source_hidden"]
    for cell in notebook.cells:
        if cell.cell_type == "code" and "prose.section(" in cell.source:
            assert "remove-input" in cell.metadata["tags"]
            assert cell.metadata["jupyter"]["source_hidden"]
        if cell.cell_type == "code":  # what cells print goes through prose too
            assert 'print(f"' not in cell.source and 'alt=f"' not in cell.source


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_section_reads_in_one_language(language: str) -> None:
    i18n.set_language(language)
    try:
        texts = [prose.section(job, key) for job in prose.SECTIONS for key in prose.SECTIONS[job]]
        texts += [
            prose.expired_line(2),
            prose.reminded_line(1),
            prose.attention_line(3, 1),
            prose.warning_line("x"),
            prose.report_line("r.csv"),
            prose.chart_alt("funnel"),
        ]
        report = prose.section("adoption_report", "title")
    finally:
        i18n.set_language(None)
    text = "\n".join(texts)
    assert not betrayed(text, language), betrayed(text, language)
    expected = {"fr": "# Rapport d'adoption\n\n", "en": "# Adoption report\n\n"}[language]
    assert report.startswith(expected)


@pytest.mark.parametrize(
    ("language", "count", "expected"),
    [
        ("fr", 1, f"1 invitation demande une intervention{NBSP}: 1 par rejet de l'adresse"),
        ("fr", 2, f"2 invitations demandent une intervention{NBSP}: 1 par rejet de l'adresse"),
        ("en", 1, "1 invitation needs a person: 1 bounced, 0 expired."),
        ("en", 2, "2 invitations need a person: 1 bounced, 1 expired."),
    ],
)
def test_the_attention_line_agrees_with_its_number(language, count, expected) -> None:  # type: ignore[no-untyped-def]
    i18n.set_language(language)
    try:
        assert prose.attention_line(count, 1).startswith(expected)
    finally:
        i18n.set_language(None)


def test_the_html_page_leaves_out_the_notes_and_the_hidden_inputs(tmp_path: Path) -> None:
    notes = new_markdown_cell(
        "Notes for developers: NOTE-MARKER", metadata={"tags": ["remove-cell"]}
    )
    shown = new_code_cell("CODE_MARKER = 1", metadata={"tags": ["remove-input"]})
    shown.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "# VISIBLE-HEADING"})
    ]
    plain = new_code_cell("PLAIN_MARKER = 2")
    path = tmp_path / "run.ipynb"
    nbformat.write(new_notebook(cells=[notes, shown, plain]), path)
    html = _export_html(path).read_text(encoding="utf-8")
    assert "NOTE-MARKER" not in html and "CODE_MARKER" not in html
    assert "VISIBLE-HEADING" in html and "PLAIN_MARKER" in html
