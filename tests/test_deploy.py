"""The deployment samples stay true to the code: the systemd units, the container image and the
proxy run commands and options that exist, and every setting docs/deploy.md and the sample
environment file name is a real one."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import click
import pytest

from celeryconfig import task_queues
from marketing.cli import main
from marketing.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
SETTINGS = {f"MARKETING_{name.upper()}" for name in Settings.model_fields}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def resolve(group: click.Group, args: list[str]) -> tuple[click.Command, list[str]]:
    """The command ``args`` name in ``group`` and the arguments left for it."""
    command: click.Command = group
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        # get_command, not .commands: marketing's group loads its subcommands lazily.
        found = command.get_command(click.Context(command), args[0])
        assert found is not None, f"no command {args[0]!r} in {command.name}"
        command, args = found, args[1:]
    return command, args


def options_of(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def check_marketing(args: list[str]) -> None:
    command, rest = resolve(main, args)
    # Parses the options exactly as a real run would (a typo or a removed option fails).
    command.make_context(command.name or "", list(rest), resilient_parsing=False)


def check_celery(args: list[str]) -> None:
    from celery.bin.celery import celery

    assert args[:2] == ["-A", "tasks"], args
    import tasks

    assert tasks.app.main == "marketing"
    command, rest = resolve(celery, args[2:])
    known = options_of(command)
    for index, arg in enumerate(rest):
        if arg.startswith("-"):
            assert arg.split("=", 1)[0] in known, f"celery {command.name} has no {arg}"
        if arg in ("--queues", "-Q"):
            assert set(rest[index + 1].split(",")) == set(task_queues), "queues differ"


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_each_units_command_exists_with_its_options(path: Path) -> None:
    service = unit(path)["Service"]
    argv = shlex.split(service["ExecStart"])
    program = Path(argv[0]).name
    assert argv[0].startswith("/opt/marketing/.venv/bin/"), argv[0]
    assert program in ("marketing", "celery"), program
    (check_marketing if program == "marketing" else check_celery)(argv[1:])
    assert service["User"] != "root"
    assert service["EnvironmentFile"] == "/etc/marketing/marketing.env"


def test_the_units_are_the_three_roles_and_pools_get_a_fresh_metrics_folder() -> None:
    commands = {p.name: shlex.split(unit(p)["Service"]["ExecStart"])[1:] for p in UNITS}
    assert commands["marketing-web.service"][0] == "serve"
    assert commands["marketing-worker.service"][2] == "worker"
    assert commands["marketing-beat.service"][2] == "beat"
    for name in ("marketing-web.service", "marketing-worker.service"):
        service = unit(DEPLOY / "systemd" / name)["Service"]
        folder = service["RuntimeDirectory"]
        assert service["Environment"] == f"PROMETHEUS_MULTIPROC_DIR=/run/{folder}"


def test_the_proxy_sends_to_the_port_the_web_unit_listens_on() -> None:
    web = shlex.split(unit(DEPLOY / "systemd" / "marketing-web.service")["Service"]["ExecStart"])
    host, port = web[web.index("--host") + 1], web[web.index("--port") + 1]
    proxy = (DEPLOY / "nginx" / "marketing.conf").read_text(encoding="utf-8")
    targets = set(re.findall(r"proxy_pass http://([\d.]+:\d+);", proxy))
    assert targets == {f"{host}:{port}"}
    assert "client_max_body_size 6m;" in proxy
    # The subscriber upload's own, larger limit covers the app's (191 MiB >= its bytes).
    from marketing.web.guards import SUBSCRIBER_BODY_MAX_BYTES

    upload = re.search(r"location ~ \^/communities/\[\^/\]\+/subscribers\$ \{([^}]*)\}", proxy)
    assert upload is not None
    mib = int(re.search(r"client_max_body_size (\d+)m;", upload[1])[1])  # type: ignore[index]
    assert mib * 2**20 >= SUBSCRIBER_BODY_MAX_BYTES


def test_the_container_image_runs_as_a_user_and_starts_a_real_command() -> None:
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert re.match(r"FROM python:3\.\d+-slim", next(x for x in lines if x.startswith("FROM")))
    users = [x.split()[1] for x in lines if x.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    cmd = next(x for x in lines if x.startswith("CMD "))
    argv = __import__("json").loads(cmd[4:])
    assert argv[0] == "marketing"
    check_marketing(argv[1:])
    copied = {x.split()[1] for x in lines if x.startswith("COPY ")}
    assert {"marketing", "channels", "campaigns", "tasks"} <= copied
    assert all((ROOT / name).exists() for name in copied)


@pytest.mark.parametrize(
    "path",
    [ROOT / "docs" / "deploy.md", DEPLOY / "marketing.env.example", *UNITS],
    ids=lambda p: p.name,
)
def test_every_setting_named_is_a_real_one(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    named = set(re.findall(r"\bMARKETING_[A-Z_]+[A-Z]", text))
    # MARKETING_SECRET_<NAME>: an account's secret, not a setting.
    unknown = {
        n
        for n in named - SETTINGS
        if n != "MARKETING_SECRET" and not n.startswith("MARKETING_SECRET_")
    }
    assert unknown == set()
    if path.name == "marketing.env.example":
        values = dict(
            line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
        Settings(**{k.removeprefix("MARKETING_").lower(): v for k, v in values.items()})
