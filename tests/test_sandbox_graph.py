"""The Graph API sandbox speaks the protocol: raw HTTP for the wire format, and the SDK's own
objects (``Page``, ``PagePost``, its ``Cursor``) to prove the SDK is at home with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from facebook_business.adobjects.page import Page
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from channels.facebook import marker_tag, stamp_for
from channels.sandbox.graph import (
    CURRENT_POST_METRICS,
    DEPRECATED_POST_METRICS,
    GraphSandbox,
    error_fault,
    parse_fields,
)

PAGE, TOKEN = "2001", "EAApage2001"
OTHER, OTHER_TOKEN = "2002", "EAApage2002"
THAI = "ตลาดนัดชุมชนบ้านทุ่งคราม จังหวัดแพร่ ✨"


@pytest.fixture
def graph() -> Iterator[GraphSandbox]:
    with GraphSandbox(seed=3, page_call_limit=50) as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, TOKEN, "บ้านทุ่งคราม")
        sandbox.register_page(OTHER, OTHER_TOKEN)
        yield sandbox


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def api(graph: GraphSandbox) -> Iterator[FacebookAdsApi]:
    session = FacebookSession(access_token=TOKEN)
    session.GRAPH = graph.url
    yield FacebookAdsApi(session, api_version="v25.0")
    session.requests.close()


def url(graph: GraphSandbox, path: str) -> str:
    return f"{graph.url}/v25.0/{path}"


def post_feed(
    http: requests.Session, graph: GraphSandbox, message: str = THAI, **extra: Any
) -> Any:
    answer = http.post(
        url(graph, f"{PAGE}/feed"),
        params={"access_token": TOKEN},
        data={"message": message, **extra},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def error_of(answer: requests.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    return error


# -- tokens and errors --------------------------------------------------------------------------


def test_missing_wrong_and_expired_tokens(graph: GraphSandbox, http: requests.Session) -> None:
    missing = http.get(url(graph, PAGE))
    assert missing.status_code == 400 and error_of(missing)["code"] == 104
    wrong = http.get(url(graph, PAGE), params={"access_token": "EAAnope"})
    assert error_of(wrong)["code"] == 190 and error_of(wrong)["type"] == "OAuthException"
    graph.expire_token(PAGE)
    expired = http.get(url(graph, PAGE), params={"access_token": TOKEN})
    error = error_of(expired)
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert "Session has expired" in error["message"]


def test_another_pages_token_cannot_post_or_read(
    graph: GraphSandbox, http: requests.Session
) -> None:
    posted = http.post(
        url(graph, f"{PAGE}/feed"), params={"access_token": OTHER_TOKEN}, data={"message": "x"}
    )
    assert posted.status_code == 403 and error_of(posted)["code"] == 200
    own = post_feed(http, graph)
    read = http.get(url(graph, own["id"]), params={"access_token": OTHER_TOKEN})
    error = error_of(read)
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert graph.published(OTHER) == []


def test_unversioned_or_unknown_paths_are_refused(
    graph: GraphSandbox, http: requests.Session
) -> None:
    assert error_of(http.get(f"{graph.url}/{PAGE}", params={"access_token": TOKEN}))["code"] == 2500
    odd = http.delete(url(graph, f"{PAGE}/feed"), params={"access_token": TOKEN})
    assert error_of(odd)["type"] == "GraphMethodException"


def test_error_fault_answers_in_graphs_format(graph: GraphSandbox, http: requests.Session) -> None:
    graph.faults.add(error_fault(2, "(#2) Service temporarily unavailable", is_transient=True))
    answer = http.get(url(graph, PAGE), params={"access_token": TOKEN})
    assert answer.status_code == 503
    assert error_of(answer)["is_transient"] is True


def test_sdk_raises_its_own_error_from_a_sandbox_answer(
    graph: GraphSandbox, api: FacebookAdsApi
) -> None:
    graph.expire_token(PAGE)
    with pytest.raises(FacebookRequestError) as caught:
        api.call("GET", (PAGE,))
    assert caught.value.api_error_code() == 190 and caught.value.api_error_subcode() == 463


# -- publishing ---------------------------------------------------------------------------------


def test_feed_post_keeps_thai_and_reads_after_write(
    graph: GraphSandbox, http: requests.Session
) -> None:
    answer = post_feed(
        http, graph, THAI + stamp_for("m1"), link="https://example.org/แพร่", fields="id,message"
    )
    [stored] = graph.published(PAGE)
    assert answer == {"id": stored.id, "message": THAI + stamp_for("m1")}
    assert stored.id.startswith(f"{PAGE}_") and stored.link == "https://example.org/แพร่"
    assert stored.marker == marker_tag("m1")
    assert graph.count_by_marker() == {marker_tag("m1"): 1}


def test_feed_post_needs_text_or_a_valid_link(graph: GraphSandbox, http: requests.Session) -> None:
    empty = http.post(url(graph, f"{PAGE}/feed"), params={"access_token": TOKEN}, data={})
    assert error_of(empty)["code"] == 100
    bad = http.post(
        url(graph, f"{PAGE}/feed"), params={"access_token": TOKEN}, data={"link": "ftp://x"}
    )
    assert error_of(bad)["code"] == 100 and graph.published() == []


def test_photo_upload_is_stored_byte_for_byte(graph: GraphSandbox, http: requests.Session) -> None:
    image = b"\x89PNG\r\n\x1a\n" + b"\r\n--not-a-boundary\r\n" * 50 + bytes(range(256))
    answer = http.post(
        url(graph, f"{PAGE}/photos"),
        params={"access_token": TOKEN},
        data={"caption": THAI},
        files={"source": ("ภาพ.png", image, "image/png")},
    ).json()
    [stored] = graph.published()
    assert answer == {"id": stored.object_id, "post_id": stored.id}
    assert stored.kind == "photo" and stored.message == THAI
    assert stored.media_bytes == len(image) and stored.media_name == "source"
    missing = http.post(url(graph, f"{PAGE}/photos"), params={"access_token": TOKEN}, data={})
    assert error_of(missing)["code"] == 324


def test_video_upload_answers_the_video_id_and_names_its_post(
    graph: GraphSandbox, http: requests.Session
) -> None:
    answer = http.post(
        url(graph, f"{PAGE}/videos"),
        params={"access_token": TOKEN},
        data={"title": "ผ้าย้อมคราม", "description": THAI},
        files={"source": ("v.mp4", b"\x00" * 5000, "video/mp4")},
    ).json()
    [stored] = graph.published()
    assert answer == {"id": stored.object_id}
    video = http.get(
        url(graph, stored.object_id or ""),
        params={"access_token": TOKEN, "fields": "post_id,title,description"},
    ).json()
    assert video == {"post_id": stored.id, "title": "ผ้าย้อมคราม", "description": THAI}


def test_scheduled_posts_wait_in_their_own_list(
    graph: GraphSandbox, http: requests.Session
) -> None:
    when = int((graph.clock.now() + timedelta(hours=2)).timestamp())
    post_feed(http, graph, "later", published="false", scheduled_publish_time=str(when))
    params = {"access_token": TOKEN}
    assert http.get(url(graph, f"{PAGE}/published_posts"), params=params).json()["data"] == []
    [waiting] = http.get(url(graph, f"{PAGE}/scheduled_posts"), params=params).json()["data"]
    assert waiting["message"] == "later"
    too_soon = http.post(
        url(graph, f"{PAGE}/feed"),
        params=params,
        data={"message": "x", "published": "false", "scheduled_publish_time": str(when - 7000)},
    )
    assert "scheduled publish time is invalid" in error_of(too_soon)["message"]


def test_duplicates_are_refused_only_when_asked(http: requests.Session) -> None:
    with GraphSandbox(reject_duplicates=True) as strict:
        assert isinstance(strict, GraphSandbox)
        strict.register_page(PAGE, TOKEN)
        post_feed(http, strict, "same")
        again = http.post(
            url(strict, f"{PAGE}/feed"), params={"access_token": TOKEN}, data={"message": "same"}
        )
        assert error_of(again)["code"] == 506 and len(strict.published()) == 1


# -- reading ------------------------------------------------------------------------------------


def test_published_posts_page_with_a_full_next_url(
    graph: GraphSandbox, http: requests.Session
) -> None:
    for n in range(30):
        post_feed(http, graph, f"{THAI} #{n}")
        graph.clock.advance(timedelta(seconds=1))
    first = http.get(url(graph, f"{PAGE}/published_posts"), params={"access_token": TOKEN}).json()
    assert len(first["data"]) == 25 and first["data"][0]["message"].endswith("#29")
    assert set(first["data"][0]) == {"id", "message", "created_time"}
    next_url = first["paging"]["next"]
    assert next_url.startswith(graph.url) and f"access_token={TOKEN}" in next_url
    second = http.get(next_url).json()  # a full URL, followed as is
    assert [p["message"][-3:] for p in second["data"]] == [" #4", " #3", " #2", " #1", " #0"]
    assert "next" not in second["paging"]


def test_published_posts_since_filters_by_creation_time(
    graph: GraphSandbox, http: requests.Session
) -> None:
    post_feed(http, graph, "old")
    graph.clock.advance(timedelta(hours=1))
    cut = int(graph.clock.now().timestamp())
    post_feed(http, graph, "new")
    data = http.get(
        url(graph, f"{PAGE}/published_posts"), params={"access_token": TOKEN, "since": cut}
    ).json()["data"]
    assert [p["message"] for p in data] == ["new"]


def test_sdk_cursor_walks_every_page(graph: GraphSandbox, api: FacebookAdsApi) -> None:
    for n in range(7):
        api.call("POST", (PAGE, "feed"), params={"message": f"{THAI} {n}"})
    posts = Page(PAGE, api=api).get_published_posts(fields=["message"], params={"limit": 3})
    assert sorted(p["message"][-1] for p in posts) == [str(n) for n in range(7)]


def test_field_expansion_gives_counts_that_grow(
    graph: GraphSandbox, http: requests.Session
) -> None:
    post_id = post_feed(http, graph)["id"]
    fields = "shares,reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)"
    fresh = http.get(url(graph, post_id), params={"access_token": TOKEN, "fields": fields}).json()
    assert "shares" not in fresh  # nobody has shared it yet: Graph leaves the field out
    assert fresh["reactions"] == {
        "data": [],
        "summary": {"total_count": 0, "viewer_reaction": "NONE"},
    }
    graph.clock.advance(timedelta(days=1))
    later = http.get(url(graph, post_id), params={"access_token": TOKEN, "fields": fields}).json()
    assert later["shares"]["count"] > 0
    assert later["reactions"]["summary"]["total_count"] > 0
    assert later["comments"]["summary"]["total_count"] > 0


def test_unknown_field_is_refused(graph: GraphSandbox, http: requests.Session) -> None:
    post_id = post_feed(http, graph)["id"]
    answer = http.get(url(graph, post_id), params={"access_token": TOKEN, "fields": "likes_x"})
    assert "nonexisting field (likes_x)" in error_of(answer)["message"]


def test_parse_fields_reads_modifiers_at_top_level() -> None:
    specs = parse_fields("id,reactions.summary(total_count).limit(0),insights.metric(a,b)")
    assert [s.name for s in specs] == ["id", "reactions", "insights"]
    assert specs[1].modifiers == {"summary": "total_count", "limit": "0"}
    assert specs[2].modifiers == {"metric": "a,b"}


def test_multi_id_lookup(graph: GraphSandbox, http: requests.Session) -> None:
    ids = [post_feed(http, graph, f"m{n}")["id"] for n in range(3)]
    params = {"access_token": TOKEN, "ids": ",".join(ids), "fields": "id,message"}
    answer = http.get(f"{graph.url}/v25.0/", params=params).json()
    assert answer == {i: {"id": i, "message": f"m{n}"} for n, i in enumerate(ids)}
    params["ids"] = f"{ids[0]},{PAGE}_404,{PAGE}_405"
    missing = http.get(f"{graph.url}/v25.0/", params=params)
    assert missing.status_code == 404
    error = error_of(missing)
    assert error["code"] == 803 and error["message"].endswith(f"{PAGE}_404,{PAGE}_405")
    params["ids"] = ",".join([ids[0]] * 51)
    assert error_of(http.get(f"{graph.url}/v25.0/", params=params))["code"] == 100


def test_insights_current_metric(graph: GraphSandbox, http: requests.Session) -> None:
    post_id = post_feed(http, graph)["id"]
    graph.clock.advance(timedelta(hours=6))
    answer = http.get(
        url(graph, f"{post_id}/insights"),
        params={"access_token": TOKEN, "metric": "post_total_media_view_unique"},
    ).json()
    [metric] = answer["data"]
    assert metric["name"] == "post_total_media_view_unique" and metric["period"] == "lifetime"
    assert metric["id"] == f"{post_id}/insights/post_total_media_view_unique/lifetime"
    assert metric["values"][0]["value"] > 0


def test_sdk_sends_metric_lists_as_json_and_gets_insights(
    graph: GraphSandbox, api: FacebookAdsApi
) -> None:
    post_id = api.call("POST", (PAGE, "feed"), params={"message": THAI}).json()["id"]
    # The SDK JSON-encodes a list parameter: metric=["a","b"].
    answer = api.call("GET", (post_id, "insights"), params={"metric": list(CURRENT_POST_METRICS)})
    assert sorted(i["name"] for i in answer.json()["data"]) == sorted(CURRENT_POST_METRICS)


@pytest.mark.parametrize("deprecated", sorted(DEPRECATED_POST_METRICS))
def test_a_deprecated_metric_fails_the_whole_request(
    graph: GraphSandbox, http: requests.Session, deprecated: str
) -> None:
    post_id = post_feed(http, graph)["id"]
    answer = http.get(
        url(graph, f"{post_id}/insights"),
        params={"access_token": TOKEN, "metric": f"post_total_media_view_unique,{deprecated}"},
    )
    error = error_of(answer)
    assert error["code"] == 100 and "valid insights metric" in error["message"]


def test_insights_without_a_metric(graph: GraphSandbox, http: requests.Session) -> None:
    post_id = post_feed(http, graph)["id"]
    answer = http.get(url(graph, f"{post_id}/insights"), params={"access_token": TOKEN})
    error = error_of(answer)
    assert (error["code"], error["error_subcode"]) == (3001, 1504028)


# -- usage --------------------------------------------------------------------------------------


def usage_of(answer: requests.Response) -> dict[str, Any]:
    entries = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    [entry] = entries[PAGE]
    assert entry["type"] == "pages"
    assert json.loads(answer.headers["X-Page-Usage"])["call_count"] == entry["call_count"]
    assert "call_count" in json.loads(answer.headers["X-App-Usage"])
    return dict(entry)


def test_usage_grows_per_page_and_throttles_at_the_limit(
    graph: GraphSandbox, http: requests.Session
) -> None:
    params = {"access_token": TOKEN}
    seen = [usage_of(http.get(url(graph, PAGE), params=params))["call_count"] for _ in range(5)]
    assert seen == [2, 4, 6, 8, 10]  # 50 calls allowed
    other = http.get(url(graph, OTHER), params={"access_token": OTHER_TOKEN})
    assert json.loads(other.headers["X-Business-Use-Case-Usage"])[OTHER][0]["call_count"] == 2
    for _ in range(45):
        assert http.get(url(graph, PAGE), params=params).status_code == 200
    refused = http.get(url(graph, PAGE), params=params)
    assert error_of(refused)["code"] == 80001
    usage = usage_of(refused)
    assert usage["call_count"] == 100 and usage["estimated_time_to_regain_access"] == 60
    graph.clock.advance(timedelta(hours=1, seconds=1))
    assert http.get(url(graph, PAGE), params=params).status_code == 200


def test_app_secret_proof_is_checked(http: requests.Session) -> None:
    with GraphSandbox(app_secret="shh") as strict:
        assert isinstance(strict, GraphSandbox)
        strict.register_page(PAGE, TOKEN)
        bare = http.get(url(strict, PAGE), params={"access_token": TOKEN})
        assert "appsecret_proof" in error_of(bare)["message"]
        session = FacebookSession(access_token=TOKEN, app_secret="shh")
        session.GRAPH = strict.url
        assert FacebookAdsApi(session).call("GET", (PAGE,)).json()["id"] == PAGE
        session.requests.close()


# -- control over HTTP --------------------------------------------------------------------------


def test_control_endpoints_for_other_processes(graph: GraphSandbox, http: requests.Session) -> None:
    registered = http.post(f"{graph.url}/_sandbox/pages", json={"page_id": "3003", "token": "t3"})
    assert registered.json() == {"ok": True}
    http.post(url(graph, "3003/feed"), params={"access_token": "t3"}, data={"message": THAI})
    [published] = http.get(f"{graph.url}/_sandbox/published").json()
    assert published["page_id"] == "3003" and published["message"] == THAI
    state = http.get(f"{graph.url}/_sandbox/state").json()
    assert state["publications"] == 1 and "3003" in state["pages"]
