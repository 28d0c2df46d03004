"""The shipped pictures and clips, put where the service looks for media (the media root)."""

from __future__ import annotations

from pathlib import Path

from marketing.media import install_media

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_MEDIA = ROOT / "campaigns" / "examples" / "media"
SAMPLE_MEDIA = ROOT / "marketing" / "sample" / "media"


def install_shipped_media(root: Path) -> None:
    """The examples' media in ``root/examples``, the sample communities' in ``root/sample``,
    as docs/campaigns.md tells staff to lay them out."""
    install_media(EXAMPLES_MEDIA, root=root, folder="examples")
    install_media(SAMPLE_MEDIA, root=root, folder="sample")
