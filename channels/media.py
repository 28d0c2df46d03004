"""What a media file is: by its name (suffix) *and* by its first bytes (magic numbers).

A channel accepts a photo or a video only when both say the same kind: a text file renamed
``.mp4`` is refused, and so is a real video named ``.png``.  The types are data, one table
per kind, and each adapter names the tables it accepts (``photo_types``, ``video_types``).

Content is recognised by ``filetype`` (magic numbers of the common formats, no native
library), from the first :data:`SNIFF_BYTES` bytes only, so a check never reads a whole
video.  Nothing here reads the database or the settings: where a file may live (the media
root) is :mod:`marketing.media`'s concern, and the adapters are given the root as a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import filetype

SNIFF_BYTES = 8192
"""How much of a file is read to recognise it (``filetype`` looks at no more)."""

IMAGE_TYPES: Mapping[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
"""Photos every channel that takes one accepts: suffix -> MIME type."""

VIDEO_TYPES: Mapping[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}
"""Videos Facebook and YouTube both accept: suffix -> MIME type."""

VIDEO_CONTAINERS: Mapping[str, frozenset[str]] = {
    ".mp4": frozenset({"mp4", "mov"}),
    ".m4v": frozenset({"mp4", "mov"}),
    ".mov": frozenset({"mp4", "mov"}),
    ".webm": frozenset({"webm", "matroska"}),
    ".mkv": frozenset({"matroska", "webm"}),
    ".avi": frozenset({"avi"}),
}
"""What ffprobe must find inside a video of each suffix: names of its ``format_name`` (which
lists several, ``mov,mp4,m4a,3gp,3g2,mj2``), one of them enough.  A Matroska file named
``.mp4`` is a wrong container, whatever its first bytes let pass."""

VIDEO_CODECS: frozenset[str] = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "prores"}
)
"""Video codecs (ffprobe's ``codec_name``) Facebook and YouTube both take."""

TEMPLATE_SUFFIXES: frozenset[str] = frozenset({".html", ".htm", ".j2", ".jinja"})
"""E-mail template files (HTML with Jinja): ``songkran-email.html.j2``."""

# An MP4 and a QuickTime file are both ISO media files and are often named either way;
# what matters is that the content is a video the channels take.
_VIDEO_MIMES = frozenset(VIDEO_TYPES.values())
_IMAGE_MIMES = frozenset(IMAGE_TYPES.values())


def sniff(path: Path) -> str | None:
    """The MIME type of ``path`` by its content, or None if it is no known type (or cannot
    be read)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return None
    mime = filetype.guess_mime(head)
    return str(mime) if mime else None


def type_problem(path: Path, allowed: Mapping[str, str]) -> str | None:
    """Why ``path`` is not one of the ``allowed`` types (suffix -> MIME), or None if it is:
    its suffix must be listed, and its content must be of the same kind (image or video)."""
    suffix = path.suffix.lower()
    names = ", ".join(sorted({s.lstrip(".") for s in allowed}))
    if suffix not in allowed:
        return f"{suffix or 'a file without a suffix'} is not an accepted type ({names})"
    found = sniff(path)
    wanted = allowed[suffix]
    same_kind = _IMAGE_MIMES if wanted in _IMAGE_MIMES else _VIDEO_MIMES
    if found is None or found not in same_kind or found not in allowed.values():
        what = found or "not a known media type"
        return (
            f"its content is {what}, not the {suffix.lstrip('.')} its name says (accepted: {names})"
        )
    return None


def is_image(path: Path) -> str | None:
    """The image MIME type of ``path`` when both its suffix and its content say it is one of
    :data:`IMAGE_TYPES`, else None (such a file is only ever downloaded, never shown)."""
    if type_problem(path, IMAGE_TYPES) is not None:
        return None
    return sniff(path)


def inside(path: Path, root: Path) -> Path | None:
    """The real path of ``path`` if it is a regular file whose real location (symlinks
    followed) is under the real ``root``, else None."""
    try:
        real = path.resolve(strict=True)
        real_root = root.resolve()
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(real_root) or not real.is_file():
        return None
    return real


def publish_refusal(path: Path, allowed: Mapping[str, str], *, root: Path | None) -> str | None:
    """Why an adapter must not upload ``path`` (outside the media ``root`` when one is given,
    or not one of the ``allowed`` types), or None.  Checked again at publish time because a
    stored post may predate the rules or have been changed in the database."""
    if root is not None and inside(path, root) is None:
        return f"{path} is not a file inside the media folder {root}"
    if not path.is_file():
        return f"file {path} not found"
    return type_problem(path, allowed)
