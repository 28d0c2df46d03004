"""The media library: photos, videos and e-mail templates uploaded once, checked once, named by
campaigns.

Where files live (all under the media root, :mod:`marketing.media`)::

    <media root>/library/<sha256>/<name>         the file, never changed once written
    <media root>/library/<sha256>/.thumb.jpg     its thumbnail (photos and videos)
    <media root>/library/.partial/<key>          a file still arriving (chunks, or a form)

The content's SHA-256 names the folder, so the same bytes uploaded twice are kept once (the
second upload answers with the first item).  The file keeps the name people gave it, so a
campaign names it as written (``photo: songkran-poster.png``, or ``library:<name-or-sha256>``)
and :func:`find_in_library` finds it with nothing but the media root: the command line, the
web app and the workers agree without asking the database.  Names are unique in the library.

What is read from a file, with real tools and bounded in time:

* photos: Pillow (format, width, height; the pixel count bounded before decoding);
* videos: ffprobe from Debian's ffmpeg (container, codecs, size, duration) and ffmpeg for a
  thumbnail frame;
* templates: compiled in the campaigns' sandboxed Jinja environment, with the same rules as a
  campaign's e-mail body (:class:`campaigns.templates.TemplateBook`).

Each item is checked against every channel that takes its kind (:class:`MediaRules`, built from
the channels' declared limits, :func:`channels.registry.specs`).  An upload is refused when a
channel it is meant for would refuse it -- by default every channel that takes that kind -- so
a video YouTube would not take is refused now, with what to do, rather than at publishing time.
Refusals are codes with values (:class:`Refusal`); the pages translate them.

Storage is the local media root.  An S3-compatible store would implement :class:`MediaStore`
(and keep a local copy for the adapters, which upload from a path); none is shipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from channels.media import IMAGE_TYPES, TEMPLATE_SUFFIXES, VIDEO_TYPES, sniff
from channels.registry import specs
from marketing.db import utcnow
from marketing.media import LIBRARY, LIBRARY_NAME_MAX_CHARS, library_name_ok
from marketing.models import Consent, MediaItem, MediaKind, MediaUpload, PeopleShown

PARTIAL = ".partial"
THUMBNAIL = ".thumb.jpg"
THUMBNAIL_PIXELS = 320
MAX_NAME_CHARS = LIBRARY_NAME_MAX_CHARS
CHUNK_MAX_BYTES = 8 * 1024 * 1024
"""The largest chunk of a chunked upload (the browser's script sends 4 MiB)."""
TEMPLATE_MAX_BYTES = 1024 * 1024
FORM_UPLOAD_MAX_BYTES = 200 * 1024 * 1024
"""The most one plain form upload (several files, no script) may carry; larger videos go in
chunks (the page's script, or the API)."""
PROBE_SECONDS = 30.0
IMAGE_MAX_PIXELS = 100_000_000
"""A photo of more pixels is refused before Pillow decodes it (a decompression bomb)."""
UPLOAD_HOURS = 48
"""A chunked upload left unfinished this long is forgotten (its partial file removed)."""
# What ffprobe runs with: no network, nothing but the file.
FFPROBE = ("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams")

__all__ = [
    "ChannelMediaRules",
    "Facts",
    "MediaRules",
    "MediaStore",
    "Refusal",
    "UploadRefused",
    "add_file",
    "clean_name",
    "default_rules",
    "probe",
    "receive_chunk",
    "start_upload",
]


@dataclass(frozen=True)
class Refusal:
    """Why a file is not taken: ``code`` (``media:too-large``) and its values; ``channel`` is
    the channel that would refuse it (None: no channel could take it)."""

    code: str
    values: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "values": dict(self.values), "channel": self.channel}

    @property
    def message(self) -> str:
        """The refusal in the code's English (logs, the command line, the API)."""
        text = ENGLISH.get(self.code, self.code)
        with contextlib.suppress(KeyError, ValueError, TypeError):
            text = text % dict(self.values)
        return f"{self.channel}: {text}" if self.channel else text


#: The English of each refusal: what is wrong, then what to do.
ENGLISH: Mapping[str, str] = {
    "media:name": "%(name)s is not a usable file name -- rename the file (letters, digits, "
    "dots, dashes; no folders) and upload it again",
    "media:name-taken": "the library already has a different file named %(name)s -- rename "
    "the new file, or upload it under another name",
    "media:type": "%(suffix)s files are not taken -- send a photo (%(images)s), a video "
    "(%(videos)s) or an e-mail template (%(templates)s)",
    "media:content": "its content is %(found)s, not what its name %(name)s says -- export it "
    "again in the format its name says",
    "media:empty": "the file is empty -- choose the file again",
    "media:too-large": "the file is %(size)s bytes; the most taken is %(limit)s -- make it "
    "smaller (shorter, or a lower resolution) and upload it again",
    "media:unreadable": "the file cannot be read as a %(kind)s (%(detail)s) -- open it on "
    "your computer to check it, export it again and upload it",
    "media:pixels": "the picture is %(width)s x %(height)s pixels, more than %(limit)s -- "
    "make it smaller",
    "media:container": "the video is in a %(container)s container, not the %(suffix)s its "
    "name says -- export it again as MP4 (H.264 video, AAC sound)",
    "media:no-video": "the file has no video picture -- export it again as MP4 (H.264 video)",
    "media:codec": "the video is coded %(codec)s, which is not taken -- export it again as "
    "MP4 with H.264 video",
    "media:too-long": "the video lasts %(seconds)s seconds; the most taken is %(limit)s -- "
    "cut it shorter",
    "media:template": "the template has a problem at line %(line)s: %(detail)s -- fix the "
    "template and upload it again",
    "media:no-channel": "no channel takes this kind of file",
}


class UploadRefused(ValueError):
    """A file that is not added to the library; nothing was kept."""

    def __init__(self, name: str, refusals: list[Refusal]) -> None:
        super().__init__(f"{name}: " + "; ".join(r.message for r in refusals))
        self.name = name
        self.refusals = refusals


@dataclass(frozen=True)
class ChannelMediaRules:
    """What one channel takes, from its declared limits (``channels/*.py``)."""

    kind: str
    service_name: str
    photo_types: Mapping[str, str] | None = None
    photo_max_bytes: int | None = None
    photo_max_pixels: int | None = None
    video_types: Mapping[str, str] | None = None
    video_max_bytes: int | None = None
    video_containers: Mapping[str, frozenset[str]] | None = None
    video_codecs: frozenset[str] | None = None
    video_max_seconds: float | None = None
    template_suffixes: frozenset[str] | None = None
    template_max_bytes: int | None = None

    def takes(self, kind: MediaKind) -> bool:
        if kind is MediaKind.IMAGE:
            return self.photo_types is not None
        if kind is MediaKind.VIDEO:
            return self.video_types is not None
        return self.template_suffixes is not None


@dataclass(frozen=True)
class MediaRules:
    """Every channel's rules for media; :meth:`with_limit` lowers one (tests, or a programme
    that wants smaller files than a channel allows)."""

    channels: tuple[ChannelMediaRules, ...]

    def for_kind(self, kind: MediaKind) -> list[ChannelMediaRules]:
        return [c for c in self.channels if c.takes(kind)]

    def with_limit(self, channel: str, **limits: Any) -> MediaRules:
        return MediaRules(
            tuple(replace(c, **limits) if c.kind == channel else c for c in self.channels)
        )

    @property
    def max_bytes(self) -> int:
        """The largest file any channel takes (the bound of an upload)."""
        sizes = [TEMPLATE_MAX_BYTES]
        for c in self.channels:
            sizes += [s for s in (c.photo_max_bytes, c.video_max_bytes) if s is not None]
        return max(sizes)


def default_rules() -> MediaRules:
    """The rules the registered channels declare."""
    found = []
    for spec in specs():
        kind, cls = spec.kind, spec.limits
        found.append(
            ChannelMediaRules(
                kind=kind,
                service_name=cls.service_name,
                photo_types=getattr(cls, "photo_types", None),
                photo_max_bytes=getattr(cls, "photo_max_bytes", None),
                photo_max_pixels=getattr(cls, "photo_max_pixels", None),
                video_types=getattr(cls, "video_types", None),
                video_max_bytes=getattr(cls, "video_max_bytes", None),
                video_containers=getattr(cls, "video_containers", None),
                video_codecs=getattr(cls, "video_codecs", None),
                video_max_seconds=getattr(cls, "video_max_seconds", None),
                template_suffixes=getattr(cls, "template_suffixes", None),
                template_max_bytes=getattr(cls, "html_max_bytes", None),
            )
        )
    return MediaRules(tuple(found))


class MediaStore(Protocol):
    """Where library files are kept.  The local media root is the only one shipped: an
    S3-compatible store would put the same relative paths as object keys (boto3's
    ``upload_file``/``download_file``) and keep a local copy under the media root, since the
    adapters upload from a path."""

    def put(self, source: Path, relative: str) -> None: ...

    def local_path(self, relative: str) -> Path | None: ...


# --- names -----------------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """``name`` as the library keeps it (NFC, the last part of a path a browser may send);
    UploadRefused if it could leave its folder, is hidden, or has odd characters."""
    text = unicodedata.normalize("NFC", (name or "").strip())
    base = re.split(r"[\\/]", text)[-1].strip()
    # A name with a folder in it is refused, never cut down quietly.
    ok = base == text and library_name_ok(base)
    if not ok:
        shown = "".join(c if c.isprintable() else "?" for c in text)[:80]
        raise UploadRefused(shown or "?", [Refusal("media:name", {"name": shown or "?"})])
    return base


def kind_of(name: str) -> MediaKind | None:
    """The kind of file ``name`` says it is, by its suffix."""
    lower = name.lower()
    suffix = Path(lower).suffix
    if suffix in IMAGE_TYPES:
        return MediaKind.IMAGE
    if suffix in VIDEO_TYPES or suffix in _OTHER_VIDEO_SUFFIXES:
        return MediaKind.VIDEO
    if suffix in TEMPLATE_SUFFIXES:
        return MediaKind.TEMPLATE
    return None


# Videos some cameras and phones make, which no channel here takes: recognised so the refusal
# can say what to do.
_OTHER_VIDEO_SUFFIXES = frozenset({".ogv", ".ogg", ".flv", ".wmv", ".3gp", ".mpg", ".mpeg", ".ts"})


# --- reading files ---------------------------------------------------------------------------


@dataclass
class Facts:
    """What was read from a file."""

    kind: MediaKind
    mime: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None


def _unreadable(name: str, kind: MediaKind, detail: str) -> UploadRefused:
    return UploadRefused(
        name, [Refusal("media:unreadable", {"kind": kind.value, "detail": detail[:200]})]
    )


def probe(path: Path, *, name: str) -> Facts:
    """What ``path`` (uploaded as ``name``) is, read with Pillow, ffprobe or the template
    sandbox; UploadRefused if it is not what its name says or cannot be read."""
    size = path.stat().st_size
    kind = kind_of(name)
    suffix = Path(name.lower()).suffix
    if kind is None:
        raise UploadRefused(name, [_type_refusal(suffix)])
    if size == 0:
        raise UploadRefused(name, [Refusal("media:empty")])
    if kind is MediaKind.TEMPLATE:
        return _probe_template(path, name=name, size=size)
    found = sniff(path)
    expected = IMAGE_TYPES.get(suffix) or VIDEO_TYPES.get(suffix)
    if kind is MediaKind.IMAGE:
        if found is None or not found.startswith("image/") or found != expected:
            raise UploadRefused(
                name, [Refusal("media:content", {"found": found or "unknown", "name": name})]
            )
        return _probe_image(path, name=name, mime=found, size=size)
    if found is not None and not found.startswith("video/") and suffix in VIDEO_TYPES:
        raise UploadRefused(name, [Refusal("media:content", {"found": found, "name": name})])
    return _probe_video(path, name=name, mime=found or "video/unknown", size=size)


def _type_refusal(suffix: str) -> Refusal:
    return Refusal(
        "media:type",
        {
            "suffix": suffix or "(no suffix)",
            "images": ", ".join(sorted(s.lstrip(".") for s in IMAGE_TYPES)),
            "videos": ", ".join(sorted(s.lstrip(".") for s in VIDEO_TYPES)),
            "templates": ", ".join(sorted(s.lstrip(".") for s in TEMPLATE_SUFFIXES)),
        },
    )


def _probe_image(path: Path, *, name: str, mime: str, size: int) -> Facts:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
            if width * height > IMAGE_MAX_PIXELS:
                raise UploadRefused(
                    name,
                    [
                        Refusal(
                            "media:pixels",
                            {
                                "width": str(width),
                                "height": str(height),
                                "limit": f"{IMAGE_MAX_PIXELS:,}",
                            },
                        )
                    ],
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(name, MediaKind.IMAGE, str(exc)) from exc
    return Facts(MediaKind.IMAGE, mime, size, width=width, height=height)


def _probe_video(path: Path, *, name: str, mime: str, size: int) -> Facts:
    try:
        done = subprocess.run(
            [*FFPROBE, str(path)],
            capture_output=True,
            timeout=PROBE_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise _unreadable(name, MediaKind.VIDEO, "ffprobe took too long") from exc
    except FileNotFoundError as exc:  # the service's setup installs Debian's ffmpeg
        raise RuntimeError("ffprobe is not installed (apt-get install ffmpeg)") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _unreadable(name, MediaKind.VIDEO, detail[-1] if detail else "ffprobe failed")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise _unreadable(name, MediaKind.VIDEO, "ffprobe's answer is not JSON") from exc
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    try:
        duration = float(str(fmt["duration"])) if fmt.get("duration") else None
    except ValueError:
        duration = None
    return Facts(
        MediaKind.VIDEO,
        mime,
        size,
        width=int(video["width"]) if video and video.get("width") else None,
        height=int(video["height"]) if video and video.get("height") else None,
        duration_seconds=duration,
        container=str(fmt.get("format_name") or "") or None,
        video_codec=str(video.get("codec_name")) if video else None,
        audio_codec=str(audio.get("codec_name")) if audio else None,
    )


def template_problems(text: str, *, name: str) -> list[tuple[int | None, str]]:
    """Every (line, message) that stops ``text`` from being a campaign's e-mail body: compiled
    in the campaigns' sandbox with autoescape, as a campaign's ``html: {file: ...}`` is."""
    from campaigns.templates import TemplateBook, TemplateSource

    with tempfile.TemporaryDirectory() as empty:
        book = TemplateBook(Path(empty))
        book.add(TemplateSource(("html",), name, 1, 1, text=text, html=True), per_recipient=True)
    return [(p.line, p.message) for p in book.problems]


def _probe_template(path: Path, *, name: str, size: int) -> Facts:
    if size > TEMPLATE_MAX_BYTES:
        raise UploadRefused(
            name,
            [Refusal("media:too-large", {"size": f"{size:,}", "limit": f"{TEMPLATE_MAX_BYTES:,}"})],
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unreadable(name, MediaKind.TEMPLATE, "not UTF-8 text") from exc
    if "\x00" in text:
        raise _unreadable(name, MediaKind.TEMPLATE, "contains a NUL character")
    problems = template_problems(text, name=name)
    if problems:
        raise UploadRefused(
            name,
            [
                Refusal("media:template", {"line": str(line or "?"), "detail": message})
                for line, message in problems
            ],
        )
    return Facts(MediaKind.TEMPLATE, "text/html", size)


# --- fitting the channels --------------------------------------------------------------------


def fit(facts: Facts, *, name: str, rules: MediaRules) -> dict[str, list[Refusal]]:
    """For each channel that takes this kind of file: why it would refuse it (empty: it fits)."""
    suffix = Path(name.lower()).suffix
    found: dict[str, list[Refusal]] = {}
    for channel in rules.for_kind(facts.kind):
        problems: list[Refusal] = []
        at = channel.kind
        if facts.kind is MediaKind.IMAGE:
            assert channel.photo_types is not None
            if suffix not in channel.photo_types:
                problems.append(replace(_type_refusal(suffix), channel=at))
            limit = channel.photo_max_bytes
            pixels = channel.photo_max_pixels
            if (
                pixels is not None
                and facts.width
                and facts.height
                and facts.width * facts.height > pixels
            ):
                problems.append(
                    Refusal(
                        "media:pixels",
                        {
                            "width": str(facts.width),
                            "height": str(facts.height),
                            "limit": f"{pixels:,}",
                        },
                        at,
                    )
                )
        elif facts.kind is MediaKind.VIDEO:
            assert channel.video_types is not None
            limit = channel.video_max_bytes
            if suffix not in channel.video_types:
                problems.append(replace(_type_refusal(suffix), channel=at))
            else:
                problems += _video_problems(facts, suffix, channel)
        else:
            limit = channel.template_max_bytes
            if channel.template_suffixes is not None and suffix not in channel.template_suffixes:
                problems.append(replace(_type_refusal(suffix), channel=at))
        if limit is not None and facts.size_bytes > limit:
            problems.append(
                Refusal(
                    "media:too-large", {"size": f"{facts.size_bytes:,}", "limit": f"{limit:,}"}, at
                )
            )
        found[at] = problems
    return found


def _video_problems(facts: Facts, suffix: str, channel: ChannelMediaRules) -> list[Refusal]:
    at = channel.kind
    problems: list[Refusal] = []
    containers = (channel.video_containers or {}).get(suffix)
    names = set((facts.container or "").split(","))
    if containers is not None and not names & containers:
        problems.append(
            Refusal(
                "media:container",
                {"container": facts.container or "unknown", "suffix": suffix.lstrip(".")},
                at,
            )
        )
    if facts.video_codec is None:
        problems.append(Refusal("media:no-video", {}, at))
    elif channel.video_codecs is not None and facts.video_codec not in channel.video_codecs:
        problems.append(Refusal("media:codec", {"codec": facts.video_codec}, at))
    limit = channel.video_max_seconds
    if limit is not None and facts.duration_seconds is not None and facts.duration_seconds > limit:
        problems.append(
            Refusal(
                "media:too-long",
                {"seconds": f"{facts.duration_seconds:,.0f}", "limit": f"{limit:,.0f}"},
                at,
            )
        )
    return problems


# --- storing ---------------------------------------------------------------------------------


def library_root(root: Path) -> Path:
    return root / LIBRARY


def partial_folder(root: Path) -> Path:
    folder = library_root(root) / PARTIAL
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spool(stream: IO[bytes], *, root: Path, max_bytes: int, name: str) -> Path:
    """Copy ``stream`` into a partial file under the media root, at most ``max_bytes``;
    UploadRefused (and nothing left behind) if it is longer."""
    target = partial_folder(root) / f"form-{secrets.token_hex(16)}"
    size = 0
    try:
        with target.open("xb") as out:
            while block := stream.read(1024 * 1024):
                size += len(block)
                if size > max_bytes:
                    raise UploadRefused(
                        name,
                        [
                            Refusal(
                                "media:too-large",
                                {"size": f"more than {max_bytes:,}", "limit": f"{max_bytes:,}"},
                            )
                        ],
                    )
                out.write(block)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _thumbnail(source: Path, target: Path, kind: MediaKind, facts: Facts) -> bool:
    """Write a JPEG thumbnail of ``source`` to ``target``; False if none could be made."""
    if kind is MediaKind.IMAGE:
        from PIL import Image

        try:
            with Image.open(source) as image:
                image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                image.convert("RGB").save(target, "JPEG", quality=80)
            return True
        except (OSError, ValueError):
            return False
    if kind is MediaKind.VIDEO:
        at = 1.0 if (facts.duration_seconds or 0) > 2 else 0.0
        try:
            done = subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-nostdin",
                    "-y",
                    "-ss",
                    f"{at}",
                    "-i",
                    str(source),
                    "-frames:v",
                    "1",
                    "-vf",
                    f"scale={THUMBNAIL_PIXELS}:-2",
                    "-f",
                    "image2",
                    "-c:v",
                    "mjpeg",
                    str(target),
                ],  # fmt: skip
                capture_output=True,
                timeout=PROBE_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (subprocess.TimeoutExpired, FileNotFoundError):
            return False
        return done.returncode == 0 and target.is_file()
    return False


@dataclass
class Added:
    """The outcome of one upload: the item, and whether it was already in the library."""

    item: MediaItem
    duplicate: bool


def add_file(
    *,
    session: Session,
    source: Path,
    name: str,
    root: Path,
    rules: MediaRules,
    uploaded_by: str,
    channels: Iterable[str] | None = None,
    people: PeopleShown = PeopleShown.UNKNOWN,
    consent: Consent | None = None,
    consent_note: str = "",
    now: datetime | None = None,
) -> Added:
    """Add file ``source`` (a partial file under the media root, moved or removed here) to
    the library as ``name``, in the caller's transaction.  ``channels``: the channels it is
    meant for (default: every channel that takes its kind); UploadRefused if one of them, or
    every channel, would refuse it."""
    try:
        name = clean_name(name)
        sha = _sha256(source)
        existing = session.scalars(select(MediaItem).where(MediaItem.sha256 == sha)).first()
        if existing is not None:
            return Added(existing, duplicate=True)
        facts = probe(source, name=name)
        fits = fit(facts, name=name, rules=rules)
        if not fits:
            raise UploadRefused(name, [Refusal("media:no-channel")])
        meant = set(channels) & set(fits) if channels is not None else set(fits)
        refusals = [r for kind in sorted(meant or fits) for r in fits[kind]]
        if refusals and (meant or all(fits.values())):
            raise UploadRefused(name, refusals)
        taken = session.scalars(select(MediaItem).where(MediaItem.name == name)).first()
        if taken is not None:
            raise UploadRefused(name, [Refusal("media:name-taken", {"name": name})])
        folder = library_root(root) / sha
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        os.replace(source, target)
        try:
            return _record(
                session=session,
                root=root,
                target=target,
                sha=sha,
                facts=facts,
                fits=fits,
                people=people,
                consent=consent,
                consent_note=consent_note,
                uploaded_by=uploaded_by,
                now=now or utcnow(),
            )
        except BaseException:
            discard_files(root, target.relative_to(root).as_posix())
            raise
    finally:
        source.unlink(missing_ok=True)


def _record(
    *,
    session: Session,
    root: Path,
    target: Path,
    sha: str,
    facts: Facts,
    fits: Mapping[str, list[Refusal]],
    people: PeopleShown,
    consent: Consent | None,
    consent_note: str,
    uploaded_by: str,
    now: datetime,
) -> Added:
    """The thumbnail and the row of a file just put at ``target``."""
    thumb = target.parent / THUMBNAIL
    has_thumb = _thumbnail(target, thumb, facts.kind, facts)
    if people is PeopleShown.NONE and consent is None:
        consent = Consent.NOT_NEEDED
    item = MediaItem(
        sha256=sha,
        name=target.name,
        path=target.relative_to(root).as_posix(),
        kind=facts.kind,
        mime=facts.mime,
        size_bytes=facts.size_bytes,
        width=facts.width,
        height=facts.height,
        duration_seconds=facts.duration_seconds,
        container=facts.container,
        video_codec=facts.video_codec,
        audio_codec=facts.audio_codec,
        thumbnail=thumb.relative_to(root).as_posix() if has_thumb else None,
        fit={k: [r.to_json() for r in v] for k, v in fits.items()},
        people=people,
        consent=consent or Consent.MISSING,
        consent_note=consent_note[:500],
        uploaded_by=uploaded_by,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():  # the same bytes or name added at the same moment
            session.add(item)
    except IntegrityError:
        again = session.scalars(select(MediaItem).where(MediaItem.sha256 == sha)).first()
        if again is not None and again.path == item.path:
            return Added(again, duplicate=True)  # its file is this one: keep it
        discard_files(root, item.path)
        if again is not None:
            return Added(again, duplicate=True)
        raise UploadRefused(
            target.name, [Refusal("media:name-taken", {"name": target.name})]
        ) from None
    return Added(item, duplicate=False)


def discard_files(root: Path, relative: str) -> None:
    """Remove a library file (``library/<sha256>/<name>``), its thumbnail and its folder when
    empty: for a file whose row was not kept (a refused batch, a failed transaction), so
    that no file is found by name without its row."""
    target = root / relative
    folder = target.parent
    if folder.parent != library_root(root) or not _is_sha(folder.name):
        return
    target.unlink(missing_ok=True)
    (folder / THUMBNAIL).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _is_sha(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


# --- chunked uploads -------------------------------------------------------------------------


class ChunkRefused(ValueError):
    """A chunk that does not continue its upload; ``received`` is how much the server has."""

    def __init__(self, message: str, *, received: int, status: int = 409) -> None:
        super().__init__(message)
        self.received = received
        self.status = status


def start_upload(
    *,
    session: Session,
    name: str,
    total_bytes: int,
    rules: MediaRules,
    created_by: str,
    root: Path | None = None,
    options: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> MediaUpload:
    """A new chunked upload of ``total_bytes`` bytes named ``name``; UploadRefused if the name
    or the size cannot be taken (checked before any byte arrives).  With ``root``, uploads
    abandoned for :data:`UPLOAD_HOURS` are forgotten first (so nothing needs a scheduler)."""
    name = clean_name(name)
    if kind_of(name) is None:
        raise UploadRefused(name, [_type_refusal(Path(name.lower()).suffix)])
    if total_bytes <= 0:
        raise UploadRefused(name, [Refusal("media:empty")])
    if total_bytes > rules.max_bytes:
        raise UploadRefused(
            name,
            [
                Refusal(
                    "media:too-large",
                    {"size": f"{total_bytes:,}", "limit": f"{rules.max_bytes:,}"},
                )
            ],
        )
    moment = now or utcnow()
    if root is not None:
        forget_abandoned(session=session, root=root, now=moment)
    upload = MediaUpload(
        key=secrets.token_urlsafe(24),
        name=name,
        total_bytes=total_bytes,
        received=0,
        created_by=created_by,
        options=dict(options or {}),
        created_at=now or utcnow(),
        updated_at=now or utcnow(),
    )
    session.add(upload)
    session.flush()
    return upload


def partial_path(root: Path, key: str) -> Path:
    """The partial file of upload ``key`` (a random token: letters, digits, ``-`` and ``_``)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", key):
        raise ValueError("not an upload key")
    return partial_folder(root) / f"chunks-{key}"


def receive_chunk(
    *,
    session: Session,
    upload: MediaUpload,
    root: Path,
    start: int,
    total: int,
    chunks: Iterator[bytes],
    now: datetime | None = None,
) -> bool:
    """Append the chunk starting at byte ``start`` of upload ``upload``; True when the upload
    is complete.  ChunkRefused if it does not continue where the upload is (``start`` must be
    what was received), claims another total, is longer than :data:`CHUNK_MAX_BYTES` or runs
    past the total.  The upload's row is updated in the caller's transaction."""
    if total != upload.total_bytes:
        raise ChunkRefused(
            f"this upload is {upload.total_bytes:,} bytes, not {total:,}",
            received=upload.received,
            status=400,
        )
    if start != upload.received:
        raise ChunkRefused(
            f"the next chunk starts at byte {upload.received:,}, not {start:,}",
            received=upload.received,
        )
    path = partial_path(root, upload.key)
    if path.exists() and path.stat().st_size != upload.received:
        with path.open("r+b") as fh:  # a chunk cut off before it was recorded: drop it
            fh.truncate(upload.received)
    written = 0
    with path.open("ab") as out:
        try:
            for block in chunks:
                written += len(block)
                if written > CHUNK_MAX_BYTES or start + written > upload.total_bytes:
                    raise ChunkRefused(
                        f"a chunk is at most {CHUNK_MAX_BYTES:,} bytes and may not pass the "
                        f"upload's {upload.total_bytes:,}",
                        received=upload.received,
                        status=413,
                    )
                out.write(block)
        except BaseException:
            out.flush()
            out.truncate(upload.received)
            raise
    upload.received = start + written
    upload.updated_at = now or utcnow()
    return upload.received == upload.total_bytes


def forget_upload(*, session: Session, upload: MediaUpload, root: Path) -> None:
    """Remove upload ``upload`` and its partial file (done, or abandoned)."""
    partial_path(root, upload.key).unlink(missing_ok=True)
    session.delete(upload)


# --- leftovers -------------------------------------------------------------------------------


def forget_abandoned(*, session: Session, root: Path, now: datetime) -> int:
    """Forget chunked uploads untouched for :data:`UPLOAD_HOURS` (their rows and partial
    files) and partial files left by a form cut off mid-way; how many uploads."""
    cutoff = now - timedelta(hours=UPLOAD_HOURS)
    stale = list(session.scalars(select(MediaUpload).where(MediaUpload.updated_at < cutoff)))
    for upload in stale:
        partial_path(root, upload.key).unlink(missing_ok=True)
    if stale:
        session.execute(delete(MediaUpload).where(MediaUpload.id.in_([u.id for u in stale])))
    folder = library_root(root) / PARTIAL
    if folder.is_dir():
        for path in folder.iterdir():
            leftover = path.name.startswith(("form-", "copy-")) and path.is_file()
            if leftover and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
    return len(stale)


def move_into_library(source: Path, root: Path) -> Path:
    """A copy of shipped file ``source`` as a partial file, ready for :func:`add_file`."""
    target = partial_folder(root) / f"copy-{secrets.token_hex(16)}"
    shutil.copyfile(source, target)
    return target
