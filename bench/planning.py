"""Campaign planning: validating and planning a campaign for 1,000 communities x 3 channels x
52 weekly occurrences, beside rendering the same templates in a bare Jinja2 loop."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import yaml
from sqlalchemy import Engine, insert, select

from bench.base import Benchmark
from bench.results import Figure
from campaigns.formatting import thai_date, tracked_url
from campaigns.lifecycle import plan_file
from campaigns.templates import SUBSCRIBER, UNSUBSCRIBE_URL
from marketing import migrate
from marketing.db import get_engine, session_factory
from marketing.media import install_media
from marketing.models import ChannelAccount, ChannelKind, Community, Subscriber

EXAMPLES = Path(__file__).resolve().parents[1] / "campaigns" / "examples"
ZONE = ZoneInfo("Asia/Bangkok")
FIRST_MONDAY = date(2027, 1, 4)
PLANNED_AT = datetime(2026, 12, 1, tzinfo=UTC)


def campaign_file(folder: Path, weeks: int) -> Path:
    """The shipped Songkran example (every channel, Thai templates, media, an email template
    file) made weekly for ``weeks`` Mondays."""
    data = yaml.safe_load((EXAMPLES / "songkran-2027.yaml").read_text(encoding="utf-8"))
    data["slug"] = "bench-weekly"
    data["window"] = {
        "start": FIRST_MONDAY.isoformat(),
        "end": (FIRST_MONDAY + timedelta(weeks=weeks - 1)).isoformat(),
    }
    data["schedule"] = {"every": "weekly on monday 10:00"}
    install_media(EXAMPLES / "media", root=folder / "media", folder="examples")
    shutil.copytree(EXAMPLES / "templates", folder / "templates", dirs_exist_ok=True)
    path = folder / "bench-weekly.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class BareTemplates:
    """The campaign's templates compiled once by a plain ``jinja2.Environment``."""

    def __init__(self, path: Path) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        channels = data["channels"]
        text = jinja2.Environment(autoescape=False)
        html = jinja2.Environment(autoescape=True)
        for env in (text, html):
            env.globals.update(thai_date=self.thai_date, tracked=self.tracked)
        self.templates: dict[str, list[jinja2.Template]] = {
            "facebook": [text.from_string(channels["facebook"][k]) for k in ("message", "link")],
            "youtube": [
                *(text.from_string(channels["youtube"][k]) for k in ("title", "description")),
                *(text.from_string(tag) for tag in channels["youtube"]["tags"]),
            ],
            "email": [
                text.from_string(channels["email"]["subject"]),
                text.from_string(channels["email"]["preheader"]),
                html.from_string(
                    (path.parent / channels["email"]["html"]["file"]).read_text(encoding="utf-8")
                ),
            ],
        }

    @staticmethod
    def thai_date(value: Any, style: str = "long", time: bool = False) -> str:
        return thai_date(value, style, be=True, time=time, zone=ZONE)

    @staticmethod
    @jinja2.pass_context
    def tracked(ctx: jinja2.runtime.Context, url: Any) -> str:
        return tracked_url(
            str(url), channel=ctx["channel"], campaign="bench-weekly", community=ctx["slug"]
        )

    def render_all(self, communities: list[dict[str, Any]], occurrences: list[datetime]) -> int:
        """Render every post's templates; return how many posts."""
        posts = 0
        for community in communities:
            for at in occurrences:
                for channel, templates in self.templates.items():
                    context = {
                        "community": community,
                        "slug": community["slug"],
                        "occurrence": {"at": at},
                        "channel": channel,
                        "subscriber": SUBSCRIBER,
                        "unsubscribe_url": UNSUBSCRIBE_URL,
                    }
                    for template in templates:
                        template.render(context)
                    posts += 1
        return posts


class CampaignPlanning(Benchmark):
    name = "planning"
    findings = """\
No target. Not changed here: planning was optimised when it was written (templates rendered
once per distinct value of what they read, cached Thai dates and tracked links). What a
planned post costs beyond rendering: the sandboxed environment, the channel limits checked
on every post, schedule expansion and reading the audiences."""
    note = """\
**Campaign planning.** The shipped `songkran-2027.yaml` example (Facebook with a photo,
YouTube with a video and scheduled publication, email with an HTML template file; Thai
templates using `thai_date` and `tracked`) made weekly for a year: 1,000 communities x 3
channels x 52 Mondays = 156,000 posts (quick: 20 communities x 5 weeks = 300). Timed:
`plan_file` -- reading and validating the file, reading communities, accounts and audiences
from the database (SQLite), expanding the schedule, rendering every post in the sandboxed
environment and checking it against each channel's limits. Not timed: storing the posts
(`apply`). Baseline, in the same run: the same templates compiled once by a plain
`jinja2.Environment` and rendered for every post in a bare loop with the same values."""

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.communities, self.weeks = (20, 5) if quick else (1000, 52)
        self.rate = Figure(
            "planning",
            f"{self.communities * self.weeks * 3:,} posts validated + planned",
            "posts/s",
            higher_is_better=True,
            baseline_name="bare Jinja2 loop",
        )
        self.dir = Path(tempfile.mkdtemp(prefix="mkt-bench-plan-"))
        self.engine: Engine | None = None
        self.path = self.dir / "bench-weekly.yaml"
        self.views: list[dict[str, Any]] = []

    def figures(self) -> list[Figure]:
        return [self.rate]

    def setup(self) -> None:
        self.path = campaign_file(self.dir, self.weeks)
        self.engine = get_engine(f"sqlite:///{self.dir / 'plan.sqlite3'}")
        migrate.upgrade(self.engine)
        with session_factory(self.engine)() as session, session.begin():
            session.execute(
                insert(Community),
                [
                    {
                        "slug": f"community-{i:04d}",
                        "name_th": f"ชุมชนบ้านทดสอบที่ {i}",
                        "name_en": f"Community {i}",
                        "province": "น่าน",
                        "description": "ผ้าทอลายน้ำไหลจากกี่พื้นเมือง และเดินป่าชมนาขั้นบันได",
                    }
                    for i in range(self.communities)
                ],
            )
            rows = session.execute(
                select(Community.id, Community.slug, Community.name_th, Community.province)
            ).all()
            session.execute(
                insert(ChannelAccount),
                [
                    {
                        "slug": f"{kind.value}-{slug}",
                        "kind": kind,
                        "external_id": f"{kind.value}-{slug}",
                        "display_name": name,
                        "secret_name": f"TOKEN_{i}",
                        "community_id": community_id,
                    }
                    for i, (community_id, slug, name, _p) in enumerate(rows)
                    for kind in (ChannelKind.FACEBOOK, ChannelKind.YOUTUBE)
                ]
                + [
                    {
                        "slug": "glo-email",
                        "kind": ChannelKind.EMAIL,
                        "external_id": "community@example.org",
                        "display_name": "สลากสร้างสรรค์เพื่อชุมชน",
                    }
                ],
            )
            session.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"member@{slug}.example.org",
                        "name": "คุณสมาชิก",
                        "community_id": community_id,
                        "consent_source": "แบบฟอร์มออนไลน์",
                        "consent_at": datetime(2026, 1, 1, tzinfo=UTC),
                    }
                    for community_id, slug, _n, _p in rows
                ],
            )
        self.views = [
            {
                "slug": slug,
                "name_th": name,
                "province": province,
                "description": "ผ้าทอลายน้ำไหลจากกี่พื้นเมือง และเดินป่าชมนาขั้นบันได",
            }
            for _id, slug, name, province in rows
        ]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_once(self, run: int) -> None:
        assert self.engine is not None
        started = time.perf_counter()
        with session_factory(self.engine)() as session:
            plan = plan_file(
                session=session, path=self.path, now=PLANNED_AT, media_root=self.dir / "media"
            )
        ours = time.perf_counter() - started
        expected = self.communities * self.weeks * 3
        if len(plan.posts) != expected:
            raise RuntimeError(f"planned {len(plan.posts)} posts, expected {expected}")

        occurrences = [
            datetime.combine(FIRST_MONDAY + timedelta(weeks=w), datetime.min.time(), ZONE)
            + timedelta(hours=10)
            for w in range(self.weeks)
        ]
        bare = BareTemplates(self.path)
        started = time.perf_counter()
        rendered = bare.render_all(self.views, occurrences)
        baseline = time.perf_counter() - started
        self.rate.add(expected / ours, rendered / baseline)
