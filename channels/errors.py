"""What can go wrong when talking to a channel, sorted by what the caller should do.

::

    ChannelError                   base; never raised itself
     ├── TransientError            the channel is down or hiccupped: retry with backoff
     │    └── RateLimited          the channel asks us to wait: retry after ``retry_after`` s
     │         └── QuotaExhausted  a daily quota is used up: retry after ``retry_after`` s
     │                             (midnight Pacific for YouTube), never sooner
     ├── AuthExpired               token expired, revoked or lacking permission: a person must
     │                             reconnect the account; retrying will not help
     ├── PermanentError            bad content, policy, duplicate: never retry; show a person
     └── OutcomeUnknown            the request may or may not have taken effect (a timeout or
                                   a dropped connection after sending): do NOT retry blindly;
                                   reconcile with ``Adapter.find_published`` first

Adapters raise these ``from`` the SDK's own exception so the cause stays in tracebacks.
Messages are written for staff, never contain a token, and carry ``hint``: what to do next.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every channel error."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.message}{code}"


class TransientError(ChannelError):
    """Temporary failure; the same request may succeed later."""

    retryable = True


class RateLimited(TransientError):
    """The channel refused because of a rate limit; wait ``retry_after`` seconds."""


class AuthExpired(ChannelError):
    """The account's credentials no longer work; a person must reconnect it."""


class PermanentError(ChannelError):
    """The request is wrong or refused for good; retrying the same thing will fail again."""


class QuotaExhausted(RateLimited):
    """A quota is used up until ``retry_after`` seconds from now."""


class OutcomeUnknown(ChannelError):
    """The request may have taken effect; find it before trying again."""
