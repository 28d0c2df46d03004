"""Channel tokens at rest: encrypted in the database, decrypted only where a client is built.

Every token is Fernet ciphertext (:class:`cryptography.fernet.MultiFernet`) under the keys in
``MARKETING_TOKEN_KEYS`` (comma-separated, newest first): any key decrypts, the first
encrypts.  Rotating keys: put a new key first, run ``marketing accounts rotate-key``
(:func:`rotate_keys` re-encrypts every row under it), then remove the old key.  The
development key is refused while the public URL is not this machine, as the other
development secrets are (:func:`marketing.settings.check_development_secrets`).

Tokens leave this module as :class:`pydantic.SecretStr` only; times and scopes are kept in
the clear so expiry warnings need no key.

An account with stored tokens uses them; an account without any keeps using the secret its
``secret_name`` names (environment or secrets file), and :func:`import_secrets` moves such
secrets into the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "StoredTokens",
    "TokenKeysInvalid",
    "TokenUnreadable",
    "import_secrets",
    "load_tokens",
    "record_refresh",
    "rotate_keys",
    "store_tokens",
    "token_cipher",
]

from marketing.db import utcnow
from marketing.models import AccountToken, ChannelAccount, ChannelKind, TokenKind
from marketing.settings import (
    MissingSecret,
    Settings,
    TokenKeysInvalid,
    TokenUnreadable,
    check_development_secrets,
    get_secret,
    get_settings,
)


@dataclass(frozen=True)
class StoredTokens:
    """An account's tokens, decrypted; the secrets never print."""

    kind: TokenKind
    access_token: SecretStr = field(repr=False)
    refresh_token: SecretStr | None = field(default=None, repr=False)
    access_expires_at: datetime | None = None
    lifetime_ends_at: datetime | None = None
    scopes: tuple[str, ...] = ()


def token_cipher(settings: Settings | None = None) -> MultiFernet:
    """The cipher of ``MARKETING_TOKEN_KEYS`` (newest key first); raises
    :class:`marketing.settings.DevelopmentSecretRefused` for the development key off this
    machine and :class:`TokenKeysInvalid` for a malformed key (without showing it)."""
    settings = settings or get_settings()
    check_development_secrets(settings, uses=("tokens",))
    raw = [k.strip() for k in settings.token_keys.get_secret_value().split(",") if k.strip()]
    if not raw:
        raise TokenKeysInvalid("MARKETING_TOKEN_KEYS holds no key")
    keys = []
    for number, key in enumerate(raw, start=1):
        try:
            keys.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise TokenKeysInvalid(
                f"key {number} of MARKETING_TOKEN_KEYS is not a Fernet key (32 bytes in "
                "URL-safe base64: `python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return MultiFernet(keys)


def _seal(cipher: MultiFernet, secret: SecretStr) -> str:
    return cipher.encrypt(secret.get_secret_value().encode("utf-8")).decode("ascii")


def _open(cipher: MultiFernet, ciphertext: str, account_id: int) -> SecretStr:
    try:
        return SecretStr(cipher.decrypt(ciphertext.encode("ascii")).decode("utf-8"))
    except InvalidToken:
        raise TokenUnreadable(
            f"the tokens of account {account_id} were encrypted under a key that is not in "
            "MARKETING_TOKEN_KEYS: put the old key back after the new one, or reconnect the "
            "account"
        ) from None


def store_tokens(
    *,
    session: Session,
    account: ChannelAccount,
    kind: TokenKind,
    access_token: SecretStr,
    refresh_token: SecretStr | None = None,
    access_expires_at: datetime | None = None,
    lifetime_ends_at: datetime | None = None,
    scopes: Sequence[str] = (),
    settings: Settings | None = None,
) -> AccountToken:
    """Encrypt and save ``account``'s tokens (replacing earlier ones); a missing
    ``refresh_token`` keeps the one stored, never blanks it."""
    cipher = token_cipher(settings)
    if session.get(ChannelAccount, account.id) is None:
        session.flush()
    row = session.scalars(select(AccountToken).where(AccountToken.account_id == account.id)).first()
    if row is None:
        row = AccountToken(account_id=account.id, kind=kind, access_ciphertext="")
        session.add(row)
    row.kind = kind
    row.access_ciphertext = _seal(cipher, access_token)
    if refresh_token is not None and refresh_token.get_secret_value():
        row.refresh_ciphertext = _seal(cipher, refresh_token)
    row.access_expires_at = access_expires_at
    row.lifetime_ends_at = lifetime_ends_at
    row.scopes = list(scopes)
    session.flush()
    return row


def load_tokens(
    *, session: Session, account_id: int, settings: Settings | None = None
) -> StoredTokens | None:
    """``account_id``'s decrypted tokens, or None if the store has none for it."""
    row = session.scalars(select(AccountToken).where(AccountToken.account_id == account_id)).first()
    return None if row is None else _stored(row, token_cipher(settings))


def load_tokens_of(
    *, session: Session, account_ids: Iterable[int], settings: Settings | None = None
) -> dict[int, StoredTokens | TokenUnreadable]:
    """:func:`load_tokens` for several accounts in one query: by account id, the tokens or
    the :class:`TokenUnreadable` that :func:`load_tokens` would raise; an account the store
    has no tokens for is left out."""
    rows = session.scalars(
        select(AccountToken).where(AccountToken.account_id.in_(set(account_ids)))
    ).all()
    if not rows:
        return {}
    cipher = token_cipher(settings)
    found: dict[int, StoredTokens | TokenUnreadable] = {}
    for row in rows:
        try:
            found[row.account_id] = _stored(row, cipher)
        except TokenUnreadable as exc:
            found[row.account_id] = exc
    return found


def _stored(row: AccountToken, cipher: MultiFernet) -> StoredTokens:
    return StoredTokens(
        kind=row.kind,
        access_token=_open(cipher, row.access_ciphertext, row.account_id),
        refresh_token=(
            _open(cipher, row.refresh_ciphertext, row.account_id)
            if row.refresh_ciphertext
            else None
        ),
        access_expires_at=row.access_expires_at,
        lifetime_ends_at=row.lifetime_ends_at,
        scopes=tuple(row.scopes or ()),
    )


def record_refresh(
    *,
    session: Session,
    account_id: int,
    access_token: SecretStr,
    refresh_token: SecretStr | None,
    access_expires_at: datetime | None,
    settings: Settings | None = None,
) -> None:
    """Save what a token refresh returned; an answer without a refresh token keeps the
    stored one (Google may omit it)."""
    cipher = token_cipher(settings)
    row = session.scalars(select(AccountToken).where(AccountToken.account_id == account_id)).first()
    if row is None:
        return
    row.access_ciphertext = _seal(cipher, access_token)
    if refresh_token is not None and refresh_token.get_secret_value():
        row.refresh_ciphertext = _seal(cipher, refresh_token)
    row.access_expires_at = access_expires_at
    row.refreshed_at = utcnow()


def rotate_keys(*, session: Session, settings: Settings | None = None) -> int:
    """Re-encrypt every stored token under the newest key; return how many rows changed.
    Afterwards the older keys may be removed from ``MARKETING_TOKEN_KEYS``."""
    cipher = token_cipher(settings)
    count = 0
    for row in session.scalars(select(AccountToken).order_by(AccountToken.id)):
        try:
            row.access_ciphertext = cipher.rotate(row.access_ciphertext.encode()).decode()
            if row.refresh_ciphertext:
                row.refresh_ciphertext = cipher.rotate(row.refresh_ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenUnreadable(
                f"the tokens of account {row.account_id} were encrypted under none of the keys "
                "in MARKETING_TOKEN_KEYS: nothing was rotated"
            ) from None
        count += 1
    session.flush()
    return count


IMPORTED_KIND = {
    ChannelKind.FACEBOOK: TokenKind.FACEBOOK_PAGE,
    ChannelKind.YOUTUBE: TokenKind.GOOGLE,
}


def import_secrets(*, session: Session, settings: Settings | None = None) -> list[str]:
    """Move the environment or secrets-file token of every Facebook and YouTube account that
    names one into the store; return the slugs moved.  The account then forgets the name, so
    the variable or file entry may be deleted.  A YouTube secret so moved is an access token
    without a refresh token: reconnect the channel from the web app for one."""
    settings = settings or get_settings()
    moved = []
    accounts = session.scalars(
        select(ChannelAccount)
        .where(ChannelAccount.secret_name.is_not(None))
        .where(ChannelAccount.kind.in_(tuple(IMPORTED_KIND)))
        .order_by(ChannelAccount.slug)
    )
    for account in accounts:
        assert account.secret_name is not None
        try:
            secret = get_secret(account.secret_name, settings)
        except MissingSecret:
            continue
        store_tokens(
            session=session,
            account=account,
            kind=IMPORTED_KIND[account.kind],
            access_token=secret,
            settings=settings,
        )
        account.secret_name = None
        moved.append(account.slug)
    session.flush()
    return moved
