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
from selfcare_ops.branding.values import remaining_characters
from selfcare_ops.errors import ImageError, SelfcareError, ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.widgets.common import (
    ActionButton,
    Confirmation,
    Feedback,
    OrganisationPicker,
    Services,
    guard,
    html_table,
    section,
    uploaded_files,
)

#: The branding fields, by the service's names; :func:`field_label` gives their words.
FIELDS = (
    "logo",
    "primary_color",
    "gradient_color",
    "text_color",
    "banner_image",
    "banner_link",
    "banner_message",
)
DRAFT = "(draft)"


def field_label(name: str) -> str:
    labels = {
        "logo": _("Logo"),
        "primary_color": _("Main colour"),
        "gradient_color": _("Gradient end colour"),
        "text_color": _("Text colour"),
        "banner_image": _("Banner image"),
        "banner_link": _("Banner link"),
        "banner_message": _("Custom message"),
    }
    return labels.get(name, name)


def remaining_text(message: str | None) -> str:
    """The counter as the Selfcare shows it: "110 caractères restants", "2 caractères en trop"."""
    left = remaining_characters(message)
    if left < 0:
        return ngettext("{count} character too many", "{count} characters too many", -left).format(
            count=-left
        )
    return ngettext("{count} character left", "{count} characters left", left).format(count=left)


def source_text(source: str | None, ref: str | None) -> str:
    """Where a value comes from, in the analyst's words."""
    if source == DRAFT:
        return _("changed, not saved yet")
    if source is None:
        return _("default value")
    if source == ref:
        return _("set here")
    return _("inherited from {ref}").format(ref=source)


def _value_text(name: str, value: Any) -> str:
    if value is None or value == "":
        return _("no gradient") if name == "gradient_color" else "—"
    if isinstance(value, branding.AssetRef):
        return _("{mime}, {width} × {height} px, {size} KB").format(
            mime=value.mime, width=value.width, height=value.height, size=value.size // 1024
        )
    return str(value)


class _ColourField:
    """A hexadecimal code typed or picked: a Text (what is saved) and a swatch picker."""

    def __init__(self, description: str, on_edit: Any) -> None:
        self.text = widgets.Text(description=description, placeholder=_("#rrggbb or CSS name"))
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

    def __init__(
        self, session_factory: sessionmaker[Session], actor: Actor, *, on_change: Any = None
    ) -> None:
        self.services = Services(session_factory, actor)
        #: Called after a save or reset (the other tabs refresh their figures).
        self.on_change = on_change
        self.feedback = Feedback()
        #: Each message shows next to what it is about: the upload, the save, the reset.
        self.logo_feedback = Feedback()
        self.banner_feedback = Feedback()
        self.save_feedback = Feedback()
        self.reset_feedback = Feedback()
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
        self._reverting = False
        self._logo: bytes | None = None
        self._banner: bytes | None = None
        #: The last logo file chosen, even refused: ticking "Réduire" accepts it again.
        self._logo_file: bytes | None = None

        with self.services.read() as session:
            own = branding.resolve_branding(session, actor.organisation_id).organisation_ref
        self.switch_confirmation = Confirmation(self.feedback)
        self.picker = OrganisationPicker(self.services, self.feedback, self._on_pick, own_ref=own)

        edit = safe(self._on_edit)
        self.primary = _ColourField(_("Main"), lambda: edit("primary_color"))
        self.gradient_on = widgets.Checkbox(description=_("Gradient"), indent=False)
        self.gradient = _ColourField(_("Gradient end"), lambda: edit("gradient_color"))
        self.text_colour = _ColourField(_("Text"), lambda: edit("text_color"))
        self.logo_upload = widgets.FileUpload(
            accept="image/png,image/jpeg", multiple=False, description=_("Import the logo")
        )
        self.fit = widgets.Checkbox(description=_fit_label(), indent=False, value=False)
        self.banner_upload = widgets.FileUpload(
            accept="image/png,image/jpeg", multiple=False, description=_("Import the banner")
        )
        self.link = widgets.Text(
            description=_("Link"),
            placeholder="https://…",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.message = widgets.Textarea(
            description=_("Message"), continuous_update=True, layout=widgets.Layout(width="60%")
        )
        self.counter = widgets.Label("")
        self.provenance = widgets.HTML("")
        self.warnings = widgets.HTML("")
        self.suggest_button = widgets.Button(
            description=_("Use the suggested colour"), layout=widgets.Layout(width="auto")
        )
        self.suggest_button.layout.display = "none"
        self.preview = widgets.HTML("")
        self.save_button = ActionButton(
            description=_("Save"), button_style="primary", icon="save", disabled=True
        )
        self.reset_field = widgets.Dropdown(
            options=[(field_label(name), name) for name in FIELDS],
            description=_("Field"),
        )
        self.reset_button = ActionButton(
            description=_("Reset this field"), layout=widgets.Layout(width="auto")
        )
        self.reset_all_button = ActionButton(
            description=_("Reset everything"),
            button_style="warning",
            layout=widgets.Layout(width="auto"),
        )
        self.confirmation = Confirmation(self.reset_feedback)

        self.gradient_on.observe(lambda _c: edit("gradient_color"), names="value")
        self.link.observe(lambda _c: edit("banner_link"), names="value")
        self.message.observe(lambda _c: edit("banner_message"), names="value")
        self.logo_upload.observe(guard(self.logo_feedback)(self._on_logo), names="value")
        self.banner_upload.observe(guard(self.banner_feedback)(self._on_banner), names="value")
        self.fit.observe(guard(self.logo_feedback)(self._on_fit), names="value")
        self.suggest_button.on_click(safe(self._on_suggestion))
        self.save_button.on_action(self._on_save, self.save_feedback)
        self.reset_button.on_action(self._on_reset_field, self.reset_feedback)
        self.reset_all_button.on_action(self._on_reset_all, self.reset_feedback)

        self.form = widgets.VBox(
            [
                section(_("Visual identity")),
                widgets.HBox([self.logo_upload, self.fit]),
                self.logo_feedback,
                self.primary.box,
                widgets.HBox([self.gradient_on, self.gradient.box]),
                self.text_colour.box,
                self.warnings,
                self.suggest_button,
                section(_("Custom message")),
                self.banner_upload,
                self.banner_feedback,
                self.link,
                self.message,
                self.counter,
                widgets.HBox([self.save_button]),
                self.save_feedback,
                section(_("Where the values come from")),
                self.provenance,
                widgets.HBox([self.reset_field, self.reset_button, self.reset_all_button]),
                self.confirmation,
                self.reset_feedback,
            ],
            layout=widgets.Layout(width="52%", min_width="480px"),
        )
        # The preview sits beside the form: a colour and its effect are seen together.
        self.preview_box = widgets.VBox(
            [section(_("Preview")), self.preview],
            layout=widgets.Layout(width="46%", overflow="visible"),
        )
        self.preview_box.add_class("selfcare-preview-box")
        self.editor = widgets.HBox(
            [self.form, self.preview_box], layout=widgets.Layout(align_items="flex-start")
        )
        self.editor.layout.display = "none"
        self.widget = widgets.VBox(
            [
                section(_("Branding")),
                self.picker,
                self.switch_confirmation,
                self.feedback,
                self.editor,
            ]
        )
        self.widget.add_class("selfcare-branding")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def follow_client(self, client_ref: str) -> None:
        if self.ref is None:
            self.picker.choose(client_ref)

    def refresh(self) -> None:
        """Another tab changed the database (a module, say): read it again, edits kept."""
        if self.ref and not self._dirty:
            self.load(self.ref)

    @property
    def dirty(self) -> bool:
        """Whether the form holds edits that are not saved."""
        return bool(self._dirty)

    def _on_pick(self, ref: str | None) -> None:
        """Another organisation was chosen: ask first when edits would be lost."""
        if self._reverting or ref == self.ref:
            return
        if not self._dirty or self.ref is None:
            self.load(ref)
            return
        current = self.ref
        self.switch_confirmation.ask(
            _("The changes to {ref} are not saved. Drop them and open {other}?").format(
                ref=current, other=ref or _("no organisation")
            ),
            lambda: self.load(ref),
            on_cancel=lambda: self._revert_pick(current),
        )

    def _revert_pick(self, ref: str) -> None:
        self._reverting = True
        try:
            self.picker.choose(ref)
        finally:
            self._reverting = False

    # --- load ------------------------------------------------------------------------------

    def load(self, ref: str | None) -> None:
        """Show the effective branding of ``ref`` and fill the form with it."""
        self.feedback.clear()
        self.switch_confirmation.close_question()
        for shown in (self.logo_feedback, self.banner_feedback, self.save_feedback):
            shown.clear()
        self.reset_feedback.clear()
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
            self._logo = self._banner = self._logo_file = None
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
            self._logo_file = files[0][1]
            self._take_logo()

    def _on_fit(self, _change: Any) -> None:
        if self._logo_file is not None:
            self._take_logo()

    def _take_logo(self) -> None:
        """Check the chosen logo now: a refused file never enters the draft (the other edits
        stay), and the refusal shows next to the upload."""
        self.logo_feedback.clear()
        content = self._logo_file
        assert content is not None
        try:
            branding.check_image(content, "logo", fit=self.fit.value)
        except ImageError as exc:
            self.logo_feedback.error(_image_refusal(exc, "logo"))
            return
        self._logo = content
        if not self._loading and self.effective is not None:
            self._on_edit("logo")
            if self.fit.value:
                self.logo_feedback.success(
                    _("Logo accepted: it will be reduced to {size} px when saved.").format(
                        size=branding.LOGO_MAX_SIDE
                    )
                )

    def _on_banner(self, _change: Any) -> None:
        files = uploaded_files(self.banner_upload)
        if not files:
            return
        self.banner_feedback.clear()
        try:
            branding.check_image(files[0][1], "banner")
        except ImageError as exc:
            self.banner_feedback.error(_image_refusal(exc, "banner"))
            return
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
        self.counter.value = remaining_text(self.message.value)
        rows = []
        for name in FIELDS:
            label = field_label(name)
            field = draft.field(name)
            source = DRAFT if name in self._dirty else field.source
            value = (
                _("new image")
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
            headers={"label": _("Field"), "value": _("Value"), "source": _("Comes from")},
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
                warning = _(
                    "Careful: the two colours of the gradient are too different for the text "
                    "to show well."
                )
                text = f"{html.escape(warning)} <small>({text})</small>"
            items.append(f'<li class="selfcare-warning-{issue.code}">{text}</li>')
        self.warnings.value = (
            f'<ul class="selfcare-readability" style="color:#8a4b00">{"".join(items)}</ul>'
            if items
            else '<p class="selfcare-readable" style="color:#1b5e20">{}</p>'.format(
                html.escape(_("The text stays readable on every colour (contrast ≥ 4.5:1)."))
            )
        )
        self.suggest_button.layout.display = "" if self.suggestion else "none"
        if self.suggestion:
            self.suggest_button.description = _("Use the suggested colour {colour}").format(
                colour=self.suggestion
            )
        logo_uri = _data_uri(self._logo) if self._logo else self._logo_uri
        banner_uri = _data_uri(self._banner) if self._banner else self._banner_uri
        page = branding.preview_html(
            draft,
            self.modules,
            organisation_name=self.picker.select.label or self.ref or "",
            logo_uri=logo_uri,
            banner_uri=banner_uri,
            issues=self.issues,
            popup=False,
        )
        # The portal page is 960 px wide; beside the form it is shown whole, scaled down.
        self.preview.value = f'<div class="selfcare-preview-scale" style="zoom:0.6">{page}</div>'
        self._gradient_enabled()
        self.save_button.disabled = not self._dirty

    def _gradient_enabled(self) -> None:
        """ "Fin dégradé" is only for a gradient."""
        off = not self.gradient_on.value
        self.gradient.text.disabled = self.gradient.picker.disabled = off

    # --- save and reset --------------------------------------------------------------------

    def _require_ref(self) -> str:
        if not self.ref:
            raise ValidationError(_("Choose an organisation first."), field="organisation")
        return self.ref

    def _on_save(self, _button: Any = None) -> None:
        ref = self._require_ref()
        if not self._dirty:
            raise ValidationError(_("Nothing was changed: there is nothing to save."))
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
        saved = ", ".join(field_label(n).lower() for n in change.changed) or _("nothing new")
        self.load(ref)
        self.save_feedback.success(
            _("Branding of {ref} saved ({fields}).").format(ref=ref, fields=saved)
        )
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def _on_reset_field(self, _button: Any = None) -> None:
        ref = self._require_ref()
        name = self.reset_field.value
        with self.services.write() as session:
            branding.reset_branding(session, self.services.actor, ref, name)
        self.load(ref)
        self._changed()
        self.reset_feedback.success(
            _("{field} of {ref} reset: {source}.").format(
                field=field_label(name),
                ref=ref,
                source=source_text(self.effective.field(name).source, ref)
                if self.effective
                else "",
            )
        )

    def _on_reset_all(self, _button: Any = None) -> None:
        ref = self._require_ref()
        self.confirmation.ask(
            _(
                "Reset the whole branding of {ref}? Every value will be inherited again from "
                "the level above."
            ).format(ref=ref),
            lambda: self._reset_all(ref),
        )

    def _reset_all(self, ref: str) -> None:
        with self.services.write() as session:
            branding.reset_branding(session, self.services.actor, ref, None)
        self.load(ref)
        self._changed()
        self.reset_feedback.success(
            _("The whole branding of {ref} is inherited again.").format(ref=ref)
        )


def _image_refusal(exc: ImageError, kind: str) -> str:
    """The service's refusal, with the dashboard's own remedy for a logo that is too large."""
    limit = exc.context.get("limit")
    actual = exc.context.get("actual")
    if kind == "logo" and limit == branding.LOGO_MAX_SIDE and isinstance(actual, tuple):
        width, height = actual
        return _(
            "Logo refused: it is {width} × {height} px, at most {limit} px on each side is "
            "accepted. Tick “{fit}” to reduce it keeping its proportions."
        ).format(width=width, height=height, limit=limit, fit=_fit_label())
    if kind == "logo":
        return _("Logo refused: {reason}").format(reason=exc)
    return _("Banner refused: {reason}").format(reason=exc)


def _fit_label() -> str:
    return _("Reduce to {size} px if larger").format(size=branding.LOGO_MAX_SIDE)


def _data_uri(content: bytes) -> str:
    mime = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"
