"""Markers as the tests count them: a post's marker turned into the carrier each channel's
sandbox keeps, by the tests' own code.

The sandboxes store what arrived (a Page post's text stamp, an upload's tags, a
``Message-ID``) and know nothing of how the adapters derive it from a marker; the tests
derive it here, from the conventions in docs/channels/*.md, so an adapter that stamped the
wrong thing would leave a test counting nothing.
"""

from __future__ import annotations

import hashlib

from channels.sandbox.graph import GraphSandbox
from channels.sandbox.youtube import Upload, YouTubeSandbox


def _digest(marker: str) -> str:
    return hashlib.sha256(marker.encode("utf-8")).hexdigest()


def facebook_tag(marker: str) -> str:
    """The 16 hex digits a Page post's invisible stamp carries (docs/channels/facebook.md)."""
    return _digest(marker)[:16]


def youtube_tag(marker: str) -> str:
    """The tag an upload carries: ``glo-`` and 20 hex digits (docs/channels/youtube.md)."""
    return "glo-" + _digest(marker)[:20]


def youtube_uploads_for(sandbox: YouTubeSandbox, marker: str) -> list[Upload]:
    """Completed uploads of the post ``marker``: more than one is a duplicate."""
    return sandbox.uploads_tagged(youtube_tag(marker))


def facebook_publications_of(graph: GraphSandbox, marker: str) -> int:
    """How many publications on the Graph sandbox carry the post ``marker``'s stamp."""
    return graph.count_by_marker().get(facebook_tag(marker), 0)
