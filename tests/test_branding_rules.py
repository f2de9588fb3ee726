"""The inheritance rule itself, against a naive reading of the seed (pure, property-based)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from selfcare_ops.branding.colors import parse_color
from selfcare_ops.branding.resolve import BUILTIN_DEFAULTS, FIELDS, NO_GRADIENT, resolve_levels
from selfcare_ops.modules import BUILTIN_MODULES, merge_modules
from selfcare_ops.store.models import MODULE_KEYS

values = st.one_of(st.none(), st.sampled_from(["#111111", "#222222", "x", "y"]))
gradient = st.one_of(st.none(), st.just(NO_GRADIENT), st.sampled_from(["#333333", "#444444"]))


@st.composite
def level(draw):
    own = [draw(values) for _ in FIELDS]
    own[FIELDS.index("gradient_color")] = draw(gradient)
    return tuple(own) if draw(st.booleans()) else None


@given(st.lists(level(), min_size=1, max_size=5))
def test_nearest_level_that_sets_a_field_wins(levels):
    chain = [(i + 1, f"L{i}", own) for i, own in enumerate(levels)]  # root first
    resolution = resolve_levels(chain)
    for f, name in enumerate(FIELDS):
        expected, source = BUILTIN_DEFAULTS[name], None
        for _org_id, ref, own in reversed(chain):  # walk up from the organisation
            if own is not None and own[f] is not None:
                expected, source = own[f], ref
                if name == "gradient_color" and expected == NO_GRADIENT:
                    expected = None
                break
        assert resolution.field(name)[:2] == (expected, source)


@given(st.lists(st.dictionaries(st.sampled_from(MODULE_KEYS), st.booleans()), max_size=5))
def test_module_toggles_nearest_level_wins(levels):
    resolution = BUILTIN_MODULES
    for i, own in enumerate(levels):
        resolution = merge_modules(resolution, own, f"L{i}", i)
    for key in MODULE_KEYS:
        deciders = [(i, own[key]) for i, own in enumerate(levels) if key in own]
        if deciders:
            i, state = deciders[-1]
            assert resolution.field(key)[:2] == (state, f"L{i}")
        else:
            assert resolution.field(key)[:2] == (True, None)


@given(st.integers(0, 0xFFFFFF), st.booleans())
def test_hex_colours_round_trip(number, upper):
    text = f"#{number:06x}"
    assert parse_color(text.upper() if upper else text) == text
    short = f"#{number >> 20:x}{(number >> 12) & 0xF:x}{(number >> 4) & 0xF:x}"
    assert parse_color(short) == "#" + "".join(c * 2 for c in short[1:])


def test_branding_and_modules_import_no_ui_library():
    import subprocess
    import sys

    code = (
        "import sys, selfcare_ops.branding, selfcare_ops.modules; "
        "print(sorted(m for m in ('click', 'ipywidgets', 'IPython', 'papermill') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
