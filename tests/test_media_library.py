"""The media library (#14): real files read by Pillow and ffprobe, every channel's limits checked
when a file is uploaded (not at publishing time), the same bytes kept once, names and chunk
offsets that could leave the media root refused, and campaigns finding uploaded files by name.
Database tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import read_campaign
from marketing.media import resolve_media
from marketing.media_library import (
    CHUNK_MAX_BYTES,
    UPLOAD_HOURS,
    ChunkRefused,
    UploadRefused,
    add_file,
    clean_name,
    default_rules,
    move_into_library,
    partial_path,
    receive_chunk,
    spool,
    start_upload,
)
from marketing.models import Consent, MediaItem, MediaKind, MediaUpload, PeopleShown
from tests.support.media import EXAMPLES_MEDIA, ROOT
from tests.support.videos import make_video

RULES = default_rules()


def _add(session: Session, root: Path, source: Path, name: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return add_file(
        session=session,
        source=move_into_library(source, root),
        name=name or source.name,
        root=root,
        rules=kw.pop("rules", RULES),  # type: ignore[arg-type]
        uploaded_by="editor",
        **kw,  # type: ignore[arg-type]
    )


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_an_h264_mp4_is_read_by_ffprobe_fits_every_video_channel_and_gets_a_thumbnail(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    clip = make_video(tmp_path / "clip.mp4", seconds=3)
    added = _add(session, root, clip, "คลิปสงกรานต์.mp4")
    item = added.item
    assert not added.duplicate
    assert item.kind is MediaKind.VIDEO
    assert item.container is not None and "mp4" in item.container.split(",")
    assert item.video_codec == "h264"
    assert (item.width, item.height) == (160, 120)
    assert item.duration_seconds is not None and 2.9 <= item.duration_seconds <= 3.1
    assert item.fit == {"facebook": [], "youtube": []}
    assert (root / item.path).read_bytes() == clip.read_bytes()
    assert item.path == f"library/{item.sha256}/คลิปสงกรานต์.mp4"
    assert item.thumbnail is not None
    assert (root / item.thumbnail).read_bytes()[:2] == b"\xff\xd8"  # a JPEG frame
    session.commit()
    assert session.scalar(select(func.count()).select_from(MediaItem)) == 1
    assert not list((root / "library" / ".partial").iterdir())


def test_a_photo_is_read_by_pillow_and_fits_facebook(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "media"
    item = _add(session, root, EXAMPLES_MEDIA / "songkran-poster.png").item
    assert item.kind is MediaKind.IMAGE
    assert (item.width, item.height, item.mime) == (64, 40, "image/png")
    assert item.fit == {"facebook": []}
    assert item.thumbnail is not None


def test_a_matroska_file_named_mp4_is_refused_at_upload_with_what_to_do(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    clip = make_video(tmp_path / "clip.mp4", container="matroska")
    with pytest.raises(UploadRefused) as refused:
        _add(session, root, clip)
    codes = {(r.channel, r.code) for r in refused.value.refusals}
    assert ("youtube", "media:container") in codes
    assert "export it again as MP4" in str(refused.value)
    assert "matroska" in str(refused.value)
    assert session.scalar(select(func.count()).select_from(MediaItem)) == 0
    assert not any(p.startswith("library/") and ".partial" not in p for p in _files(root))


def test_an_avi_in_a_codec_youtube_does_not_take_is_refused(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    clip = make_video(tmp_path / "lossless.avi", codec="ffv1")
    with pytest.raises(UploadRefused) as refused:
        _add(session, root, clip)
    youtube = [r for r in refused.value.refusals if r.channel == "youtube"]
    assert [r.code for r in youtube] == ["media:codec"]
    assert youtube[0].values == {"codec": "ffv1"}
    assert "H.264" in youtube[0].message


def test_an_ogg_video_is_refused_by_its_type_naming_the_types_taken(
    session: Session, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.ogv", codec="libtheora")
    with pytest.raises(UploadRefused) as refused:
        _add(session, tmp_path / "media", clip)
    assert {r.code for r in refused.value.refusals} == {"media:type"}
    assert "mp4" in str(refused.value)


def test_a_video_over_youtubes_size_limit_is_refused_and_facebook_only_is_taken(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    clip = make_video(tmp_path / "clip.mp4")
    size = clip.stat().st_size
    lowered = RULES.with_limit("youtube", video_max_bytes=size - 1)
    with pytest.raises(UploadRefused) as refused:
        _add(session, root, clip, rules=lowered)
    assert [(r.channel, r.code) for r in refused.value.refusals] == [("youtube", "media:too-large")]
    assert f"{size:,}" in str(refused.value)
    # Meant for Facebook only: taken, and the item says YouTube would refuse it.
    item = _add(session, root, clip, rules=lowered, channels=["facebook"]).item
    assert item.fit["facebook"] == []
    assert [r["code"] for r in item.fit["youtube"]] == ["media:too-large"]


def test_the_same_bytes_uploaded_twice_are_kept_once(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "media"
    poster = EXAMPLES_MEDIA / "songkran-poster.png"
    first = _add(session, root, poster, "poster.png")
    second = _add(session, root, poster, "another-name.png")
    assert second.duplicate and second.item.id == first.item.id
    assert second.item.name == "poster.png"
    session.commit()
    assert session.scalar(select(func.count()).select_from(MediaItem)) == 1
    kept = [p for p in _files(root) if p.endswith(".png")]
    assert kept == [f"library/{first.item.sha256}/poster.png"]


def test_another_file_under_a_name_in_use_is_refused(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "media"
    _add(session, root, EXAMPLES_MEDIA / "songkran-poster.png", "poster.png")
    with pytest.raises(UploadRefused) as refused:
        _add(session, root, ROOT / "marketing/sample/media/nan-ban-doi-ngoen.png", "poster.png")
    assert refused.value.refusals[0].code == "media:name-taken"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.png",
        "..\\..\\secrets.png",
        "/etc/poster.png",
        "a/b.png",
        ".hidden.png",
        "..png",
        "poster\x00.png",
        "poster\n.png",
        "x" * 300 + ".png",
        "",
    ],
)
def test_names_that_could_leave_the_library_are_refused(name: str) -> None:
    with pytest.raises(UploadRefused) as refused:
        clean_name(name)
    assert refused.value.refusals[0].code == "media:name"


def test_thai_names_with_their_marks_are_kept() -> None:
    assert clean_name("โปสเตอร์ สงกรานต์ (ปี 2570).png") == "โปสเตอร์ สงกรานต์ (ปี 2570).png"


def test_a_file_with_the_wrong_content_for_its_name_is_refused(
    session: Session, tmp_path: Path
) -> None:
    fake = tmp_path / "poster.png"
    fake.write_text("not a picture")
    with pytest.raises(UploadRefused) as refused:
        _add(session, tmp_path / "media", fake)
    assert refused.value.refusals[0].code == "media:content"


def test_a_form_upload_over_the_bound_is_cut_off_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "media"
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 3000)
    with source.open("rb") as fh, pytest.raises(UploadRefused):
        spool(fh, root=root, max_bytes=2048, name="big.mp4")
    assert list((root / "library" / ".partial").iterdir()) == []


def test_a_chunked_upload_continues_only_where_it_stopped(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "media"
    clip = make_video(tmp_path / "clip.mp4").read_bytes()
    upload = start_upload(
        session=session, name="clip.mp4", total_bytes=len(clip), rules=RULES, created_by="ed"
    )
    half = len(clip) // 2
    assert not receive_chunk(
        session=session,
        upload=upload,
        root=root,
        start=0,
        total=len(clip),
        chunks=iter([clip[:half]]),
    )
    # A chunk sent again, or one that skips ahead, is refused and says where to go on.
    for start in (0, half + 10, -1):
        with pytest.raises(ChunkRefused) as refused:
            receive_chunk(
                session=session,
                upload=upload,
                root=root,
                start=start,
                total=len(clip),
                chunks=iter([clip[half:]]),
            )
        assert refused.value.received == half
    with pytest.raises(ChunkRefused):  # another total
        receive_chunk(
            session=session,
            upload=upload,
            root=root,
            start=half,
            total=len(clip) + 1,
            chunks=iter([clip[half:]]),
        )
    with pytest.raises(ChunkRefused) as refused:  # past the end
        receive_chunk(
            session=session,
            upload=upload,
            root=root,
            start=half,
            total=len(clip),
            chunks=iter([clip[half:] + b"extra"]),
        )
    assert refused.value.status == 413
    assert partial_path(root, upload.key).stat().st_size == half
    assert receive_chunk(
        session=session,
        upload=upload,
        root=root,
        start=half,
        total=len(clip),
        chunks=iter([clip[half:]]),
    )
    assert partial_path(root, upload.key).read_bytes() == clip


def test_chunked_uploads_are_bounded_before_any_byte_arrives(session: Session) -> None:
    for name, size, code in (
        ("clip.mp4", RULES.max_bytes + 1, "media:too-large"),
        ("clip.mp4", 0, "media:empty"),
        ("clip.exe", 10, "media:type"),
        ("../clip.mp4", 10, "media:name"),
    ):
        with pytest.raises(UploadRefused) as refused:
            start_upload(session=session, name=name, total_bytes=size, rules=RULES, created_by="e")
        assert refused.value.refusals[0].code == code
    with pytest.raises(ValueError):
        partial_path(Path("/tmp"), "../../etc/passwd")
    assert CHUNK_MAX_BYTES <= 16 * 1024 * 1024


def test_an_email_template_is_checked_in_the_campaign_sandbox(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    good = _add(session, root, ROOT / "campaigns/examples/templates/songkran-email.html.j2").item
    assert good.kind is MediaKind.TEMPLATE and good.fit == {"email": []}
    broken = tmp_path / "broken.html"
    broken.write_text("<p>สวัสดี</p>\n<p>{% for x in %}</p>\n", encoding="utf-8")
    with pytest.raises(UploadRefused) as refused:
        _add(session, root, broken)
    assert refused.value.refusals[0].code == "media:template"
    assert refused.value.refusals[0].values["line"] == "2"


def test_people_and_consent_are_kept(session: Session, tmp_path: Path) -> None:
    item = _add(
        session,
        tmp_path / "media",
        EXAMPLES_MEDIA / "songkran-poster.png",
        people=PeopleShown.YES,
        consent=Consent.WRITTEN,
        consent_note="แบบฟอร์มยินยอม 12 เม.ย.",
    ).item
    session.commit()
    session.expire_all()
    again = session.get(MediaItem, item.id)
    assert again is not None
    assert (again.people, again.consent, again.consent_note) == (
        PeopleShown.YES,
        Consent.WRITTEN,
        "แบบฟอร์มยินยอม 12 เม.ย.",
    )


def test_the_shipped_songkran_campaign_finds_its_files_in_the_library(
    session: Session, tmp_path: Path
) -> None:
    """Uploaded through the web, the campaign is read from the data folder, where none of its
    files are: the poster, the clip and the e-mail template come from the library."""
    root = tmp_path / "media"
    elsewhere = tmp_path / "campaigns"
    elsewhere.mkdir()
    text = (ROOT / "campaigns/examples/songkran-2027.yaml").read_text(encoding="utf-8")
    before = read_campaign(text, file="songkran.yaml", base_dir=elsewhere, media_root=root)
    assert {p.field for p in before.problems} >= {
        "channels.facebook.photo",
        "channels.youtube.video",
    }
    items = {}
    for source in (
        EXAMPLES_MEDIA / "songkran-poster.png",
        EXAMPLES_MEDIA / "songkran-clip.mp4",
        ROOT / "campaigns/examples/templates/songkran-email.html.j2",
    ):
        items[source.name] = _add(session, root, source).item
    after = read_campaign(text, file="songkran.yaml", base_dir=elsewhere, media_root=root)
    assert after.problems == []
    poster = items["songkran-poster.png"]
    assert (
        resolve_media("examples/songkran-poster.png", root=root) == (root / poster.path).resolve()
    )
    assert resolve_media(f"library:{poster.sha256}", root=root) == (root / poster.path).resolve()
    assert resolve_media("library:songkran-poster.png", root=root) == (root / poster.path).resolve()
    assert any("songkran-email.html.j2" in f for f in after.book.files_read)


def test_library_names_cannot_reach_outside_the_media_root(tmp_path: Path) -> None:
    root = tmp_path / "media"
    outside = tmp_path / "secret.png"
    shutil.copyfile(EXAMPLES_MEDIA / "songkran-poster.png", outside)
    sha_folder = root / "library" / ("a" * 64)
    sha_folder.mkdir(parents=True)
    (sha_folder / "linked.png").symlink_to(outside)
    from marketing.media import MediaRefused, find_in_library

    assert find_in_library(root, "linked.png") is None
    assert find_in_library(root, "library:" + "a" * 64) is None
    assert find_in_library(root, "library:../secret.png") is None
    with pytest.raises(MediaRefused):
        resolve_media("library:../../secret.png", root=root)


def test_uploads_abandoned_for_two_days_are_forgotten_when_another_starts(
    session: Session, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    start = datetime(2027, 4, 1, 3, 0, tzinfo=UTC)
    old = start_upload(
        session=session, name="old.mp4", total_bytes=10, rules=RULES, created_by="e", now=start
    )
    receive_chunk(
        session=session, upload=old, root=root, start=0, total=10, chunks=iter([b"12345"])
    )
    old.updated_at = start
    session.flush()
    kept = start_upload(
        session=session,
        name="recent.mp4",
        total_bytes=10,
        rules=RULES,
        created_by="e",
        root=root,
        now=start + timedelta(hours=47),
    )
    assert partial_path(root, old.key).exists()
    start_upload(
        session=session,
        name="new.mp4",
        total_bytes=10,
        rules=RULES,
        created_by="e",
        root=root,
        now=start + timedelta(hours=UPLOAD_HOURS, minutes=1),
    )
    session.commit()
    names = set(session.scalars(select(MediaUpload.name)))
    assert names == {kept.name, "new.mp4"}
    assert not partial_path(root, old.key).exists()
