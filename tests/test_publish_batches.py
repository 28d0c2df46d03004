"""How queued posts are grouped into publishing messages (``tasks.publishing.ring_all``):
up to MARKETING_PUBLISH_BATCH posts of one channel a message, one for a channel that sends
to many (e-mail, LINE's multicast) and no more than a channel's ``posts_per_message``
(YouTube: one upload a message, since its daily-upload ledger is rebuilt by counting every
claimed attempt as spent)."""

from __future__ import annotations

import pytest

from marketing.models import ChannelKind
from tasks import publishing


def test_posts_are_rung_per_channel_within_each_channels_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rung: list[tuple[ChannelKind, list[int]]] = []
    monkeypatch.setattr(publishing, "ring", lambda ids, channel: rung.append((channel, list(ids))))
    queued = [(n, ChannelKind.FACEBOOK) for n in range(1, 26)]
    queued += [(100 + n, ChannelKind.YOUTUBE) for n in range(3)]
    queued += [(200 + n, ChannelKind.EMAIL) for n in range(2)]
    publishing.ring_all(queued, 10)

    facebook = [ids for channel, ids in rung if channel == ChannelKind.FACEBOOK]
    assert facebook == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert [ids for channel, ids in rung if channel == ChannelKind.YOUTUBE] == [
        [100],
        [101],
        [102],
    ]
    assert [ids for channel, ids in rung if channel == ChannelKind.EMAIL] == [[200], [201]]
