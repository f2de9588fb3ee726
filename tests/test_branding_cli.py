"""The ``branding`` commands through click's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from selfcare_ops.cli import main
from selfcare_ops.store.models import Asset


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


FIELDS = [
    "logo",
    "primary_color",
    "gradient_color",
    "text_color",
    "banner_image",
    "banner_link",
    "banner_message",
]


def run(db_url, *args):
    result = CliRunner().invoke(main, list(args), env={"SELFCARE_OPS_DATABASE_URL": db_url})
    assert "Traceback" not in result.output
    return result


def image_file(path, size, fmt="PNG", colour="navy"):
    Image.new("RGB", size, colour).save(path, fmt)
    return str(path)


def test_show_json_has_value_and_source_per_field_plus_warnings(db_url, tree):
    result = run(db_url, "branding", "show", "CA", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == [*FIELDS, "warnings"]
    for name in FIELDS:
        assert set(data[name]) == {"value", "source"}
    assert data["primary_color"] == {"value": "#e2001a", "source": None}
    assert {w["code"] for w in data["warnings"]} == {"missing_asset"}


def test_set_then_show_and_reset(db_url, tree, tmp_path):
    logo = image_file(tmp_path / "logo.jpg", (1200, 400), "JPEG")
    banner = image_file(tmp_path / "banner.png", (1600, 400))
    result = run(
        db_url,
        "branding",
        "set",
        "PA",
        "--logo",
        logo,
        "--fit",
        "--primary",
        "#036",
        "--gradient",
        "steelblue",
        "--text",
        "white",
        "--banner",
        banner,
        "--link",
        "https://alpha.example/offres",
        "--message",
        "  Nouvelles offres <b>mobiles</b>  ",
    )
    assert result.exit_code == 0, result.output
    assert "Branding of PA updated: logo, primary_color, gradient_color" in result.output
    assert "downscaled from 1200 x 400 px" in result.output
    data = json.loads(run(db_url, "branding", "show", "CA", "--json").output)
    assert data["primary_color"] == {"value": "#003366", "source": "PA"}
    assert data["gradient_color"] == {"value": "#4682b4", "source": "PA"}
    assert data["banner_message"] == {"value": "Nouvelles offres <b>mobiles</b>", "source": "PA"}
    assert data["logo"]["value"]["width"] == 600 and data["logo"]["value"]["height"] == 200
    assert data["logo"]["source"] == "PA"
    warned = {w["code"] for w in data["warnings"]}
    assert "low_contrast" in warned  # white on steelblue is 3.66:1
    text = run(db_url, "branding", "show", "CA")
    assert "primary_color   #003366" in text.output and "PA" in text.output
    assert "Warning: The text colour #ffffff on the gradient end colour #4682b4" in text.output
    one = run(db_url, "branding", "reset", "PA", "--field", "gradient_color")
    assert one.exit_code == 0 and "reset to inherit: gradient_color." in one.output
    assert "Warning" not in one.output
    everything = run(db_url, "branding", "reset", "PA")
    assert everything.exit_code == 0
    assert "logo, primary_color, text_color, banner_image" in everything.output
    data = json.loads(run(db_url, "branding", "show", "CA", "--json").output)
    assert all(data[name]["source"] is None for name in FIELDS)


def test_set_refusals_are_one_sentence_and_change_nothing(db_url, tree, tmp_path, engine):
    big = image_file(tmp_path / "big.png", (601, 100))
    result = run(db_url, "branding", "set", "CA", "--logo", big, "--primary", "black")
    assert result.exit_code == 1
    assert result.output.startswith("Error: The logo is 601 x 100 px; at most 600 px")
    too_long = run(db_url, "branding", "set", "CA", "--message", "é" * 151)
    assert too_long.exit_code == 1 and "151 characters" in too_long.output
    bad_colour = run(db_url, "branding", "set", "CA", "--primary", "bleu")
    assert bad_colour.exit_code == 1 and "'bleu' is not a colour" in bad_colour.output
    link = run(db_url, "branding", "set", "CA", "--link", "http://virginie.example")
    assert link.exit_code == 1 and "https://" in link.output
    nothing = run(db_url, "branding", "set", "CA")
    assert nothing.exit_code == 1 and "Nothing to change" in nothing.output
    data = json.loads(run(db_url, "branding", "show", "CA", "--json").output)
    assert data["primary_color"]["source"] is None
    with engine.connect() as connection:
        assert connection.execute(select(Asset.id)).first() is None


def test_scope_through_the_cli(db_url, tree):
    denied = run(db_url, "--as", "admin@pb.example", "branding", "set", "CA", "--primary", "red")
    assert denied.exit_code == 1 and "outside their scope" in denied.output
    manager = run(db_url, "--as", "marc@virginie.example", "branding", "reset", "CA")
    assert manager.exit_code == 1 and "only administrators" in manager.output
    own = run(db_url, "--as", "alice@virginie.example", "branding", "set", "CA", "--text", "#000")
    assert own.exit_code == 0, own.output


def test_check_image_exit_status(db_url, tmp_path):
    ok = run(
        db_url,
        "branding",
        "check-image",
        image_file(tmp_path / "a.png", (600, 600)),
        "--kind",
        "logo",
    )
    assert ok.exit_code == 0 and ok.output.startswith("Acceptable: PNG logo, 600 x 600 px")
    big = image_file(tmp_path / "b.png", (700, 100))
    refused = run(db_url, "branding", "check-image", big, "--kind", "logo")
    assert refused.exit_code == 1 and "700 x 100 px" in refused.output
    fitted = run(db_url, "branding", "check-image", big, "--kind", "logo", "--fit")
    assert fitted.exit_code == 0 and "600 x 86 px" in fitted.output
    gif = image_file(tmp_path / "c.png", (10, 10), "GIF")
    refused = run(db_url, "branding", "check-image", gif, "--kind", "banner")
    assert refused.exit_code == 1 and "GIF" in refused.output
    missing = run(db_url, "branding", "check-image", str(tmp_path / "none.png"), "--kind", "logo")
    assert missing.exit_code in (1, 2)
    wrong_kind = run(db_url, "branding", "check-image", big, "--kind", "favicon")
    assert wrong_kind.exit_code == 2


def test_preview_writes_png_and_html(db_url, tree, tmp_path):
    out = tmp_path / "out" / "ca.png"
    result = run(db_url, "branding", "preview", "CA", "--out", str(out))
    assert result.exit_code == 0 and result.output.strip() == str(out)
    assert Image.open(out).size == (1000, 680)
    html_out = tmp_path / "ca.html"
    assert run(db_url, "branding", "preview", "CA", "--out", str(html_out)).exit_code == 0
    assert 'class="sc-preview"' in html_out.read_text(encoding="utf-8")
    denied = run(db_url, "--as", "admin@pb.example", "branding", "preview", "CA", "--out", str(out))
    assert denied.exit_code == 1


def test_audit_json_and_csv(db_url, tree, tmp_path):
    assert run(db_url, "branding", "set", "CB", "--primary", "#ffcc00").exit_code == 0
    result = run(db_url, "branding", "audit", "--json", "--csv", str(tmp_path / "audit.csv"))
    assert result.exit_code == 0, result.output
    rows = {row["organisation_ref"]: row for row in json.loads(result.output)}
    assert set(rows) == {"OP", "PA", "PA1", "PB", "CA", "CA1", "CB"}  # no logo anywhere
    assert "low_contrast" in rows["CB"]["codes"]
    with open(tmp_path / "audit.csv", encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.DictReader(handle, delimiter=";"))) == 7
    text = run(db_url, "--as", "admin@pb.example", "branding", "audit")
    assert "2 organisations with branding problems." in text.output


def test_seeded_defaults_silence_the_audit(db_url, tree, session_factory):
    from selfcare_ops.branding import seed_default_branding

    with session_factory.begin() as session:
        seed_default_branding(session)
    result = run(db_url, "branding", "audit", "--json")
    assert json.loads(result.output) == []
    shown = json.loads(run(db_url, "branding", "show", "CB", "--json").output)
    assert shown["logo"]["source"] == "OP" and shown["warnings"] == []
    assert shown["banner_link"]["value"].startswith("https://")


def test_gradient_none_stops_an_inherited_gradient(db_url, tree):
    assert run(db_url, "branding", "set", "OP", "--gradient", "#0066cc").exit_code == 0
    assert run(db_url, "branding", "set", "PA", "--gradient", "none").exit_code == 0
    data = json.loads(run(db_url, "branding", "show", "CA", "--json").output)
    assert data["gradient_color"] == {"value": None, "source": "PA"}
    text = run(db_url, "branding", "show", "CA").output
    assert "(no gradient)" in text
    other = json.loads(run(db_url, "branding", "show", "CB", "--json").output)
    assert other["gradient_color"] == {"value": "#0066cc", "source": "OP"}
