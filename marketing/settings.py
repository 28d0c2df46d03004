"""Settings: read once from the environment (prefix ``MARKETING_``) and an optional ``.env``.

Every secret is a :class:`pydantic.SecretStr`, whose ``repr`` and ``str`` are ``'**********'``;
it is unwrapped only where an API client or SMTP connection is built.  Channel account tokens
are not settings: an account names its secret (``ChannelAccount.secret_name``) and
:func:`get_secret` looks it up in the environment (``MARKETING_SECRET_<NAME>``) or in the
secrets file (TOML, ``NAME = "value"``) named by ``MARKETING_SECRETS_FILE``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketing.conventions import DEFAULT_TIMEZONE

DEVELOPMENT_TRACKING_SECRET = "change-me-tracking-secret"
DEVELOPMENT_WEB_SECRET = "change-me-web-secret"
# A Fernet key (32 bytes, URL-safe base64) everyone can read: refused off this machine.
DEVELOPMENT_TOKEN_KEY = "Y2hhbmdlLW1lLXRva2VuLWtleS1kZXZlbG9wbWVudDA="


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


class Settings(BaseSettings):
    """Every knob of the service; field names map to ``MARKETING_<NAME>`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("data"), description="Folder for the SQLite files and reports.")
    media_dir: Path | None = Field(
        None,
        description="The one folder every media file (campaign photos and videos, highlight "
        "media) must be in; paths are written relative to it. Default: media in the data folder.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in the data folder."
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker; default: kombu's SQLAlchemy transport on a SQLite file "
        "(no server). Production: redis://REDIS-HOST:6379/0, the address every worker and the "
        "scheduler reach it at.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for rate limits, quota ledgers and failed sign-in counts shared by "
        "all processes; default: the broker URL when it is Redis, else each process keeps its own.",
    )
    timezone: str = Field(DEFAULT_TIMEZONE, description="Zone for times shown to people.")
    language: Literal["th", "en"] = Field(
        "th",
        description="Language of the command line and its reports: th or en (the web app "
        "uses each user's own choice).",
    )
    era: Literal["be", "ce"] | None = Field(
        None,
        description="Years on the command line: be (Buddhist era, 2569) or ce (2026); "
        "default: be in Thai, ce in English.",
    )

    dispatch_interval: float = Field(5.0, description="Seconds between dispatch_due beats.")
    dispatch_batch: int = Field(500, description="Posts claimed per dispatch transaction.")
    publish_batch: int = Field(
        10,
        ge=1,
        description="Posts one publishing message carries: claimed together in one "
        "transaction, then published one after another, each receipt recorded right after "
        "its answer (e-mail posts always go one to a message).",
    )
    queue_lease: float = Field(
        120.0, description="Seconds a post may stay queued before its message is sent again."
    )
    attempt_stale_after: float = Field(
        60.0,
        description="Seconds without a heartbeat after which a publishing attempt counts as "
        "abandoned (its worker died) and is reconciled with the channel.",
    )
    reconcile_delay: float = Field(
        60.0,
        description="Seconds to wait after an ambiguous publish (timeout, dropped connection) "
        "before asking the channel whether it has the post (listings can lag).",
    )
    reconcile_max_tries: int = Field(
        5, description="Checks of an abandoned attempt before it is left to a person."
    )
    max_transient_failures: int = Field(
        5, description="Transient failures in a row before a post is marked failed."
    )
    backoff_base: float = Field(30.0, description="First retry delay after a transient failure.")
    backoff_cap: float = Field(3600.0, description="Longest retry delay.")
    metrics_interval: float = Field(600.0, description="Seconds between collect_metrics beats.")
    publish_rate_per_minute: float = Field(
        30.0, description="Publications a minute per channel account, shared by all workers."
    )
    publish_burst: int = Field(10, description="Publications an account may make at once.")
    email_batch_size: int = Field(
        100, description="Emails sent per SMTP connection batch (one database write each)."
    )
    email_sending_processes: int = Field(
        2,
        ge=1,
        le=16,
        description="Processes that render, sign and send a post's emails at once, each over "
        "an SMTP connection of its own (1: the worker process itself sends).",
    )

    graph_api_url: str = Field("https://graph.facebook.com", description="Graph API host.")
    graph_api_version: str = Field("v25.0", description="Graph API version in URLs.")
    facebook_app_secret: SecretStr | None = Field(
        None, description="App secret for appsecret_proof (optional)."
    )
    facebook_app_id: str | None = Field(
        None, description="Facebook app id for connecting Pages from the web app (Login)."
    )
    facebook_dialog_url: str = Field(
        "https://www.facebook.com",
        description="Host of the Facebook Login dialog (/{version}/dialog/oauth).",
    )
    google_client_id: str | None = Field(
        None, description="Google OAuth client id for connecting YouTube channels."
    )
    google_client_secret: SecretStr | None = Field(None, description="Google OAuth client secret.")
    google_auth_uri: str = Field(
        "https://accounts.google.com/o/oauth2/auth", description="Google's authorization page."
    )
    google_token_uri: str = Field(
        "https://oauth2.googleapis.com/token", description="Google's token endpoint."
    )
    google_consent_testing: bool = Field(
        False,
        description="The Google project's OAuth consent screen is in Testing: its refresh "
        "tokens die after 7 days, which is recorded as the channel's access end.",
    )
    token_keys: SecretStr = Field(
        SecretStr(DEVELOPMENT_TOKEN_KEY),
        description="Fernet keys that encrypt channel tokens in the database, comma-separated, "
        "newest first (`marketing accounts rotate-key` re-encrypts under the first; then drop "
        "the old ones). The development value is refused unless public_base_url is on this "
        "machine.",
    )
    youtube_root_url: str = Field(
        "https://youtube.googleapis.com/", description="YouTube Data API root URL."
    )
    youtube_daily_uploads: int = Field(
        100, description="videos.insert calls a day the Google project may make (its quota)."
    )
    youtube_daily_units: int = Field(
        10_000, description="Other YouTube API units a day the Google project may spend."
    )
    youtube_quota_project: str | None = Field(
        "default",
        description="Name under which YouTube quota is counted: Google counts it per Cloud "
        "project, so every channel of one project shares it. Empty: count per channel.",
    )
    youtube_api_key: SecretStr | None = Field(
        None,
        description="API key of the Google Cloud project, for the public statistics of "
        "creators' videos (videos.list, 1 unit per 50 videos). Unset: creator videos are "
        "listed without statistics.",
    )

    line_api_url: str = Field(
        "https://api.line.me", description="LINE Messaging API base URL (the sandbox's in tests)."
    )
    line_timeout: float = Field(30.0, description="Seconds before a LINE API call gives up.")
    line_hourly_limit: int = Field(
        60, description="Broadcasts or narrowcasts an hour per LINE account (LINE's limit)."
    )
    notify_line_account: str | None = Field(
        None,
        description="Slug of the LINE Official Account (the programme's) that also sends the "
        "staff notification digests; unset: e-mail only.",
    )
    notify_line_users: str = Field(
        "",
        description="Comma-separated LINE user ids (U and 32 hex digits) of the staff who "
        "follow that account and get the digests on LINE.",
    )

    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, description="SMTP relay port.")
    smtp_security: SmtpSecurity = Field(SmtpSecurity.NONE, description="none, starttls or ssl.")
    smtp_username: str | None = Field(None, description="SMTP user, if the relay needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_timeout: float = Field(30.0, description="Seconds before an SMTP call gives up.")
    email_from: str = Field(
        "community@example.org", description="Envelope and From address of campaign email."
    )
    unsubscribe_mailto: str = Field(
        "unsubscribe@example.org", description="Address for mailto: List-Unsubscribe."
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL of the web app, used in tracking and unsubscribe links.",
    )
    tracking_secret: SecretStr = Field(
        SecretStr(DEVELOPMENT_TRACKING_SECRET),
        description="HMAC key that signs tracking and unsubscribe tokens (the development "
        "value is refused unless public_base_url and the listening address are on this "
        "machine).",
    )
    web_secret: SecretStr = Field(
        SecretStr(DEVELOPMENT_WEB_SECRET),
        description="Key that signs the web app's session cookies (the development value is "
        "refused unless public_base_url and the listening address are on this machine).",
    )
    dkim_domain: str | None = Field(None, description="d= of DKIM signatures (optional).")
    dkim_selector: str | None = Field(None, description="s= of DKIM signatures.")
    dkim_private_key_file: Path | None = Field(None, description="PEM key for DKIM signing.")

    log_format: Literal["text", "json"] = Field(
        "text",
        description="text (for people) or json (one object a line, with post_id and "
        "attempt_id on every line about a post, for a log collector).",
    )
    metrics_networks: str = Field(
        "",
        description="Networks (CIDR, comma-separated) allowed to read /metrics without a "
        "token, e.g. the Prometheus server's 10.0.5.0/24; empty: an admin's API token only.",
    )
    worker_metrics_port: int | None = Field(
        None,
        description="Port on which each worker host serves its Prometheus metrics (the "
        "whole prefork pool, from PROMETHEUS_MULTIPROC_DIR); empty: not served.",
    )
    worker_metrics_address: str = Field(
        "127.0.0.1", description="Address the worker's metrics port listens on."
    )
    pg_bin_dir: Path | None = Field(
        None,
        description="Folder of pg_dump and pg_restore for `marketing backup` and `restore`; "
        "default: the newest installed ones at least as new as the server.",
    )
    tracking_retention_days: int = Field(
        400,
        ge=1,
        description="Days individual e-mail opens and clicks are kept; older ones are counted "
        "into the daily totals, then deleted (housekeeping).",
    )

    secrets_file: Path | None = Field(
        None,
        description='TOML file of channel account secrets (NAME = "value"); refused unless '
        "private to its owner (chmod 600).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(f"{part.strip()!r} is not a network (10.0.5.0/24)") from exc
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'marketing.sqlite3'}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        broker = self.effective_broker_url
        return broker if broker.startswith(("redis://", "rediss://")) else None

    @property
    def media_root(self) -> Path:
        """The folder every media file is read from (see :mod:`marketing.media`)."""
        return self.media_dir or self.data_dir / "media"

    @property
    def erasure_list(self) -> Path:
        """Hashes of erased subscribers' addresses, kept outside the database so a restore
        of an older backup erases them again (see :mod:`marketing.privacy`)."""
        return self.data_dir / "erasures.txt"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def ensure_data_dir(self) -> Path:
        """Create the data folder if it does not exist; return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the demo change the environment)."""
    get_settings.cache_clear()


# --- development secrets -----------------------------------------------------------------
#
# The tracking and web secrets have development values so that `marketing demo` and a local
# `marketing serve` work with no setup.  Anyone can read them here, so with them anyone can
# forge tracking links (clicks, unsubscribes) and session cookies.  They are accepted only
# when nothing outside this machine can reach the app or receive its links: the public URL
# *and* the address the server listens on are loopback.  Every entry point asks the one
# function below: the web factory, the worker's start-up, the e-mail adapter, the CLI.

SecretUse = Literal["web", "tracking", "tokens"]
SECRET_VARIABLES: dict[SecretUse, str] = {
    "web": "MARKETING_WEB_SECRET",
    "tracking": "MARKETING_TRACKING_SECRET",
    "tokens": "MARKETING_TOKEN_KEYS",
}
# A worker signs the links of campaign e-mail and never sees a session cookie.
WORKER_SECRETS: tuple[SecretUse, ...] = ("tracking",)
_DEVELOPMENT_VALUES: dict[SecretUse, str] = {
    "web": DEVELOPMENT_WEB_SECRET,
    "tracking": DEVELOPMENT_TRACKING_SECRET,
    "tokens": DEVELOPMENT_TOKEN_KEY,
}


def is_loopback_host(host: str | None) -> bool:
    """True if ``host`` is this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    host = (host or "").strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return address.is_loopback


def is_loopback_url(url: str) -> bool:
    """True if ``url``'s host is this machine (see :func:`is_loopback_host`)."""
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:  # an unparsable URL is not this machine
        return False


class DevelopmentSecretRefused(RuntimeError):
    """A secret still has its development value while the app can be reached from, or sends
    links to, other machines.  ``code`` and ``variables`` let a caller translate it."""

    code = "development-secret"

    def __init__(self, *, variables: list[str], reason: str) -> None:
        self.variables = variables
        self.reason = reason
        super().__init__(
            f"{', '.join(variables)} still has its development value while {reason}. Set each "
            "to a long random value, e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'` (or, for development on this machine only, "
            "keep MARKETING_PUBLIC_BASE_URL and the listening address on 127.0.0.1)."
        )


def development_secrets(settings: Settings, *, uses: Iterable[SecretUse]) -> list[str]:
    """The variables among ``uses`` whose secret still has its development value."""
    current = {
        "web": settings.web_secret.get_secret_value(),
        "tracking": settings.tracking_secret.get_secret_value(),
        # The development key counts wherever it is still among the keys.
        "tokens": next(
            (
                k
                for k in settings.token_keys.get_secret_value().split(",")
                if k.strip() == DEVELOPMENT_TOKEN_KEY
            ),
            "",
        ).strip(),
    }
    return [
        SECRET_VARIABLES[use]
        for use in ("web", "tracking", "tokens")
        if use in set(uses) and current[use] == _DEVELOPMENT_VALUES[use]
    ]


def check_development_secrets(
    settings: Settings,
    *,
    uses: Iterable[SecretUse] = ("web", "tracking"),
    bound_host: str | None = None,
) -> None:
    """Raise :class:`DevelopmentSecretRefused` if a secret in ``uses`` has its development
    value while ``public_base_url`` -- or ``bound_host``, the address a server listens on,
    when the caller has one -- is not this machine; return quietly otherwise."""
    found = development_secrets(settings, uses=uses)
    if not found:
        return
    if not is_loopback_url(settings.public_base_url):
        reason = (
            f"MARKETING_PUBLIC_BASE_URL ({settings.public_base_url}) is not this machine "
            "(links signed with it reach other people)"
        )
        raise DevelopmentSecretRefused(variables=found, reason=reason)
    if bound_host is not None and not is_loopback_host(bound_host):
        reason = f"the server listens on {bound_host}, which other machines can reach"
        raise DevelopmentSecretRefused(variables=found, reason=reason)


class TokenKeysInvalid(ValueError):
    """``MARKETING_TOKEN_KEYS`` holds no key, or a value that is not a Fernet key."""


class TokenUnreadable(LookupError):
    """A stored token was encrypted under a key that is no longer configured."""


class MissingSecret(LookupError):
    """A channel account names a secret that is set nowhere."""


class InsecureSecretsFile(MissingSecret):
    """The secrets file can be read by other users of the machine: it is not used."""


def check_secrets_file(path: Path) -> None:
    """Refuse a secrets file that its group or other users may read or write, as ssh refuses
    such a private key: raise :class:`InsecureSecretsFile` saying to ``chmod 600`` it."""
    if os.name == "nt":  # no POSIX modes; the folder's ACL decides
        return
    mode = path.stat().st_mode
    if mode & 0o077:
        raise InsecureSecretsFile(
            f"the secrets file {path} may be read by other users (mode {mode & 0o777:03o}), "
            f"so it is not used: run `chmod 600 {path}` (and keep it owned by the service's "
            "user), as ssh refuses a private key others can read"
        )


def get_secret(name: str, settings: Settings | None = None) -> SecretStr:
    """The secret called ``name``, from the environment first, then the secrets file (which
    must be private to its owner: :func:`check_secrets_file`)."""
    settings = settings or get_settings()
    env_name = f"MARKETING_SECRET_{name.upper()}"
    value = os.environ.get(env_name)
    if value:
        return SecretStr(value)
    if settings.secrets_file and settings.secrets_file.exists():
        check_secrets_file(settings.secrets_file)
        with settings.secrets_file.open("rb") as fh:
            table = tomllib.load(fh)
        found = table.get(name)
        if isinstance(found, str) and found:
            return SecretStr(found)
    where = f' or {name} = "..." in {settings.secrets_file}' if settings.secrets_file else ""
    raise MissingSecret(
        f"secret {name} is not set: export {env_name}=...{where} "
        "(secrets never go in campaign or community files)"
    )
