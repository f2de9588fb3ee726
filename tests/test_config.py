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


def test_settings_file_syntax_error_names_the_line(tmp_path):
    file = tmp_path / "bad.env"
    file.write_text("SELFCARE_OPS_ACTOR=a@b.fr\nnot a setting\n")
    with pytest.raises(ConfigurationError, match="Line 2"):
        Settings.from_env({"SELFCARE_OPS_SETTINGS": str(file)})


def test_smtp_password_is_not_printed():
    settings = Settings.from_env({"SELFCARE_OPS_SMTP_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)
