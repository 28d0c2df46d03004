"""The media library's pages and JSON API (:mod:`marketing.media_library` does the work).

Pages (``/library``): a grid of thumbnails with each channel's fit, an upload form for several
files at once (a plain multipart form; ``/static/media-upload.js`` sends the same files in
chunks with a progress bar when scripts run), and one page per item with what was read from
it, why a channel would refuse it, and whether people appear in it and their consent.

API (``/api/v1/media``): ``POST`` a multipart upload (field ``files``, several allowed), ``GET``
the list or one item; a chunked, resumable upload in the protocol of YouTube's resumable
uploads: ``POST /api/v1/media/uploads`` with ``{"name", "size"}`` answers 201 and a
``Location``; each ``PUT <Location>`` carries ``Content-Range: bytes FIRST-LAST/TOTAL`` and
answers 308 with ``Range: bytes=0-N`` until the last, which answers 201 with the item; an
empty ``PUT`` with ``Content-Range: bytes */TOTAL`` asks how much arrived.  A chunk that does
not start where the upload is answers 409 with the ``Range`` to go on from.  Writes need the
editor role, as campaign writes do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.media import is_image, sniff
from marketing.media import contained
from marketing.media_library import (
    CHUNK_MAX_BYTES,
    FORM_UPLOAD_MAX_BYTES,
    ChunkRefused,
    MediaRules,
    Refusal,
    UploadRefused,
    add_file,
    default_rules,
    discard_files,
    forget_upload,
    partial_path,
    receive_chunk,
    spool,
    start_upload,
)
from marketing.models import Consent, MediaItem, MediaUpload, PeopleShown, User
from marketing.web.deps import DB, Editor, Viewer, now_of, settings_of
from marketing.web.rendering import flash, gettext_for, render
from marketing.web.staff import audit

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["media"])

MAX_ID = 2**31 - 1
MAX_FILES = 20
"""Files in one form upload."""
FLASHED_DONE, FLASHED_ERRORS = 4, 3  # messages carried to the next page (in the cookie)
LIST_LIMIT = 500
_RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")
_STATUS = re.compile(r"bytes \*/(\d{1,15})")
UPLOAD_KEY = r"^[A-Za-z0-9_-]{16,64}$"
_upload_locks: dict[str, threading.Lock] = {}
_upload_locks_guard = threading.Lock()


def rules_of(request: Request) -> MediaRules:
    """The channels' media rules the app checks uploads against (injected in tests)."""
    rules: MediaRules | None = getattr(request.app.state, "media_rules", None)
    return rules or default_rules()


# --- words -----------------------------------------------------------------------------------


def refusal_text(refusal: Refusal | Mapping[str, Any], _: Any) -> str:
    """A refusal in the reader's language: what is wrong, then what to do."""
    if isinstance(refusal, Refusal):
        code, values, channel = refusal.code, dict(refusal.values), refusal.channel
    else:
        code = str(refusal.get("code", ""))
        values = dict(refusal.get("values") or {})
        channel = refusal.get("channel")
    kinds = {"image": _("photo"), "video": _("video"), "template": _("e-mail template")}
    if "kind" in values:
        values["kind"] = kinds.get(values["kind"], values["kind"])
    messages = {
        "media:name": _(
            "“%(name)s” is not a usable file name. Rename the file (letters, digits, dots and "
            "dashes, no folders) and upload it again."
        ),
        "media:name-taken": _(
            "The library already has a different file named %(name)s. Rename the new file and "
            "upload it again."
        ),
        "media:type": _(
            "%(suffix)s files are not taken. Send a photo (%(images)s), a video (%(videos)s) or "
            "an e-mail template (%(templates)s)."
        ),
        "media:content": _(
            "Its content is %(found)s, not what its name %(name)s says. Export it again in the "
            "format its name says."
        ),
        "media:empty": _("The file is empty. Choose the file again."),
        "media:too-large": _(
            "The file is %(size)s bytes; the most taken is %(limit)s. Make it smaller (shorter, "
            "or a lower resolution) and upload it again."
        ),
        "media:unreadable": _(
            "The file cannot be read as a %(kind)s (%(detail)s). Open it on your computer to "
            "check it, export it again and upload it."
        ),
        "media:pixels": _(
            "The picture is %(width)s × %(height)s pixels, more than %(limit)s. Make it smaller."
        ),
        "media:container": _(
            "The video is in a %(container)s container, not the %(suffix)s its name says. "
            "Export it again as MP4 (H.264 video, AAC sound)."
        ),
        "media:no-video": _("The file has no video picture. Export it again as MP4 (H.264)."),
        "media:codec": _(
            "The video is coded %(codec)s, which is not taken. Export it again as MP4 with "
            "H.264 video."
        ),
        "media:too-long": _(
            "The video lasts %(seconds)s seconds; the most taken is %(limit)s. Cut it shorter."
        ),
        "media:template": _(
            "The template has a problem at line %(line)s: %(detail)s. Fix the template and "
            "upload it again."
        ),
        "media:no-channel": _("No channel takes this kind of file."),
    }
    template = messages.get(code)
    if template is None:
        return code
    try:
        text = str(template) % values
    except (KeyError, ValueError, TypeError):
        text = str(template)
    if channel:
        labels = {"facebook": "Facebook", "youtube": "YouTube", "email": _("E-mail")}
        return f"{labels.get(str(channel), str(channel))}: {text}"
    return text


# --- shared ----------------------------------------------------------------------------------


def _items(session: Session) -> list[MediaItem]:
    return list(
        session.scalars(select(MediaItem).order_by(MediaItem.created_at.desc()).limit(LIST_LIMIT))
    )


def _item(session: Session, item_id: int) -> MediaItem:
    item = session.get(MediaItem, item_id)
    if item is None:
        raise HTTPException(404, "no such media item")
    return item


def _choice(value: str | None, kind: type[PeopleShown] | type[Consent], default: Any) -> Any:
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise HTTPException(400, f"{value!r} is not one of {[m.value for m in kind]}") from None


def _upload_one(
    *,
    request: Request,
    session: Session,
    user: User,
    file: UploadFile,
    channels: list[str] | None,
    people: PeopleShown,
    consent: Consent | None,
    note: str,
) -> tuple[MediaItem, bool]:
    """Add one uploaded form file; UploadRefused if it is not taken (nothing kept)."""
    root = settings_of(request).media_root
    name = file.filename or ""
    source = spool(file.file, root=root, max_bytes=FORM_UPLOAD_MAX_BYTES, name=name)
    added = add_file(
        session=session,
        source=source,
        name=name,
        root=root,
        rules=rules_of(request),
        uploaded_by=user.username,
        channels=channels,
        people=people,
        consent=consent,
        consent_note=note,
        now=now_of(request),
    )
    if not added.duplicate:
        audit(
            session=session,
            user=user,
            action="media.upload",
            object_type="media",
            object_id=added.item.id,
            name=added.item.name,
            sha256=added.item.sha256,
        )
    return added.item, added.duplicate


def fit_summary(item: MediaItem) -> dict[str, bool]:
    """Channel kind -> whether it takes the item."""
    return {kind: not problems for kind, problems in sorted(item.fit.items())}


# --- pages -----------------------------------------------------------------------------------


@router.get("/library")
def library_page(request: Request, user: Viewer, session: DB) -> Response:
    items = _items(session)
    return render(
        request,
        "library.html",
        user=user,
        items=items,
        fits={item.id: fit_summary(item) for item in items},
        limit=LIST_LIMIT,
        max_files=MAX_FILES,
        form_max_mb=FORM_UPLOAD_MAX_BYTES // 2**20,
        chunk_bytes=CHUNK_MAX_BYTES // 2,
        people_choices=[p.value for p in PeopleShown],
        consent_choices=[c.value for c in Consent],
    )


@router.post("/library")
def library_upload(
    request: Request,
    user: Editor,
    session: DB,
    files: Annotated[list[UploadFile], File()],
    people: Annotated[str, Form(max_length=20)] = "",
    consent: Annotated[str, Form(max_length=20)] = "",
    consent_note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _ = gettext_for(user)
    shown = _choice(people, PeopleShown, PeopleShown.UNKNOWN)
    agreed = _choice(consent, Consent, None)
    files = [f for f in files if f.filename]
    if not files:
        flash(request, _("Choose at least one file to upload."), "error")
        return RedirectResponse("/library", status_code=303)
    if len(files) > MAX_FILES:
        flash(request, _("Upload at most %(n)s files at once.") % {"n": MAX_FILES}, "error")
        return RedirectResponse("/library", status_code=303)
    # The session lives in a signed cookie (about 4 KB): a few messages, then a count.
    errors: list[str] = []
    done: list[str] = []
    for file in files:
        name = file.filename or ""
        try:
            item, duplicate = _upload_one(
                request=request,
                session=session,
                user=user,
                file=file,
                channels=None,
                people=shown,
                consent=agreed,
                note=consent_note,
            )
        except UploadRefused as exc:
            session.rollback()
            errors += [f"{name[:60]}: {refusal_text(r, _)}" for r in exc.refusals]
            continue
        session.commit()
        if duplicate:
            message = _("%(file)s is already in the library as %(name)s.")
            done.append(message % {"file": name[:60], "name": item.name[:60]})
        else:
            done.append(_("%(file)s was added to the library.") % {"file": item.name[:60]})
    for messages, kind, shown_at_most in (
        (done, "ok", FLASHED_DONE),
        (errors, "error", FLASHED_ERRORS),
    ):
        for message in messages[:shown_at_most]:
            flash(request, message, kind)
        if len(messages) > shown_at_most:
            more = len(messages) - shown_at_most
            flash(request, _("… and %(n)s more (see the library below).") % {"n": more}, kind)
    return RedirectResponse("/library", status_code=303)


@router.get("/library/{item_id}")
def item_page(
    request: Request,
    user: Viewer,
    session: DB,
    item_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    item = _item(session, item_id)
    _ = gettext_for(user)
    problems = {
        kind: [refusal_text(r, _) for r in found] for kind, found in sorted(item.fit.items())
    }
    return render(
        request,
        "library_item.html",
        user=user,
        item=item,
        problems=problems,
        people_choices=[p.value for p in PeopleShown],
        consent_choices=[c.value for c in Consent],
    )


@router.post("/library/{item_id}/people")
def item_people(
    request: Request,
    user: Editor,
    session: DB,
    item_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    people: Annotated[str, Form(max_length=20)],
    consent: Annotated[str, Form(max_length=20)],
    consent_note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    item = _item(session, item_id)
    item.people = _choice(people, PeopleShown, PeopleShown.UNKNOWN)
    item.consent = _choice(consent, Consent, Consent.MISSING)
    item.consent_note = consent_note.strip()
    audit(
        session=session,
        user=user,
        action="media.consent",
        object_type="media",
        object_id=item.id,
        people=item.people.value,
        consent=item.consent.value,
    )
    session.commit()
    _ = gettext_for(user)
    flash(request, _("Saved."))
    return RedirectResponse(f"/library/{item.id}", status_code=303)


def _serve(request: Request, relative: str | None, *, download_name: str | None) -> Response:
    root = settings_of(request).media_root
    real = contained(relative, root=root) if relative else None
    if real is None:
        raise HTTPException(404, "the media file is not in the media folder of this server")
    headers = {"X-Content-Type-Options": "nosniff"}
    image = is_image(real)
    if image is not None:
        return FileResponse(real, media_type=image, headers=headers)
    if real.name.endswith(".thumb.jpg"):
        return FileResponse(real, media_type="image/jpeg", headers=headers)
    media_type = sniff(real)
    if media_type is None or not media_type.startswith("video/"):
        media_type = "application/octet-stream"
    return FileResponse(
        real,
        media_type=media_type,
        headers=headers,
        filename=download_name or real.name,
        content_disposition_type="attachment",
    )


@router.get("/library/{item_id}/thumbnail")
def item_thumbnail(
    request: Request,
    user: Viewer,
    session: DB,
    item_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    return _serve(request, _item(session, item_id).thumbnail, download_name=None)


@router.get("/library/{item_id}/file")
def item_file(
    request: Request,
    user: Viewer,
    session: DB,
    item_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    item = _item(session, item_id)
    return _serve(request, item.path, download_name=item.name)


# --- API -------------------------------------------------------------------------------------


class MediaOut(BaseModel):
    """One item of the media library.  ``fit``: for each channel that takes its kind, why
    that channel would refuse it (empty list: it fits).  ``reference``: how a campaign names
    it (``photo: library:<sha256>``; its file name works too)."""

    id: int
    name: str
    sha256: str
    kind: str
    mime: str
    size_bytes: int
    width: int | None
    height: int | None
    duration_seconds: float | None
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    fit: dict[str, list[dict[str, Any]]]
    people: str
    consent: str
    consent_note: str
    uploaded_by: str
    reference: str
    duplicate: bool = False

    @classmethod
    def of(cls, item: MediaItem, *, duplicate: bool = False) -> MediaOut:
        return cls(
            id=item.id,
            name=item.name,
            sha256=item.sha256,
            kind=item.kind.value,
            mime=item.mime,
            size_bytes=item.size_bytes,
            width=item.width,
            height=item.height,
            duration_seconds=item.duration_seconds,
            container=item.container,
            video_codec=item.video_codec,
            audio_codec=item.audio_codec,
            fit=item.fit,
            people=item.people.value,
            consent=item.consent.value,
            consent_note=item.consent_note,
            uploaded_by=item.uploaded_by,
            reference=f"library:{item.sha256}",
            duplicate=duplicate,
        )


def _refused(exc: UploadRefused, user: User, status: int = 422) -> JSONResponse:
    """Every refusal: its code and values, ``message`` in the code's English and ``shown``
    in the user's language (what the page's script shows)."""
    _ = gettext_for(user)
    return JSONResponse(
        {
            "detail": str(exc),
            "file": exc.name,
            "refusals": [
                {**r.to_json(), "message": r.message, "shown": refusal_text(r, _)}
                for r in exc.refusals
            ],
        },
        status_code=status,
    )


def _channels(value: str) -> list[str] | None:
    names = [c.strip() for c in value.split(",") if c.strip()]
    return names or None


@api.post("/media", status_code=201, response_model=list[MediaOut])
def api_upload(
    request: Request,
    user: Editor,
    session: DB,
    files: Annotated[list[UploadFile], File(description="one or more files")],
    channels: Annotated[
        str, Form(max_length=200, description="the channels it is meant for, by comma")
    ] = "",
    people: Annotated[str, Form(max_length=20)] = "",
    consent: Annotated[str, Form(max_length=20)] = "",
    consent_note: Annotated[str, Form(max_length=500)] = "",
) -> Any:
    """Upload files to the media library (all or none): 201 with the items, 422 with every
    refusal of the first file refused (nothing kept)."""
    if len(files) > MAX_FILES:
        raise HTTPException(400, f"upload at most {MAX_FILES} files at once")
    shown = _choice(people, PeopleShown, PeopleShown.UNKNOWN)
    agreed = _choice(consent, Consent, None)
    out: list[tuple[MediaItem, bool]] = []
    try:
        for file in files:
            item, duplicate = _upload_one(
                request=request,
                session=session,
                user=user,
                file=file,
                channels=_channels(channels),
                people=shown,
                consent=agreed,
                note=consent_note,
            )
            out.append((item, duplicate))
    except UploadRefused as exc:
        kept = [item.path for item, duplicate in out if not duplicate]
        session.rollback()
        for path in kept:  # all or none: the files of this request's new items go too
            discard_files(settings_of(request).media_root, path)
        return _refused(exc, user)
    session.commit()
    return [MediaOut.of(item, duplicate=duplicate) for item, duplicate in out]


@api.get("/media", response_model=list[MediaOut])
def api_list(user: Viewer, session: DB) -> Any:
    """The library's items, newest first (at most 500)."""
    return [MediaOut.of(item) for item in _items(session)]


@api.get("/media/{item_id}", response_model=MediaOut)
def api_item(user: Viewer, session: DB, item_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Any:
    """One item of the library."""
    return MediaOut.of(_item(session, item_id))


class UploadIn(BaseModel):
    name: str = Field(max_length=400, description="the file's name, e.g. songkran-clip.mp4")
    size: int = Field(ge=0, le=2**50, description="its size in bytes")
    channels: list[str] | None = Field(None, max_length=10)
    people: PeopleShown = PeopleShown.UNKNOWN
    consent: Consent | None = None
    consent_note: str = Field("", max_length=500)


class UploadOut(BaseModel):
    key: str
    location: str
    received: int
    total: int
    chunk_max_bytes: int


def _upload_out(upload: MediaUpload) -> UploadOut:
    return UploadOut(
        key=upload.key,
        location=f"/api/v1/media/uploads/{upload.key}",
        received=upload.received,
        total=upload.total_bytes,
        chunk_max_bytes=CHUNK_MAX_BYTES,
    )


@api.post("/media/uploads", status_code=201, response_model=UploadOut)
def api_start_upload(request: Request, user: Editor, session: DB, body: UploadIn) -> Any:
    """Start a chunked upload: 201 with its ``location``; 422 if the name, type or size
    cannot be taken (checked before any byte is sent)."""
    try:
        upload = start_upload(
            session=session,
            name=body.name,
            total_bytes=body.size,
            rules=rules_of(request),
            created_by=user.username,
            root=settings_of(request).media_root,
            options={
                "channels": body.channels,
                "people": body.people.value,
                "consent": body.consent.value if body.consent else None,
                "consent_note": body.consent_note,
            },
            now=now_of(request),
        )
    except UploadRefused as exc:
        return _refused(exc, user)
    session.commit()
    out = _upload_out(upload)
    return JSONResponse(out.model_dump(), status_code=201, headers={"Location": out.location})


def _progress(upload: MediaUpload, status: int = 308, detail: str | None = None) -> Response:
    headers = {"Range": f"bytes=0-{upload.received - 1}"} if upload.received else {}
    body = _upload_out(upload).model_dump()
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


@api.put(
    "/media/uploads/{key}",
    responses={
        201: {"description": "the last chunk: the item"},
        308: {"description": "more to send"},
        409: {"description": "the chunk does not start where the upload is"},
    },
)
async def api_chunk(
    request: Request,
    user: Editor,
    session: DB,
    key: Annotated[str, Path(pattern=UPLOAD_KEY)],
) -> Response:
    """Send one chunk (``Content-Range: bytes FIRST-LAST/TOTAL``), or ask how much arrived
    (an empty body with ``Content-Range: bytes */TOTAL``)."""
    body = await request.body()  # at most a chunk and a form's worth (the body limit)
    return await run_in_threadpool(_chunk, request, user, session, key, body)


def _chunk(request: Request, user: User, session: Session, key: str, body: bytes) -> Response:
    """The chunk's work, in the thread pool (disk, database, ffprobe): one chunk of an upload
    at a time (a lock in this process; the row locked on PostgreSQL for other processes)."""
    with _upload_locks_guard:
        lock = _upload_locks.setdefault(key, threading.Lock())
    with lock:  # kept (a few bytes an upload) so that no two chunks ever hold different locks
        return _chunk_locked(request, user, session, key, body)


def _chunk_locked(
    request: Request, user: User, session: Session, key: str, body: bytes
) -> Response:
    upload = session.scalars(
        select(MediaUpload).where(MediaUpload.key == key).with_for_update()
    ).first()
    if upload is None or upload.created_by != user.username:
        raise HTTPException(404, "no such upload (it finished, or was never started)")
    header = request.headers.get("content-range", "").strip()
    if _STATUS.fullmatch(header):
        return _progress(upload)
    matched = _RANGE.fullmatch(header)
    if matched is None:
        raise HTTPException(400, "send Content-Range: bytes FIRST-LAST/TOTAL")
    first, last, total = (int(g) for g in matched.groups())
    if last < first or last - first + 1 != len(body):
        raise HTTPException(400, "Content-Range does not match the body's length")
    root = settings_of(request).media_root
    try:
        complete = receive_chunk(
            session=session,
            upload=upload,
            root=root,
            start=first,
            total=total,
            chunks=iter([body]),
            now=now_of(request),
        )
    except ChunkRefused as exc:
        session.rollback()
        return _progress(upload, status=exc.status, detail=str(exc))
    if not complete:
        session.commit()
        return _progress(upload)
    options = dict(upload.options)
    source = partial_path(root, upload.key)
    finished = source.with_name(source.name + ".done")
    source.replace(finished)
    name = upload.name
    forget_upload(session=session, upload=upload, root=root)
    try:
        added = add_file(
            session=session,
            source=finished,
            name=name,
            root=root,
            rules=rules_of(request),
            uploaded_by=user.username,
            channels=options.get("channels"),
            people=PeopleShown(options.get("people") or "unknown"),
            consent=Consent(options["consent"]) if options.get("consent") else None,
            consent_note=str(options.get("consent_note") or ""),
            now=now_of(request),
        )
    except UploadRefused as exc:
        session.commit()  # the upload is over either way
        return _refused(exc, user)
    if not added.duplicate:
        audit(
            session=session,
            user=user,
            action="media.upload",
            object_type="media",
            object_id=added.item.id,
            name=added.item.name,
            sha256=added.item.sha256,
        )
    session.commit()
    out = MediaOut.of(added.item, duplicate=added.duplicate)
    return JSONResponse(out.model_dump(), status_code=201)
