"""Dashboards for JupyterLab and Voila (ipywidgets 8).

Each dashboard is a small class built from a session factory and an actor; it reads its
widgets, calls one service and shows the result or the error's sentence. ``Dashboard`` holds
them all in tabs; ``open_dashboard()`` builds it from the configured database and actor.
"""

from __future__ import annotations

from selfcare_ops.widgets.app import Dashboard, open_dashboard
from selfcare_ops.widgets.branding import BrandingStudio
from selfcare_ops.widgets.bulk import BulkInvitationDashboard
from selfcare_ops.widgets.common import Services, error_message
from selfcare_ops.widgets.directory import DirectoryDashboard
from selfcare_ops.widgets.modules import ModulesRightsDashboard
from selfcare_ops.widgets.onboarding import OnboardingDashboard

__all__ = [
    "BrandingStudio",
    "BulkInvitationDashboard",
    "Dashboard",
    "DirectoryDashboard",
    "ModulesRightsDashboard",
    "OnboardingDashboard",
    "Services",
    "error_message",
    "open_dashboard",
]
