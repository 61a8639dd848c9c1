"""Starts a real emulator and a real `anyint serve` for the SDK tests.

Both run as subprocesses of the built binary (ANYINT_BIN, default target/debug/anyint) on
loopback ports chosen by the OS, with a temporary SQLite store. Keys are created through the
admin API, as an operator would.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import urllib.request
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "sdk-admin-" + uuid.uuid4().hex
UPSTREAM_KEY = "sdk-upstream-key"


def _binary() -> str:
    path = os.environ.get("ANYINT_BIN", str(ROOT / "target" / "debug" / "anyint"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p anyint` first")
    return path


def _start(args, env, prefix):
    """Starts the binary and returns (process, base URL) once it prints `prefix<url>`."""
    proc = subprocess.Popen(
        [_binary(), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith(prefix):
            return proc, line[len(prefix):].split()[0].strip()
    raise RuntimeError(f"{args} exited before it was ready (code {proc.wait()})")


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Gateway:
    def __init__(self, base, emulator, key, restricted_key):
        self.base = base
        self.emulator = emulator
        self.key = key
        self.restricted_key = restricted_key

    def emulator_count(self, tag: str) -> int:
        with urllib.request.urlopen(f"{self.emulator}/_emulator/counts/{tag}") as r:
            return json.load(r)["count"]

    def admin(self, method, path, body=None):
        req = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            return json.load(r)


CLIENTS = ROOT / "tests" / "clients"

# Node client tests (tests/clients/*.test.mjs) need Node and `npm ci` in tests/clients.
needs_node_clients = pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENTS / "node_modules" / "ai").exists(),
    reason="Node clients not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)


def run_node_tests(gateway, script, models, passes=None) -> subprocess.CompletedProcess:
    """Runs tests/clients/`script` with Node's test runner against the gateway (ANYINT_BASE,
    ANYINT_API_KEY, MODELS); asserts it passed and, when `passes` is given, that exactly that
    many tests passed."""
    env = dict(os.environ, ANYINT_BASE=gateway.base, ANYINT_API_KEY=gateway.key, MODELS=",".join(models))
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=spec", script],
        cwd=CLIENTS,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    if passes is not None:
        assert f"pass {passes}" in proc.stdout, proc.stdout[-3000:]
    return proc


def tag() -> str:
    """A unique emulator tag for counting one test's upstream requests."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def gateway():
    workdir = tempfile.mkdtemp(prefix="anyint-sdk-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYINT_") and k != "RUST_LOG"}
    emulator_env = dict(env, EMU_KEY=UPSTREAM_KEY)
    emu, emulator = _start(
        ["emulate", "--listen", "127.0.0.1:0", "--api-key-env", "EMU_KEY"],
        emulator_env,
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
name = "emulator-responses"
kind = "openai"
api = "responses"
base_url = "{emulator}/v1"
api_key_env = "UPSTREAM_KEY"

[[providers]]
name = "emulator-anthropic"
kind = "anthropic"
base_url = "{emulator}"
api_key_env = "UPSTREAM_KEY"

[[providers]]
name = "emulator-gemini"
kind = "gemini"
base_url = "{emulator}/v1beta"
api_key_env = "UPSTREAM_KEY"

[[models]]
id = "gpt-4o-mini"
display_name = "GPT-4o mini"
owned_by = "openai"
routes = [{{ provider = "emulator", upstream_model = "gpt-4o-mini" }}]

[[models]]
id = "gpt-4o"
price = {{ input = 2500000, output = 10000000 }}
routes = [{{ provider = "emulator", upstream_model = "gpt-4o" }}]

[[models]]
id = "gpt-5"
display_name = "GPT-5 (native Responses API)"
owned_by = "openai"
routes = [{{ provider = "emulator-responses", upstream_model = "gpt-5" }}]

[[models]]
id = "claude-sonnet-4-5"
display_name = "Claude Sonnet 4.5"
owned_by = "anthropic"
routes = [{{ provider = "emulator-anthropic", upstream_model = "claude-sonnet-4-5" }}]

[[models]]
id = "gemini-2.5-flash"
display_name = "Gemini 2.5 Flash"
owned_by = "google"
routes = [{{ provider = "emulator-gemini", upstream_model = "gemini-2.5-flash" }}]


# The same upstreams serving hosted web search (web_search = true).
[[providers]]
name = "emulator-anthropic-search"
kind = "anthropic"
base_url = "{emulator}"
api_key_env = "UPSTREAM_KEY"
web_search = true

[[providers]]
name = "emulator-gemini-search"
kind = "gemini"
base_url = "{emulator}/v1beta"
api_key_env = "UPSTREAM_KEY"
web_search = true

[[models]]
id = "claude-search"
routes = [{{ provider = "emulator-anthropic-search", upstream_model = "claude-sonnet-4-5" }}]
price = {{ per_web_search = 10000 }}

[[models]]
id = "gemini-search"
routes = [{{ provider = "emulator-gemini-search", upstream_model = "gemini-2.5-flash" }}]
price = {{ per_web_search = 10000 }}

[[providers]]
name = "emulator-dashscope"
kind = "dashscope"
base_url = "{emulator}/api/v1"
api_key_env = "UPSTREAM_KEY"

[[providers]]
name = "emulator-music"
kind = "music"
base_url = "{emulator}"
api_key_env = "UPSTREAM_KEY"

[[models]]
id = "wan2.2-t2v-plus"
routes = [{{ provider = "emulator-dashscope", upstream_model = "wan2.2-t2v-plus" }}]
price = {{ per_video_second = 1000 }}

[[models]]
id = "wan2.2-t2i-flash"
routes = [{{ provider = "emulator-dashscope", upstream_model = "wan2.2-t2i-flash" }}]
price = {{ per_image = 300 }}

[[models]]
id = "V4_5"
routes = [{{ provider = "emulator-music", upstream_model = "V4_5" }}]
price = {{ per_song = 5000 }}

# Embedding models, one per upstream kind (api = "embedding"), priced per million input tokens.
[[models]]
id = "text-embedding-3-small"
api = "embedding"
owned_by = "openai"
price = {{ input = 20000 }}
routes = [{{ provider = "emulator", upstream_model = "text-embedding-3-small" }}]

[[models]]
id = "gemini-embedding-001"
api = "embedding"
owned_by = "google"
price = {{ input = 150000 }}
routes = [{{ provider = "emulator-gemini", upstream_model = "gemini-embedding-001" }}]

[tasks]
poll_interval_ms = 200
refresh_after_ms = 0
callback_backoff_ms = 100
callback_backoff_max_ms = 200
callback_allow_networks = ["127.0.0.0/8"]
"""
    )
    gw_env = dict(env, ANYINT_ADMIN_TOKEN=ADMIN_TOKEN, UPSTREAM_KEY=UPSTREAM_KEY)
    gw, base = _start(["serve", "--config", str(config)], gw_env, "anyint listening on ")
    try:
        g = Gateway(base, emulator, None, None)
        g.key = g.admin("POST", "/admin/v1/keys", {"name": "sdk"})["key"]
        g.restricted_key = g.admin("POST", "/admin/v1/keys", {"name": "sdk-restricted", "models": ["gpt-4o"]})["key"]
        g.revoked_key = g.admin("POST", "/admin/v1/keys", {"name": "sdk-revoked"})
        g.admin("DELETE", f"/admin/v1/keys/{g.revoked_key['id']}")
        g.revoked_key = g.revoked_key["key"]
        g.other_account_key = g.admin("POST", "/admin/v1/keys", {"name": "sdk-other", "account": "other-account"})["key"]
        yield g
    finally:
        _stop(gw)
        _stop(emu)
