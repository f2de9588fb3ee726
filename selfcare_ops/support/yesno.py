"""The one yes/no vocabulary: every switch a person writes as a word reads it here.

Used by the configuration (``SELFCARE_OPS_SMTP_STARTTLS=oui``), job parameters
(``selfcare-ops jobs run onboarding -p invite yes``) and CSV rights columns (``Passer commande;
x``), so a word that means yes in one place means yes in all of them. Accepted, compared
without case, accents or surrounding spaces:

=====  ==========================================================
yes    ``oui``, ``o``, ``yes``, ``y``, ``vrai``, ``true``, ``on``, ``1``, ``x``
no     ``non``, ``n``, ``no``, ``faux``, ``false``, ``off``, ``0``
=====  ==========================================================

An empty value is none of these: each caller says what it means (a CSV cell or an unset
setting: no; a job parameter: refused). A CSV cell holding exactly ``-`` is not a word of this
vocabulary either: it is the import's clear marker (see :mod:`selfcare_ops.onboarding.values`).
"""

from __future__ import annotations

from selfcare_ops.support.textnorm import fold

YES_WORDS = frozenset({"oui", "o", "yes", "y", "vrai", "true", "on", "1", "x"})
NO_WORDS = frozenset({"non", "n", "no", "faux", "false", "off", "0"})
#: How refusals name the vocabulary.
YES_NO_HINT = "oui/non, yes/no, vrai/faux, true/false, on/off, 1/0 or x"


def yes_no(text: str) -> bool | None:
    """True or False for a word of the vocabulary; None for any other text (empty included)."""
    word = fold(text)
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


__all__ = ["NO_WORDS", "YES_NO_HINT", "YES_WORDS", "yes_no"]
