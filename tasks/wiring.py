"""The composition root of a worker process: adapters built from the settings, sharing the
rate-limit and quota stores (in Redis when there is one, so every worker sees the same
limits; in process memory on the embedded defaults, where one worker runs)."""

from __future__ import annotations

from functools import cache

import redis

from channels.base import Account, Publisher
from channels.email import EmailAdapter
from channels.errors import AuthExpired, PermanentError
from channels.quota import UNITS, UPLOADS, InMemoryQuotaLedger, QuotaLedger, RedisQuotaLedger
from channels.ratelimit import (
    MemoryTokenBucket,
    MemoryUsageStore,
    RedisTokenBucket,
    RedisUsageStore,
    TokenBucket,
    UsageStore,
)
from marketing.models import ChannelKind
from marketing.publishing import Claim
from marketing.quota_record import quota_seed
from marketing.settings import (
    WORKER_SECRETS,
    DevelopmentSecretRefused,
    MissingSecret,
    check_development_secrets,
    get_secret,
    get_settings,
)


@cache
def redis_client() -> redis.Redis | None:
    url = get_settings().effective_redis_url
    return redis.Redis.from_url(url) if url else None


@cache
def usage_store() -> UsageStore:
    client = redis_client()
    return RedisUsageStore(client) if client else MemoryUsageStore()


@cache
def quota_ledger() -> QuotaLedger:
    """The YouTube quota ledger; a day's counter that is missing (Redis restarted, or this
    process did) is rebuilt from the day's upload attempts in the database."""
    settings = get_settings()
    limits = {UPLOADS: settings.youtube_daily_uploads, UNITS: settings.youtube_daily_units}
    seed = quota_seed(engine=None, quota_project=settings.youtube_quota_project or None)
    client = redis_client()
    if client:
        return RedisQuotaLedger(client, limits=limits, seed=seed)
    return InMemoryQuotaLedger(limits=limits, seed=seed)


@cache
def publish_bucket() -> TokenBucket:
    settings = get_settings()
    rate, capacity = settings.publish_rate_per_minute / 60, float(settings.publish_burst)
    client = redis_client()
    if client:
        return RedisTokenBucket(client, rate=rate, capacity=capacity)
    return MemoryTokenBucket(rate=rate, capacity=capacity)


@cache
def publisher(kind: ChannelKind) -> Publisher:
    """The adapter that publishes posts of ``kind`` (Facebook or YouTube)."""
    settings = get_settings()
    if kind == ChannelKind.FACEBOOK:
        from channels.facebook import facebook_adapter_from_settings

        return facebook_adapter_from_settings(settings, usage=usage_store())
    if kind == ChannelKind.YOUTUBE:
        from channels.youtube import youtube_adapter_from_settings

        return youtube_adapter_from_settings(settings, quota_ledger())
    raise ValueError(f"{kind} posts are not published by a Publisher")


@cache
def email_adapter() -> EmailAdapter:
    """The adapter that builds and sends campaign email.  Raises :class:`PermanentError`
    (``email:development-secret``) instead while its links would be signed with the
    development tracking secret and lead off this machine: anyone could forge them."""
    from channels.email import email_adapter_from_settings

    settings = get_settings()
    try:
        check_development_secrets(settings, uses=WORKER_SECRETS)
    except DevelopmentSecretRefused as refused:
        raise PermanentError(
            str(refused),
            code=f"email:{refused.code}",
            hint="Set MARKETING_TRACKING_SECRET to a long random value and restart the "
            "workers, then retry the post: nothing was sent.",
        ) from None
    return email_adapter_from_settings(settings)


def account_for(claim: Claim) -> Account:
    """The claimed post's account with its token; a missing secret is an auth problem a
    person must fix, so it is raised as :class:`AuthExpired`."""
    token = None
    if claim.account_secret_name:
        try:
            token = get_secret(claim.account_secret_name)
        except MissingSecret as exc:
            raise AuthExpired(str(exc), code="missing_secret", hint=str(exc)) from exc
    return Account(
        kind=claim.channel.value,
        external_id=claim.account_external_id,
        display_name=claim.account_display_name,
        token=token,
    )


def reset() -> None:
    """Forget every built adapter and store (tests change the settings between runs)."""
    for func in (redis_client, usage_store, quota_ledger, publish_bucket, publisher, email_adapter):
        func.cache_clear()
