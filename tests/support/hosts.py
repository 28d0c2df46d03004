"""Simulated hosts on one machine, for tests that need the database, the workers and the
scheduler on different machines: Linux network namespaces on a private /24, joined by a
bridge (a "switch") that lives in a namespace of its own.

- Each :class:`Host` is a namespace with one cable (a veth pair) to the switch and nothing
  else: only its own loopback and its address on the private network, no default route.  A
  process on a worker host that tried 127.0.0.1 would find its own empty loopback, not the
  machine's PostgreSQL or Redis -- so a setting that assumes localhost fails by construction.
- The test process itself (the machine's own namespace) joins the switch as ``.1``: the
  channel sandboxes listen there, the "internet" the workers publish to.
- :meth:`Network.cut` pulls a host's cable out of the switch (its end goes down) and
  :meth:`Network.mend` plugs it back: established connections hang, as on a real outage.
- :class:`HostPostgres` and :class:`HostRedis` are private servers (a fresh ``initdb`` in a
  temporary folder; a ``redis-server`` without persistence) listening on a host's address.
  The machine's shared PostgreSQL and Redis are never touched.

Every name starts with :data:`PREFIX` and carries the creating process id, so parallel runs
never clash and :func:`remove_stale` can delete what a crashed run left behind.
:meth:`Network.close` kills every process in the namespaces and deletes them; the cables go
with them.  Needs root (``ip netns``), ``initdb``/``postgres`` and ``redis-server``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib

from channels.sandbox.graph import GraphHandler, GraphSandbox, Publication
from tests.support.services import ROOT, wait_until

PREFIX = "mkth"  # namespaces: mkth-<pid>-<tag>-<role>; links in the machine's namespace: mkh<tag>…
LINK_PREFIX = "mkh"


def unavailable() -> str | None:
    """Why simulated hosts cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); CI runs as root"
    for tool in ("ip", "redis-server", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if postgres_bin("initdb") is None:
        return "PostgreSQL's initdb is not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to run a private PostgreSQL as"
    return None


def postgres_bin(name: str) -> str | None:
    """The PostgreSQL server program ``name`` (initdb, postgres), on PATH or in the
    Debian layout."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def _kill_inside(netns: str) -> None:
    """SIGKILL every process in ``netns`` and wait until they are gone."""
    for _ in range(50):
        pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_stale() -> list[str]:
    """Delete namespaces (and stray links) of ours whose creating process is gone; return
    their names."""
    removed = []
    live_tags = set()
    for netns in _namespaces():
        found = re.fullmatch(rf"{PREFIX}-(\d+)-([0-9a-f]+)-\w+", netns)
        if not found:
            continue
        if _alive(int(found.group(1))) and int(found.group(1)) != os.getpid():
            live_tags.add(found.group(2))
            continue
        _kill_inside(netns)
        _ip("netns", "del", netns, check=False)
        removed.append(netns)
    for line in _ip("-o", "link", "show").stdout.splitlines():
        found = re.match(rf"\d+: ({LINK_PREFIX}([0-9a-f]{{4}})\w*)[@:]", line)
        if found and found.group(2) not in live_tags:
            _ip("link", "del", found.group(1), check=False)
            removed.append(found.group(1))
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0-10.254.255.0 that no address on this machine is in."""
    used = _ip("-o", "-4", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if f"10.{net.network_address.packed[1]}.{net.network_address.packed[2]}." not in used:
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the simulated hosts")


@dataclass
class Host:
    """One simulated machine: a network namespace with one address."""

    role: str
    netns: str
    address: str
    cable: str  # the cable's end on the switch
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command on this host: ``(*host.prefix, "prog", ...)``."""
        return ("ip", "netns", "exec", self.netns)

    def start(
        self, command: Iterable[str], *, env: dict[str, str] | None = None, log: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` on this host in a process group of its own, output to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [*self.prefix, *command],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def run(self, *command: str) -> str:
        """Run ``command`` on this host and return its output."""
        return subprocess.run(
            [*self.prefix, *command], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def peers(self) -> set[str]:
        """Addresses this host has TCP connections to right now (``ss``)."""
        peers = set()
        for line in self.run("ss", "-Htn").splitlines():
            fields = line.split()
            if len(fields) >= 5:
                peers.add(fields[4].rsplit(":", 1)[0].strip("[]"))
        return peers


class Network:
    """A private /24 of simulated hosts (see the module docstring); a context manager."""

    def __init__(self) -> None:
        self.tag = f"{random.getrandbits(16):04x}"
        self.subnet = _free_subnet()
        addresses = self.subnet.hosts()
        self.controller = str(next(addresses))  # .1: this process, where the sandboxes listen
        self._addresses = addresses
        self.switch = self._netns_name("switch")
        self.hosts: list[Host] = []
        self._cables: list[str] = []

    def _netns_name(self, role: str) -> str:
        return f"{PREFIX}-{os.getpid()}-{self.tag}-{role}"

    def __enter__(self) -> Network:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Network:
        """Make the switch, and plug this process into it as ``.1``."""
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip("-n", self.switch, "link", "set", "lo", "up")
        mine = f"{LINK_PREFIX}{self.tag}c"
        self._plug(mine, "c0")
        _ip("addr", "add", f"{self.controller}/{self.subnet.prefixlen}", "dev", mine)
        _ip("link", "set", mine, "up")
        return self

    def _plug(self, near: str, switch_end: str) -> None:
        """A cable from ``near`` (in this namespace, for now) to port ``switch_end``."""
        far = f"{near}s"
        _ip("link", "add", near, "type", "veth", "peer", "name", far)
        self._cables.append(near)
        _ip("link", "set", far, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", far, "name", switch_end)
        _ip("-n", self.switch, "link", "set", switch_end, "master", "br0")
        _ip("-n", self.switch, "link", "set", switch_end, "up")

    def add_host(self, role: str) -> Host:
        """A new host named ``role`` with the next address, plugged into the switch."""
        index = len(self.hosts) + 1
        host = Host(
            role=role,
            netns=self._netns_name(role),
            address=str(next(self._addresses)),
            cable=f"h{index}",
        )
        _ip("netns", "add", host.netns)
        self.hosts.append(host)
        near = f"{LINK_PREFIX}{self.tag}{index}"
        self._plug(near, host.cable)
        _ip("link", "set", near, "netns", host.netns)
        _ip("-n", host.netns, "link", "set", near, "name", "eth0")
        _ip(
            "-n",
            host.netns,
            "addr",
            "add",
            f"{host.address}/{self.subnet.prefixlen}",
            "dev",
            "eth0",
        )
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        """Pull ``host``'s cable out of the switch: nothing reaches it or leaves it."""
        _ip("-n", self.switch, "link", "set", host.cable, "down")

    def mend(self, host: Host) -> None:
        """Plug ``host``'s cable back in."""
        _ip("-n", self.switch, "link", "set", host.cable, "up")

    def close(self) -> None:
        """Kill every process on every host, delete the namespaces (and so the cables)."""
        for host in self.hosts:
            for proc in host.processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if host.netns in _namespaces():
                _kill_inside(host.netns)
                _ip("netns", "del", host.netns, check=False)
            for proc in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        if self.switch in _namespaces():
            _ip("netns", "del", self.switch, check=False)
        for cable in self._cables:  # gone with their peers; a half-made one may remain
            if _ip("link", "show", cable, check=False).returncode == 0:
                _ip("link", "del", cable, check=False)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network that still exist (should be none after
        :meth:`close`)."""
        names = [n for n in _namespaces() if n.startswith(f"{PREFIX}-{os.getpid()}-{self.tag}-")]
        links = _ip("-o", "link", "show").stdout
        return names + [c for c in self._cables if f": {c}@" in links or f": {c}:" in links]


def _as_postgres() -> tuple[str, ...]:
    return ("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups")


class HostPostgres:
    """A private PostgreSQL cluster (fresh ``initdb`` in ``folder``) on ``host``'s address."""

    def __init__(self, host: Host, folder: Path, *, subnet: ipaddress.IPv4Network) -> None:
        self.host = host
        self.folder = folder
        self.data = folder / "pgdata"
        self.subnet = subnet
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.host.address}:5432/marketing"

    def start(self) -> HostPostgres:
        user = pwd.getpwnam("postgres")
        self.folder.chmod(0o755)  # the postgres user must reach its data folder
        self.data.mkdir(mode=0o700)
        os.chown(self.data, user.pw_uid, user.pw_gid)
        initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
        assert initdb and postgres
        subprocess.run(
            [*_as_postgres(), initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            + ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        self.proc = self.host.start(
            [*_as_postgres(), postgres, "-D", str(self.data), "-p", "5432"]
            + ["-c", f"listen_addresses={self.host.address}", "-k", str(self.data)]
            + ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=100"],
            log=self.folder / "postgres.log",
        )
        admin = f"postgresql://postgres@{self.host.address}:5432/postgres"
        wait_until(lambda: self._up(admin), timeout=60, interval=0.2, what="PostgreSQL on db")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE marketing ENCODING 'UTF8' TEMPLATE template0")
        return self

    def _up(self, url: str) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.folder / "postgres.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited:\n{log[-2000:]}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


class HostRedis:
    """A private ``redis-server`` on ``host``'s address, no persistence (like production)."""

    def __init__(self, host: Host, folder: Path) -> None:
        self.host = host
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []  # time.monotonic() of each restart

    @property
    def url(self) -> str:
        return f"redis://{self.host.address}:6379/0"

    def start(self) -> HostRedis:
        self.proc = self.host.start(
            ["redis-server", "--bind", self.host.address, "--port", "6379"]
            + ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
            + ["--dir", str(self.folder), "--loglevel", "warning"],
            log=self.folder / "redis.log",
        )
        client = redis_lib.Redis.from_url(self.url, socket_timeout=2)
        try:
            wait_until(lambda: self._up(client), timeout=20, what="redis-server on db")
        finally:
            client.close()
        return self

    def _up(self, client: redis_lib.Redis) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("redis-server exited: " + (self.folder / "redis.log").read_text())
        try:
            return bool(client.ping())
        except redis_lib.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, pause: float = 0.5) -> None:
        """Kill the server (every message and bucket is lost) and start it again."""
        self.stop()
        self.restarts.append(time.monotonic())
        time.sleep(pause)  # a moment of outage, as a real restart has
        self.start()


# -- who published when --------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One publication the Graph sandbox created: on which Page, when, from which address,
    and whether a ``hold`` fault holds its answer."""

    page_id: str
    marker: str | None
    at: float  # time.monotonic()
    client: str
    held: bool


class _RecordingHandler(GraphHandler):
    sandbox: RecordingGraph

    def route(self) -> None:
        self.sandbox.caller.address = self.client_address[0]
        self.sandbox.caller.held = self._hold is not None
        super().route()


class RecordingGraph(GraphSandbox):
    """The Graph sandbox, also keeping :class:`Call` for every publication it creates (one
    server thread per connection, so the calling address is kept per thread)."""

    handler_class = _RecordingHandler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.caller = threading.local()
        self.calls: list[Call] = []

    def held_call(self) -> Call:
        """The latest publication whose answer a ``hold`` fault held."""
        with self.lock:
            return next(c for c in reversed(self.calls) if c.held)

    def _new_post(self, page_id: str, kind: str, message: str, **values: Any) -> Publication:
        post = super()._new_post(page_id, kind, message, **values)
        with self.lock:
            call = Call(
                page_id,
                post.marker,
                time.monotonic(),
                getattr(self.caller, "address", ""),
                getattr(self.caller, "held", False),
            )
            self.calls.append(call)
        return post


def bucket_excess(times: list[float], *, rate: float, capacity: float) -> float:
    """How far ``times`` (sorted) go beyond a token bucket of ``capacity`` refilled at
    ``rate`` a second: the largest ``n - capacity - rate * span`` over every run of ``n``
    consecutive calls lasting ``span`` seconds (<= 0: the bucket's bound held)."""
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - capacity - rate * (times[j] - times[i]))
    return worst


def most_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) that fall within any ``window`` seconds."""
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best
