"""Media files live under one folder, the media root, and nothing outside it is ever read.

The root is ``MARKETING_MEDIA_DIR`` (default ``<data folder>/media``).  A path written by a
person -- a campaign's ``photo:`` or ``video:``, a highlight's ``media:`` -- is relative to
the root, and :func:`resolve_media` refuses:

* an absolute path (``/etc/passwd``, ``C:\\x``);
* any ``..`` part (``../../secrets.toml``), even one that would come back inside;
* a path whose real location, symbolic links followed, is outside the root;
* anything that is not a regular file (a folder, a device, a pipe) or does not exist.

The same containment is checked again where a file is used, so a path that reached the
database some other way (a post stored before this rule, a row edited by hand) is never
served (:mod:`marketing.web.posts`) nor published (the adapters are given the root).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

from channels.media import inside

__all__ = ["MediaRefused", "contained", "install_media", "resolve_media"]

_SEPARATORS = re.compile(r"[\\/]")
MAX_PATH_CHARS = 1000


class MediaRefused(ValueError):
    """A media path that may not be used; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str, *, code: str = "", path: str = "") -> None:
        super().__init__(f"{message} -- {hint}")
        self.message = message
        self.hint = hint
        # For a reader of another language: ``media_*`` and the path as written.
        self.code = code
        self.values = {"path": path}


def resolve_media(written: str, *, root: Path) -> Path:
    """The real path of media file ``written`` (relative to ``root``); MediaRefused if it is
    absolute, climbs with ``..``, leaves ``root`` through a link, or is not a file there."""
    text = written.strip()
    where = f"put the file in the media folder ({root}) and write its path relative to it"
    if not text:
        raise MediaRefused("names no file", where, code="media_empty")
    if len(text) > MAX_PATH_CHARS or any(ord(c) < 32 for c in text):
        raise MediaRefused(
            "is not a file name (too long, or has control characters)", where, code="media_name"
        )
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).anchor:
        raise MediaRefused(
            f"{text!r} is an absolute path; media paths are relative",
            where,
            code="media_absolute",
            path=text,
        )
    if ".." in _SEPARATORS.split(text):
        raise MediaRefused(f"{text!r} climbs out with '..'", where, code="media_climbs", path=text)
    real_root = root.resolve()
    target = real_root / text
    found = inside(target, real_root)
    if found is not None:
        return found
    if target.is_symlink() or (target.exists() and not target.resolve().is_relative_to(real_root)):
        raise MediaRefused(
            f"{text!r} is a link that leads out of the media folder",
            where,
            code="media_link",
            path=text,
        )
    if target.exists():
        raise MediaRefused(
            f"{text!r} is not a regular file", where, code="media_not_file", path=text
        )
    raise MediaRefused(
        f"media file {text!r} not found in the media folder",
        f"looked for {target}",
        code="media_not_found",
        path=text,
    )


def contained(path: str | Path, *, root: Path) -> Path | None:
    """The real path of stored media path ``path`` if it is a regular file under ``root``,
    else None (for paths read back from the database: refuse, never serve or publish)."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    return inside(candidate, root)


def install_media(source: Path, *, root: Path, folder: str) -> Path:
    """Copy the files of shipped folder ``source`` into ``root/folder`` (the sample data and
    the demo bring their pictures along this way); the folder written to."""
    target = root / folder
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir()):
        if item.is_file() and not item.is_symlink():
            shutil.copyfile(item, target / item.name)
    return target
