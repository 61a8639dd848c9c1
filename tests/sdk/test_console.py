"""The web console in a real browser: Debian's headless Chromium driven by Playwright.

A gateway of its own (short callback horizon, so a delivery dies within a second) and an
emulator, started like the SDK tests' gateway. The browser signs in with the admin token,
creates a key and sees its secret once, sees a request made with it in the usage table and
chart, revokes it and sees the next request refused, replays a dead callback delivery, and
signs out; a wrong token and a POST without the CSRF token are refused. Screenshots of every
page land in tests/artifacts/console/ for a reviewer.
"""

import http.server
import json
import os
import pathlib
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import ROOT, UPSTREAM_KEY, _start, _stop

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
TOKEN = "console-admin-" + uuid.uuid4().hex

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found: scripts/test installs Debian's chromium", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


class Receiver(http.server.BaseHTTPRequestHandler):
    """A callback receiver that answers 500 until `fail` is cleared."""

    fail = True

    def do_POST(self):  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(500 if type(self).fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Console:
    def __init__(self, base):
        self.base = base

    def http(self, method, path, body=None, headers=None):
        req = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, dict(r.headers), json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.load(e)

    def admin(self, method, path, body=None):
        return self.http(method, path, body, {"Authorization": f"Bearer {TOKEN}"})[2]

    def chat(self, key):
        return self.http(
            "POST",
            "/openai/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]},
            {"Authorization": f"Bearer {key}"},
        )


@pytest.fixture(scope="module")
def console():
    workdir = tempfile.mkdtemp(prefix="anyint-console-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYINT_") and k != "RUST_LOG"}
    emu, emulator = _start(
        ["emulate", "--listen", "127.0.0.1:0", "--api-key-env", "EMU_KEY"],
        dict(env, EMU_KEY=UPSTREAM_KEY),
        "anyint emulator on ",
    )
    config = pathlib.Path(workdir) / "anyint.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:0"

[store]
url = "sqlite://{workdir}/anyint.db"

[[providers]]
name = "emulator"
kind = "openai"
base_url = "{emulator}/v1"
api_key_env = "UPSTREAM_KEY"

[[providers]]
name = "emulator-dashscope"
kind = "dashscope"
base_url = "{emulator}/api/v1"
api_key_env = "UPSTREAM_KEY"

[[models]]
id = "gpt-4o-mini"
routes = [{{ provider = "emulator", upstream_model = "gpt-4o-mini" }}]
price = {{ input = 150000, output = 600000 }}

[[models]]
id = "wan2.2-t2v-plus"
routes = [{{ provider = "emulator-dashscope", upstream_model = "wan2.2-t2v-plus" }}]
price = {{ per_video_second = 1000 }}

[tasks]
poll_interval_ms = 200
refresh_after_ms = 0
callback_backoff_ms = 100
callback_backoff_max_ms = 200
callback_horizon_secs = 1
callback_allow_networks = ["127.0.0.0/8"]
"""
    )
    gw, base = _start(
        ["serve", "--config", str(config)],
        dict(env, ANYINT_ADMIN_TOKEN=TOKEN, UPSTREAM_KEY=UPSTREAM_KEY),
        "anyint listening on ",
    )
    try:
        yield Console(base)
    finally:
        _stop(gw)
        _stop(emu)


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def new_page(browser, dark=False):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        color_scheme="dark" if dark else "light",
    )
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    return page


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base, token=TOKEN):
    page.goto(base + "/console/")
    expect(page).to_have_url(base + "/console/sign-in")
    page.fill("input[name=token]", token)
    page.click("form[action='/console/sign-in'] button[type=submit]")


def until(what, check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_wrong_token_and_a_client_key_are_refused(console, browser):
    page = new_page(browser)
    sign_in(page, console.base, "not-the-token")
    expect(page.locator(".notice.err")).to_contain_text("That is not the admin token")
    expect(page).to_have_url(console.base + "/console/sign-in")
    shot(page, "sign-in-refused")
    key = console.admin("POST", "/admin/v1/keys", {"name": "client"})["key"]
    sign_in(page, console.base, key)
    expect(page.locator(".notice.err")).to_contain_text("Client API keys do not open the console")
    page.goto(console.base + "/console/keys")
    expect(page).to_have_url(console.base + "/console/sign-in")
    page.context.close()


def test_the_operator_journey(console, browser):
    page = new_page(browser)
    sign_in(page, console.base)
    expect(page).to_have_url(console.base + "/console/")
    expect(page.locator("h1")).to_have_text("Overview")

    # Create a key: the secret is shown once, with a copy button.
    page.goto(console.base + "/console/keys")
    page.click("summary:has-text('Create a key')")
    page.fill("form[action='/console/keys'] input[name=name]", "browser-key")
    page.fill("form[action='/console/keys'] input[name=rpm]", "120")
    page.click("form[action='/console/keys'] button[type=submit]")
    expect(page.locator("h1")).to_have_text("Key created")
    secret = page.locator("#new-key").inner_text()
    assert secret
    expect(page.locator("button[data-copy]")).to_be_visible()
    shot(page, "key-created")
    page.goto(console.base + "/console/keys")
    assert secret not in page.content(), "the secret is shown once"
    row = page.locator("tr", has_text="browser-key")
    expect(row).to_contain_text("rpm 120")
    key_id = row.get_attribute("data-key")

    # A request with the key appears in the usage table and chart.
    status, headers, _ = console.chat(secret)
    assert status == 200
    request_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    page.goto(console.base + "/console/usage?group_by=key")
    expect(page.locator("#latest")).to_contain_text(request_id)
    expect(page.locator("table.data").first).to_contain_text(key_id)
    bar_tip = page.locator(f"svg [data-tip^='{key_id}']")
    expect(bar_tip).to_have_attribute("data-tip", f"{key_id}: 1")
    shot(page, "usage-by-key")
    page.goto(console.base + "/console/usage")
    assert "requests: 1" in page.locator("figure.chart svg").inner_html()
    bucket = page.locator("svg [data-tip*='requests: 1']").first
    bucket.hover()
    expect(page.locator(".tip")).to_contain_text("requests: 1")
    shot(page, "usage")
    page.goto(console.base + "/console/?range=hour")
    assert "requests: 1" in page.locator("figure.chart").first.inner_html()
    shot(page, "overview")
    page.goto(console.base + f"/console/keys/{key_id}?range=hour")
    expect(page.locator("h1")).to_have_text("Key browser-key")
    shot(page, "key-detail")

    # Revoke it: the next request with it is refused.
    page.goto(console.base + "/console/keys")
    page.locator(f"tr[data-key='{key_id}'] button:has-text('Revoke')").click()
    expect(page.locator(".notice.ok")).to_contain_text("revoked")
    expect(page.locator(f"tr[data-key='{key_id}'] .badge")).to_have_text("revoked")
    shot(page, "keys")
    assert console.chat(secret)[0] == 401

    # A state-changing request without the CSRF token is refused, with the session cookie.
    refused = page.request.post(console.base + "/console/keys", form={"name": "no-csrf"})
    assert refused.status == 403
    assert "no-csrf" not in json.dumps(console.admin("GET", "/admin/v1/keys"))

    # A dead callback delivery, replayed from the task's page.
    Receiver.fail = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = console.admin("POST", "/admin/v1/keys", {"name": "tasks"})["key"]
        status, _, created = console.http(
            "POST",
            "/dashscope/v1/services/aigc/video-generation/video-synthesis",
            {"model": "wan2.2-t2v-plus", "input": {"prompt": "x [emulate: polls=1]"}},
            {
                "Authorization": f"Bearer {key}",
                "X-DashScope-Async": "enable",
                "X-AnyInt-Callback-Url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            },
        )
        assert status == 200, created
        task_id = created["output"]["task_id"]
        until(
            "the delivery to die",
            lambda: any(
                d["state"] == "dead"
                for d in console.admin("GET", f"/admin/v1/tasks/{task_id}/deliveries")["data"]
            ),
        )
        page.goto(console.base + "/console/tasks?status=succeeded")
        page.click(f"a:has-text('{task_id}')")
        expect(page.locator("h1")).to_have_text(f"Task {task_id}")
        expect(page.locator(".delivery .badge")).to_have_text("dead")
        expect(page.locator(".timeline")).to_contain_text("created")
        shot(page, "task-dead-delivery")
        Receiver.fail = False
        page.click(".delivery button:has-text('Replay')")
        expect(page.locator(".notice.ok")).to_contain_text("queued again")

        def delivered():
            page.reload()
            return page.locator(".delivery .badge").inner_text() == "delivered"

        until("the replayed delivery to arrive", delivered)
        shot(page, "task-replayed")
        page.goto(console.base + "/console/tasks")
        shot(page, "tasks")
    finally:
        server.shutdown()

    # Plans and accounts: create a plan with a cap and an account on it.
    page.goto(console.base + "/console/directory")
    page.click("summary:has-text('Create a plan')")
    form = page.locator("form[action='/console/directory']")
    form.locator("select[name=kind]").select_option("plans")
    form.locator("input[name=id]").fill("pro")
    form.locator("textarea[name=spec]").fill('{"name": "Pro", "credit_cap_micros": 5000000}')
    form.locator("button[type=submit]").click()
    expect(page.locator(".notice.ok")).to_have_text("Created.")
    page.click("summary:has-text('Create a plan')")
    form.locator("select[name=kind]").select_option("accounts")
    form.locator("input[name=id]").fill("acme")
    form.locator("textarea[name=spec]").fill('{"name": "Acme", "plan": "pro"}')
    form.locator("button[type=submit]").click()
    expect(page.locator("tr", has_text="acme").locator("meter")).to_have_count(1)
    shot(page, "directory")
    page.goto(console.base + "/console/routes")
    expect(page.locator("table.data")).to_contain_text("gpt-4o-mini")
    shot(page, "routes")

    # Sign out: the pages ask to sign in again.
    page.click("form.signout button")
    expect(page).to_have_url(console.base + "/console/sign-in")
    page.goto(console.base + "/console/keys")
    expect(page).to_have_url(console.base + "/console/sign-in")
    page.context.close()


def test_dark_mode_overview(console, browser):
    page = new_page(browser, dark=True)
    sign_in(page, console.base)
    page.goto(console.base + "/console/usage")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(20, 22, 26)", bg
    shot(page, "usage-dark")
    page.goto(console.base + "/console/?range=day")
    shot(page, "overview-dark")
    page.context.close()
