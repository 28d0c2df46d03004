"""``marketing worker`` and ``marketing status``: run the pipeline on one machine, and see
whether it is moving."""

from __future__ import annotations

import click
from rich.text import Text
from sqlalchemy import func, select

from marketing.cli import display
from marketing.cli.base import console, friendly_errors, needs_schema
from marketing.cli.display import N_
from marketing.cli.posts import local
from marketing.db import session_scope, utcnow
from marketing.models import Campaign, CampaignStatus, Post, PostState
from marketing.publishing import PROBLEM_STATES
from marketing.settings import WORKER_SECRETS, check_development_secrets, get_settings

# The pipeline's components (marketing.health.COMPONENTS) as msgids of the ``cli`` catalog.
COMPONENTS = {
    "dispatcher": N_("dispatcher"),
    "recovery": N_("recovery"),
    "worker": N_("worker"),
    "metrics": N_("metrics collector"),
}


@click.command()
@click.option("--concurrency", "-c", default=2, show_default=True, help="Worker processes.")
@click.option("--no-beat", is_flag=True, help="Do not run the scheduler in this process.")
@click.option("--loglevel", default="INFO", show_default=True)
@friendly_errors
def worker(concurrency: int, no_beat: bool, loglevel: str) -> None:
    """Run a Celery worker and the scheduler (beat) in one process: the whole pipeline on one
    machine. In production run `celery -A tasks worker` and `celery -A tasks beat` instead."""
    from channels.registry import queues
    from tasks import app

    settings = get_settings()
    # The worker signs the links of campaign e-mail (and refuses again at its own start-up,
    # for `celery -A tasks worker`); said here first, without a traceback.
    check_development_secrets(settings, uses=WORKER_SECRETS)
    settings.ensure_data_dir()
    argv = ["worker", "-c", str(concurrency), "--loglevel", loglevel, "-Q", ",".join(queues())]
    if not no_beat:
        argv += ["-B", "-s", str(settings.data_dir / "celerybeat-schedule")]
    app.worker_main(argv)


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each queue (None: the broker could not be asked)."""
    from channels.registry import queues
    from tasks import app

    names = queues()
    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            for name in names:
                try:
                    depths[name] = int(channel.queue_declare(name, passive=True).message_count)
                except Exception:
                    depths[name] = 0  # never declared: nothing waits there
    except Exception:
        return dict.fromkeys(names)
    return depths


@click.command()
@friendly_errors
@needs_schema
def status() -> None:
    """Show whether publishing is moving: posts by state, what is due, problems, the last
    sign of life of each component, and queue depths."""
    from marketing.health import due_posts, pipeline_health  # here: keep start-up light

    now = utcnow()
    with session_scope() as session:
        counts = dict(session.execute(select(Post.state, func.count()).group_by(Post.state)).all())
        due = due_posts(session=session, at=now)
        oldest_due = session.scalar(
            select(func.min(Post.next_try_at))
            .join(Campaign, Campaign.id == Post.campaign_id)
            .where(Post.state == PostState.SCHEDULED, Campaign.status == CampaignStatus.APPROVED)
        )
        components = pipeline_health(session=session, now=now, settings=get_settings())
        dispatcher_seen = components[0].seen
    d = display.current()
    rows: list[list[str | Text]] = [
        [
            display.state_word(state.value),
            Text(
                f"{counts.get(state, 0):,}",
                style="red" if state in PROBLEM_STATES and counts.get(state) else "",
            ),
        ]
        for state in PostState
    ]
    console.print(
        display.listing(
            console,
            title=d._("Posts"),
            headings=[d._("state"), d._("posts")],
            rows=rows,
            numeric=(1,),
        )
    )
    line = d._("Due now and not yet queued: {count}").format(count=due or 0)
    if oldest_due:
        line += " " + d._("(next due {when})").format(when=local(oldest_due))
    console.print(line, highlight=False)
    problems = sum(counts.get(s, 0) for s in PROBLEM_STATES)
    if problems:
        need = d._("{count} post(s) need a person:").format(count=problems)
        console.print(f"[red]{need}[/] `marketing posts problems`", highlight=False)
    for c in components:
        # "not moving" only when work has waited for several intervals and nothing moved.
        mark = ""
        if c.state == "not_moving":
            waiting = d._("({count} waiting)").format(count=c.due)
            mark = "[red]" + d._("NOT MOVING") + f"[/] {waiting} "
        if c.seen is None:
            when = d._("not running") if c.state == "idle" else d._("never seen")
        else:
            when = d._("last seen {when} ({seconds} s ago)").format(
                when=local(c.seen), seconds=int((now - c.seen).total_seconds())
            )
        idle = d._(", nothing waiting for it") if c.state == "idle" else ""
        name = d._(COMPONENTS.get(c.name, c.name))
        console.print(f"{name}: {mark}{when}{idle}", highlight=False)
    if due and dispatcher_seen is None:
        console.print(
            "[red]"
            + d._("Posts are due but no dispatcher has run:")
            + "[/] "
            + d._(
                "start `marketing worker` (or `celery -A tasks worker` and `celery -A tasks beat`)."
            ),
            highlight=False,
        )
    depths = queue_depths()
    console.print(
        d._("Queues:")
        + " "
        + ", ".join(f"{name} {'?' if depth is None else depth}" for name, depth in depths.items()),
        highlight=False,
    )
