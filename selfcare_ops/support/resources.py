"""Files shipped inside the package: job notebooks, demo data, mail templates, migrations.

They are read through :mod:`importlib.resources`, never through a path computed from the source
tree, so an installed wheel finds them as a checkout does (``tests/test_packaging.py`` checks
that no module computes one). Where a library needs a real file (papermill's input notebook, a
CSV handed to a notebook), :func:`real_path` gives one.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "selfcare_ops"
#: The migrations' folder in the package (Alembic's ``env.py``, the scripts in ``versions/``),
#: spelled once: Alembic's location and :data:`MIGRATION_SCRIPTS` both derive from it.
_MIGRATIONS = ("store", "migrations")
#: Alembic's spelling of that folder, ``selfcare_ops.store:migrations`` (Alembic resolves it).
MIGRATIONS = f"{PACKAGE}.{_MIGRATIONS[0]}:{_MIGRATIONS[1]}"

# Temporary copies made for a zipped package live as long as the process (a kernel or a run
# may read them at any time): the stack is closed at exit.
_copies = ExitStack()
atexit.register(_copies.close)


def packaged(*parts: str) -> Traversable:
    """The packaged file or folder ``parts`` (e.g. ``packaged("notebooks", "ping.ipynb")``)."""
    return files(PACKAGE).joinpath(*parts)


def package_folder() -> Traversable:
    """The installed package itself (shown by the jobs: which ``selfcare_ops`` ran)."""
    return files(PACKAGE)


def real_path(resource: Traversable) -> Path:
    """A file-system path to ``resource``: itself for an unpacked install, else a temporary
    copy that lasts until the process ends."""
    if isinstance(resource, Path):
        return resource
    return _copies.enter_context(as_file(resource))


NOTEBOOKS_DIR = packaged("notebooks")
DEMO_DIR = packaged("demo", "data")
#: The migration scripts themselves (read without Alembic by ``store.db.head_revision``).
MIGRATION_SCRIPTS = packaged(*_MIGRATIONS, "versions")
