"""``marketing doctor``: what is wrong with a deployment's settings and surroundings.

Each check looks at one thing -- the secrets, the secrets file, the public URL, the database
and its migrations, Redis, the clock against the database server's, the SMTP relay, every
channel account -- and returns :class:`Finding` values: a code (``<area>:<reason>``), a
severity, what is wrong and what to do, in Thai or English (the web app's gettext catalogs,
``marketing/web/translations``).  Every check that reaches another machine is bounded by
``timeout`` seconds (:func:`_bounded`), so the doctor answers even when a host is silent.
A check that finds nothing wrong returns one finding of severity ``ok``.

Nothing here changes anything: the doctor reads settings, files and databases only.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from marketing.settings import (
    SECRET_VARIABLES,
    InsecureSecretsFile,
    MissingSecret,
    Settings,
    SmtpSecurity,
    check_secrets_file,
    development_secrets,
    get_secret,
    is_loopback_url,
)

T = TypeVar("T")
Gettext = Callable[[str], str]

#: Seconds each check that reaches another machine may take.
DEFAULT_TIMEOUT = 5.0
#: Clock difference with the database server above which a warning, and an error, is given:
#: attempts count as abandoned after MARKETING_ATTEMPT_STALE_AFTER (60 s by default).
SKEW_WARNING = 2.0
SKEW_ERROR = 30.0


class Severity(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at: its code, how bad, what is wrong, what to do."""

    code: str
    severity: Severity
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


@dataclass
class Diagnosis:
    """Every finding of one run of the doctor."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    @property
    def problems(self) -> list[Finding]:
        """Errors and warnings."""
        return [f for f in self.findings if f.severity != Severity.OK]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.problems) - len(self.errors),
            "findings": [f.as_dict() for f in self.findings],
        }


class _TimedOut(Exception):
    pass


def _bounded(call: Callable[[], T], seconds: float) -> T:
    """``call()``'s result, or :class:`_TimedOut` after ``seconds`` (the call is left to
    finish in a daemon thread: a silent host cannot hold the doctor)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="doctor-check", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise _TimedOut()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _why(exc: BaseException) -> str:
    """What went wrong, without URLs or passwords: the exception's class and first line."""
    if isinstance(exc, _TimedOut):
        return "timeout"
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# --- the checks -----------------------------------------------------------------------------


def check_secrets(settings: Settings, _: Gettext) -> list[Finding]:
    """The web and tracking secrets and the token keys are not the development values while
    the app is exposed."""
    found = development_secrets(settings, uses=tuple(SECRET_VARIABLES))
    if found and not is_loopback_url(settings.public_base_url):
        return [
            Finding(
                "secrets:development",
                Severity.ERROR,
                _(
                    "%(variables)s still has its development value while "
                    "MARKETING_PUBLIC_BASE_URL (%(url)s) is reachable from other machines: "
                    "anyone can forge session cookies and tracking links."
                )
                % {"variables": ", ".join(found), "url": settings.public_base_url},
                _(
                    "Set each to a long random value, e.g. the output of python3 -c 'import "
                    "secrets; print(secrets.token_urlsafe(48))', and restart the service."
                ),
            )
        ]
    problems = []
    if settings.smtp_username and settings.smtp_password is None:
        problems.append(
            Finding(
                "secrets:smtp-password-missing",
                Severity.ERROR,
                _("MARKETING_SMTP_USERNAME is set but MARKETING_SMTP_PASSWORD is not."),
                _("Set MARKETING_SMTP_PASSWORD to the relay's password."),
            )
        )
    return problems or [Finding("secrets:ok", Severity.OK, _("The secrets are set."))]


def check_secret_files(settings: Settings, _: Gettext) -> list[Finding]:
    """The secrets file and the DKIM key exist and only their owner may read them."""
    problems = []
    for variable, path in (
        ("MARKETING_SECRETS_FILE", settings.secrets_file),
        ("MARKETING_DKIM_PRIVATE_KEY_FILE", settings.dkim_private_key_file),
    ):
        if path is None:
            continue
        values = {"variable": variable, "path": str(path)}
        if not path.is_file():
            problems.append(
                Finding(
                    "files:missing",
                    Severity.ERROR,
                    _("%(variable)s names %(path)s, which does not exist.") % values,
                    _("Create the file, or correct %(variable)s.") % values,
                )
            )
            continue
        try:
            check_secrets_file(path)
        except InsecureSecretsFile:
            values["mode"] = f"{path.stat().st_mode & 0o777:03o}"
            problems.append(
                Finding(
                    "files:readable-by-others",
                    Severity.ERROR,
                    _(
                        "%(path)s (%(variable)s) may be read by other users of the machine "
                        "(mode %(mode)s), so its secrets are not used."
                    )
                    % values,
                    _("Run chmod 600 %(path)s and keep it owned by the service's user.") % values,
                )
            )
    return problems or [Finding("files:ok", Severity.OK, _("The secret files are private."))]


def check_urls(settings: Settings, _: Gettext) -> list[Finding]:
    """URLs other machines see use https; the channel APIs are reached over https."""
    problems = []
    url = settings.public_base_url
    if not is_loopback_url(url) and urlsplit(url).scheme != "https":
        problems.append(
            Finding(
                "url:not-https",
                Severity.ERROR,
                _(
                    "MARKETING_PUBLIC_BASE_URL (%(url)s) is reachable from other machines but "
                    "does not use https: sign-in passwords and cookies travel in clear text."
                )
                % {"url": url},
                _(
                    "Put the web app behind a TLS proxy (deploy/ has samples) and set "
                    "MARKETING_PUBLIC_BASE_URL to its https:// address."
                ),
            )
        )
    for variable, api in (
        ("MARKETING_GRAPH_API_URL", settings.graph_api_url),
        ("MARKETING_YOUTUBE_ROOT_URL", settings.youtube_root_url),
    ):
        if not is_loopback_url(api) and urlsplit(api).scheme != "https":
            problems.append(
                Finding(
                    "url:api-not-https",
                    Severity.ERROR,
                    _(
                        "%(variable)s (%(url)s) does not use https: tokens would travel in "
                        "clear text."
                    )
                    % {"variable": variable, "url": api},
                    _("Use the https:// address of the API."),
                )
            )
    return problems or [Finding("url:ok", Severity.OK, _("The URLs use https where they must."))]


def check_database(
    settings: Settings, _: Gettext, *, timeout: float, clock: Callable[[], datetime]
) -> list[Finding]:
    """The database answers, its schema is the newest this code knows, and its clock agrees
    with this machine's."""
    from sqlalchemy import text

    from marketing import migrate
    from marketing.db import make_engine

    url = settings.effective_database_url
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.is_file():  # never create one
        return [_migrations(None, migrate.head_revision(), _)]
    options: dict[str, Any] = {}
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": max(int(timeout), 1)}
    engine = make_engine(url, **options)
    try:

        def probe() -> tuple[str | None, datetime | None, datetime, datetime]:
            with engine.connect() as connection:
                before = clock()
                server_now = (
                    connection.execute(text("SELECT now()")).scalar_one()
                    if engine.dialect.name == "postgresql"
                    else None
                )
                after = clock()
            return migrate.current_revision(engine), server_now, before, after

        try:
            current, server_now, before, after = _bounded(probe, timeout)
        except Exception as exc:
            where = engine.url.render_as_string(hide_password=True)
            return [
                Finding(
                    "database:unreachable",
                    Severity.ERROR,
                    _("The database %(where)s does not answer (%(why)s).")
                    % {"where": where, "why": _why(exc)},
                    _(
                        "Check MARKETING_DATABASE_URL, that the server runs and that this host "
                        "may connect to it (firewall, pg_hba.conf)."
                    ),
                )
            ]
    finally:
        engine.dispose()
    findings = [_migrations(current, migrate.head_revision(), _)]
    if server_now is not None:
        findings.append(_skew(server_now, before, after, _))
    return findings


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _migrations(current: str | None, head: str | None, _: Gettext) -> Finding:
    values = {"current": current or "-", "head": head or "-"}
    if current == head:
        return Finding(
            "database:ok", Severity.OK, _("The database is at revision %(head)s.") % values
        )
    if current is None:
        return Finding(
            "database:not-migrated",
            Severity.ERROR,
            _("The database has no tables yet."),
            _("Run marketing db upgrade (once, from one host)."),
        )
    return Finding(
        "database:migrations-behind",
        Severity.ERROR,
        _("The database is at revision %(current)s; this code needs %(head)s.") % values,
        _(
            "Run marketing db upgrade (once, from one host) after stopping the workers, then "
            "start them again."
        ),
    )


def _skew(server_now: datetime, before: datetime, after: datetime, _: Gettext) -> Finding:
    if server_now.tzinfo is None:
        server_now = server_now.replace(tzinfo=UTC)
    middle = before + (after - before) / 2
    skew = (middle - server_now).total_seconds()
    values = {"seconds": f"{skew:+.1f}"}
    if abs(skew) <= SKEW_WARNING:
        return Finding(
            "clock:ok",
            Severity.OK,
            _("This machine's clock agrees with the database server's (%(seconds)s s).") % values,
        )
    return Finding(
        "clock:skew",
        Severity.ERROR if abs(skew) > SKEW_ERROR else Severity.WARNING,
        _(
            "This machine's clock differs from the database server's by %(seconds)s s: "
            "posts go out late or early, and live attempts may be taken for abandoned ones."
        )
        % values,
        _("Keep every host's clock synchronised (systemd-timesyncd or chrony)."),
    )


def check_redis(settings: Settings, _: Gettext, *, timeout: float) -> list[Finding]:
    """The broker and the shared Redis answer ``PING``."""
    import redis

    urls = {}
    broker = settings.effective_broker_url
    if broker.startswith(("redis://", "rediss://")):
        urls["MARKETING_BROKER_URL"] = broker
    if settings.effective_redis_url and settings.effective_redis_url not in urls.values():
        urls["MARKETING_REDIS_URL"] = settings.effective_redis_url
    problems = []
    for variable, url in urls.items():
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            _bounded(client.ping, timeout + 1)
        except Exception as exc:
            where = urlsplit(url)
            problems.append(
                Finding(
                    "redis:unreachable",
                    Severity.ERROR,
                    _("Redis at %(where)s (%(variable)s) does not answer (%(why)s).")
                    % {
                        "where": f"{where.hostname}:{where.port or 6379}",
                        "variable": variable,
                        "why": _why(exc),
                    },
                    _(
                        "Check %(variable)s, that redis-server runs and that this host may "
                        "connect to it."
                    )
                    % {"variable": variable},
                )
            )
        finally:
            client.close()
    if not urls and settings.effective_database_url.startswith("postgresql"):
        problems.append(
            Finding(
                "redis:not-configured",
                Severity.WARNING,
                _(
                    "No Redis is configured: the embedded broker and per-process rate limits "
                    "do not work across several hosts."
                ),
                _("Set MARKETING_BROKER_URL=redis://HOST:6379/0 on every host."),
            )
        )
    if problems:
        return problems
    if not urls:
        return [
            Finding(
                "redis:ok",
                Severity.OK,
                _("No Redis is configured: the embedded broker serves this one machine."),
            )
        ]
    return [Finding("redis:ok", Severity.OK, _("Redis answers."))]


def check_smtp(settings: Settings, _: Gettext, *, timeout: float) -> list[Finding]:
    """The SMTP relay answers ``EHLO`` (and ``STARTTLS`` when configured)."""
    values = {"where": f"{settings.smtp_host}:{settings.smtp_port}"}

    def ehlo() -> None:
        seconds = min(settings.smtp_timeout, timeout)
        smtp_class = (
            smtplib.SMTP_SSL if settings.smtp_security == SmtpSecurity.SSL else smtplib.SMTP
        )
        with smtp_class(settings.smtp_host, settings.smtp_port, timeout=seconds) as smtp:
            code, _answer = smtp.ehlo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, b"EHLO refused")
            if settings.smtp_security == SmtpSecurity.STARTTLS:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()

    try:
        _bounded(ehlo, timeout + 1)
    except Exception as exc:
        return [
            Finding(
                "smtp:unreachable",
                Severity.ERROR,
                _("The SMTP relay %(where)s does not answer EHLO (%(why)s).")
                % {**values, "why": _why(exc)},
                _(
                    "Check MARKETING_SMTP_HOST, MARKETING_SMTP_PORT and MARKETING_SMTP_SECURITY, "
                    "and that this host may connect to the relay."
                ),
            )
        ]
    return [Finding("smtp:ok", Severity.OK, _("The SMTP relay %(where)s answers.") % values)]


def check_accounts(settings: Settings, _: Gettext, *, timeout: float) -> list[Finding]:
    """Every channel account is healthy and its secret is set."""
    from sqlalchemy import select

    from marketing.db import make_engine, session_factory
    from marketing.models import AccountHealth, ChannelAccount

    engine = make_engine(settings.effective_database_url)
    try:

        def read() -> list[tuple[str, str, AccountHealth, str | None]]:
            with session_factory(engine)() as session:
                rows = session.execute(
                    select(
                        ChannelAccount.slug,
                        ChannelAccount.kind,
                        ChannelAccount.health,
                        ChannelAccount.secret_name,
                    ).order_by(ChannelAccount.slug)
                ).all()
            return [(slug, kind.value, health, secret) for slug, kind, health, secret in rows]

        try:
            accounts = _bounded(read, timeout)
        except Exception:
            return []  # the database check has said why
    finally:
        engine.dispose()
    why = {
        AccountHealth.NEEDS_RECONNECT: _("its token expired or was revoked"),
        AccountHealth.PERMISSION_LOST: _("its permission was withdrawn"),
        AccountHealth.UNKNOWN: _("its health is unknown (not checked yet)"),
    }
    problems = []
    for slug, kind, health, secret in accounts:
        values = {"account": slug, "channel": kind}
        if health != AccountHealth.OK:
            problems.append(
                Finding(
                    f"account:{health.value.replace('_', '-')}",
                    Severity.WARNING if health == AccountHealth.UNKNOWN else Severity.ERROR,
                    _("Account %(account)s (%(channel)s) cannot publish: %(health)s.")
                    % {**values, "health": why[health]},
                    _(
                        "Renew its token (reconnect it), then run marketing accounts "
                        "reconnected %(account)s; its waiting posts go out again."
                    )
                    % values,
                )
            )
        if secret:
            try:
                get_secret(secret, settings)
            except MissingSecret:
                problems.append(
                    Finding(
                        "account:secret-missing",
                        Severity.ERROR,
                        _("The secret %(secret)s of account %(account)s (%(channel)s) is not set.")
                        % {**values, "secret": secret},
                        _(
                            "Set MARKETING_SECRET_%(secret)s, or %(secret)s in the secrets file "
                            "(MARKETING_SECRETS_FILE, chmod 600)."
                        )
                        % {"secret": secret.upper()},
                    )
                )
    if problems:
        return problems
    return [
        Finding(
            "account:ok",
            Severity.OK,
            _("All %(count)s channel accounts are healthy.") % {"count": len(accounts)},
        )
    ]


def has_email_accounts(settings: Settings, *, timeout: float) -> bool:
    """Whether any e-mail account exists (the relay matters only then); True if unknown."""
    from sqlalchemy import func, select

    from marketing.db import make_engine
    from marketing.models import ChannelAccount, ChannelKind

    engine = make_engine(settings.effective_database_url)
    try:

        def count() -> int:
            with engine.connect() as connection:
                query = select(func.count()).where(ChannelAccount.kind == ChannelKind.EMAIL)
                return int(connection.execute(query).scalar_one())

        try:
            return _bounded(count, timeout) > 0
        except Exception:
            return True
    finally:
        engine.dispose()


def diagnose(
    *,
    settings: Settings,
    language: str = "th",
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], datetime] | None = None,
) -> Diagnosis:
    """Run every check on ``settings``; findings in ``language`` (``th`` or ``en``)."""
    from marketing.web.i18n import language_of, translations

    _ = translations(language_of(language)).gettext
    clock = clock or (lambda: datetime.now(UTC))
    diagnosis = Diagnosis()
    diagnosis.findings += check_secrets(settings, _)
    diagnosis.findings += check_secret_files(settings, _)
    diagnosis.findings += check_urls(settings, _)
    database = check_database(settings, _, timeout=timeout, clock=clock)
    diagnosis.findings += database
    diagnosis.findings += check_redis(settings, _, timeout=timeout)
    # The relay matters only with e-mail accounts, and the accounts are in the tables.
    if not any(f.code in ("database:unreachable", "database:not-migrated") for f in database):
        if has_email_accounts(settings, timeout=timeout):
            diagnosis.findings += check_smtp(settings, _, timeout=timeout)
        diagnosis.findings += check_accounts(settings, _, timeout=timeout)
    return diagnosis
