"""The secrets file (#12, item 12): one that its group or other users may read is refused
with a message saying ``chmod 600``, as ssh refuses such a private key; a private one works."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from marketing.cli.base import friendly_errors
from marketing.settings import InsecureSecretsFile, Settings, get_secret


def secrets_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text('FB_PAGE_NAN = "EAAB-page-token-XYZ"\n')
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o622])
def test_a_secrets_file_others_may_read_or_write_is_refused_with_chmod_600(
    tmp_path: Path, mode: int
) -> None:
    path = secrets_file(tmp_path, mode)
    with pytest.raises(InsecureSecretsFile) as refused:
        get_secret("FB_PAGE_NAN", Settings(secrets_file=path))
    message = str(refused.value)
    assert f"chmod 600 {path}" in message
    assert f"{mode:03o}" in message
    assert "EAAB" not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_secrets_file_is_read(tmp_path: Path, mode: int) -> None:
    path = secrets_file(tmp_path, mode)
    token = get_secret("FB_PAGE_NAN", Settings(secrets_file=path))
    assert token.get_secret_value() == "EAAB-page-token-XYZ"


def test_the_command_line_says_what_to_do(tmp_path: Path) -> None:
    path = secrets_file(tmp_path, 0o644)

    @click.command()
    @friendly_errors
    def uses_a_secret() -> None:
        get_secret("FB_PAGE_NAN", Settings(secrets_file=path))

    result = CliRunner().invoke(uses_a_secret, [])
    assert result.exit_code == 2
    assert "ไม่ยอมรับไฟล์ความลับ" in result.output and "chmod 600" in result.output  # Thai first
    assert "Traceback" not in result.output and "EAAB" not in result.output
