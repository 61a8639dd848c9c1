"""Async tasks through the official `dashscope` SDK and the music family over plain HTTP.

The SDK is pointed at the gateway by its base URL only (`<gateway>/dashscope/v1`), as a client
would. Tasks advance in the emulator per status poll, so `wait()` finishes in a few seconds.
"""

import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.error
import urllib.request

import dashscope
import pytest
from dashscope import ImageSynthesis, VideoSynthesis


@pytest.fixture(autouse=True)
def _base(gateway):
    dashscope.base_http_api_url = gateway.base + "/dashscope/v1"
    yield


def test_video_async_call_fetch_wait(gateway):
    rsp = VideoSynthesis.async_call(
        model="wan2.2-t2v-plus", prompt="a cat runs on grass", duration=5, api_key=gateway.key
    )
    assert rsp.status_code == 200, rsp
    assert rsp.output.task_status == "PENDING"
    task_id = rsp.output.task_id
    assert task_id.startswith("task_")
    fetched = VideoSynthesis.fetch(rsp, api_key=gateway.key)
    assert fetched.status_code == 200
    assert fetched.output.task_id == task_id
    assert fetched.output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    done = VideoSynthesis.wait(rsp, api_key=gateway.key)
    assert done.status_code == 200
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.task_id == task_id
    assert done.output.video_url.startswith("https://")
    assert done.usage.duration == 5
    usage = gateway.admin("GET", f"/admin/v1/usage?request_id={task_id}")
    rows = usage["data"]
    assert len(rows) == 1 and rows[0]["cost_micros"] == 5000


def test_failed_task_reports_code_and_is_not_charged(gateway):
    rsp = VideoSynthesis.async_call(
        model="wan2.2-t2v-plus",
        prompt="x [emulate: fail=DataInspectionFailed]",
        api_key=gateway.key,
    )
    done = VideoSynthesis.wait(rsp, api_key=gateway.key)
    assert done.output.task_status == "FAILED"
    assert done.output.code == "DataInspectionFailed"
    rows = gateway.admin("GET", f"/admin/v1/usage?request_id={rsp.output.task_id}")["data"]
    assert rows[0]["cost_micros"] == 0


def test_image_synthesis(gateway):
    rsp = ImageSynthesis.async_call(model="wan2.2-t2i-flash", prompt="a red fox", n=2, api_key=gateway.key)
    assert rsp.status_code == 200
    done = ImageSynthesis.wait(rsp, api_key=gateway.key)
    assert done.output.task_status == "SUCCEEDED"
    assert len(done.output.results) == 2


def test_unknown_and_foreign_ids_get_the_same_answer(gateway):
    mine = VideoSynthesis.async_call(model="wan2.2-t2v-plus", prompt="mine", api_key=gateway.key)
    foreign = VideoSynthesis.fetch(mine.output.task_id, api_key=gateway.other_account_key)
    missing = VideoSynthesis.fetch("task_" + "0" * 32, api_key=gateway.other_account_key)
    assert foreign.status_code == missing.status_code == 200
    assert foreign.output.task_status == missing.output.task_status == "UNKNOWN"
    # wait() treats UNKNOWN as final instead of polling forever.
    assert VideoSynthesis.wait("task_" + "1" * 32, api_key=gateway.key).output.task_status == "UNKNOWN"


def test_errors_use_the_dashscope_shape(gateway):
    bad = VideoSynthesis.async_call(model="wan2.2-t2v-plus", prompt="x", api_key="sk-wrong")
    assert bad.status_code == 401
    assert bad.code == "InvalidApiKey"
    wrong_model = VideoSynthesis.async_call(model="gpt-4o-mini", prompt="x", api_key=gateway.key)
    assert wrong_model.status_code == 400
    assert wrong_model.code == "InvalidParameter"
    unknown = VideoSynthesis.async_call(model="no-such-video-model", prompt="x", api_key=gateway.key)
    assert unknown.status_code == 404
    assert unknown.code == "ModelNotFound"


class _Receiver(http.server.BaseHTTPRequestHandler):
    fail = 0
    seen = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).seen.append((self.headers, body))
        status = 500 if type(self).fail > 0 else 200
        type(self).fail -= 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _receiver(fail):
    handler = type("Receiver", (_Receiver,), {"fail": fail, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler, f"http://127.0.0.1:{server.server_address[1]}/hook"


def _until(what, check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _verify(secret, headers, body):
    t, v1 = headers["X-AnyInt-Signature"].split(",v1=")
    t = t.removeprefix("t=")
    expected = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, v1)


def test_callback_retried_with_one_event_id_and_valid_signature(gateway):
    server, rx, url = _receiver(fail=2)
    try:
        rsp = VideoSynthesis.async_call(
            model="wan2.2-t2v-plus",
            prompt="x [emulate: polls=1]",
            api_key=gateway.key,
            headers={"X-AnyInt-Callback-Url": url},
        )
        assert rsp.status_code == 200
        seen = _until("three attempts", lambda: rx.seen if len(rx.seen) >= 3 else None)
        secret = gateway.admin("GET", "/admin/v1/accounts/default/signing-secret")["secret"]
        ids = {h["X-AnyInt-Event-Id"] for h, _ in seen}
        assert len(ids) == 1
        for headers, body in seen:
            _verify(secret, headers, body)
            assert json.loads(body)["output"]["task_id"] == rsp.output.task_id
    finally:
        server.shutdown()


def _music(gateway, method, path, body=None, key=None):
    req = urllib.request.Request(
        gateway.base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key or gateway.key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_music_generate_and_record_info(gateway):
    status, created = _music(
        gateway,
        "POST",
        "/music/v1/generate",
        {"customMode": False, "instrumental": True, "model": "V4_5", "prompt": "calm piano [emulate: polls=3]"},
    )
    assert status == 200 and created["code"] == 200
    task_id = created["data"]["taskId"]
    path = f"/music/v1/generate/record-info?taskId={task_id}"
    statuses = []

    def done():
        _, rec = _music(gateway, "GET", path)
        statuses.append(rec["data"]["status"])
        return rec if rec["data"]["status"] == "SUCCESS" else None

    rec = _until("SUCCESS", done)
    assert rec["data"]["taskId"] == task_id
    assert len(rec["data"]["response"]["sunoData"]) == 2
    assert "TEXT_SUCCESS" in statuses or "FIRST_SUCCESS" in statuses
    # Another account's key gets the not-found answer of an unknown ID.
    foreign = _music(gateway, "GET", path, key=gateway.other_account_key)
    missing = _music(gateway, "GET", "/music/v1/generate/record-info?taskId=task_nope")
    assert foreign == missing
    assert missing[0] == 404 and missing[1]["code"] == 404


def test_music_idempotency_key(gateway):
    body = {"customMode": False, "instrumental": True, "model": "V4_5", "prompt": "idempotent"}

    def create(b):
        req = urllib.request.Request(
            gateway.base + "/music/v1/generate",
            method="POST",
            data=json.dumps(b).encode(),
            headers={"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json", "Idempotency-Key": "sdk-idem-1"},
        )
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    a = create(body)
    b = create(body)
    assert a[0] == b[0] == 200
    assert a[1]["data"]["taskId"] == b[1]["data"]["taskId"]
    conflict = create(dict(body, prompt="another"))
    assert conflict[0] == 409 and conflict[1]["code"] == 409


@pytest.mark.parametrize("suffix", ["/dashscope", "/dashscope/api/v1"])
def test_sdk_base_url_variants(gateway, suffix):
    dashscope.base_http_api_url = gateway.base + suffix
    rsp = VideoSynthesis.async_call(model="wan2.2-t2v-plus", prompt="base url variant", api_key=gateway.key)
    assert rsp.status_code == 200
    done = VideoSynthesis.wait(rsp, api_key=gateway.key)
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.task_id == rsp.output.task_id


def test_music_without_custom_mode_is_refused(gateway):
    # The upstream requires customMode and instrumental: refused in the music envelope, not guessed.
    status, created = _music(
        gateway, "POST", "/music/v1/generate", {"model": "V4_5", "prompt": "[Verse] la", "style": "pop", "title": "T"}
    )
    assert status == 400 and created["code"] == 400 and created["data"] is None
    assert "customMode" in created["msg"]
    status, created = _music(
        gateway,
        "POST",
        "/music/v1/generate",
        {"model": "V4_5", "customMode": True, "instrumental": False, "prompt": "[Verse] la", "style": "pop", "title": "T"},
    )
    assert status == 200 and created["code"] == 200
