"""``marketing serve``: run the web app (pages, email endpoints, JSON API) under uvicorn."""

from __future__ import annotations

import ipaddress
import sys
from urllib.parse import urlsplit

import click

from marketing.cli.base import err_console, friendly_errors
from marketing.settings import (
    DEVELOPMENT_TRACKING_SECRET,
    DEVELOPMENT_WEB_SECRET,
    Settings,
    get_settings,
)


def is_loopback(url: str) -> bool:
    """True if ``url``'s host is this machine (localhost, 127.0.0.0/8 or ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unsafe_secrets(settings: Settings) -> list[str]:
    """The settings still at their development value while the app is public."""
    if is_loopback(settings.public_base_url):
        return []
    found = []
    if settings.web_secret.get_secret_value() == DEVELOPMENT_WEB_SECRET:
        found.append("MARKETING_WEB_SECRET")
    if settings.tracking_secret.get_secret_value() == DEVELOPMENT_TRACKING_SECRET:
        found.append("MARKETING_TRACKING_SECRET")
    return found


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@friendly_errors
def serve(host: str, port: int, workers: int) -> None:
    """Run the web app for the marketing staff: pages, email tracking endpoints and the JSON
    API. Create the first user with `marketing users add NAME --role admin`."""
    import uvicorn

    settings = get_settings()
    unsafe = unsafe_secrets(settings)
    if unsafe:
        err_console.print(
            f"[bold red]Refused:[/] {', '.join(unsafe)} still has its development value while "
            f"MARKETING_PUBLIC_BASE_URL ({settings.public_base_url}) is not this machine. Set "
            "each to a long random value, e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`.",
            highlight=False,
        )
        sys.exit(2)
    settings.ensure_data_dir()
    uvicorn.run(
        "marketing.web:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )
