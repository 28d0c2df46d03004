"""Issue #12, item 9: the web app writes only inside the data folder.

The attack: a campaign applied from the command line keeps the path of its file; an edit in
the browser was written back to that path, so whoever may edit in the web app could rewrite
a file anywhere the service may write.  Now a web edit goes to
``<data folder>/campaigns/<slug>.yaml`` and the file the command line read stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from campaigns.lifecycle import apply_campaign
from marketing.db import session_scope
from marketing.models import Campaign
from marketing.settings import get_settings
from tests.support.web import WebClient
from tests.test_web_auth import CAMPAIGN


def test_a_web_edit_of_a_campaign_applied_from_the_cli_never_rewrites_its_file(
    editor: WebClient, engine: Engine, tmp_path: Path
) -> None:
    outside = tmp_path / "staff-share" / "songkran-web.yaml"  # not in the data folder
    outside.parent.mkdir()
    outside.write_text(CAMPAIGN, encoding="utf-8")
    with session_scope(engine) as session:
        apply_campaign(session=session, path=outside, actor="cli")
    edited = CAMPAIGN.replace("สุขสันต์วันสงกรานต์จาก", "แก้จากเว็บ: ")
    answer = editor.post("/campaigns/apply", {"yaml": edited})
    assert answer.status_code == 303, answer.text[:800]

    assert outside.read_text(encoding="utf-8") == CAMPAIGN  # untouched
    data = get_settings().data_dir.resolve()
    kept = data / "campaigns" / "songkran-web.yaml"
    assert kept.read_text(encoding="utf-8") == edited
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.source_text == edited
        assert campaign.source_path is not None
        assert Path(campaign.source_path).resolve().is_relative_to(data)


def test_a_web_edit_does_not_write_through_a_link_out_of_the_data_folder(
    editor: WebClient, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    folder = get_settings().data_dir / "campaigns"
    folder.mkdir(parents=True)
    (folder / "songkran-web.yaml").symlink_to(victim)
    answer = editor.post("/campaigns/apply", {"yaml": CAMPAIGN})
    assert answer.status_code == 303, answer.text[:800]
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not (folder / "songkran-web.yaml").is_symlink()
    assert (folder / "songkran-web.yaml").read_text(encoding="utf-8") == CAMPAIGN
