"""For the operator's machines: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says the process answers (a load balancer's liveness probe).  ``/readyz`` says
whether it can do its work: the database answers ``SELECT 1`` and Redis answers ``PING``
(when one is configured), each within :data:`READY_TIMEOUT` seconds; 503 otherwise.

``/metrics`` is the Prometheus page (:mod:`marketing.observability`).  It names accounts and
queue depths, so it is not public: a client from ``MARKETING_METRICS_NETWORKS`` (as the TLS
proxy reports it: see docs/deploy.md) or with an admin's API token
(``Authorization: Bearer ...``) may read it; anyone else gets 403.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from marketing import observability
from marketing.db import session_factory
from marketing.models import Role
from marketing.settings import Settings
from marketing.web.deps import client_address, engine_of, now_of, settings_of
from marketing.web.staff import user_for_token

router = APIRouter(include_in_schema=False)
READY_TIMEOUT = 3.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


def _database_answers(request: Request) -> None:
    with engine_of(request).connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis_answers(settings: Settings) -> None:
    import redis

    url = settings.effective_redis_url
    assert url is not None
    client = redis.Redis.from_url(
        url, socket_timeout=READY_TIMEOUT, socket_connect_timeout=READY_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


async def _check(call: Any, *args: Any) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(call, *args), READY_TIMEOUT)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # the class only: messages may hold addresses
        return f"error: {type(exc).__name__}"
    return "ok"


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 if the database and Redis answer, 503 (saying which does not) otherwise."""
    settings = settings_of(request)
    checks = {"database": await _check(_database_answers, request)}
    if settings.effective_redis_url:
        checks["redis"] = await _check(_redis_answers, settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def scrape_networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of ``MARKETING_METRICS_NETWORKS``."""
    return [
        ipaddress.ip_network(part.strip(), strict=False)
        for part in settings.metrics_networks.split(",")
        if part.strip()
    ]


def _may_scrape(request: Request) -> bool:
    settings = settings_of(request)
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        address = None
    if address is not None and any(address in net for net in scrape_networks(settings)):
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    with session_factory(engine_of(request))() as session:
        user = user_for_token(session=session, token=token.strip(), now=now_of(request))
        allowed = user is not None and user.role.allows(Role.ADMIN)
        session.commit()  # the token's last use
    return allowed


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The Prometheus page, for the scrape networks and admins' tokens only."""
    if not _may_scrape(request):
        return JSONResponse(
            {"detail": "metrics are for the scrape network or an admin's API token"},
            status_code=403,
        )
    body, content_type = observability.exposition(
        engine=engine_of(request), settings=settings_of(request)
    )
    return Response(body, media_type=content_type)
