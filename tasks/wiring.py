"""The composition root of a worker process: adapters built from the settings, sharing the
rate-limit and quota stores (in Redis when there is one, so every worker sees the same
limits; in process memory on the embedded defaults, where one worker runs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

import redis
from pydantic import SecretStr
from sqlalchemy import Engine

from channels import registry
from channels.base import Account, Adapter, BulkSender, ChannelServices, Publisher, RefreshGrant
from channels.errors import AuthExpired, PermanentError
from channels.quota import UNITS, UPLOADS, InMemoryQuotaLedger, QuotaLedger, RedisQuotaLedger
from channels.ratelimit import (
    CachedUsageStore,
    MemoryTokenBucket,
    MemoryUsageStore,
    RedisTokenBucket,
    RedisUsageStore,
    TokenBucket,
    UsageStore,
)
from marketing.db import session_scope
from marketing.models import TokenKind
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
from marketing.token_store import (
    StoredTokens,
    TokenUnreadable,
    load_tokens,
    load_tokens_of,
    record_refresh,
)


@cache
def redis_client() -> redis.Redis | None:
    url = get_settings().effective_redis_url
    return redis.Redis.from_url(url) if url else None


@cache
def usage_store() -> UsageStore:
    """The usage reports every worker shares (in Redis, read and written through this
    process's cache: see :class:`CachedUsageStore`)."""
    client = redis_client()
    return CachedUsageStore(RedisUsageStore(client)) if client else MemoryUsageStore()


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


def services() -> ChannelServices:
    """The stores this process's adapters share, and who our subscribers are."""
    return ChannelServices(
        usage=usage_store, quota_ledger=quota_ledger, subscribers=linked_subscribers
    )


def linked_subscribers(account: Account, *, engine: Engine | None = None) -> list[str]:
    """The channel user ids (``Subscriber.line_user_id``) of the consenting subscribers of
    ``account``'s community -- of every community for a programme-wide account -- each
    once, in a stable order."""
    from sqlalchemy import select

    from marketing.models import ChannelAccount, Subscriber

    with session_scope(engine) as session:
        row = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.kind == account.kind,
                ChannelAccount.external_id == account.external_id,
            )
        ).first()
        if row is None:
            return []
        query = select(Subscriber.line_user_id).where(
            Subscriber.line_user_id.is_not(None), Subscriber.unsubscribed_at.is_(None)
        )
        if row.community_id is not None:
            query = query.where(Subscriber.community_id == row.community_id)
        ids = session.scalars(query.order_by(Subscriber.id)).all()
    return [i for i in dict.fromkeys(ids) if i]


@cache
def adapter(kind: str) -> Adapter:
    """The adapter of channel ``kind``, built by its spec from this service's settings.
    Raises :class:`PermanentError` (``<channel>:development-secret``) instead for a channel
    whose messages carry signed tracking links while they would be signed with the
    development secret and lead off this machine: anyone could forge them."""
    spec = registry.spec_for(kind)
    settings = get_settings()
    if spec.signs_links:
        try:
            check_development_secrets(settings, uses=WORKER_SECRETS)
        except DevelopmentSecretRefused as refused:
            raise PermanentError(
                str(refused),
                code=spec.code(refused.code),
                hint="Set MARKETING_TRACKING_SECRET to a long random value and restart the "
                "workers, then retry the post: nothing was sent.",
            ) from None
    return spec.build(settings, services())


def publisher(kind: str) -> Publisher:
    """The adapter that publishes posts of ``kind`` (a channel that can PUBLISH)."""
    built = adapter(kind)
    if not isinstance(built, Publisher):
        raise ValueError(f"{kind} posts are not published by a Publisher")
    return built


def bulk_sender(kind: str) -> BulkSender:
    """The adapter that sends posts of ``kind`` to many (a channel that can SEND_TO_MANY)."""
    built = adapter(kind)
    if not isinstance(built, BulkSender):
        raise ValueError(f"{kind} posts are not sent by a BulkSender")
    return built


def account_for(claim: Claim, *, engine: Engine | None = None) -> Account:
    """The claimed post's account with its token (see :func:`account_of`)."""
    return account_of(
        account_id=claim.account_id,
        kind=claim.channel.value,
        external_id=claim.account_external_id,
        display_name=claim.account_display_name,
        secret_name=claim.account_secret_name,
        engine=engine,
    )


def accounts_for(
    claims: Sequence[Claim], *, engine: Engine | None = None
) -> dict[int, Account | AuthExpired]:
    """The accounts of several claimed posts with their tokens, the store read in one query:
    by account id, the account, or the :class:`AuthExpired` that :func:`account_for` would
    raise for it."""
    with session_scope(engine) as session:
        stored = load_tokens_of(session=session, account_ids=[c.account_id for c in claims])
    found: dict[int, Account | AuthExpired] = {}
    for claim in claims:
        if claim.account_id not in found:
            try:
                found[claim.account_id] = _account(
                    account_id=claim.account_id,
                    kind=claim.channel.value,
                    external_id=claim.account_external_id,
                    display_name=claim.account_display_name,
                    secret_name=claim.account_secret_name,
                    stored=stored.get(claim.account_id),
                    engine=engine,
                )
            except AuthExpired as exc:
                found[claim.account_id] = exc
    return found


def account_of(
    *,
    account_id: int,
    kind: str,
    external_id: str,
    display_name: str,
    secret_name: str | None,
    engine: Engine | None = None,
) -> Account:
    """An account with its token: from the encrypted store when the account was connected
    from the web app, else from the secret it names (environment or secrets file).  A
    missing token is an auth problem a person must fix: :class:`AuthExpired`."""
    try:
        with session_scope(engine) as session:
            stored: StoredTokens | TokenUnreadable | None = load_tokens(
                session=session, account_id=account_id
            )
    except TokenUnreadable as exc:
        stored = exc
    return _account(
        account_id=account_id,
        kind=kind,
        external_id=external_id,
        display_name=display_name,
        secret_name=secret_name,
        stored=stored,
        engine=engine,
    )


def _account(
    *,
    account_id: int,
    kind: str,
    external_id: str,
    display_name: str,
    secret_name: str | None,
    stored: StoredTokens | TokenUnreadable | None,
    engine: Engine | None,
) -> Account:
    """:func:`account_of` once the store was read (``stored``: what it held, or why it
    could not be read; None: nothing)."""
    if isinstance(stored, TokenUnreadable):
        raise AuthExpired(str(stored), code="token_unreadable", hint=str(stored)) from stored
    if stored is not None:
        return Account(
            kind=kind,
            external_id=external_id,
            display_name=display_name,
            token=stored.access_token,
            grant=_grant(stored, account_id=account_id, engine=engine),
        )
    token = None
    if secret_name:
        try:
            token = get_secret(secret_name)
        except MissingSecret as exc:
            raise AuthExpired(str(exc), code="missing_secret", hint=str(exc)) from exc
    return Account(kind=kind, external_id=external_id, display_name=display_name, token=token)


def _grant(stored: StoredTokens, *, account_id: int, engine: Engine | None) -> RefreshGrant | None:
    """Google's refresh grant for ``stored`` tokens, whose renewals are written back to the
    store (encrypted); None when there is nothing to refresh with."""
    settings = get_settings()
    if (
        stored.kind != TokenKind.GOOGLE
        or stored.refresh_token is None
        or not settings.google_client_id
        or settings.google_client_secret is None
    ):
        return None

    def keep(access: SecretStr, refresh: SecretStr | None, expiry: datetime | None) -> None:
        with session_scope(engine) as session:
            record_refresh(
                session=session,
                account_id=account_id,
                access_token=access,
                refresh_token=refresh,
                access_expires_at=expiry,
            )

    return RefreshGrant(
        refresh_token=stored.refresh_token,
        token_uri=settings.google_token_uri,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        expiry=stored.access_expires_at,
        scopes=stored.scopes,
        on_refresh=keep,
    )


def reset() -> None:
    """Forget every built adapter and store (tests change the settings between runs)."""
    for func in (redis_client, usage_store, quota_ledger, publish_bucket, adapter):
        func.cache_clear()
