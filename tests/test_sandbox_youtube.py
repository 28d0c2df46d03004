"""YouTubeSandbox on the wire: the resumable upload protocol, list calls, quota, errors in
Google's format, faults and the stored uploads -- spoken to with plain http.client, so these
tests check the server itself, not what the client library happens to send."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from channels.quota import UNITS, UPLOADS, next_reset
from channels.sandbox.base import Fault, SandboxClock
from channels.sandbox.youtube import YouTubeSandbox, error_fault, google_error
from channels.youtube import marker_tag
from tests.support.markers import youtube_uploads_for

CHANNEL = "UCsample02phraebanthungk"
TOKEN = "sandbox-token-phrae"
OTHER = "UCsample03lampangbandind"
OTHER_TOKEN = "sandbox-token-lampang"
KIB256 = 256 * 1024

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def sandbox() -> Iterator[YouTubeSandbox]:
    server = YouTubeSandbox(seed=3)
    server.start()
    try:
        server.register_channel(CHANNEL, TOKEN, title="ชุมชนหม้อห้อมบ้านทุ่งคราม")
        server.register_channel(OTHER, OTHER_TOKEN)
        yield server
    finally:
        server.stop()


def call(
    sandbox: YouTubeSandbox,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api(sandbox: YouTubeSandbox, resource: str, token: str | None = TOKEN, **params: Any) -> Answer:
    headers = auth(token) if token else {}
    return call(sandbox, "GET", f"/youtube/v3/{resource}?{urlencode(params)}", headers=headers)


def video_resource(title: str = "หม้อห้อมบ้านทุ่งคราม", **status: Any) -> dict[str, Any]:
    return {
        "snippet": {
            "title": title,
            "description": "ผ้าหม้อห้อมย้อมคราม เมืองแพร่",
            "tags": ["หม้อห้อม", marker_tag("post-phrae-1")],
            "categoryId": "19",
        },
        "status": {"privacyStatus": "public", **status},
    }


def start_upload(
    sandbox: YouTubeSandbox,
    total: int,
    resource: dict[str, Any] | None = None,
    token: str = TOKEN,
) -> Answer:
    body = json.dumps(resource or video_resource(), ensure_ascii=False).encode("utf-8")
    return call(
        sandbox,
        "POST",
        "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status&alt=json",
        body,
        {
            **auth(token),
            "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Type": "video/mp4",
            "X-Upload-Content-Length": str(total),
        },
    )


def session_path(answer: Answer) -> str:
    status, headers, _ = answer
    assert status == 200, answer
    location = urlsplit(headers["location"])
    return f"{location.path}?{location.query}"


def put(sandbox: YouTubeSandbox, path: str, data: bytes, start: int, total: int) -> Answer:
    content_range = f"bytes {start}-{start + len(data) - 1}/{total}"
    return call(sandbox, "PUT", path, data, {"Content-Range": content_range})


def ask_progress(sandbox: YouTubeSandbox, path: str, total: int) -> Answer:
    return call(sandbox, "PUT", path, b"", {"Content-Range": f"bytes */{total}"})


def error_of(answer: Answer) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(answer[2])["error"]
    assert set(error) >= {"code", "message", "errors"}
    assert set(error["errors"][0]) >= {"reason", "domain", "message"}
    assert error["code"] == answer[0]
    return error


FILE = bytes(range(256)) * 2_000  # 512,000 bytes: one full 256 KiB chunk, then the rest


# --- the resumable upload protocol ---------------------------------------------------------


def test_resumable_upload_step_by_step(sandbox: YouTubeSandbox) -> None:
    answer = start_upload(sandbox, len(FILE))
    assert answer[2] == b""
    location = answer[1]["location"]
    assert location.startswith(f"{sandbox.url}/upload/youtube/v3/videos?")
    path = session_path(answer)

    status, headers, _ = ask_progress(sandbox, path, len(FILE))
    assert status == 308 and "range" not in headers  # nothing arrived yet

    status, headers, _ = put(sandbox, path, FILE[:KIB256], 0, len(FILE))
    assert (status, headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")
    status, headers, _ = ask_progress(sandbox, path, len(FILE))
    assert (status, headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")

    status, headers, body = put(sandbox, path, FILE[KIB256:], KIB256, len(FILE))
    assert status == 201
    assert headers["content-type"] == "application/json; charset=UTF-8"
    video = json.loads(body.decode("utf-8"))
    assert video["kind"] == "youtube#video" and len(video["id"]) == 11
    assert video["snippet"]["title"] == "หม้อห้อมบ้านทุ่งคราม"
    assert video["snippet"]["channelId"] == CHANNEL
    assert video["status"]["privacyStatus"] == "public"
    assert "statistics" not in video  # only the parts asked for

    # Asking again after the end gives the same video, and makes no second one.
    status, _, again = ask_progress(sandbox, path, len(FILE))
    assert status == 200 and json.loads(again)["id"] == video["id"]
    [upload] = youtube_uploads_for(sandbox, "post-phrae-1")
    assert bytes(upload.data) == FILE
    assert upload.video_id == video["id"]
    assert upload.content_type == "video/mp4"


def test_a_chunk_sent_again_is_not_stored_twice(sandbox: YouTubeSandbox) -> None:
    path = session_path(start_upload(sandbox, len(FILE)))
    put(sandbox, path, FILE[:KIB256], 0, len(FILE))
    status, headers, _ = put(sandbox, path, FILE[:KIB256], 0, len(FILE))  # answer was lost
    assert (status, headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")
    status, _, _ = put(sandbox, path, FILE[KIB256 - 10 :], KIB256 - 10, len(FILE))  # overlaps
    assert status == 201
    assert bytes(sandbox.completed_uploads()[0].data) == FILE


def test_a_connection_cut_mid_chunk_keeps_what_arrived(sandbox: YouTubeSandbox) -> None:
    path = session_path(start_upload(sandbox, len(FILE)))
    sandbox.faults.add(Fault("drop_during", method="PUT", path="/upload/", after_bytes=1000))
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        put(sandbox, path, FILE[:KIB256], 0, len(FILE))
    status, headers, _ = ask_progress(sandbox, path, len(FILE))
    assert (status, headers["range"]) == (308, "bytes=0-999")
    assert put(sandbox, path, FILE[1000:], 1000, len(FILE))[0] == 201
    assert bytes(sandbox.completed_uploads()[0].data) == FILE


def test_a_lost_final_answer_still_made_the_video(sandbox: YouTubeSandbox) -> None:
    path = session_path(start_upload(sandbox, len(FILE)))
    sandbox.faults.add(Fault("drop_after", method="PUT", path="/upload/"))
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        put(sandbox, path, FILE, 0, len(FILE))
    assert len(youtube_uploads_for(sandbox, "post-phrae-1")) == 1
    status, _, body = ask_progress(sandbox, path, len(FILE))
    assert status == 200 and json.loads(body)["id"] == sandbox.completed_uploads()[0].video_id


def test_an_injected_5xx_on_a_chunk_stores_nothing(sandbox: YouTubeSandbox) -> None:
    path = session_path(start_upload(sandbox, len(FILE)))
    sandbox.faults.add(error_fault(503, "backendError", method="PUT", path="/upload/"))
    answer = put(sandbox, path, FILE[:KIB256], 0, len(FILE))
    assert answer[0] == 503 and error_of(answer)["errors"][0]["reason"] == "backendError"
    assert "range" not in ask_progress(sandbox, path, len(FILE))[1]


def test_an_unknown_upload_session_is_404(sandbox: YouTubeSandbox) -> None:
    answer = ask_progress(sandbox, "/upload/youtube/v3/videos?upload_id=nope", 10)
    assert answer[0] == 404 and error_of(answer)["errors"][0]["reason"] == "notFound"


def test_two_uploads_with_one_marker_are_both_kept(sandbox: YouTubeSandbox) -> None:
    for _ in range(2):
        path = session_path(start_upload(sandbox, 10))
        assert put(sandbox, path, b"0123456789", 0, 10)[0] == 201
    assert len(youtube_uploads_for(sandbox, "post-phrae-1")) == 2  # a duplicate a test can see
    assert youtube_uploads_for(sandbox, "another-post") == []


# --- metadata rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (video_resource(title="ก" * 101), "invalidTitle"),
        (video_resource(title="a <b> title"), "invalidTitle"),
        (video_resource(title=""), "invalidTitle"),
        (
            {"snippet": {"title": "t", "description": "ผ" * 1667}, "status": {}},
            "invalidDescription",
        ),
        ({"snippet": {"title": "t", "tags": ["x" * 501]}, "status": {}}, "invalidTags"),
        ({"snippet": {"title": "t", "categoryId": "travel"}, "status": {}}, "invalidCategoryId"),
        (video_resource(publishAt="2099-01-01T00:00:00Z"), "invalidPublishAt"),  # not private
        (
            {"snippet": {"title": "t"}, "status": {"privacyStatus": "private", "publishAt": "x"}},
            "invalidPublishAt",
        ),
    ],
)
def test_metadata_that_breaks_youtubes_rules_is_refused(
    sandbox: YouTubeSandbox, resource: dict[str, Any], reason: str
) -> None:
    answer = start_upload(sandbox, 10, resource)
    assert answer[0] == 400
    assert error_of(answer)["errors"][0]["reason"] == reason
    assert sandbox.uploads == {}


def test_a_title_of_100_thai_code_points_is_accepted(sandbox: YouTubeSandbox) -> None:
    assert start_upload(sandbox, 10, video_resource(title="ก" * 100))[0] == 200
    # 1,666 Thai characters are 4,998 bytes: under the 5,000-byte description limit
    resource = {"snippet": {"title": "t", "description": "ผ" * 1666}, "status": {}}
    assert start_upload(sandbox, 10, resource)[0] == 200


def test_the_channels_upload_limit_is_upload_limit_exceeded(sandbox: YouTubeSandbox) -> None:
    sandbox.register_channel(CHANNEL, TOKEN, upload_limit=1)
    path = session_path(start_upload(sandbox, 10))
    put(sandbox, path, b"0123456789", 0, 10)
    answer = start_upload(sandbox, 10)
    assert answer[0] == 400
    error = error_of(answer)["errors"][0]
    assert (error["reason"], error["domain"]) == ("uploadLimitExceeded", "youtube.video")
    sandbox.clock.advance(timedelta(hours=24, seconds=1))
    assert start_upload(sandbox, 10)[0] == 200


# --- authentication ------------------------------------------------------------------------


def test_tokens_are_checked_and_refused_in_googles_format(sandbox: YouTubeSandbox) -> None:
    missing = api(sandbox, "channels", token=None, part="id", mine="true")
    assert missing[0] == 401 and error_of(missing)["errors"][0]["reason"] == "required"
    wrong = api(sandbox, "channels", token="not-a-token", part="id", mine="true")
    assert wrong[0] == 401 and error_of(wrong)["errors"][0]["reason"] == "authError"
    assert wrong[1]["www-authenticate"].startswith("Bearer")
    assert "not-a-token" not in wrong[2].decode()

    assert api(sandbox, "channels", part="id", mine="true")[0] == 200
    sandbox.expire_token(TOKEN)
    expired = api(sandbox, "channels", part="id", mine="true")
    assert expired[0] == 401 and error_of(expired)["status"] == "UNAUTHENTICATED"
    assert start_upload(sandbox, 10)[0] == 401
    assert sandbox.quota_used(UNITS) == 1  # refused requests are not charged


# --- list calls ----------------------------------------------------------------------------


def upload_video(sandbox: YouTubeSandbox, token: str = TOKEN, **status: Any) -> str:
    path = session_path(start_upload(sandbox, 10, video_resource(**status), token=token))
    video: dict[str, Any] = json.loads(put(sandbox, path, b"0123456789", 0, 10)[2])
    return str(video["id"])


def test_statistics_are_strings_that_grow_deterministically() -> None:
    clock = SandboxClock()
    counts: list[list[dict[str, str]]] = []
    for _ in range(2):  # two sandboxes, same seed, same clock: the same numbers
        with YouTubeSandbox(seed=11, clock=clock) as server:
            assert isinstance(server, YouTubeSandbox)
            server.register_channel(CHANNEL, TOKEN)
            video_id = upload_video(server)
            seen = []
            for _ in range(3):
                answer = api(server, "videos", part="statistics", id=video_id)
                [item] = json.loads(answer[2])["items"]
                seen.append(item["statistics"])
                clock.advance(timedelta(hours=12))
            counts.append(seen)
    assert counts[0] == counts[1]
    first = counts[0]
    assert all(isinstance(v, str) and v.isdigit() for s in first for v in s.values())
    views = [int(s["viewCount"]) for s in first]
    assert views[0] <= views[1] <= views[2] and views[2] > 0
    assert set(first[0]) == {"viewCount", "likeCount", "favoriteCount", "commentCount"}


def test_videos_list_takes_at_most_50_ids_and_hides_others_private_videos(
    sandbox: YouTubeSandbox,
) -> None:
    public = upload_video(sandbox)
    private = upload_video(sandbox, privacyStatus="private")
    ids = ",".join([public, private, "unknown0001"])
    mine = json.loads(api(sandbox, "videos", part="snippet,statistics", id=ids)[2])
    assert [v["id"] for v in mine["items"]] == [public, private]
    assert mine["pageInfo"] == {"totalResults": 2, "resultsPerPage": 2}
    theirs = json.loads(api(sandbox, "videos", token=OTHER_TOKEN, part="snippet", id=ids)[2])
    assert [v["id"] for v in theirs["items"]] == [public]

    too_many = api(sandbox, "videos", part="statistics", id=",".join(["x"] * 51))
    assert too_many[0] == 400
    assert api(sandbox, "videos", id=public)[0] == 400  # part is required
    assert sandbox.calls_to("videos.list") == 4


def test_channels_and_the_uploads_playlist_page_newest_first(sandbox: YouTubeSandbox) -> None:
    [channel] = json.loads(api(sandbox, "channels", part="contentDetails", mine="true")[2])["items"]
    assert channel["id"] == CHANNEL
    uploads = channel["contentDetails"]["relatedPlaylists"]["uploads"]
    assert uploads == "UU" + CHANNEL[2:]

    made = [upload_video(sandbox) for _ in range(7)]
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"part": "snippet", "playlistId": uploads, "maxResults": 3}
        if token:
            params["pageToken"] = token
        page = json.loads(api(sandbox, "playlistItems", **params)[2])
        assert page["pageInfo"]["totalResults"] == 7
        pages.append(page["items"])
        token = page.get("nextPageToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [item["snippet"]["resourceId"]["videoId"] for p in pages for item in p]
    assert listed == made[::-1]
    first = pages[0][0]["snippet"]
    assert first["position"] == 0 and first["title"] == "หม้อห้อมบ้านทุ่งคราม"
    assert "tags" not in first  # playlist items carry no tags

    default = json.loads(api(sandbox, "playlistItems", part="id", playlistId=uploads)[2])
    assert len(default["items"]) == 5  # maxResults defaults to 5
    bad = api(sandbox, "playlistItems", part="id", playlistId=uploads, pageToken="zzz")
    assert bad[0] == 400 and error_of(bad)["errors"][0]["reason"] == "invalidPageToken"
    gone = api(sandbox, "playlistItems", part="id", playlistId="UUnothing")
    assert gone[0] == 404 and error_of(gone)["errors"][0]["reason"] == "playlistNotFound"


# --- quota ---------------------------------------------------------------------------------


def test_quota_is_charged_and_refused_with_quota_exceeded() -> None:
    clock = SandboxClock()
    with YouTubeSandbox(clock=clock, quota_limits={UNITS: 3, UPLOADS: 1}) as server:
        assert isinstance(server, YouTubeSandbox)
        server.register_channel(CHANNEL, TOKEN)
        for _ in range(3):
            assert api(server, "channels", part="id", mine="true")[0] == 200
        refused = api(server, "channels", part="id", mine="true")
        assert refused[0] == 403
        error = error_of(refused)["errors"][0]
        assert (error["reason"], error["domain"]) == ("quotaExceeded", "youtube.quota")
        assert server.quota_used(UNITS) == 3

        assert start_upload(server, 10)[0] == 200
        second = start_upload(server, 10)
        assert second[0] == 403 and error_of(second)["errors"][0]["reason"] == "quotaExceeded"
        assert server.quota_used(UPLOADS) == 1

        # The next Pacific day starts afresh.
        now = clock.now()
        clock.advance(next_reset(now) - now + timedelta(seconds=1))
        assert api(server, "channels", part="id", mine="true")[0] == 200
        assert start_upload(server, 10)[0] == 200


# --- faults, control and state -------------------------------------------------------------


def test_error_fault_bodies_follow_googles_format() -> None:
    fault = error_fault(403, "rateLimitExceeded", "Rate Limit Exceeded", method="GET")
    assert fault.status == 403 and fault.method == "GET"
    assert fault.body == google_error(403, "rateLimitExceeded", "Rate Limit Exceeded")
    assert fault.body["error"]["status"] == "PERMISSION_DENIED"


def test_control_endpoints_for_other_processes(sandbox: YouTubeSandbox) -> None:
    body = json.dumps({"channel_id": "UCnew000000000000000000", "token": "t-new"}).encode()
    status, _, answer = call(sandbox, "POST", "/_sandbox/channels", body)
    assert status == 200 and json.loads(answer)["uploads"] == "UUnew000000000000000000"
    assert api(sandbox, "channels", token="t-new", part="id", mine="true")[0] == 200
    call(sandbox, "POST", "/_sandbox/expire", json.dumps({"token": "t-new"}).encode())
    assert api(sandbox, "channels", token="t-new", part="id", mine="true")[0] == 401

    upload_video(sandbox)
    state = json.loads(call(sandbox, "GET", "/_sandbox/state")[2])
    assert state["videos"] == 1 and state["uploads_started"] == 1
    assert state["quota"][UPLOADS] == 1
    assert "UCnew000000000000000000" in state["channels"]
    assert datetime.fromisoformat(state["now"]) <= datetime.now(UTC) + timedelta(seconds=5)


def test_unknown_paths_are_404_in_googles_format(sandbox: YouTubeSandbox) -> None:
    answer = call(sandbox, "GET", "/youtube/v3/search?part=snippet", headers=auth())
    assert answer[0] == 404 and error_of(answer)["errors"][0]["reason"] == "notFound"
    assert call(sandbox, "DELETE", "/nothing")[0] == 404
