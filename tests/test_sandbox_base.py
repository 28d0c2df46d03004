"""What every sandbox shares: the clock, deterministic engagement, fault plans, and the HTTP
server with fault injection around a handler (a tiny echo handler here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from channels.sandbox.base import (
    Fault,
    FaultPlan,
    SandboxClock,
    SandboxHandler,
    SandboxServer,
    engagement,
)
from tests.support.services import wait_until


class EchoHandler(SandboxHandler):
    """Answers with what it received and counts what it handled."""

    def route(self) -> None:
        body = self._read_body()
        with self.sandbox.lock:
            self.sandbox.handled.append((self.command, self.path, body))  # type: ignore[attr-defined]
        self.send_json(200, {"path": self.path, "body": body.decode("utf-8")})


class EchoServer(SandboxServer):
    handler_class = EchoHandler

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.handled: list[tuple[str, str, bytes]] = []


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer(seed=1) as server:
        assert isinstance(server, EchoServer)
        yield server


# -- clock and engagement -----------------------------------------------------------------------


def test_clock_moves_forward_only() -> None:
    clock = SandboxClock()
    before = clock.now()
    clock.advance(timedelta(days=3))
    assert clock.now() - before >= timedelta(days=3)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))


def test_engagement_is_deterministic_and_grows() -> None:
    ages = [timedelta(hours=h) for h in (0, 1, 6, 24, 72, 24 * 30)]
    series = [engagement(42, "1_2", age) for age in ages]
    assert series[0] == {"views": 0, "reactions": 0, "comments": 0, "shares": 0, "clicks": 0}
    for key in series[0]:
        values = [point[key] for point in series]
        assert values == sorted(values)
    assert series[-1]["views"] > series[1]["views"] > 0
    assert engagement(42, "1_2", ages[3]) == series[3]  # same seed, id, age: same numbers
    assert engagement(43, "1_2", ages[3]) != series[3]
    assert engagement(42, "1_3", ages[3]) != series[3]


# -- fault plans --------------------------------------------------------------------------------


def test_fault_plan_matches_method_and_path_and_counts_down() -> None:
    plan = FaultPlan()
    plan.add(Fault("error", method="POST", path=r"/feed$", times=2))
    assert plan.take("GET", "/v1/1/feed") is None
    assert plan.take("POST", "/v1/1/feed?x=1") is None  # the regex is searched in the path
    assert plan.take("POST", "/v1/1/feed") is not None
    assert plan.take("POST", "/v1/1/feed") is not None
    assert plan.take("POST", "/v1/1/feed") is None
    assert [action for _, _, action in plan.injected] == ["error", "error"]


def test_fault_without_a_count_lasts_until_cleared() -> None:
    plan = FaultPlan()
    plan.add(Fault("delay", times=None))
    assert all(plan.take("GET", "/x") for _ in range(5))
    plan.clear()
    assert plan.take("GET", "/x") is None


def test_probabilistic_faults_repeat_with_the_seed() -> None:
    def draws(seed: int) -> list[bool]:
        plan = FaultPlan(seed)
        plan.add(Fault("error", times=None, probability=0.3))
        return [plan.take("GET", "/x") is not None for _ in range(200)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert 20 < sum(draws(5)) < 100


# -- the server ---------------------------------------------------------------------------------


def test_keep_alive_requests_each_see_their_own_body(echo: EchoServer) -> None:
    with requests.Session() as http:
        first = http.post(f"{echo.url}/a", data="สวัสดี".encode()).json()
        second = http.post(f"{echo.url}/b", data=b"").json()
        third = http.post(f"{echo.url}/c", data=b"xyz").json()
    assert (first["body"], second["body"], third["body"]) == ("สวัสดี", "", "xyz")


def test_error_fault_answers_without_handling(echo: EchoServer) -> None:
    echo.faults.add(Fault("error", status=503, body={"e": 1}, headers={"Retry-After": "7"}))
    answer = requests.post(f"{echo.url}/x", data=b"ignored")
    assert (answer.status_code, answer.json(), answer.headers["Retry-After"]) == (
        503,
        {"e": 1},
        "7",
    )
    assert echo.handled == []
    assert requests.get(f"{echo.url}/y").status_code == 200  # used up: normal again


def test_drop_before_handles_nothing(echo: EchoServer) -> None:
    echo.faults.add(Fault("drop_before"))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{echo.url}/x", data=b"payload")
    assert echo.handled == []


def test_drop_after_handles_then_says_nothing(echo: EchoServer) -> None:
    echo.faults.add(Fault("drop_after"))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{echo.url}/x", data=b"payload")
    assert echo.handled == [("POST", "/x", b"payload")]


def test_drop_during_keeps_only_the_first_bytes(echo: EchoServer) -> None:
    echo.faults.add(Fault("drop_during", after_bytes=4))
    with pytest.raises(requests.ConnectionError):
        requests.put(f"{echo.url}/upload", data=b"0123456789" * 1000)
    wait_until(lambda: len(echo.handled) == 1, timeout=10, what="the handler")
    assert echo.handled == [("PUT", "/upload", b"0123")]


def test_delay_answers_normally_afterwards(echo: EchoServer) -> None:
    echo.faults.add(Fault("delay", seconds=0.2))
    assert requests.get(f"{echo.url}/slow").json()["path"] == "/slow"
    assert echo.faults.injected == [("GET", "/slow", "delay")]


def test_hold_does_the_work_then_answers_only_when_released(echo: EchoServer) -> None:
    held = echo.faults.add(Fault("hold", method="POST", path=r"^/publish"))
    answers: list[int] = []
    client = threading.Thread(
        target=lambda: answers.append(
            requests.post(f"{echo.url}/publish", data=b"post", timeout=30).status_code
        )
    )
    client.start()
    assert held.wait_held(timeout=10), "the sandbox never held the request"
    # The work is done while the answer is held: the request is in flight, on purpose.
    assert echo.handled == [("POST", "/publish", b"post")]
    assert answers == [], f"answered while held: {answers}"
    # Other requests are not held behind it.
    assert requests.get(f"{echo.url}/other", timeout=10).status_code == 200
    held.release()
    client.join(10)
    assert answers == [200], f"expected the held answer (200) after release, got {answers}"
    assert echo.faults.injected == [("POST", "/publish", "hold")]


def test_a_held_answer_whose_client_is_gone_goes_nowhere(echo: EchoServer) -> None:
    import socket

    held = echo.faults.add(Fault("hold"))
    with socket.create_connection((echo.host, echo.port)) as raw:
        raw.sendall(b"POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
        assert held.wait_held(timeout=10), "the sandbox never held the request"
    held.release()  # the client closed its socket: the answer is lost, the server lives on
    assert echo.handled == [("POST", "/gone", b"body")]
    assert requests.get(f"{echo.url}/after", timeout=10).status_code == 200


def test_stop_releases_held_answers() -> None:
    server = EchoServer().start()
    held = server.faults.add(Fault("hold"))
    errors: list[str] = []

    def call() -> None:
        try:
            requests.get(f"{server.url}/x", timeout=30)
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)

    client = threading.Thread(target=call)
    client.start()
    assert held.wait_held(timeout=10), "the sandbox never held the request"
    server.stop()
    client.join(30)
    assert not client.is_alive(), "the held request still waits after stop()"


def test_controls_over_http(echo: EchoServer) -> None:
    before = echo.clock.now()
    moved = requests.post(f"{echo.url}/_sandbox/advance", data=json.dumps({"seconds": 7200}))
    assert moved.status_code == 200 and echo.clock.now() - before >= timedelta(hours=2)
    spec = {"action": "error", "status": 418, "body": {"tea": True}}
    assert requests.post(f"{echo.url}/_sandbox/faults", data=json.dumps(spec)).json() == {
        "ok": True
    }
    assert requests.get(f"{echo.url}/x").status_code == 418
    state = requests.get(f"{echo.url}/_sandbox/state").json()
    assert state["faults_injected"] == 1 and "now" in state
    assert requests.get(f"{echo.url}/_sandbox/nothing").status_code == 404


def test_concurrent_requests_are_served(echo: EchoServer) -> None:
    results: list[int] = []

    def call(n: int) -> None:
        results.append(requests.get(f"{echo.url}/{n}").status_code)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [200] * 8 and len(echo.handled) == 8


def test_stop_closes_the_port() -> None:
    server = EchoServer().start()
    url = server.url
    assert requests.get(f"{url}/x").status_code == 200
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/x", timeout=2)
