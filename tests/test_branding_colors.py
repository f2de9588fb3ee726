"""Colours, WCAG contrast and readability warnings (pure functions, no database)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfcare_ops.branding.colors import (
    CSS_COLOURS,
    MIN_CONTRAST,
    any_readable_text,
    contrast_ratio,
    format_ratio,
    parse_color,
    readability_warnings,
    readable,
    relative_luminance,
    suggest_text_color,
)
from selfcare_ops.branding.values import (
    MESSAGE_MAX_CHARS,
    clean_link,
    clean_message,
    remaining_characters,
    remaining_label,
)
from selfcare_ops.errors import ValidationError


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


hex_colours = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


@pytest.mark.parametrize(
    ("text", "background", "shown", "passes"),
    [
        ("#777777", "#ffffff", "4.47", False),
        ("#767676", "#ffffff", "4.54", True),
        ("#000000", "#ffffff", "21.00", True),
        ("#ffffff", "#ffffff", "1.00", False),
        ("#468177", "#ffffff", "4.49", False),  # 4.4997...: never rounded up to 4.50
        ("#ffffff", "#e2001a", "4.94", True),
    ],
)
def test_contrast_against_known_wcag_pairs(text, background, shown, passes):
    ratio = contrast_ratio(text, background)
    assert format_ratio(ratio) == shown
    assert readable(text, background) is passes
    assert contrast_ratio(background, text) == ratio


def test_luminance_extremes():
    assert relative_luminance("#000000") == 0
    assert relative_luminance("#ffffff") == pytest.approx(1.0)


@given(st.floats(min_value=1, max_value=21, allow_nan=False))
def test_format_ratio_truncates_and_never_rounds_up(ratio):
    shown = float(format_ratio(ratio))
    assert shown <= ratio
    assert ratio - shown < 0.01 + 1e-9


@pytest.mark.parametrize(
    ("given_text", "stored"),
    [
        ("#ABC", "#aabbcc"),
        ("#A1b2C3", "#a1b2c3"),
        ("  #000000 ", "#000000"),
        ("navy", "#000080"),
        ("RebeccaPurple", "#663399"),
        ("White", "#ffffff"),
    ],
)
def test_parse_color_accepts_hex_and_css_names(given_text, stored):
    assert parse_color(given_text) == stored


@pytest.mark.parametrize(
    "bad", ["", "#abcd", "#12345g", "red;", "rgb(1,2,3)", "notacolour", "123456"]
)
def test_parse_color_refuses_other_text_naming_it(bad):
    with pytest.raises(ValidationError) as info:
        parse_color(bad, field="primary_color")
    assert repr(bad) in str(info.value)
    assert info.value.field == "primary_color"


def test_css_table_is_the_css_named_colours():
    assert len(CSS_COLOURS) == 148
    assert CSS_COLOURS["grey"] == CSS_COLOURS["gray"] == "#808080"


@settings(max_examples=60, deadline=None)
@given(hex_colours, hex_colours, st.one_of(st.none(), hex_colours))
def test_suggested_text_colour_reaches_the_threshold_on_every_end(text, primary, gradient):
    ends = (primary,) if gradient is None else (primary, gradient)
    suggestion = suggest_text_color(text, ends)
    assert (suggestion is not None) == any_readable_text(ends)
    if suggestion is not None:
        assert all(contrast_ratio(suggestion, end) >= MIN_CONTRAST for end in ends)


def test_a_single_background_always_has_a_readable_text_colour():
    for value in range(0, 256, 5):
        assert any_readable_text((f"#{value:02x}{value:02x}{value:02x}",))


def test_low_contrast_warning_names_ratio_threshold_and_suggestion():
    (warning,) = readability_warnings("#ffcc00", None, "#ffffff")
    assert warning.code == "low_contrast"
    assert warning.field == "primary_color"
    assert "1.51:1" in warning.message and "4.5:1" in warning.message
    assert warning.suggestion and warning.suggestion in warning.message
    assert contrast_ratio(warning.suggestion, "#ffcc00") >= MIN_CONTRAST


def test_suggestion_is_a_shade_of_the_chosen_text_colour_when_one_works():
    (warning,) = readability_warnings("#ffffff", None, "#777777")
    assert warning.suggestion == "#767676"  # one step darker is enough


def test_gradient_too_different_warning():
    warnings = readability_warnings("#000080", "#ffff00", "#ffffff")
    codes = [w.code for w in warnings]
    assert "gradient_too_different" in codes
    message = next(w.message for w in warnings if w.code == "gradient_too_different")
    assert "too different" in message and "#000080" in message and "#ffff00" in message


def test_far_apart_gradient_is_fine_when_a_grey_reads_on_both_ends():
    # black -> white: #767676 reaches 4.54:1 on white and 4.6:1 on black.
    assert readability_warnings("#000000", "#ffffff", "#767676") == ()
    warnings = readability_warnings("#000000", "#ffffff", "#ffffff")
    assert [w.code for w in warnings] == ["low_contrast"]
    assert warnings[0].field == "gradient_color"


def test_readable_defaults_have_no_warning():
    assert readability_warnings("#e2001a", None, "#ffffff") == ()
    assert readability_warnings("#003366", "#0066cc", "#ffffff") == ()


# --- the dashboard message and link -----------------------------------------------------------


def test_remaining_characters_as_in_the_seed():
    assert remaining_characters("Bienvenue sur votre Selfcare utilisateur") == 110
    assert remaining_label("Bienvenue sur votre Selfcare utilisateur") == "110 characters left"
    assert remaining_label("x" * 149) == "1 character left"
    assert remaining_label("x" * 152) == "2 characters too many"
    assert remaining_characters(None) == MESSAGE_MAX_CHARS


def test_message_limit_counts_after_trimming_and_composed_accents():
    assert clean_message("  " + "é" * 150 + "\n ") == "é" * 150
    assert len(clean_message("e\u0301" * 150)) == 150  # decomposed accents count once
    with pytest.raises(ValidationError) as info:
        clean_message("x" * 151)
    assert "151" in str(info.value) and "150" in str(info.value)
    assert info.value.limit == 150 and info.value.actual == 151


def test_message_keeps_html_as_text_and_refuses_control_characters():
    assert clean_message("<b>Promo</b> & <script>x</script>") == "<b>Promo</b> & <script>x</script>"
    with pytest.raises(ValidationError, match="U\\+0007"):
        clean_message("bip\x07")
    with pytest.raises(ValidationError, match="empty"):
        clean_message("   ")


@given(st.text(max_size=300))
def test_message_rule_matches_the_counter(text):
    try:
        cleaned = clean_message(text)
    except ValidationError:
        return
    assert remaining_characters(cleaned) >= 0
    assert remaining_characters(text) == remaining_characters(cleaned)


@pytest.mark.parametrize(
    "url", ["https://sewan.fr", "https://www.sewan.fr/offres?x=1#haut", "HTTPS://Sewan.fr/a"]
)
def test_links_accepted(url):
    assert clean_link(f" {url} ") == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://sewan.fr", "https://"),
        ("sewan.fr", "https://"),
        ("javascript:alert(1)", "https://"),
        ("https://", "host"),
        ("https:///chemin", "host"),
        ("https://sewan", "host"),
        ("https://user:pw@sewan.fr", "password"),
        ("https://sewan.fr/a b", "spaces"),
        ("https://sewan.fr:99999", "not a valid address"),
        ("https://sewan.fr/" + "a" * 2000, "2000"),
    ],
)
def test_links_refused_with_reason(url, reason):
    with pytest.raises(ValidationError, match=reason):
        clean_link(url)


@given(st.text(max_size=60))
def test_accepted_links_are_https_with_a_host(text):
    from urllib.parse import urlsplit

    for candidate in (text, "https://" + text):
        try:
            link = clean_link(candidate)
        except ValidationError:
            continue
        parts = urlsplit(link)
        assert parts.scheme.lower() == "https" and parts.hostname
        assert not any(c.isspace() for c in link)
