"""Branding on the database: inheritance with provenance, scopes, audit, previews, whole tree.

Every test runs on SQLite and PostgreSQL (``session_factory`` / ``tree`` fixtures).
"""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from selfcare_ops.access import Actor, system_actor
from selfcare_ops.branding import (
    branding_audit,
    check_image,
    describe_branding,
    preview_html,
    render_preview_html,
    render_preview_png,
    reset_branding,
    resolve_all,
    resolve_branding,
    seed_default_branding,
    set_branding,
    show_branding,
    write_audit_csv,
    write_preview,
)
from selfcare_ops.errors import AccessDeniedError, ImageError, NotFoundError, ValidationError
from selfcare_ops.modules import resolve_modules, set_module
from selfcare_ops.organisations import create_organisation
from selfcare_ops.store.models import Asset, AuditEvent, BrandingSetting, Organisation


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


def png(width: int, height: int, colour="red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def org_id(session, ref: str) -> int:
    return session.scalar(select(Organisation.id).where(Organisation.ref == ref))


def effective(session, ref: str):
    return resolve_branding(session, org_id(session, ref))


# --- inheritance ------------------------------------------------------------------------------


def test_builtin_defaults_when_nothing_is_set(session_factory, tree):
    with session_factory() as session:
        ca = effective(session, "CA")
        assert ca.organisation_ref == "CA"
        assert ca.primary_color.value == "#e2001a" and ca.primary_color.source is None
        assert ca.logo.value is None and ca.banner_image.value is None
        assert ca.banner_message.value == "Bienvenue sur votre Selfcare utilisateur"


def test_operator_defaults_reach_every_client(session_factory, tree):
    with session_factory.begin() as session:
        result = seed_default_branding(session)
        assert set(result.fields_set) == {
            "logo",
            "primary_color",
            "text_color",
            "banner_image",
            "banner_link",
            "banner_message",
        }
    with session_factory.begin() as session:
        assert seed_default_branding(session).fields_set == ()  # idempotent
    with session_factory() as session:
        for ref in ("CA", "CA1", "CB"):
            branding = effective(session, ref)
            assert branding.logo.source == "OP" and branding.logo.value.mime == "image/png"
            assert branding.banner_image.value.width == 1200
            assert branding.primary_color.as_dict() == {"value": "#e2001a", "source": "OP"}
            assert branding.text_color.source == "OP"
        assert session.scalar(select(func.count()).select_from(Asset)) == 2


def test_partner_override_nested_partner_keeps_its_own_and_client_override(session_factory, tree):
    system = tree.system
    with session_factory.begin() as session:
        seed_default_branding(session)
        set_branding(session, system, "PA", primary_color="#003366", gradient_color="#0066cc")
        set_branding(session, system, "PA1", primary_color="darkgreen")
        set_branding(session, system, "CA", text_color="#fff", banner_message="Bonjour CA")
    with session_factory.begin() as session:
        ca, ca1, cb = (effective(session, r) for r in ("CA", "CA1", "CB"))
        assert (ca.primary_color.value, ca.primary_color.source) == ("#003366", "PA")
        assert (ca.gradient_color.value, ca.gradient_color.source) == ("#0066cc", "PA")
        assert (ca.text_color.value, ca.text_color.source) == ("#ffffff", "CA")
        assert (ca.banner_message.value, ca.banner_message.source) == ("Bonjour CA", "CA")
        assert ca.logo.source == "OP"
        assert (ca1.primary_color.value, ca1.primary_color.source) == ("#006400", "PA1")
        assert ca1.gradient_color.source == "PA"  # PA1 set only its primary colour
        assert (cb.primary_color.value, cb.primary_color.source) == ("#e2001a", "OP")
        # the parent changes: the nested partner keeps its own colour, CA follows PA
        set_branding(session, system, "PA", primary_color="#111111")
    with session_factory() as session:
        assert effective(session, "CA1").primary_color.value == "#006400"
        assert effective(session, "CA").primary_color.value == "#111111"
        assert effective(session, "PA1").primary_color.source == "PA1"


def test_explicit_no_gradient_stops_inheritance(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.system, "OP", gradient_color="#0066cc", primary_color="navy")
        set_branding(session, tree.system, "PA", gradient_color="none")
        set_branding(session, tree.system, "PA1", gradient_color="#000000")
    with session_factory() as session:
        ca, ca1, cb = (effective(session, r) for r in ("CA", "CA1", "CB"))
        assert (ca.gradient_color.value, ca.gradient_color.source) == (None, "PA")
        assert (ca1.gradient_color.value, ca1.gradient_color.source) == ("#000000", "PA1")
        assert (cb.gradient_color.value, cb.gradient_color.source) == ("#0066cc", "OP")
        stored = session.get(BrandingSetting, org_id(session, "PA"))
        assert stored.gradient_color == ""


def test_reset_one_field_then_everything(session_factory, tree):
    with session_factory.begin() as session:
        seed_default_branding(session)
        set_branding(
            session, tree.system, "CA", primary_color="#222222", banner_link="https://ca.fr"
        )
        change = reset_branding(session, tree.system, "CA", "primary_color")
        assert change.changed == ["primary_color"]
        assert change.effective.primary_color.source == "OP"
        assert change.effective.banner_link.as_dict() == {"value": "https://ca.fr", "source": "CA"}
        change = reset_branding(session, tree.system, "CA")
        assert change.changed == ["banner_link"]
        assert change.effective.banner_link.source == "OP"
        assert session.get(BrandingSetting, org_id(session, "CA")) is None  # row gone
        again = reset_branding(session, tree.system, "CA")
        assert again.changed == []


def test_reset_unknown_field_is_refused(session_factory, tree):
    with session_factory.begin() as session, pytest.raises(ValidationError, match="colour"):
        reset_branding(session, tree.system, "CA", ["colour"])


def test_images_are_stored_once_by_content(session_factory, tree):
    logo = png(100, 40, "navy")
    with session_factory.begin() as session:
        first = set_branding(session, tree.system, "CA", logo=logo)
        set_branding(session, tree.system, "CB", logo=logo)
        set_branding(session, tree.system, "PA1", logo=png(700, 350), fit=True)
        assert first.images[0].width == 100
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 2
        ca, cb, ca1 = (effective(session, r) for r in ("CA", "CB", "CA1"))
        assert ca.logo.value == cb.logo.value
        assert (ca1.logo.value.width, ca1.logo.value.height) == (600, 300)


def test_a_bad_value_leaves_everything_unchanged(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.system, "CA", primary_color="#123456")
    with session_factory.begin() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
        with pytest.raises(ValidationError, match="https://"):
            set_branding(
                session, tree.system, "CA", primary_color="#654321", banner_link="http://x.fr"
            )
        with pytest.raises(ImageError, match="GIF"):
            gif = io.BytesIO()
            Image.new("RGB", (5, 5)).save(gif, "GIF")
            set_branding(session, tree.system, "CA", text_color="black", logo=gif.getvalue())
        with pytest.raises(ValidationError, match="Nothing to change"):
            set_branding(session, tree.system, "CA")
        assert effective(session, "CA").primary_color.value == "#123456"
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before
        assert session.scalar(select(func.count()).select_from(Asset)) == 0


def test_changes_are_audited_with_before_and_after(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.partner_a_admin, "CA", primary_color="teal", logo=png(10, 10))
        reset_branding(session, tree.partner_a_admin, "CA", "primary_color")
    with session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("branding.%")).order_by(AuditEvent.id)
        ).all()
        assert [e.action for e in events] == ["branding.set", "branding.reset"]
        assert events[0].actor_label == "admin@pa.example" and events[0].target_label == "CA"
        assert events[0].after["primary_color"] == "#008080"
        assert len(events[0].after["logo"]) == 64  # the image by its sha256, not its bytes
        assert events[0].before == {"primary_color": None, "logo": None}
        assert events[1].before == {"primary_color": "#008080"}
        assert events[1].after == {"primary_color": None}


def test_change_reports_readability_warnings_without_blocking(session_factory, tree):
    with session_factory.begin() as session:
        change = set_branding(session, tree.system, "CB", primary_color="#ffcc00")
        codes = [i.code for i in change.issues]
        assert "low_contrast" in codes
        assert effective(session, "CB").primary_color.value == "#ffcc00"
        report = describe_branding(session, tree.system, "CB")
        assert set(report) == {
            "logo",
            "primary_color",
            "gradient_color",
            "text_color",
            "banner_image",
            "banner_link",
            "banner_message",
            "warnings",
        }
        low = next(w for w in report["warnings"] if w["code"] == "low_contrast")
        assert low["ratio"] == 1.51 and low["suggestion"]


def test_unknown_organisation(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(NotFoundError):
            resolve_branding(session, 999_999)
        with pytest.raises(NotFoundError, match="NOPE"):
            show_branding(session, tree.system, "NOPE")


# --- scopes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "ref", "allowed"),
    [
        ("partner_a_admin", "CA", True),
        ("partner_a_admin", "CA1", True),
        ("partner_a_admin", "PA1", True),
        ("partner_a_admin", "CB", False),  # another partner's client
        ("partner_b_admin", "CA", False),
        ("partner_a1_admin", "CA", False),  # the nested partner cannot brand its parent's client
        ("partner_a1_admin", "PA", False),
        ("client_a_admin", "CA", True),
        ("client_a_admin", "CB", False),
        ("client_a_admin", "PA", False),
        ("manager_siege", "CA", False),  # managers never brand
        ("operator_admin", "CB", True),
    ],
)
def test_who_may_brand_what(session_factory, tree, who, ref, allowed):
    actor: Actor = getattr(tree, who)
    with session_factory.begin() as session:
        if allowed:
            set_branding(session, actor, ref, primary_color="#333333")
            reset_branding(session, actor, ref, "primary_color")
            return
        with pytest.raises(AccessDeniedError) as info:
            set_branding(session, actor, ref, primary_color="#333333")
        assert ref in str(info.value)
        with pytest.raises(AccessDeniedError):
            reset_branding(session, actor, ref)
    with session_factory() as session:
        assert effective(session, ref).primary_color.source is None


def test_reading_is_scoped_too(session_factory, tree):
    with session_factory() as session:
        assert show_branding(session, tree.client_a_admin, "CA").organisation_ref == "CA"
        assert show_branding(session, tree.manager_siege, "CA").organisation_ref == "CA"
        with pytest.raises(AccessDeniedError):
            show_branding(session, tree.partner_b_admin, "CA")
        with pytest.raises(AccessDeniedError):
            describe_branding(session, tree.client_a_admin, "CB")


# --- the whole tree --------------------------------------------------------------------------


def test_resolve_all_agrees_with_resolve_branding_and_modules(session_factory, tree):
    with session_factory.begin() as session:
        seed_default_branding(session)
        set_branding(session, tree.system, "PA", primary_color="#003366", gradient_color="#0066cc")
        set_branding(session, tree.system, "PA1", gradient_color="none")
        set_branding(session, tree.system, "CB", text_color="black", logo=png(20, 20, "blue"))
        set_module(session, tree.system, "PA", "contacts", "off")
        set_module(session, tree.system, "CA", "contacts", "on")
        set_module(session, tree.system, "OP", "offres_mobiles", "off")
    with session_factory() as session:
        frame = resolve_all(session, tree.system)
        assert sorted(frame["organisation_ref"]) == ["CA", "CA1", "CB"]
        partner = resolve_all(session, tree.partner_a_admin, kinds=("partner", "client"))
        client = resolve_all(session, tree.client_a_admin)
        assert list(partner["organisation_ref"]) == ["CA", "CA1", "PA", "PA1"]
        assert list(client["organisation_ref"]) == ["CA"]
        everything = resolve_all(session, tree.system, kinds=("operator", "partner", "client"))
        records = [
            *frame.to_dict(orient="records"),
            *partner.to_dict(orient="records"),
            *client.to_dict(orient="records"),
            *everything.to_dict(orient="records"),
        ]
        for row in records:
            one = resolve_branding(session, row["organisation_id"])
            for name in ("primary_color", "gradient_color", "text_color", "banner_message"):
                assert row[name] == getattr(one, name).value, (row["organisation_ref"], name)
                assert row[f"{name}_source"] == getattr(one, name).source
            assert row["logo"] == (one.logo.value.sha256 if one.logo.value else None)
            modules = resolve_modules(session, row["organisation_id"])
            for key, state in modules.items():
                assert row[f"module_{key}"] == state.enabled
                assert row[f"module_{key}_source"] == state.source
        by_ref = frame.set_index("organisation_ref")
        assert by_ref.loc["CA", "module_contacts_source"] == "CA"
        assert not by_ref.loc["CA1", "module_contacts"]
        assert by_ref.loc["CA1", "gradient_color_source"] == "PA1"
        assert not by_ref.loc["CB", "module_offres_mobiles"]


def test_resolve_all_is_limited_to_the_actor_scope(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.system, "OP", primary_color="#101010")
    with session_factory() as session:
        partner = resolve_all(session, tree.partner_a_admin)
        assert sorted(partner["organisation_ref"]) == ["CA", "CA1"]
        assert set(partner["primary_color_source"]) == {"OP"}  # inherited from outside scope
        client = resolve_all(session, tree.client_a_admin)
        assert list(client["organisation_ref"]) == ["CA"]
        everything = resolve_all(session, tree.system, kinds=("operator", "partner", "client"))
        assert len(everything) == 7


def test_branding_audit_lists_unreadable_and_incomplete_organisations(
    session_factory, tree, tmp_path
):
    with session_factory.begin() as session:
        seed_default_branding(session)
        set_branding(session, tree.system, "CB", primary_color="#ffcc00")
        set_branding(session, tree.system, "PA1", primary_color="navy", gradient_color="yellow")
        create_organisation(
            session,
            tree.system,
            kind="client",
            parent_ref="PB",
            ref="=CMD",
            name='=HYPERLINK("http://evil")',
        )
        set_branding(session, tree.system, "=CMD", text_color="#eeeeee")
    with session_factory() as session:
        frame = branding_audit(session, tree.system)
        assert set(frame["organisation_ref"]) == {"CB", "PA1", "CA1", "=CMD"}
        cb = frame.set_index("organisation_ref").loc["CB"]
        assert cb["codes"] == "low_contrast" and "1.51:1" in cb["problems"]
        assert cb["suggested_text_color"]
        pa1 = frame.set_index("organisation_ref").loc["PA1"]
        assert "gradient_too_different" in pa1["codes"]
        assert "primary_color=PA1" in pa1["colour_sources"]
        assert set(branding_audit(session, tree.partner_a_admin)["organisation_ref"]) == {
            "PA1",
            "CA1",
        }
    path = write_audit_csv(frame, tmp_path / "audit.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    cmd = next(r for r in rows if r["organisation_ref"].endswith("=CMD"))
    assert cmd["organisation_ref"] == "'=CMD"
    assert cmd["name"].startswith("'=HYPERLINK")


def test_missing_images_are_audited(session_factory, tree):
    with session_factory() as session:
        frame = branding_audit(session, tree.client_a_admin)
        assert list(frame["organisation_ref"]) == ["CA"]
        assert frame.loc[0, "codes"] == "missing_asset"
        assert "No logo" in frame.loc[0, "problems"]


# --- previews --------------------------------------------------------------------------------


def test_html_preview_escapes_every_user_text(session_factory, tree):
    with session_factory.begin() as session:
        seed_default_branding(session)
        create_organisation(
            session,
            tree.system,
            kind="client",
            parent_ref="PA",
            ref="XSS",
            name="<img src=x onerror=alert(1)>",
        )
        set_branding(
            session,
            tree.system,
            "XSS",
            banner_message="<script>alert('x')</script> & co",
            banner_link='https://evil.example/"onmouseover="alert(1)',
        )
        page = render_preview_html(session, org_id(session, "XSS"))
    assert (
        "<script>" not in page
        and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in page
    )
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert '"onmouseover="' not in page and "&#34;onmouseover=&#34;" in page
    assert "data:image/png;base64," in page  # logo and banner inline
    for part in ("Tableau de bord", "Mes téléphones", "Confirmation", "sc-message", "sc-popup"):
        assert part in page


def test_html_preview_follows_modules_and_gradient(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.system, "CA", primary_color="#003366", gradient_color="#0066cc")
        set_module(session, tree.system, "CA", "contacts", "off")
        ca = effective(session, "CA")
        modules = resolve_modules(session, org_id(session, "CA"))
    page = preview_html(ca, modules, organisation_name="Virginie Télécom")
    assert "linear-gradient(90deg, #003366, #0066cc)" in page
    assert "Contacts" not in page and "Messagerie vocale" in page
    assert "Mise en avant offres mobiles" not in page  # a setting, not a menu entry


def test_png_preview_draws_the_branding(session_factory, tree, tmp_path):
    with session_factory.begin() as session:
        seed_default_branding(session)
        set_branding(session, tree.system, "CA", primary_color="#003366", gradient_color="#0066cc")
        data = render_preview_png(session, org_id(session, "CA"))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (1000, 680)
    rgb = image.convert("RGB")
    assert rgb.getpixel((2, 2)) == (0x00, 0x33, 0x66)  # the top bar starts with the primary
    right = rgb.getpixel((997, 2))
    assert abs(right[2] - 0xCC) <= 3 and abs(right[1] - 0x66) <= 3  # ... and ends on the gradient
    assert rgb.getpixel((500, 300)) != rgb.getpixel((2, 2))


def test_demo_preview_is_written(session_factory, tree, tmp_path):
    with session_factory.begin() as session:
        seed_default_branding(session)
        path = write_preview(session, system_actor(session), "CA", tmp_path / "previews" / "ca.png")
    assert path.exists() and Image.open(path).size == (1000, 680)
    with session_factory() as session, pytest.raises(NotFoundError):
        write_preview(session, system_actor(session), "NOPE", tmp_path / "x.png")


def test_stored_logo_is_the_checked_one(session_factory, tree):
    source = png(800, 200, "green")
    with session_factory.begin() as session:
        set_branding(session, tree.client_a_admin, "CA", logo=source, fit=True)
    with session_factory() as session:
        asset = session.scalar(select(Asset))
        assert asset.sha256 == check_image(source, "logo", fit=True).sha256
        assert (asset.width, asset.height) == (600, 150)


def test_resolve_all_costs_a_few_queries_whatever_the_tree(session_factory, tree):
    with session_factory.begin() as session:
        seed_default_branding(session)
        for n in range(30):
            ref = f"N{n:02d}"
            create_organisation(
                session, tree.system, kind="client", parent_ref="PA1", ref=ref, name=ref
            )
            if n % 3 == 0:
                set_branding(session, tree.system, ref, primary_color="#101010")
                set_module(session, tree.system, ref, "contacts", "off")
    with session_factory() as session:
        proxy = session.connection().connection  # every statement opens a cursor here
        real_cursor = proxy.cursor
        executed: list[str] = []

        class Counting:
            def __init__(self, inner):
                self.inner = inner

            def execute(self, statement, *args, **kwargs):
                executed.append(statement)
                return self.inner.execute(statement, *args, **kwargs)

            def __getattr__(self, name):
                return getattr(self.inner, name)

        proxy.cursor = lambda *a, **k: Counting(real_cursor(*a, **k))
        try:
            frame = resolve_all(session, tree.system)
        finally:
            del proxy.cursor
        assert len(frame) == 33
        # organisations, branding settings, module settings, image hashes: 4, for any size
        assert len(executed) == 4, executed


def test_setting_the_same_values_again_is_not_audited(session_factory, tree):
    with session_factory.begin() as session:
        set_branding(session, tree.system, "CA", primary_color="#123456")
        again = set_branding(session, tree.system, "CA", primary_color="#123456")
        assert again.changed == []
        events = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "branding.set")
        )
        assert events == 1
