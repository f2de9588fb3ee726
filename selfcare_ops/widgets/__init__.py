"""Dashboards for JupyterLab and Voila (ipywidgets 8).

Each dashboard is a small class built from a session factory and an actor; it reads its
widgets, calls one service and shows the result or the error's sentence. ``Dashboard`` holds
them all in tabs; ``open_dashboard()`` builds it from the configured database and actor.

Names are imported when first used: opening the page imports the directory only, each other
dashboard's module comes with its tab.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "BrandingStudio": "branding",
    "BulkInvitationDashboard": "bulk",
    "Dashboard": "app",
    "DirectoryDashboard": "directory",
    "ModulesRightsDashboard": "modules",
    "OnboardingDashboard": "onboarding",
    "Services": "common",
    "error_message": "common",
    "open_dashboard": "app",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
