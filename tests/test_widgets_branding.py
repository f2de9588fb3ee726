"""The branding studio: pick, edit with live counter/preview/warnings, save, reset."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image
from sqlalchemy import select

from selfcare_ops.branding import resolve_branding
from selfcare_ops.store.models import Organisation
from selfcare_ops.widgets.branding import BrandingStudio

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


def _png(width: int, height: int, colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10), "blue").save(buffer, format="GIF")
    return buffer.getvalue()


def _upload(widget, content: bytes, name: str) -> None:
    widget.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 3, 1, tzinfo=UTC),
        },
    )


def _effective(session_factory, ref: str):
    with session_factory() as session:
        org_id = session.scalar(select(Organisation.id).where(Organisation.ref == ref))
        return resolve_branding(session, org_id)


def test_search_pick_edit_preview_and_save(session_factory, tree):
    studio = BrandingStudio(session_factory, tree.system)
    assert studio.editor.layout.display == "none"
    studio.picker.search.value = "telecom"  # accent-insensitive, paged in the database
    assert "Page 1 / 1" in studio.picker.page_label.value
    assert ("Mon niveau (OP)", "OP") in studio.picker.select.options
    studio.picker.select.value = "CA"
    assert studio.editor.layout.display == ""
    assert "valeur par défaut" in studio.provenance.value

    # the live counter follows the message
    studio.message.value = "Bienvenue chez Virginie"
    assert studio.counter.value == f"{150 - len('Bienvenue chez Virginie')} caractères restants"
    studio.message.value = "x" * 152
    assert studio.counter.value == "2 caractères en trop"
    studio.message.value = "<b>Promo</b> & fibre"

    # unreadable colours: a warning with the suggested colour, and a button to use it
    studio.primary.text.value = "#ffff00"
    studio.text_colour.text.value = "#ffffff"
    assert "4.5:1" in studio.warnings.value
    suggestion = studio.suggestion
    assert suggestion and studio.suggest_button.layout.display == ""
    assert suggestion in studio.suggest_button.description
    studio.suggest_button.click()
    assert studio.text_colour.text.value == suggestion
    assert studio.suggest_button.layout.display == "none"
    assert "reste lisible" in studio.warnings.value
    # the preview shows the draft, with the user's text escaped
    assert "#ffff00" in studio.preview.value
    assert "&lt;b&gt;Promo&lt;/b&gt; &amp; fibre" in studio.preview.value
    assert "<b>Promo</b>" not in studio.preview.value
    assert "modifié, pas encore enregistré" in studio.provenance.value

    _upload(studio.logo_upload, _png(120, 60), "logo.png")
    assert "data:image/png;base64," in studio.preview.value
    _upload(studio.banner_upload, _png(800, 200, "navy"), "banniere.png")
    studio.link.value = "https://virginie.example/offres"
    studio.save_button.click()
    assert studio.save_feedback.kind == "success", studio.save_feedback.text
    effective = _effective(session_factory, "CA")
    assert effective.primary_color.value == "#ffff00"
    assert effective.primary_color.source == "CA"
    assert (effective.text_color.value, effective.text_color.source) == (suggestion, "CA")
    assert effective.banner_message.value == "<b>Promo</b> & fibre"
    assert effective.banner_link.value == "https://virginie.example/offres"
    assert effective.logo.value is not None and effective.logo.value.width == 120
    assert (effective.banner_image.value.width, effective.banner_image.source) == (800, "CA")
    # untouched fields keep inheriting
    assert effective.gradient_color.source is None
    assert "défini ici" in studio.provenance.value
    assert studio.save_button.disabled  # nothing left to save


def test_inherited_value_names_its_source_and_reset(session_factory, tree):
    partner = BrandingStudio(session_factory, tree.system)
    partner.picker.choose("PA")
    partner.primary.text.value = "#003366"
    partner.save_button.click()
    assert partner.save_feedback.kind == "success", partner.save_feedback.text

    studio = BrandingStudio(session_factory, tree.system)
    studio.picker.choose("CA")
    assert "hérité de PA" in studio.provenance.value
    studio.primary.text.value = "#660000"
    studio.save_button.click()
    assert _effective(session_factory, "CA").primary_color.source == "CA"

    studio.reset_field.value = "primary_color"
    studio.reset_button.click()
    assert studio.reset_feedback.kind == "success"
    assert _effective(session_factory, "CA").primary_color.source == "PA"
    assert "hérité de PA" in studio.provenance.value

    studio.message.value = "Un message"
    studio.save_button.click()
    studio.reset_all_button.click()
    assert studio.confirmation.pending  # asks first
    assert _effective(session_factory, "CA").banner_message.source == "CA"
    studio.confirmation.confirm_button.click()
    assert _effective(session_factory, "CA").banner_message.source is None


def test_invalid_inputs_are_readable_and_change_nothing(session_factory, tree):
    studio = BrandingStudio(session_factory, tree.system)
    studio.picker.choose("CA")
    before = _effective(session_factory, "CA")

    studio.primary.text.value = "#12345"  # not a colour
    assert "primary_color" in studio.warnings.value or "#12345" in studio.warnings.value
    studio.save_button.click()
    assert studio.save_feedback.kind == "error" and "#12345" in studio.save_feedback.text

    studio.load("CA")
    studio.link.value = "http://insecure.example"
    studio.save_button.click()
    assert studio.save_feedback.kind == "error" and "https" in studio.save_feedback.text

    studio.load("CA")
    studio.message.value = "y" * 151
    studio.save_button.click()
    assert studio.save_feedback.kind == "error" and "150" in studio.save_feedback.text

    studio.load("CA")
    # images are checked when chosen: the refusal shows next to the upload, nothing to save
    _upload(studio.logo_upload, _gif(), "logo.gif")
    assert studio.logo_feedback.kind == "error" and "GIF" in studio.logo_feedback.text.upper()
    assert studio.save_button.disabled

    studio.load("CA")
    _upload(studio.banner_upload, _png(2100, 100), "large.png")
    assert studio.banner_feedback.kind == "error" and "2000" in studio.banner_feedback.text

    studio.load("CA")
    _upload(studio.logo_upload, _png(900, 300), "big.png")
    refusal = studio.logo_feedback.text
    assert studio.logo_feedback.kind == "error" and "900 × 300" in refusal
    assert "« Réduire à 600 px si plus grand »" in refusal and "--fit" not in refusal
    studio.fit.value = True  # the seed's "600 px max": downscale instead
    assert studio.logo_feedback.kind == "success", studio.logo_feedback.text
    studio.save_button.click()
    assert studio.save_feedback.kind == "success", studio.save_feedback.text
    logo = _effective(session_factory, "CA").logo.value
    assert max(logo.width, logo.height) == 600

    after = _effective(session_factory, "CA")
    assert after.primary_color == before.primary_color
    assert after.banner_link == before.banner_link


def test_out_of_scope_and_manager_refused(session_factory, tree):
    studio = BrandingStudio(session_factory, tree.partner_b_admin)
    studio.picker.choose("CB")
    assert studio.editor.layout.display == "" and "CB" in studio.picker.current.value
    studio.picker.choose("CA")
    assert studio.feedback.kind == "error" and "hors de son périmètre" in studio.feedback.text
    assert studio.editor.layout.display == "none"  # CB's settings are not left on show
    assert studio.picker.current.value == "" and studio.ref is None

    manager = BrandingStudio(session_factory, tree.manager_siege)
    manager.picker.choose("CA")  # a manager may look
    manager.primary.text.value = "#000000"
    manager.save_button.click()
    assert manager.save_feedback.kind == "error"
    assert "administrateurs" in manager.save_feedback.text
