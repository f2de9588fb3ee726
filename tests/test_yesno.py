"""One yes/no vocabulary (``selfcare_ops.support.yesno``): the configuration, job parameters and CSV
rights cells read the same words the same way; each keeps its own refusal and empty value."""

from __future__ import annotations

import pytest

from selfcare_ops.config import Settings
from selfcare_ops.errors import ConfigurationError, ValidationError
from selfcare_ops.jobs.registry import coerce
from selfcare_ops.onboarding import values
from selfcare_ops.onboarding.headers import FIELDS
from selfcare_ops.onboarding.normalise import normalise_row
from selfcare_ops.onboarding.reading import RawRow
from selfcare_ops.support.yesno import NO_WORDS, YES_WORDS, yes_no


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


SPELLINGS = {"oui": "OUI", "vrai": "Vrai", "yes": " Yes ", "x": "X", "non": "Non", "faux": "FAUX"}
WORDS = [(word, True) for word in sorted(YES_WORDS)] + [(word, False) for word in sorted(NO_WORDS)]


def _starttls(raw: str) -> bool:
    return Settings.from_env({"SELFCARE_OPS_SMTP_STARTTLS": raw}).smtp_starttls


@pytest.mark.parametrize(("word", "meaning"), WORDS)
def test_every_caller_reads_every_word_alike(word: str, meaning: bool) -> None:
    for spelled in {word, SPELLINGS.get(word, word.upper())}:
        assert yes_no(spelled) is meaning
        assert _starttls(spelled) is meaning  # a setting
        assert coerce("invite", spelled, False) is meaning  # -p invite yes
        assert values.boolean(spelled) is meaning  # a rights cell of a CSV file


@pytest.mark.parametrize("word", ["peut-être", "maybe", "2", "si", "-"])
def test_other_words_are_refused_by_every_caller(word: str) -> None:
    assert yes_no(word) is None
    with pytest.raises(ConfigurationError, match="must be true or false"):
        _starttls(word)
    with pytest.raises(ValidationError, match="invite must be true or false"):
        coerce("invite", word, False)
    with pytest.raises(values.CellError, match="is not a yes/no value"):
        values.boolean(word)


def test_empty_means_no_for_settings_and_cells_and_is_refused_for_a_job() -> None:
    assert _starttls("") is False and values.boolean("") is False
    with pytest.raises(ValidationError):
        coerce("invite", "", False)


def test_the_csv_clear_marker_stays_apart() -> None:
    """A rights cell holding exactly ``-`` turns the right off; elsewhere it is no word."""
    labels = {name: spellings[0] for name, spellings in FIELDS.items()}
    cells = {"last_name": "Un", "first_name": "Alain", "right_place_orders": "-"}
    clean, problems = normalise_row(RawRow(2, cells), labels)
    assert problems == [] and clean["right_place_orders"] is False
    cells["right_place_orders"] = "peut-être"
    _, problems = normalise_row(RawRow(2, cells), labels)
    assert problems and "is not a yes/no value" in problems[0]
