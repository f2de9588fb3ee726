"""Acceptance of an invitation: token rules, input checks, password policy, the account state."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from selfcare_ops.accounts import lifecycle
from selfcare_ops.accounts.passwords import (
    MIN_LENGTH,
    check_password,
    hash_password,
    password_problems,
    verify_password,
)
from selfcare_ops.errors import InvitationError, TokenError, ValidationError
from selfcare_ops.invitations import acceptance, issuing
from selfcare_ops.invitations import service as invitations
from selfcare_ops.invitations.acceptance import normalise_civility, normalise_phone
from selfcare_ops.store.models import AuditEvent, Invitation, User, utcnow

JP = "jbubu@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
GOOD = "Trois petits chats 42"


@pytest.fixture
def invited(session_factory, tree):
    with session_factory.begin() as session:
        return invitations.invite_user(session, tree.system, JP)


def _accept(session_factory, token, **overrides):
    values = {"civility": "M.", "phone": "01 85 73 71 01", "password": GOOD, **overrides}
    with session_factory.begin() as session:
        return acceptance.accept(session, token, **values)


def _status(session_factory, invitation_id):
    with session_factory() as session:
        return session.get(Invitation, invitation_id).status


def test_accept_activates_the_account(session_factory, invited):
    result = _accept(session_factory, invited.token, civility="monsieur")
    assert result.login == JP and result.kind == "user"
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == JP))
        assert user.status == "active" and user.activated_at is not None
        assert user.civility == "M."
        assert user.phone == "+33185737101"
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, GOOD)
        assert not verify_password(user.password_hash, GOOD + "x")
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.accept"))
        assert event.actor_kind == "invitee" and event.target_label == JP
        assert GOOD not in str(event.after)
    assert _status(session_factory, invited.invitation_id) == "accepted"


def test_a_token_works_once(session_factory, invited):
    _accept(session_factory, invited.token)
    with pytest.raises(TokenError, match="already used") as caught:
        _accept(session_factory, invited.token)
    assert caught.value.reason == "used"


def test_inspecting_never_spends_the_token(session_factory, invited):
    with session_factory() as session:
        for _ in range(3):  # a mail scanner, the user, the user again
            info = acceptance.inspect_token(session, invited.token)
            assert info.login == JP and info.organisation_name == "Virginie Télécom"
    assert _status(session_factory, invited.invitation_id) == "pending"
    link = f"https://montableaudebord.fr/invitation/{invited.token}"
    with session_factory() as session:  # a whole pasted link is understood too
        assert acceptance.inspect_token(session, link).invitation_id == invited.invitation_id
    _accept(session_factory, invited.token)
    with session_factory() as session:
        with pytest.raises(TokenError) as caught:
            acceptance.inspect_token(session, invited.token)
        assert caught.value.reason == "used"


def test_expired_token(session_factory, invited):
    later = utcnow() + timedelta(days=7, seconds=1)
    with session_factory.begin() as session:
        with pytest.raises(TokenError, match="expired on") as caught:
            acceptance.accept(
                session, invited.token, civility="M.", phone="0185737101", password=GOOD, now=later
            )
        assert caught.value.reason == "expired"
    assert _status(session_factory, invited.invitation_id) == "pending"


@pytest.mark.parametrize(
    "token", ["", "short", "x" * 43, "a/b/c", "é" * 43, secrets.token_urlsafe(32)]
)
def test_invalid_tokens(session_factory, tree, token):
    with pytest.raises(TokenError, match="not valid") as caught:
        _accept(session_factory, token)
    assert caught.value.reason == "invalid"


def test_revoked_and_superseded_tokens(session_factory, tree, invited):
    with session_factory.begin() as session:
        newer = invitations.resend(session, tree.system, JP)
    with pytest.raises(TokenError) as caught:
        _accept(session_factory, invited.token)
    assert caught.value.reason == "superseded"
    with session_factory.begin() as session:
        invitations.revoke(session, tree.system, JP)
    with pytest.raises(TokenError) as caught:
        _accept(session_factory, newer.token)
    assert caught.value.reason == "revoked"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": "court"}, "at least 12 characters; it has 5"),
        ({"password": "toutenminuscules"}, "mix at least two kinds"),
        ({"password": "aaaaaaaaaaaaaaaa"}, "one character repeated"),
        ({"password": "jbubu-Password-1"}, "must not be or contain your login"),
        ({"phone": "12"}, "not a valid number"),
        ({"phone": "pas un numéro"}, "cannot be read"),
        ({"civility": "Dr"}, "civility must be one of"),
    ],
)
def test_bad_input_is_refused_and_does_not_spend_the_token(
    session_factory, invited, overrides, message
):
    with pytest.raises(ValidationError, match=message):
        _accept(session_factory, invited.token, **overrides)
    assert _status(session_factory, invited.invitation_id) == "pending"
    with session_factory() as session:
        assert session.scalar(select(User.status).where(User.login == JP)) == "invited"
    _accept(session_factory, invited.token)  # then the right input works


def test_an_account_deactivated_meanwhile_cannot_be_accepted(session_factory, tree):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, VERO)
    with session_factory.begin() as session:
        # deactivation revokes the link; even a link left pending must not reopen the account
        lifecycle.deactivate(session, tree.system, VERO)
        session.get(Invitation, result.invitation_id).status = "pending"
    with pytest.raises(InvitationError, match="was deactivated after this invitation"):
        _accept(session_factory, result.token)


def test_phone_and_civility_normalisation():
    assert normalise_phone("01 23 45 67 89") == "+33123456789"
    assert normalise_phone("+33 6 12 34 56 78") == "+33612345678"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert normalise_civility(" Madame ") == "Mme"
    assert normalise_civility("M") == "M."


def test_password_policy_messages():
    assert password_problems(GOOD) == []
    assert password_problems("Abcdefghijk") == [
        "The password must have at least 12 characters; it has 11."
    ]
    assert "must not be or contain your email address" in " ".join(
        password_problems("marie.curie-2024", email="marie.curie@example.com")
    )
    assert "too common" in " ".join(password_problems("Password1234"))
    assert "start or end with a space" in " ".join(password_problems(" Espace devant 12"))
    with pytest.raises(ValidationError) as caught:
        check_password("a" * 200)
    assert "at most 128 characters" in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable + "éàçÉ€", max_size=40))
def test_every_accepted_password_meets_the_policy(password):
    if password_problems(password):
        with pytest.raises(ValidationError):
            check_password(password)
        return
    assert len(password) >= MIN_LENGTH
    assert len(set(password)) > 1
    kinds = {
        "digit" if c.isdigit() else "upper" if c.isupper() else "lower" if c.isalpha() else "x"
        for c in password
    }
    assert len(kinds) >= 2


def test_hash_round_trip_and_malformed_hash():
    hashed = hash_password(GOOD)
    assert hashed != GOOD and verify_password(hashed, GOOD)
    assert not verify_password("not a hash", GOOD)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("1234567"), st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_french_numbers_normalise_to_e164_whatever_the_spacing(first, rest):
    digits = first + rest
    spaced = "0" + " ".join(digits[i : i + 2] for i in range(0, 9, 2))
    try:
        expected = normalise_phone("+33" + digits)
    except ValidationError:
        with pytest.raises(ValidationError):
            normalise_phone(spaced)
        return
    assert expected == "+33" + digits
    assert normalise_phone(spaced) == expected
    assert normalise_phone(expected) == expected  # idempotent


@settings(max_examples=200, deadline=None)
@given(st.emails())
def test_valid_emails_normalise_idempotently(address):
    try:
        normalised = issuing.normalise_email(address)
    except ValidationError as error:
        assert "is not valid" in str(error)  # a refusal is always one sentence
        return
    assert issuing.normalise_email(normalised) == normalised
    assert "@" in normalised


def test_two_submissions_at_once_activate_once(session_factory, invited):
    import threading

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        barrier.wait(timeout=30)
        try:
            _accept(session_factory, invited.token)
            outcomes.append("accepted")
        except TokenError as error:
            outcomes.append(error.reason)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["accepted", "used"]
    with session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "invitation.accept")
        ).all()
        assert len(events) == 1
