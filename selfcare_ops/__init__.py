"""selfcare_ops: operations toolkit for the Selfcare portal."""

__version__ = "0.1.0"
