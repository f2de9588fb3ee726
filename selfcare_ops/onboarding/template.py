"""The empty template customers can fill in (French or English headers)."""

from __future__ import annotations

from pathlib import Path

from selfcare_ops.errors import ImportFileError
from selfcare_ops.i18n import _
from selfcare_ops.onboarding.headers import template_headers


def template_text(lang: str = "fr") -> str:
    """The header line: ``;``-separated in French (French Excel), ``,`` in English."""
    sep = ";" if lang == "fr" else ","
    return sep.join(template_headers(lang)) + "\r\n"


def write_template(path: str | Path, lang: str = "fr") -> Path:
    """Write the template as UTF-8 with BOM (Excel then reads the accents right)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template_text(lang), encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(
            _("The template {path} cannot be written: {problem}.").format(
                path=target, problem=exc.strerror
            )
        ) from exc
    return target
