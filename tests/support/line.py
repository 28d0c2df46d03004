"""Test-side knowledge of LINE posts, written independently of ``channels/line.py``.

The retry key a post's marker must travel under is derived here from the documented rule
(a name-based UUID, version 5, of the marker in the project's namespace; a multicast's batch
``n`` under ``marker#n``), so a test that counts accepted requests per key on the sandbox
checks the adapter's derivation instead of borrowing it.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://glo-community-marketing/line/retry-key")


def expected_retry_key(marker: str, batch: int | None = None) -> str:
    """The ``X-Line-Retry-Key`` a send of the post with ``marker`` must carry."""
    return str(uuid.uuid5(NAMESPACE, marker if batch is None else f"{marker}#{batch}"))


def user_ids(count: int, *, prefix: int = 0) -> list[str]:
    """``count`` distinct LINE user ids (``U`` and 32 hex digits)."""
    return [f"U{prefix:08x}{n:024x}" for n in range(count)]
