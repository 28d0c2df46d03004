"""``marketing backup`` / ``marketing restore`` on both databases: a round trip keeps every
row and media file, a damaged archive or a full database is refused, and no key goes in."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, MetaData, func, select

from marketing.backup import BackupRefused, read_manifest, restore_backup
from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.db import get_engine, session_scope
from marketing.models import Base
from marketing.reference import import_reference
from marketing.settings import reset_settings
from tests.support.services import PostgresDatabase

KEY = "q" * 43 + "="  # what a Fernet key looks like


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def invoke(*args: str) -> Result:
    reset_settings()
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as ``db_url``, never migrated."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'fresh.sqlite3'}"
        return
    database = PostgresDatabase(prefix="mkt_restore").create()
    try:
        yield database.url
    finally:
        get_engine(database.url).dispose()
        database.drop()


def test_round_trip_keeps_every_row_and_media_file_and_never_the_key(
    db_url: str,
    engine: Engine,
    fresh_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
    media = tmp_path / "data" / "media"
    (media / "ภาพ").mkdir(parents=True, exist_ok=True)
    (media / "ภาพ" / "ตลาด.jpg").write_bytes(b"\xff\xd8" + bytes(range(256)) * 10)
    secrets = media / "secrets.toml"  # a careless place for it: still never archived
    secrets.write_text(f'FB = "EAAsecret"\nKEYS = "{KEY}"\n')
    secrets.chmod(0o600)
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", KEY)
    monkeypatch.setenv("MARKETING_SECRETS_FILE", str(secrets))
    before = counts(engine)
    assert before["community"] == 10

    archive = tmp_path / "out" / "backup.tar"
    done = invoke("backup", str(archive))
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    raw = archive.read_bytes()
    assert KEY.encode() not in raw and b"EAAsecret" not in raw
    manifest = read_manifest(archive)
    assert manifest.database == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    assert manifest.schema_revision is not None
    assert "media/ภาพ/ตลาด.jpg" in manifest.files
    assert "media/secrets.toml" not in manifest.files
    assert "MARKETING_TOKEN_KEYS" in done.output

    # a second archive name is needed: no silent overwrite
    assert invoke("backup", str(archive)).exit_code == 2

    restored_media = tmp_path / "restored-media"
    monkeypatch.setenv("MARKETING_DATABASE_URL", fresh_url)
    monkeypatch.setenv("MARKETING_MEDIA_DIR", str(restored_media))
    done = invoke("restore", str(archive))
    assert done.exit_code == 0, done.output
    assert "MARKETING_TOKEN_KEYS" in done.output
    assert counts(get_engine(fresh_url)) == before
    assert (restored_media / "ภาพ" / "ตลาด.jpg").read_bytes() == (
        media / "ภาพ" / "ตลาด.jpg"
    ).read_bytes()

    # the restored database has rows now: refused without --force, replaced with it
    again = invoke("restore", str(archive))
    assert again.exit_code == 2 and "not empty" in again.output
    forced = invoke("restore", str(archive), "--force")
    assert forced.exit_code == 0, forced.output
    assert counts(get_engine(fresh_url)) == before


def test_damaged_archive_is_refused_and_nothing_restored(
    engine: Engine, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
    archive = tmp_path / "backup.tar"
    assert invoke("backup", str(archive)).exit_code == 0
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as out:
        for info in source:
            data = source.extractfile(info).read()  # type: ignore[union-attr]
            if info.name.startswith("database."):
                data = data[:-10] + b"0123456789"
            out.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupRefused, match="checksum"):
        restore_backup(archive=damaged, database_url=fresh_url, media_root=tmp_path / "m")
    assert not (tmp_path / "m").exists()
    if fresh_url.startswith("postgresql"):
        with get_engine(fresh_url).connect() as connection:
            metadata = MetaData()
            metadata.reflect(connection)
            assert metadata.tables == {}
    else:
        assert not Path(fresh_url.removeprefix("sqlite:///")).exists()

    # the manifest names what is in it; it is readable JSON with the kind and time
    with tarfile.open(archive) as tar:
        data = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"created_at", "database", "schema_revision", "files"} <= set(data)


def test_restoring_an_older_backup_erases_again_who_was_erased_since(
    engine: Engine, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketing.models import AuditLog, Subscriber

    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
        address = session.scalars(select(Subscriber.email).order_by(Subscriber.id)).first()
    assert address
    archive = tmp_path / "before-erasure.tar"
    assert invoke("backup", str(archive)).exit_code == 0
    erased = invoke("subscribers", "erase", address, "--reason", "request 9", "--yes")
    assert erased.exit_code == 0, erased.output
    listed = (tmp_path / "data" / "erasures.txt").read_text()
    assert address not in listed and len(listed.split()[0]) == 64

    monkeypatch.setenv("MARKETING_DATABASE_URL", fresh_url)
    monkeypatch.setenv("MARKETING_MEDIA_DIR", str(tmp_path / "restored-media"))
    done = invoke("restore", str(archive))
    assert done.exit_code == 0, done.output
    assert "erased again" in done.output
    with session_scope(get_engine(fresh_url)) as session:
        emails = session.scalars(select(Subscriber.email)).all()
        assert address.lower() not in {e.lower() for e in emails}
        entry = session.scalars(select(AuditLog).where(AuditLog.actor == "restore")).one()
        assert entry.action == "subscriber.erase"


def test_restore_never_writes_through_a_link_out_of_the_media_folder(
    engine: Engine, fresh_url: str, tmp_path: Path
) -> None:
    media = tmp_path / "data" / "media"
    (media / "ภาพ").mkdir(parents=True, exist_ok=True)
    (media / "ภาพ" / "a.jpg").write_bytes(b"\xff\xd8 picture")
    archive = tmp_path / "backup.tar"
    assert invoke("backup", str(archive)).exit_code == 0
    target_media = tmp_path / "target-media"
    target_media.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (target_media / "ภาพ").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BackupRefused, match="link"):
        restore_backup(archive=archive, database_url=fresh_url, media_root=target_media, force=True)
    assert list(outside.iterdir()) == []
