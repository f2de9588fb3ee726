"""Settings: embedded defaults, environment, settings file, clear errors."""

from pathlib import Path

import pytest

from selfcare_ops.config import Settings
from selfcare_ops.errors import ConfigurationError


def test_embedded_default_needs_nothing():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///data/selfcare.db"
    assert settings.maildir == Path("data/outbox")
    assert settings.mail_transport == "maildir"
    assert settings.invitation_ttl_days == 7


def test_environment_wins_over_settings_file(tmp_path):
    file = tmp_path / "selfcare.env"
    file.write_text(
        "# team settings\nSELFCARE_OPS_SMTP_PORT=2525\nSELFCARE_OPS_MAIL_TRANSPORT=smtp\n"
    )
    settings = Settings.from_env(
        {"SELFCARE_OPS_SETTINGS": str(file), "SELFCARE_OPS_SMTP_PORT": "587"}
    )
    assert settings.smtp_port == 587
    assert settings.mail_transport == "smtp"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SELFCARE_OPS_SMTP_PORT": "twenty"}, "SELFCARE_OPS_SMTP_PORT must be a whole number"),
        ({"SELFCARE_OPS_MAIL_TRANSPORT": "pigeon"}, "must be 'maildir' or 'smtp'"),
        ({"SELFCARE_OPS_SMTP_STARTTLS": "maybe"}, "must be true or false"),
        ({"SELFCARE_OPS_SETTINGS": "/nonexistent/selfcare.env"}, "cannot be read"),
    ],
)
def test_bad_settings_are_explained(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize("raw", ["0", "-3", "31", "0.04", "nan", "inf", "seven"])
def test_invitation_ttl_out_of_bounds_is_refused_in_one_sentence(raw):
    expected = "SELFCARE_OPS_INVITATION_TTL_DAYS must be"
    with pytest.raises(ConfigurationError, match=expected) as info:
        Settings.from_env({"SELFCARE_OPS_INVITATION_TTL_DAYS": raw})
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    ("raw", "days"), [("0.5", 0.5), ("1,5", 1.5), ("30", 30), ("0.0417", 0.0417)]
)
def test_invitation_ttl_accepts_fractions_of_days_within_bounds(raw, days):
    assert Settings.from_env({"SELFCARE_OPS_INVITATION_TTL_DAYS": raw}).invitation_ttl_days == days


def test_settings_file_syntax_error_names_the_line(tmp_path):
    file = tmp_path / "bad.env"
    file.write_text("SELFCARE_OPS_ACTOR=a@b.fr\nnot a setting\n")
    with pytest.raises(ConfigurationError, match="Line 2"):
        Settings.from_env({"SELFCARE_OPS_SETTINGS": str(file)})


def test_smtp_password_is_not_printed():
    settings = Settings.from_env({"SELFCARE_OPS_SMTP_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)
