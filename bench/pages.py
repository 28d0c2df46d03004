"""Pages under load: 20 signed-in staff walking every page of the web app at programme scale
(1,000 communities x 365 days x every channel), the static favicon timed beside them."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text

from bench.base import Benchmark
from bench.reports import ReportsAtScale
from bench.results import Figure, Target
from bench.services import ROOT, PostgresDatabase
from marketing import migrate
from marketing.db import get_engine, session_factory, session_scope
from marketing.models import Campaign, CampaignStatus, ImportJob, ImportState, Role
from marketing.performance import summarise_all
from marketing.web.staff import create_user

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "bench-password-not-secret"
FAVICON = "/static/favicon.svg"
# As deploy/Dockerfile runs the web app on a 2-core host.
WORKERS = 2


def pages(community: str, campaign: str) -> dict[str, str]:
    """Every page a member of staff reads, by the name the table shows."""
    return {
        "dashboard": "/",
        "campaigns": "/campaigns",
        "posts": "/posts",
        "calendar": "/calendar",
        "communities": "/communities",
        "community": f"/communities/{community}",
        "reports overview": "/reports/overview",
        "reports community": f"/reports/community/{community}",
        "reports campaign": f"/reports/campaign/{campaign}",
        "problems": "/problems",
        "audit": "/admin/audit",
        "search": "/search?q=community",
        "library": "/library",
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PagesUnderLoad(Benchmark):
    name = "pages"
    full_runs = 2
    findings = """\
*Before* (round one, one uvicorn process, load average 7-12): p95 over every page 7.63 s,
the overview 14.8 s; the process was saturated, the overview costing about 0.6 s of CPU a
request. *Changed*: (1) the overview is kept by each web process until the next rollup
(`marketing/web/report_cache.py`): every `summarise` raises a counter in its own
transaction (table `report_generation`, migration 0016), and the key is that counter, a
digest of the communities' slugs, names and provinces, the period, sort, format, language,
era and zone -- the database's state, so each of several workers notices a rollup committed
anywhere at its next request (tests/test_report_cache.py: a rollup by another process
changes what two apps show, new snapshots not yet rolled up do not, a renamed or added
community shows at once; one build per key). (2) One community's page and report take every
community's ranks from the same kept state instead of ranking all 1,000 in SQL each time
(56 ms of PostgreSQL with two parallel workers). (3) The communities list shows 50 a page by
province, with a Thai pager, counting subscribers and accounts of the shown communities only
(tests/test_communities_pages.py: every community on exactly one page, in order).
(4) `marketing serve --workers N` gives a worker 60 s to answer uvicorn's health check: at
uvicorn's 5 s a busy worker on this machine was killed mid-request and the walk failed with
"Server disconnected". (5) The web import (already a job in its own bounded process, the
upload streamed to a file) runs that process at nice 10; saving notification settings and
using a reconnect link moved their database work off the event loop (every page the walk
reads was already a sync route in the threadpool).

*CPU per request* (one user, in process, `time.process_time`, minimum of 5, 1,000
communities; before -> after, ms): reports overview 214 -> 5.2 (660 -> 6 ms wall), communities list
39.3 -> 7.4 (367 -> 21 KB of HTML), one community's page 21.4 -> 21.3 (180 -> 84 ms wall) and
its report 16.7 -> 14.9 (137 -> 31 ms wall: the ranks' 56 ms of PostgreSQL gone); every
other page 4-11 ms, unchanged. *After*, `python -m bench --only pages --runs 2` of
2026-12-01 16:56-17:08 UTC with load average 10-25 on 2 cores (five other engineers'
benchmarks running): p95 over every page 0.775 and 3.12 s (favicon 0.261 and 0.605 s), the
overview 0.48 and 1.26 s -- a tenth to two fifths of before, under two to three times the
load; the 300 ms target is still missed on this machine, where the static favicon alone
took 0.26-0.61 s at p95. While one user imported 1,000,000 subscribers (228 and 279 s under
the walk): p95 0.944 and 3.15 s against 0.775 and 3.12 s without, ratio 0.82 and 0.99 (the
target, at most twice, met). *Found*: run 2's communities list took 3.2 s at p50 (0.12 s in
run 1) because run 1 had imported 1,000,000 subscribers into a community on its first page,
and the list counts each shown community's active subscribers on every view; the dashboard's
p95 (1.6-2.9 s) is the first page after 20 simultaneous sign-ins (argon2, in the threadpool).
*Next* (not done): keep subscriber counts per community (counting 1,000,000 active rows
took 93 ms on an idle, vacuumed table here; a partial index on `subscriber (community_id)
WHERE unsubscribed_at IS NULL` only halves that, 44 ms); key the kept overview on the
rollups of the period shown only, since every e-mail open rolls up and so rebuilds it during
a send. *Then* (perf-pages2): the year's report (`/reports/year/N`) and the API's
`/api/v1/reports/overview` are kept the same way -- the API's JSON bytes per period and sort,
the year's figures per year and its table's HTML per language (the page around it, with its
form and notices, rendered per request); an outcomes import that adds or replaces a month
raises the same counter (`store_outcomes`, the only writer of `community_outcome`), and the
page shows no click counts (tests/test_report_cache.py: the API answers exactly as the
uncached report, a rollup or a replaced month shows at once, an unchanged re-import and the
other era's address build nothing). CPU per request (one user, in process, minimum of 5 after
one warm-up, 1,000 communities x 365 days, load average 4.6-9.3; before -> after, ms): year
report 397 -> 9.9 (441 -> 19 ms wall, 731 KB), API overview of 28 days 322 -> 9.4 (507 -> 38
ms wall, 3.4 MB), of 365 days 378 -> 6.9 (990 -> 8 ms wall). Neither is in the walk."""
    note = """\
**Pages under load** (`bench/pages.py`, #19). 1,000 communities x 365 days x every channel
of performance records up to yesterday (quick: 20 x 30), loaded by `COPY` with their
summaries; the web app started as deploy/ starts it on a 2-core host (`marketing serve
--workers 2`, uvicorn) on PostgreSQL; 20 staff (quick: 4) sign in concurrently
(`httpx.AsyncClient`, the login form's CSRF token), walk every page once unmeasured (each
worker's first requests import modules and compile templates), then each walks every page --
dashboard, campaigns, posts, calendar, communities, one community, the reports overview, a
community's and a campaign's report, problems, audit, search, library -- 3 times (quick: 1),
each page followed by the static favicon (the baseline, same percentile, same load). Then
the same walk, round after round, while one more member of staff uploads 1,000,000
subscribers (quick: 20,000; new addresses each run) through the community's import form
and its job runs; only requests begun between the upload's start and the job's end count,
against the quiet walk's same percentile of the same run."""

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.communities, self.days = (20, 30) if quick else (1000, 365)
        self.users, self.rounds = (4, 1) if quick else (20, 3)
        self.import_rows = 20_000 if quick else 1_000_000
        self.imported = "community-0001"
        self.dir = Path(tempfile.mkdtemp(prefix="mkt-bench-pages-"))
        self.database: PostgresDatabase | None = None
        self.engine: Engine | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.community = "community-0000"
        self.campaign = "bench-campaign"
        self.by_key: dict[tuple[str, str], Figure] = {}
        for page in ["every page", *pages(self.community, self.campaign)]:
            for stat in ("p50", "p95", "max"):
                target = None
                if stat == "p95" and page == "every page":
                    target = Target("at_most", 0.3, "p95 <= 300 ms")
                elif stat == "max":
                    target = Target("at_most", 1.0, "<= 1 s")
                self.by_key[(page, stat)] = Figure(
                    "pages",
                    f"{stat}, {page}, {self.users} users",
                    "s",
                    higher_is_better=False,
                    baseline_name=f"favicon {stat}",
                    target=target,
                )

        loaded = f"{self.users} users while one imports {self.import_rows:,} subscribers"
        self.loaded = {
            stat: Figure(
                "pages",
                f"{stat}, every page, {loaded}",
                "s",
                higher_is_better=False,
                baseline_name=f"same {stat} without the import",
                target=Target("ratio_at_least", 0.5, "p95 <= 2x without")
                if stat == "p95"
                else None,
            )
            for stat in ("p50", "p95", "max")
        }
        self.import_time = Figure(
            "pages",
            f"import of {self.import_rows:,} subscribers through the web app, under the walk",
            "s",
            higher_is_better=False,
            baseline_name="PostgreSQL COPY of the same file, after the walk",
        )

    def figures(self) -> list[Figure]:
        return [*self.by_key.values(), *self.loaded.values(), self.import_time]

    def setup(self) -> None:
        self.database = PostgresDatabase(prefix="mkt_bench").create()
        self.engine = get_engine(self.database.url)
        migrate.upgrade(self.engine)
        loader = ReportsAtScale(quick=True)
        loader.communities, loader.days = self.communities, self.days
        loader.database = self.database
        # The pages show the last 28 days by the server's clock: the records end yesterday.
        loader.last_day = date.today() - timedelta(days=1)
        ids = loader.load_communities(self.engine)
        loader.copy_records(ids)
        with session_factory(self.engine)() as session, session.begin():
            summarise_all(session=session)
            session.add(
                Campaign(
                    slug=self.campaign,
                    name="แคมเปญทดสอบ",
                    source_text="-",
                    source_hash="-",
                    status=CampaignStatus.APPROVED,
                )
            )
        with session_scope(self.engine) as session:
            for user in range(self.users):
                create_user(
                    session=session, username=f"staff{user}", password=PASSWORD, role=Role.ADMIN
                )
            create_user(session=session, username="importer", password=PASSWORD, role=Role.EDITOR)
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        shutil.rmtree(loader.dir, ignore_errors=True)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
        env |= {"MARKETING_DATABASE_URL": self.database.url, "MARKETING_DATA_DIR": str(self.dir)}
        self.log = (self.dir / "serve.log").open("wb")
        self.server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("marketing")),
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(WORKERS),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=2):
                    break
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "serve.log").read_text()) from None
                time.sleep(0.2)
        # One unmeasured walk: each worker process imports its modules and compiles its
        # templates on its first requests, which is start-up, not load.
        asyncio.run(self.walk())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
        log = self.dir / "serve.log"
        if log.exists():  # a worker killed or restarted says why the walk failed
            for line in log.read_text(errors="replace").splitlines():
                if "Child process" in line or "Traceback" in line or "Error" in line:
                    print(f"  serve.log: {line[:300]}", flush=True)
        if self.engine is not None:
            self.engine.dispose()
        if self.database is not None:
            self.database.drop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_once(self, run: int) -> None:
        times, favicon = asyncio.run(self.walk())
        every = [t for page in times.values() for _began, t in page]
        quiet: dict[str, float] = {}
        for page, values in [
            ("every page", every),
            *((p, [t for _b, t in v]) for p, v in times.items()),
        ]:
            for stat, share in (("p50", 0.5), ("p95", 0.95), ("max", 1.0)):
                self.by_key[(page, stat)].add(percentile(values, share), percentile(favicon, share))
                if page == "every page":
                    quiet[stat] = percentile(values, share)
        # The same walk while one more member of staff imports a subscriber list through the
        # web app: only the requests that began while the import ran count.
        csv = self.dir / f"subscribers-{run}.csv"
        with csv.open("w", encoding="utf-8", newline="") as out:
            out.write("email,name,tags\n")
            for n in range(self.import_rows):
                out.write(
                    f"member{n}.run{run}@mail.example.org,สมาชิก {n},{'ผ้าทอ' if n % 3 else ''}\n"
                )
        importing = Importing(self, csv)
        importing.start()
        try:
            if not importing.running.wait(timeout=600):
                raise RuntimeError(f"the import did not start: {importing.error}")
            times, _favicon = asyncio.run(self.walk(until=importing.ended))
            importing.join(timeout=3600)
            copied = self.copy_seconds(csv)
        finally:
            importing.join(timeout=3600)
            csv.unlink(missing_ok=True)
        if importing.error is not None or importing.finished_at is None:
            raise RuntimeError(f"the import failed: {importing.error}")
        assert importing.started_at is not None
        during = [
            t
            for page in times.values()
            for began, t in page
            if importing.started_at <= began <= importing.finished_at
        ]
        for stat, share in (("p50", 0.5), ("p95", 0.95), ("max", 1.0)):
            self.loaded[stat].add(percentile(during, share), quiet[stat])
        self.import_time.add(importing.finished_at - importing.started_at, copied)
        print(
            f"  pages: {len(during)} requests during the import of {self.import_rows:,} rows "
            f"({importing.finished_at - importing.started_at:.1f} s)",
            flush=True,
        )

    def copy_seconds(self, csv: Path) -> float:
        """Seconds for PostgreSQL ``COPY`` of the same file into a scratch table and a commit:
        the floor for the import's time (no checks, no merge, nobody walking)."""
        assert self.engine is not None
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS import_floor "
                    "(email text, name text, tags text)"
                )
                started = time.perf_counter()
                with (
                    cursor.copy("COPY import_floor FROM STDIN (FORMAT csv, HEADER true)") as copy,
                    csv.open("rb") as source,
                ):
                    while block := source.read(1 << 20):
                        copy.write(block)
                raw.commit()
                seconds = time.perf_counter() - started
                cursor.execute("DROP TABLE import_floor")
                raw.commit()
            return seconds

    async def walk(
        self, until: threading.Event | None = None
    ) -> tuple[dict[str, list[tuple[float, float]]], list[float]]:
        """Every user walks every page ``self.rounds`` times, or, with ``until``, round after
        round until it is set; each page's (start, seconds) and the favicon's seconds."""
        import httpx2 as httpx

        walk = pages(self.community, self.campaign)
        times: dict[str, list[tuple[float, float]]] = {page: [] for page in walk}
        favicon: list[float] = []

        async def one(user: int) -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
                login = await client.get("/login")
                found = CSRF.search(login.text)
                assert found, "the login page has a CSRF token"
                answer = await client.post(
                    "/login",
                    data={
                        "username": f"staff{user}",
                        "password": PASSWORD,
                        "csrf_token": found[1],
                        "next": "/",
                    },
                )
                assert answer.status_code in (200, 303), answer.status_code
                done = 0
                while done < self.rounds if until is None else not until.is_set():
                    for page, path in walk.items():
                        began = time.perf_counter()
                        answer = await client.get(path)
                        times[page].append((began, time.perf_counter() - began))
                        assert answer.status_code == 200, (path, answer.status_code)
                        began = time.perf_counter()
                        answer = await client.get(FAVICON)
                        favicon.append(time.perf_counter() - began)
                        assert answer.status_code == 200, (FAVICON, answer.status_code)
                    done += 1

        await asyncio.gather(*(one(user) for user in range(self.users)))
        return times, favicon


class Importing(threading.Thread):
    """One member of staff uploading a subscriber list through the web app's form and
    waiting for its job to end; ``running`` is set once the job runs, ``ended`` once it has
    ended (times by ``time.perf_counter``, as the walk's)."""

    def __init__(self, bench: PagesUnderLoad, csv: Path) -> None:
        super().__init__(name="bench-import", daemon=True)
        self.bench, self.csv = bench, csv
        self.running, self.ended = threading.Event(), threading.Event()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        import httpx2 as httpx

        try:
            with httpx.Client(base_url=self.bench.url, timeout=600) as client:
                found = CSRF.search(client.get("/login").text)
                assert found
                answer = client.post(
                    "/login",
                    data={"username": "importer", "password": PASSWORD, "csrf_token": found[1]},
                )
                assert answer.status_code == 303, answer.status_code
                found = CSRF.search(client.get("/account").text)
                assert found
                # The walk starts with the upload: receiving the file is part of importing.
                self.started_at = time.perf_counter()
                self.running.set()
                with self.csv.open("rb") as file:
                    answer = client.post(
                        f"/communities/{self.bench.imported}/subscribers",
                        data={
                            "csrf_token": found[1],
                            "consent_source": "แบบฟอร์มสมัครรับข่าวสาร",
                            "consent_date": "2026-11-01",
                        },
                        files={"file": ("subscribers.csv", file, "text/csv")},
                    )
                assert answer.status_code == 303, (answer.status_code, answer.text[:300])
                key = answer.headers["location"].removeprefix("/imports/")
                self.finished_at = self._wait(key)
        except Exception as exc:  # noqa: BLE001 - reported by run_once
            self.error = repr(exc)
        finally:
            self.running.set()
            self.ended.set()

    def _wait(self, key: str) -> float:
        assert self.bench.engine is not None
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with self.bench.engine.connect() as conn:
                state = conn.scalar(select(ImportJob.state).where(ImportJob.key == key))
            if state in (ImportState.DONE, ImportState.FAILED):
                if state == ImportState.FAILED:
                    raise RuntimeError(f"import {key} failed")
                return time.perf_counter()
            time.sleep(0.25)
        raise TimeoutError(f"import {key} still running")
