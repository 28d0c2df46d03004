"""``marketing serve``: run the web app (pages, email endpoints, JSON API) under uvicorn."""

from __future__ import annotations

import click

from marketing.cli.base import friendly_errors
from marketing.settings import check_development_secrets, get_settings

WORKER_HEALTHCHECK_SECONDS = 60


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
    check_development_secrets(settings, bound_host=host)
    settings.ensure_data_dir()
    from uvicorn.config import LOGGING_CONFIG

    from marketing.observability import uvicorn_log_config

    log_config = uvicorn_log_config(log_format=settings.log_format)
    uvicorn.run(
        "marketing.web:serving_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
        log_config=log_config or LOGGING_CONFIG,
        # With --workers, uvicorn kills a worker that does not answer its health check in
        # time (5 s by default), dropping every request it was answering; on a busy 2-core
        # host a worker under load answers late without being stuck (#19).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
