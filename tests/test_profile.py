"""Profile and company details as two separate audited saves; phones in E.164; notification
preferences (which notice, which channel) with SMS only to a known mobile number."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from selfcare_ops.accounts import profile
from selfcare_ops.errors import AccessDeniedError, ConflictError, ValidationError
from selfcare_ops.store.models import AuditEvent, Organisation, User


def people(tree):
    return dict(
        zip(
            ["alice", "marc", "jp", "cedric", "veronique", "robert"],
            tree.client_a_users,
            strict=True,
        )
    )


def audit_events(session, action):
    return session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()


# --- phones (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("01 23 45 67 89", "+33123456789"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_phones_are_stored_in_e164(raw, expected):
    assert profile.normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12", "06 12 34", "not a phone", "", "0612345678999"])
def test_invalid_phones_are_refused_with_the_value(raw):
    with pytest.raises(ValidationError) as caught:
        profile.normalise_phone(raw)
    assert caught.value.field == "phone"
    assert repr(raw.strip()) in str(caught.value)


def test_a_mobile_must_be_able_to_receive_sms():
    assert profile.normalise_phone("07 56 00 00 01", mobile=True) == "+33756000001"
    with pytest.raises(ValidationError, match="not a mobile number"):
        profile.normalise_phone("01 23 45 67 89", field_name="mobile", mobile=True)


@given(st.text(alphabet="0123456789 +.-()", max_size=20))
@settings(max_examples=300, deadline=None)
def test_phone_normalisation_never_fails_otherwise_and_is_stable(raw):
    try:
        once = profile.normalise_phone(raw)
    except ValidationError:
        return
    assert once.startswith("+") and once[1:].isdigit()
    assert profile.normalise_phone(once) == once


#: Metropolitan mobile ranges (063 and 069 hold overseas sub-ranges, 070-072 are unassigned).
MOBILE_PREFIXES = [f"06{d}" for d in "01245678"] + [f"07{d}" for d in "345678"]


@given(st.sampled_from(MOBILE_PREFIXES), st.text(alphabet=string.digits, min_size=7, max_size=7))
@settings(max_examples=100, deadline=None)
def test_every_french_mobile_is_accepted(prefix, rest):
    national = f"{prefix}{rest}"
    assert profile.normalise_phone(national, mobile=True) == f"+33{national[1:]}"


# --- notification preferences (pure) ---------------------------------------------------------


def test_preferences_validation_sentences():
    ok = profile.validate_notification_prefs(
        {"order_status": ["sms", "email", "sms"], "new_user": []},
        email="a@b.example",
        mobile="+33612345678",
    )
    assert ok == {"order_status": ["email", "sms"], "new_user": []}
    with pytest.raises(ValidationError, match="jdoe has no mobile number") as caught:
        profile.validate_notification_prefs(
            {"security_alert": ["sms"]}, email="a@b.example", mobile=None, who="jdoe"
        )
    assert "security alerts notice cannot go by SMS" in str(caught.value)
    with pytest.raises(ValidationError, match="has no email address"):
        profile.validate_notification_prefs({"order_status": ["email"]}, email=None, mobile=None)
    with pytest.raises(ValidationError, match="'weather' is not a notice"):
        profile.validate_notification_prefs({"weather": ["email"]}, email="a@b", mobile=None)
    with pytest.raises(ValidationError, match="'fax' is not a channel"):
        profile.validate_notification_prefs({"new_user": ["fax"]}, email="a@b", mobile=None)
    with pytest.raises(ValidationError, match="are a list"):
        profile.validate_notification_prefs({"new_user": "email"}, email="a@b", mobile=None)
    with pytest.raises(ValidationError, match="map each notice"):
        profile.validate_notification_prefs(["new_user"], email="a@b", mobile=None)


@given(
    st.dictionaries(
        st.one_of(st.sampled_from(list(profile.NOTICES)), st.text(max_size=12)),
        st.one_of(
            st.lists(st.one_of(st.sampled_from(profile.CHANNELS), st.text(max_size=5))),
            st.text(max_size=5),
            st.integers(),
            st.none(),
        ),
        max_size=6,
    ),
    st.booleans(),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_preferences_validation_is_total_and_idempotent(prefs, has_email, has_mobile):
    email = "a@b.example" if has_email else None
    mobile = "+33612345678" if has_mobile else None
    try:
        cleaned = profile.validate_notification_prefs(prefs, email=email, mobile=mobile)
    except ValidationError as error:
        assert str(error).endswith(".")
        return
    assert set(cleaned) <= set(profile.NOTICES)
    for channels in cleaned.values():
        assert channels == [c for c in profile.CHANNELS if c in channels]
        assert has_mobile or "sms" not in channels
        assert has_email or "email" not in channels
    assert profile.validate_notification_prefs(cleaned, email=email, mobile=mobile) == cleaned


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order_status=email,sms", ("order_status", ["email", "sms"])),
        ("Order-Status = SMS ", ("order_status", ["sms"])),
        ("new_user=", ("new_user", [])),
        ("new_user=off", ("new_user", [])),
    ],
)
def test_preference_assignments_from_the_command_line(text, expected):
    assert profile.parse_notification_assignment(text) == expected


@pytest.mark.parametrize("text", ["order_status", "=email", ""])
def test_malformed_preference_assignments(text):
    with pytest.raises(ValidationError, match="NOTICE=CHANNELS"):
        profile.parse_notification_assignment(text)


# --- profile and company: two saves ----------------------------------------------------------


def test_profile_and_company_are_two_separate_audited_saves(session_factory, tree):
    jp = people(tree)["jp"]
    with session_factory.begin() as session:
        saved = profile.update_profile(
            session,
            tree.client_a_admin,
            jp,
            civility="M.",
            last_name="Bubu-Martin",
            function="  Responsable   achats ",
            language="FR",
            phone="01 23 45 67 89",
            mobile="06 12 34 56 78",
        )
        assert saved.changed["mobile"] == (None, "+33612345678")
        assert saved.changed["function"] == (None, "Responsable achats")
        assert saved.changed["language"] == (None, "fr")
    with session_factory.begin() as session:
        company = profile.update_company(
            session,
            tree.client_a_admin,
            "CA",
            address="10 cité Paradis",
            postcode="75010",
            city="Paris",
        )
        assert set(company.changed) == {"address", "postcode", "city"}
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == jp))
        assert (user.phone, user.mobile, user.civility) == ("+33123456789", "+33612345678", "M.")
        assert user.sort_name.startswith("bubu-martin ")
        assert "bubu-martin" in user.search_text
        client = session.scalar(select(Organisation).where(Organisation.ref == "CA"))
        assert (client.address, client.postcode, client.city) == (
            "10 cité Paradis",
            "75010",
            "Paris",
        )
        [profile_event] = audit_events(session, "user.profile")
        [company_event] = audit_events(session, "organisation.details")
        assert profile_event.target_label == jp
        assert profile_event.before["last_name"] == "Bubu"
        assert profile_event.after["last_name"] == "Bubu-Martin"
        assert "address" not in profile_event.after
        assert company_event.target_label == "CA"
        assert company_event.before == {"address": None, "postcode": None, "city": None}
        assert set(company_event.after) == {"address", "postcode", "city"}
        assert profile.get_company(session, tree.manager_siege, "CA")["city"] == "Paris"
        shown = profile.get_profile(session, tree.manager_siege, jp)
        assert shown["mobile"] == "+33612345678"
        assert shown["notification_prefs"] == profile.DEFAULT_NOTIFICATION_PREFS


def test_profile_rules_and_scope(session_factory, tree):
    p = people(tree)
    with session_factory.begin() as session:
        unchanged = profile.update_profile(session, tree.system, p["jp"], first_name="Jean-Pierre")
        assert unchanged.changed == {} and "nothing changed" in unchanged.describe()
        cleared = profile.update_profile(session, tree.system, p["jp"], function="")
        assert cleared.changed == {}
        with pytest.raises(ValidationError, match="first name cannot be empty"):
            profile.update_profile(session, tree.system, p["jp"], first_name="  ")
        spelled = profile.update_profile(session, tree.system, p["jp"], civility="madame")
        assert spelled.changed == {"civility": (None, "Mme")}
        spelled = profile.update_profile(session, tree.system, p["jp"], civility="m")
        assert spelled.changed == {"civility": ("Mme", "M.")}
        with pytest.raises(ValidationError, match="civility must be one of M., Mme"):
            profile.update_profile(session, tree.system, p["jp"], civility="Dr")
        with pytest.raises(ValidationError, match="at most 150 characters"):
            profile.update_profile(session, tree.system, p["jp"], function="x" * 151)
        with pytest.raises(ValidationError, match="not a mobile number"):
            profile.update_profile(session, tree.system, p["jp"], mobile="01 23 45 67 89")
        with pytest.raises(ValidationError, match="at least one profile field"):
            profile.update_profile(session, tree.system, p["jp"])
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            profile.update_profile(session, tree.manager_siege, p["veronique"], phone="0123456789")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            profile.update_profile(session, tree.partner_b_admin, p["jp"], phone="0123456789")
        own = profile.update_profile(session, tree.manager_siege, p["marc"], phone="0123456789")
        assert own.changed == {"phone": (None, "+33123456789")}  # a manager edits their own
        assert len(audit_events(session, "user.profile")) == 3


def test_company_details_are_for_administrators_only(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(AccessDeniedError, match="only administrators may"):
            profile.update_company(session, tree.manager_siege, "CA", city="Lyon")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            profile.update_company(session, tree.partner_b_admin, "CA", city="Lyon")
        with pytest.raises(ValidationError, match="postcode '75 010!'"):
            profile.update_company(session, tree.client_a_admin, "CA", postcode="75 010!")
        with pytest.raises(ValidationError, match="An organisation needs a name"):
            profile.update_company(session, tree.client_a_admin, "CA", name=" ")
        with pytest.raises(ValidationError, match="at least one company detail"):
            profile.update_company(session, tree.client_a_admin, "CA")
        renamed = profile.update_company(session, tree.partner_a_admin, "CA", name="Virginie SA")
        assert renamed.changed == {"name": ("Virginie Télécom", "Virginie SA")}
        client = session.scalar(select(Organisation).where(Organisation.ref == "CA"))
        assert client.name_folded == "virginie sa"
        assert audit_events(session, "user.profile") == []


# --- notification preferences (stored) -------------------------------------------------------


def test_notification_preferences_per_user(session_factory, tree):
    p = people(tree)
    with session_factory.begin() as session:
        assert profile.get_notification_prefs(session, tree.system, p["jp"]) == {
            "invoice_available": ["email"],
            "order_status": ["email"],
            "new_user": ["email"],
            "security_alert": ["email"],
        }
        with pytest.raises(ValidationError, match="has no mobile number") as caught:
            profile.set_notification_prefs(
                session, tree.client_a_admin, p["jp"], {"order_status": ["email", "sms"]}
            )
        assert "add a mobile number to the profile first" in str(caught.value)
        profile.update_profile(session, tree.client_a_admin, p["jp"], mobile="0612345678")
        saved = profile.set_notification_prefs(
            session,
            tree.manager_siege,
            p["jp"],
            {"order_status": ["email", "sms"], "invoice_available": []},
        )
        assert saved.changed == {
            "invoice_available": (["email"], []),
            "order_status": (["email"], ["email", "sms"]),
        }
        with pytest.raises(ConflictError, match="order status notices by SMS"):
            profile.update_profile(session, tree.client_a_admin, p["jp"], mobile="")
        with pytest.raises(ValidationError, match="has no email address"):
            profile.set_notification_prefs(
                session, tree.system, p["cedric"], {"security_alert": ["email"]}
            )
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            profile.set_notification_prefs(
                session, tree.manager_siege, p["veronique"], {"new_user": []}
            )
        with pytest.raises(ValidationError, match="at least one notice"):
            profile.set_notification_prefs(session, tree.system, p["jp"], {})
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == p["jp"]))
        assert user.notification_prefs["order_status"] == ["email", "sms"]
        assert user.notification_prefs["invoice_available"] == []
        assert user.notification_prefs["security_alert"] == ["email"]
        [event] = audit_events(session, "user.notifications")
        assert event.before == {"invoice_available": ["email"], "order_status": ["email"]}
        assert event.after == {"invoice_available": [], "order_status": ["email", "sms"]}
        assert event.actor_label == "marc@virginie.example"
