"""Branding studio: the seed's "ADMIN SELFCARE" personalisation in a notebook.

Choose an organisation (your own level or a client found by a paged search), see every
effective value with where it comes from, edit logo, banner, colours, link and message with a
live preview and live readability warnings (with the suggested text colour), then save only
what was touched, reset one field or everything. Validation, inheritance, contrast and the
preview itself are the branding service's; this module only wires widgets to it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from typing import Any

import ipywidgets as widgets
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker
from traitlets import TraitError

from selfcare_ops import branding, modules
from selfcare_ops.access import Actor
from selfcare_ops.branding.issues import issues_for
from selfcare_ops.branding.values import remaining_label
from selfcare_ops.errors import SelfcareError, ValidationError
from selfcare_ops.widgets.common import (
    Confirmation,
    Feedback,
    OrganisationPicker,
    Services,
    guard,
    html_table,
    section,
    uploaded_files,
)

FIELD_LABELS = {
    "logo": "Logo",
    "primary_color": "Couleur principale",
    "gradient_color": "Couleur de fin du dégradé",
    "text_color": "Couleur du texte",
    "banner_image": "Image de bannière",
    "banner_link": "Lien de la bannière",
    "banner_message": "Message personnalisé",
}
DRAFT = "(brouillon)"


def source_text(source: str | None, ref: str | None) -> str:
    """Where a value comes from, in the analyst's words."""
    if source == DRAFT:
        return "modifié, pas encore enregistré"
    if source is None:
        return "valeur par défaut"
    if source == ref:
        return "défini ici"
    return f"hérité de {source}"


def _value_text(name: str, value: Any) -> str:
    if value is None or value == "":
        return "aucun dégradé" if name == "gradient_color" else "—"
    if isinstance(value, branding.AssetRef):
        return f"{value.mime}, {value.width} × {value.height} px, {value.size // 1024} Ko"
    return str(value)


class _ColourField:
    """A hexadecimal code typed or picked: a Text (what is saved) and a swatch picker."""

    def __init__(self, description: str, on_edit: Any) -> None:
        self.text = widgets.Text(description=description, placeholder="#rrggbb ou nom CSS")
        self.picker = widgets.ColorPicker(concise=True, value="#000000")
        self._syncing = False
        self.on_edit = on_edit
        self.text.observe(self._from_text, names="value")
        self.picker.observe(self._from_picker, names="value")
        self.box = widgets.HBox([self.text, self.picker])

    def load(self, value: str | None) -> None:
        self._syncing = True
        try:
            self.text.value = value or ""
            if value:
                self.picker.value = value
        finally:
            self._syncing = False

    def _from_text(self, change: dict) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.picker.value = change["new"].strip()
        except TraitError:
            pass  # not a colour the picker knows: the service says why on save
        finally:
            self._syncing = False
        self.on_edit()

    def _from_picker(self, change: dict) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.text.value = change["new"]
        finally:
            self._syncing = False
        self.on_edit()


class BrandingStudio:
    """Personalise an organisation: logo, colours, message, with provenance and preview."""

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor) -> None:
        self.services = Services(session_factory, actor)
        self.feedback = Feedback()
        safe = guard(self.feedback)
        self.ref: str | None = None
        self.effective: branding.ResolvedBranding | None = None
        self.modules: dict[str, Any] = {}
        self.issues: tuple[Any, ...] = ()
        self.suggestion: str | None = None
        self._logo_uri: str | None = None
        self._banner_uri: str | None = None
        self._dirty: set[str] = set()
        self._loading = False
        self._logo: bytes | None = None
        self._banner: bytes | None = None

        with self.services.read() as session:
            own = branding.resolve_branding(session, actor.organisation_id).organisation_ref
        self.picker = OrganisationPicker(self.services, self.feedback, self.load, own_ref=own)

        edit = safe(self._on_edit)
        self.primary = _ColourField("Principale", lambda: edit("primary_color"))
        self.gradient_on = widgets.Checkbox(description="Dégradé", indent=False)
        self.gradient = _ColourField("Fin dégradé", lambda: edit("gradient_color"))
        self.text_colour = _ColourField("Texte", lambda: edit("text_color"))
        self.logo_upload = widgets.FileUpload(
            accept="image/png,image/jpeg", multiple=False, description="Importer le logo"
        )
        self.fit = widgets.Checkbox(
            description="Réduire à 600 px si plus grand", indent=False, value=False
        )
        self.banner_upload = widgets.FileUpload(
            accept="image/png,image/jpeg", multiple=False, description="Importer la bannière"
        )
        self.link = widgets.Text(
            description="Lien",
            placeholder="https://…",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.message = widgets.Textarea(
            description="Message", continuous_update=True, layout=widgets.Layout(width="60%")
        )
        self.counter = widgets.Label("")
        self.provenance = widgets.HTML("")
        self.warnings = widgets.HTML("")
        self.suggest_button = widgets.Button(
            description="Utiliser la couleur suggérée", layout=widgets.Layout(width="auto")
        )
        self.suggest_button.layout.display = "none"
        self.preview = widgets.HTML("")
        self.save_button = widgets.Button(
            description="Enregistrer", button_style="primary", icon="save", disabled=True
        )
        self.reset_field = widgets.Dropdown(
            options=[(label, name) for name, label in FIELD_LABELS.items()],
            description="Champ",
        )
        self.reset_button = widgets.Button(
            description="Réinitialiser ce champ", layout=widgets.Layout(width="auto")
        )
        self.reset_all_button = widgets.Button(
            description="Tout réinitialiser",
            button_style="warning",
            layout=widgets.Layout(width="auto"),
        )
        self.confirmation = Confirmation(self.feedback)

        self.gradient_on.observe(lambda _c: edit("gradient_color"), names="value")
        self.link.observe(lambda _c: edit("banner_link"), names="value")
        self.message.observe(lambda _c: edit("banner_message"), names="value")
        self.logo_upload.observe(safe(self._on_logo), names="value")
        self.banner_upload.observe(safe(self._on_banner), names="value")
        self.fit.observe(lambda _c: edit("logo") if self._logo else None, names="value")
        self.suggest_button.on_click(safe(self._on_suggestion))
        self.save_button.on_click(safe(self._on_save))
        self.reset_button.on_click(safe(self._on_reset_field))
        self.reset_all_button.on_click(safe(self._on_reset_all))

        self.editor = widgets.VBox(
            [
                section("Identité visuelle"),
                widgets.HBox([self.logo_upload, self.fit]),
                self.primary.box,
                widgets.HBox([self.gradient_on, self.gradient.box]),
                self.text_colour.box,
                self.warnings,
                self.suggest_button,
                section("Message personnalisé"),
                self.banner_upload,
                self.link,
                self.message,
                self.counter,
                widgets.HBox([self.save_button]),
                section("Provenance des valeurs"),
                self.provenance,
                widgets.HBox([self.reset_field, self.reset_button, self.reset_all_button]),
                self.confirmation,
                section("Prévisualisation"),
                self.preview,
            ]
        )
        self.editor.layout.display = "none"
        self.widget = widgets.VBox(
            [section("Personnalisation"), self.picker, self.feedback, self.editor]
        )
        self.widget.add_class("selfcare-branding")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def follow_client(self, client_ref: str) -> None:
        if self.ref is None:
            self.picker.choose(client_ref)

    # --- load ------------------------------------------------------------------------------

    def load(self, ref: str | None) -> None:
        """Show the effective branding of ``ref`` and fill the form with it."""
        self.feedback.clear()
        self.editor.layout.display = "none"  # until the new organisation is loaded
        self.ref = None
        if not ref:
            return
        with self.services.read() as session:
            effective = branding.show_branding(session, self.services.actor, ref)
            states = modules.show_modules(session, self.services.actor, ref)
            logo, banner = effective.logo.value, effective.banner_image.value
            self._logo_uri = branding.asset_data_uri(session, logo) if logo else None
            self._banner_uri = branding.asset_data_uri(session, banner) if banner else None
        self.ref, self.effective, self.modules = ref, effective, states
        self._loading = True
        try:
            self.primary.load(effective.primary_color.value)
            gradient = effective.gradient_color.value
            self.gradient_on.value = bool(gradient)
            self.gradient.load(gradient or effective.primary_color.value)
            self.text_colour.load(effective.text_color.value)
            self.link.value = effective.banner_link.value or ""
            self.message.value = effective.banner_message.value or ""
            self._logo = self._banner = None
            self.logo_upload.value = ()  # so that choosing the same file again is seen
            self.banner_upload.value = ()
        finally:
            self._loading = False
        self._dirty.clear()
        self.editor.layout.display = ""
        self.render()

    # --- edit ------------------------------------------------------------------------------

    def _on_edit(self, name: str) -> None:
        if self._loading or self.effective is None:
            return
        self._dirty.add(name)
        self.render()

    def _on_logo(self, _change: Any) -> None:
        files = uploaded_files(self.logo_upload)
        if files:
            self._logo = files[0][1]
            self._on_edit("logo")

    def _on_banner(self, _change: Any) -> None:
        files = uploaded_files(self.banner_upload)
        if files:
            self._banner = files[0][1]
            self._on_edit("banner_image")

    def _on_suggestion(self, _button: Any) -> None:
        if self.suggestion:
            self.text_colour.load(self.suggestion)
            self._on_edit("text_color")

    def _colour(self, field: _ColourField, name: str, problems: list[str]) -> str | None:
        try:
            return branding.parse_color(field.text.value, field=name)
        except SelfcareError as exc:
            problems.append(str(exc))
            return None

    def draft(self) -> tuple[branding.ResolvedBranding, list[str]]:
        """The effective branding with the unsaved edits laid over it, and invalid inputs."""
        assert self.effective is not None
        problems: list[str] = []
        changes: dict[str, Any] = {}

        def put(name: str, value: Any) -> None:
            changes[name] = branding.ResolvedField(value, DRAFT)

        if "primary_color" in self._dirty:
            value = self._colour(self.primary, "primary_color", problems)
            if value:
                put("primary_color", value)
        if "gradient_color" in self._dirty:
            if not self.gradient_on.value:
                put("gradient_color", None)
            else:
                value = self._colour(self.gradient, "gradient_color", problems)
                if value:
                    put("gradient_color", value)
        if "text_color" in self._dirty:
            value = self._colour(self.text_colour, "text_color", problems)
            if value:
                put("text_color", value)
        if "banner_link" in self._dirty:
            put("banner_link", self.link.value.strip() or None)
        if "banner_message" in self._dirty:
            put("banner_message", self.message.value)
        return dataclasses.replace(self.effective, **changes), problems

    def render(self) -> None:
        """Counter, provenance, readability warnings and preview, from the current form."""
        if self.effective is None:
            return
        draft, problems = self.draft()
        self.counter.value = remaining_label(self.message.value)
        rows = []
        for name, label in FIELD_LABELS.items():
            field = draft.field(name)
            source = DRAFT if name in self._dirty else field.source
            value = (
                "nouvelle image"
                if name in self._dirty and name in ("logo", "banner_image")
                else (_value_text(name, field.value))
            )
            swatch = ""
            if name.endswith("_color") and field.value:
                swatch = (
                    f'<span style="display:inline-block;width:14px;height:14px;'
                    f"background:{html.escape(str(field.value))};border:1px solid #999;"
                    'vertical-align:middle;margin-right:4px"></span>'
                )
            rows.append(
                {
                    "label": label,
                    "value": swatch + html.escape(value),  # the swatch is our own HTML
                    "source": source_text(source, self.ref),
                }
            )
        self.provenance.value = html_table(
            pd.DataFrame(rows),
            headers={"label": "Champ", "value": "Valeur", "source": "Provenance"},
            raw_columns=["value"],
            column_classes={"source": "selfcare-source"},
            table_class="selfcare-provenance",
        )
        has_logo = self._logo is not None or draft.logo.value is not None
        has_banner = self._banner is not None or draft.banner_image.value is not None
        self.issues = issues_for(
            draft.primary_color.value,
            draft.gradient_color.value,
            draft.text_color.value,
            has_logo or None,
            has_banner or None,
        )
        readability = [i for i in self.issues if i.code != "missing_asset"]
        self.suggestion = next((i.suggestion for i in readability if i.suggestion), None)
        items = [f'<li class="selfcare-invalid">{html.escape(p)}</li>' for p in problems]
        for issue in readability:
            text = html.escape(issue.message)
            if issue.code == "gradient_too_different":
                text = (
                    "Attention, les deux couleurs du dégradé sont trop différentes pour pouvoir "
                    f"afficher le texte de manière optimale. <small>({text})</small>"
                )
            items.append(f'<li class="selfcare-warning-{issue.code}">{text}</li>')
        self.warnings.value = (
            f'<ul class="selfcare-readability" style="color:#8a4b00">{"".join(items)}</ul>'
            if items
            else '<p class="selfcare-readable" style="color:#1b5e20">Le texte reste lisible '
            "sur toutes les couleurs (contraste ≥ 4,5:1).</p>"
        )
        self.suggest_button.layout.display = "" if self.suggestion else "none"
        if self.suggestion:
            self.suggest_button.description = f"Utiliser la couleur suggérée {self.suggestion}"
        logo_uri = _data_uri(self._logo) if self._logo else self._logo_uri
        banner_uri = _data_uri(self._banner) if self._banner else self._banner_uri
        self.preview.value = branding.preview_html(
            draft,
            self.modules,
            organisation_name=self.picker.select.label or self.ref or "",
            logo_uri=logo_uri,
            banner_uri=banner_uri,
            issues=self.issues,
        )
        self.save_button.disabled = not self._dirty

    # --- save and reset --------------------------------------------------------------------

    def _require_ref(self) -> str:
        if not self.ref:
            raise ValidationError("Choose an organisation first.", field="organisation")
        return self.ref

    def _on_save(self, _button: Any = None) -> None:
        ref = self._require_ref()
        if not self._dirty:
            raise ValidationError("Nothing was changed: there is nothing to save.")
        kwargs: dict[str, Any] = {}
        if "logo" in self._dirty and self._logo is not None:
            kwargs.update(logo=self._logo, fit=self.fit.value)
        if "banner_image" in self._dirty and self._banner is not None:
            kwargs["banner"] = self._banner
        if "primary_color" in self._dirty:
            kwargs["primary_color"] = self.primary.text.value
        if "gradient_color" in self._dirty:
            kwargs["gradient_color"] = (
                self.gradient.text.value if self.gradient_on.value else "none"
            )
        if "text_color" in self._dirty:
            kwargs["text_color"] = self.text_colour.text.value
        if "banner_link" in self._dirty:
            kwargs["banner_link"] = self.link.value
        if "banner_message" in self._dirty:
            kwargs["banner_message"] = self.message.value
        with self.services.write() as session:
            change = branding.set_branding(session, self.services.actor, ref, **kwargs)
        saved = ", ".join(FIELD_LABELS[n].lower() for n in change.changed) or "rien de nouveau"
        self.load(ref)
        self.feedback.success(f"Personnalisation de {ref} enregistrée ({saved}).")

    def _on_reset_field(self, _button: Any = None) -> None:
        ref = self._require_ref()
        name = self.reset_field.value
        with self.services.write() as session:
            branding.reset_branding(session, self.services.actor, ref, name)
        self.load(ref)
        self.feedback.success(
            f"{FIELD_LABELS[name]} de {ref} réinitialisé : "
            f"{source_text(self.effective.field(name).source, ref) if self.effective else ''}."
        )

    def _on_reset_all(self, _button: Any = None) -> None:
        ref = self._require_ref()
        self.confirmation.ask(
            f"Réinitialiser toute la personnalisation de {ref} ? Chaque valeur sera de nouveau "
            "héritée du niveau supérieur.",
            lambda: self._reset_all(ref),
        )

    def _reset_all(self, ref: str) -> None:
        with self.services.write() as session:
            branding.reset_branding(session, self.services.actor, ref, None)
        self.load(ref)
        self.feedback.success(f"Toute la personnalisation de {ref} est de nouveau héritée.")


def _data_uri(content: bytes) -> str:
    mime = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"
