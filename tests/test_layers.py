"""The tree states the layers (ARCHITECTURE.md: imports point inward only).

Every top-level module or package of ``selfcare_ops`` sits in one layer; a module may import
from its own layer and the layers inside it, never from an outer one. A new package must be
given its layer here, so the tree and this test cannot drift apart.
"""

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

#: Inner to outer. The README's architecture section draws the same picture.
LAYERS: list[set[str]] = [
    {"errors", "config", "i18n", "support"},  # words, settings, helpers that know no domain
    {"store"},  # engines, sessions, the model, bulk inserts, migrations
    {"access", "access_words", "audit"},  # who may act, the words of a refusal, the trail
    {  # the services
        "accounts",
        "invitations",
        "organisations",
        "directory",
        "modules",
        "branding",
        "onboarding",
        "mail",
        "reports",
        "charts",
        "pages",
    },
    {"demo"},  # demo data and the demo's own helpers: no service imports it
    {"jobs"},  # scheduled notebooks, including the demo job
    {"cli", "widgets", "web"},  # the shells
]


def _layer_of(top: str) -> int:
    for depth, names in enumerate(LAYERS):
        if top in names:
            return depth
    raise AssertionError(f"selfcare_ops.{top} has no layer in tests/test_layers.py")


def _modules() -> list[tuple[Path, tuple[str, ...]]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        found.append((path, parts))
    return found


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _package_imports(path: Path) -> set[str]:
    """The top-level ``selfcare_ops`` names ``path`` imports (``from selfcare_ops import x``
    names ``x``; ``from selfcare_ops.x.y import z`` names ``x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.name}: relative import; write it absolute")
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "selfcare_ops":
                names.update(alias.name for alias in node.names)
                continue
            modules = [node.module]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "selfcare_ops" and len(parts) > 1:
                names.add(parts[1])
    return names


def test_domain_modules_import_no_ui_library():
    offenders = {}
    for path, parts in _modules():
        if parts[0] in OUTER_LAYERS or parts[:2] == ("store", "migrations"):
            continue
        allowed = {"papermill"} if parts[0] in RUNNER_MODULES else set()
        bad = (_imports(path) & UI_LIBRARIES) - allowed
        if bad:
            offenders["/".join(parts)] = sorted(bad)
    assert offenders == {}


def test_imports_point_inward_only():
    offenders = {}
    for path, parts in _modules():
        own = _layer_of(parts[0])
        outward = sorted(
            name for name in _package_imports(path) - {parts[0]} if _layer_of(name) > own
        )
        if outward:
            offenders["/".join(parts)] = outward
    assert offenders == {}


def test_every_top_level_name_has_a_layer():
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) or path.name in {"notebooks", "locale", "py.typed"}:
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            _layer_of(path.stem)


def test_demo_code_lives_in_demo_modules():
    """Services hold no demo helpers: a function with 'demo' in its name lives under demo/,
    or in the shells and the job that run the demo."""
    offenders = []
    for path, parts in _modules():
        if parts[0] in {"demo", "jobs", "cli"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and "demo" in node.name.split("_"):
                offenders.append(f"{'/'.join(parts)}:{node.name}")
    assert offenders == []


def test_the_checkers_see_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import ipywidgets as w\nfrom click import echo\n"
        "from selfcare_ops import audit\nfrom selfcare_ops.store.models import User\n"
    )
    assert _imports(sample) >= {"ipywidgets", "click"}
    assert _package_imports(sample) == {"audit", "store"}
