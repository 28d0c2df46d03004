"""Settings and secrets: defaults need no server, and secrets never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from marketing.settings import MissingSecret, Settings, get_secret, get_settings


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = get_settings()
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_broker_url.startswith("sqla+sqlite:///")
    assert s.timezone == "Asia/Bangkok"
    assert s.effective_redis_url is None


def test_unknown_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_TIMEZONE", "Asia/Atlantis")
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings()


def test_secrets_never_reach_logs_or_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKETING_SMTP_PASSWORD", "smtp-pa55-XYZ")
    monkeypatch.setenv("MARKETING_TRACKING_SECRET", "track-k3y-XYZ")
    monkeypatch.setenv("MARKETING_SECRET_FB_PAGE_NAN", "EAAB-page-token-XYZ")
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('YT_NAN = "ya29.file-token-XYZ"\n')
    secrets_file.chmod(0o600)  # private, or it is refused (tests/security/test_secrets_file.py)
    monkeypatch.setenv("MARKETING_SECRETS_FILE", str(secrets_file))
    settings = Settings()
    token = get_secret("FB_PAGE_NAN", settings)
    file_token = get_secret("YT_NAN", settings)
    assert token.get_secret_value() == "EAAB-page-token-XYZ"
    assert file_token.get_secret_value() == "ya29.file-token-XYZ"

    log = logging.getLogger("marketing.test")
    with caplog.at_level(logging.DEBUG):
        log.info("settings %s", settings)
        log.info("settings %r", settings)
        log.info("dump %s", settings.model_dump())
        log.info("tokens %s %r %s", token, file_token, [token])
        try:
            get_secret("MISSING_ONE", settings)
        except MissingSecret as exc:
            log.exception("lookup failed: %s", exc)
    text = caplog.text
    assert "MISSING_ONE" in text  # the name is shown, so a person knows what to set
    for secret in ("smtp-pa55", "track-k3y", "EAAB-page", "ya29.file"):
        assert secret not in text


def test_missing_secret_says_what_to_do() -> None:
    with pytest.raises(MissingSecret, match="MARKETING_SECRET_YT_NAN"):
        get_secret("YT_NAN")
