"""All four sandboxes together, as the demo and `marketing sandbox` run them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from channels.sandbox.base import SandboxClock
from channels.sandbox.graph import GraphSandbox
from channels.sandbox.line import LineSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.youtube import YouTubeSandbox


@dataclass(frozen=True)
class SandboxAccount:
    """An account the sandboxes should know: its channel, id, and the token it acts with."""

    kind: str
    external_id: str
    token: str
    name: str | None = None


def sandbox_token(secret_name: str) -> str:
    """The token the sandboxes issue for the account whose secret is ``secret_name``."""
    return f"sandbox-{secret_name.lower().replace('_', '-')}"


class SandboxSuite:
    """A Graph API, a YouTube Data API, an SMTP and a LINE Messaging API sandbox sharing one
    clock."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        ports: tuple[int, int, int] = (0, 0, 0),
        seed: int = 2564,
        daily_uploads: int = 1000,
        line_port: int = 0,
    ) -> None:
        self.clock = SandboxClock()
        self.graph = GraphSandbox(
            host=host,
            port=ports[0],
            seed=seed,
            clock=self.clock,
            page_call_limit=100_000,
            app_call_limit=1_000_000,
        )
        self.youtube = YouTubeSandbox(
            host=host,
            port=ports[1],
            seed=seed,
            clock=self.clock,
            quota_limits={"videos.insert": daily_uploads},
        )
        self.smtp = SmtpSandbox(host=host, port=ports[2], clock=self.clock)
        self.line = LineSandbox(host=host, port=line_port, seed=seed, clock=self.clock)

    def start(self) -> SandboxSuite:
        self.graph.start()
        self.youtube.start()
        self.smtp.start()
        self.line.start()
        return self

    def stop(self) -> None:
        self.graph.stop()
        self.youtube.stop()
        self.smtp.stop()
        self.line.stop()

    def __enter__(self) -> SandboxSuite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register(self, accounts: Iterable[SandboxAccount]) -> None:
        """Make each Facebook Page, YouTube channel and LINE Official Account exist with its
        token."""
        for account in accounts:
            if account.kind == "facebook":
                self.graph.register_page(account.external_id, account.token, account.name)
            elif account.kind == "youtube":
                self.youtube.register_channel(
                    account.external_id, account.token, title=account.name
                )
            elif account.kind == "line":
                self.line.register_channel(
                    account.token,
                    user_id=account.external_id if account.external_id.startswith("U") else None,
                    basic_id=account.external_id if account.external_id.startswith("@") else None,
                    display_name=account.name or account.external_id,
                    friends=50,
                )

    def advance(self, delta: timedelta) -> None:
        """Let ``delta`` pass for engagement on every sandbox."""
        self.clock.advance(delta)

    def settings_env(self) -> dict[str, str]:
        """The settings that point the service at these sandboxes."""
        return {
            "MARKETING_GRAPH_API_URL": self.graph.url,
            "MARKETING_YOUTUBE_ROOT_URL": self.youtube.url + "/",
            "MARKETING_SMTP_HOST": self.smtp.host,
            "MARKETING_SMTP_PORT": str(self.smtp.port),
            "MARKETING_SMTP_SECURITY": "none",
            "MARKETING_LINE_API_URL": self.line.url,
        }

    def state(self) -> dict[str, Any]:
        return {
            "graph": self.graph.state(),
            "youtube": self.youtube.state(),
            "smtp": self.smtp.state(),
            "line": self.line.state(),
        }
