"""Media files live under one folder, the media root, and nothing outside it is ever read.

The root is ``MARKETING_MEDIA_DIR`` (default ``<data folder>/media``).  A path written by a
person -- a campaign's ``photo:`` or ``video:``, a highlight's ``media:`` -- is relative to
the root, and :func:`resolve_media` refuses:

* an absolute path (``/etc/passwd``, ``C:\\x``);
* any ``..`` part (``../../secrets.toml``), even one that would come back inside;
* a path whose real location, symbolic links followed, is outside the root;
* anything that is not a regular file (a folder, a device, a pipe) or does not exist.

A file of the media library (:mod:`marketing.media_library`) is found by its name or content
hash: ``library:songkran-poster.png``, ``library:<sha256>``, or a path that is not in the root
but whose last part names a library file (``examples/songkran-poster.png``, as the shipped
examples write it, finds the poster uploaded through the web).

The same containment is checked again where a file is used, so a path that reached the
database some other way (a post stored before this rule, a row edited by hand) is never
served (:mod:`marketing.web.posts`) nor published (the adapters are given the root).
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from channels.media import inside

__all__ = ["MediaRefused", "contained", "find_in_library", "install_media", "resolve_media"]

_SEPARATORS = re.compile(r"[\\/]")
MAX_PATH_CHARS = 1000
LIBRARY = "library"  # the media library's folder under the media root
LIBRARY_PREFIX = "library:"
_SHA256 = re.compile(r"[0-9a-f]{64}")
LIBRARY_NAME_MAX_CHARS = 200
_NAME_PUNCTUATION = frozenset(" ._-()+")


def library_name_ok(name: str) -> bool:
    """Whether ``name`` may name a library file: one file name (no folder), at most
    :data:`LIBRARY_NAME_MAX_CHARS` characters of letters (Thai with its marks), digits, spaces
    and ``. _ - ( ) +``, not hidden, no ``..``."""
    return (
        0 < len(name) <= LIBRARY_NAME_MAX_CHARS
        and name[0].isalnum()
        and ".." not in name
        and name == name.strip()
        and all(
            c.isalnum() or c in _NAME_PUNCTUATION or unicodedata.category(c).startswith("M")
            for c in name
        )
    )


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
    if text.startswith(LIBRARY_PREFIX):
        found_in_library = find_in_library(root, text)
        if found_in_library is not None:
            return found_in_library
        raise MediaRefused(
            f"{text!r} is not in the media library",
            "upload the file on the media library page, or write its name as shown there",
            code="media_not_in_library",
            path=text,
        )
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
    found_in_library = find_in_library(root, text)
    if found_in_library is not None:
        return found_in_library
    raise MediaRefused(
        f"media file {text!r} not found in the media folder",
        f"looked for {target}",
        code="media_not_found",
        path=text,
    )


def find_in_library(root: Path, written: str) -> Path | None:
    """The library file named by ``written``: ``library:<sha256>``, ``library:<name>``, or a
    path whose last part is the name of a library file; None if none (or several) match.
    The database is not asked: each file lies in a folder named by its content's SHA-256."""
    text = written.strip()
    if text.startswith(LIBRARY_PREFIX):
        text = text[len(LIBRARY_PREFIX) :].strip()
    real_root = root.resolve()
    folder = real_root / LIBRARY
    if not folder.is_dir():
        return None
    if _SHA256.fullmatch(text):
        found = [
            p
            for p in (folder / text).glob("*")
            if not p.name.startswith(".") and inside(p, real_root) and not p.is_symlink()
        ]
    else:
        name = _SEPARATORS.split(text)[-1]
        if not library_name_ok(name):
            return None
        found = []
        with os.scandir(folder) as entries:  # one stat per item: cheap for thousands
            for entry in entries:
                joined = os.path.join(entry.path, name)
                if not os.path.lexists(joined) or not _SHA256.fullmatch(entry.name):
                    continue
                candidate = Path(joined)
                if not candidate.is_symlink() and inside(candidate, real_root) is not None:
                    found.append(candidate)
    return found[0].resolve() if len(found) == 1 else None


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
