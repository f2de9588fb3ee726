"""The domain never imports UI or runner libraries (ARCHITECTURE.md: imports point inward)."""

import ast
from pathlib import Path

import selfcare_ops

PACKAGE = Path(selfcare_ops.__file__).parent
UI_LIBRARIES = {
    "ipywidgets",
    "IPython",
    "click",
    "papermill",
    "voila",
    "traitlets",
    "starlette",
    "uvicorn",
}
OUTER_LAYERS = {"cli", "widgets", "web"}
RUNNER_MODULES = {"jobs"}  # the job runner is the one domain-side place that drives papermill


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_modules_import_no_ui_library():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in OUTER_LAYERS or relative.parts[0] == "migrations":
            continue
        allowed = {"papermill"} if relative.with_suffix("").parts[0] in RUNNER_MODULES else set()
        bad = (_imports(path) & UI_LIBRARIES) - allowed
        if bad:
            offenders[str(relative)] = sorted(bad)
    assert offenders == {}


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import ipywidgets as w\nfrom click import echo\n")
    assert _imports(sample) == {"ipywidgets", "click"}
