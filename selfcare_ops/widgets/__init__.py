"""Dashboards for JupyterLab and Voila (ipywidgets 8), each built from a session factory and
an actor, each calling the services only."""

from __future__ import annotations

from .common import Services, error_message
from .directory import DirectoryDashboard

__all__ = ["DirectoryDashboard", "Services", "error_message"]
