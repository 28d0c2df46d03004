"""Who and which: addresses as the relay needs them, and each message's Message-ID
(the post's marker and the subscriber id), so a message can be recognised later."""

from __future__ import annotations

import functools
import ipaddress
import re
from email.headerregistry import (
    Address,
)

from email_validator import ValidatedEmail, validate_email

_MARKER = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_MESSAGE_ID = re.compile(r"<([A-Za-z0-9_.-]+)\.(\d+)@[^<>@\s]+>")


def message_id_for(marker: str, subscriber_id: int, domain: str) -> str:
    """The ``Message-ID`` of the message of post ``marker`` to subscriber ``subscriber_id``.

    Deterministic: sending the same post to the same subscriber again gives the same id,
    which lets receivers drop a duplicate and lets :func:`parse_message_id` recover both.
    """
    if not _MARKER.fullmatch(marker):
        raise ValueError(
            f"marker {marker!r} cannot go in a Message-ID: use letters, digits, '-', '_' "
            "and single dots only"
        )
    return f"<{marker}.{subscriber_id}@{domain}>"


def parse_message_id(value: str) -> tuple[str, int] | None:
    """``(marker, subscriber_id)`` from a ``Message-ID`` made by :func:`message_id_for`,
    or None for any other id."""
    found = _MESSAGE_ID.fullmatch(value.strip())
    if found is None:
        return None
    return found.group(1), int(found.group(2))


# --- HTML and text ----------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validated(address: str) -> ValidatedEmail:
    return validate_email(address, check_deliverability=False)


@functools.lru_cache(maxsize=64)
def _validated_sender(address: str) -> ValidatedEmail:
    """:func:`_validated` for the few sender addresses, each checked once."""
    return _validated(address)


def _wire_address(found: ValidatedEmail) -> str:
    """The address as sent: an IDN domain in its ASCII form; a non-ASCII local part stays
    UTF-8 (and needs SMTPUTF8)."""
    return found.ascii_email or found.normalized


def _address(display_name: str, found: ValidatedEmail) -> Address:
    # username/domain rather than addr_spec: a Thai local part is valid with SMTPUTF8, but
    # Address(addr_spec=...) refuses to parse it.
    return Address(
        display_name=display_name,
        username=found.local_part,
        domain=found.ascii_domain or found.domain,
    )


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text).strip()
