"""The official SDKs over TLS served by the gateway itself (`[server] tls_cert_file` /
`tls_key_file`), with a certificate generated for the test, and a certificate swapped on disk
while the clients keep working: the open clients go on, new clients see the new certificate.
"""

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import anthropic
import openai
import pytest

from conftest import ADMIN_TOKEN, UPSTREAM_KEY, _start, _stop

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")


def _self_signed(directory: pathlib.Path, name: str):
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_gateway(gateway):
    """A second gateway on the same emulator, serving https with a certificate that rotates."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="anyint-tls-"))
    old_cert, old_key = _self_signed(work, "old")
    live_cert, live_key = work / "live.crt", work / "live.key"
    shutil.copy(old_cert, live_cert)
    shutil.copy(old_key, live_key)
    config = work / "anyint.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:0"
tls_cert_file = "{live_cert}"
tls_key_file = "{live_key}"

[store]
url = "sqlite://{work}/anyint.db"

[[providers]]
name = "emulator"
kind = "openai"
base_url = "{gateway.emulator}/v1"
api_key_env = "UPSTREAM_KEY"

[[providers]]
name = "emulator-anthropic"
kind = "anthropic"
base_url = "{gateway.emulator}"
api_key_env = "UPSTREAM_KEY"

[[models]]
id = "gpt-4o-mini"
routes = [{{ provider = "emulator", upstream_model = "gpt-4o-mini" }}]

[[models]]
id = "claude-sonnet-4-5"
routes = [{{ provider = "emulator-anthropic", upstream_model = "claude-sonnet-4-5" }}]
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYINT_") and k != "RUST_LOG"}
    env.update(ANYINT_ADMIN_TOKEN=ADMIN_TOKEN, UPSTREAM_KEY=UPSTREAM_KEY)
    proc, base = _start(["serve", "--config", str(config)], env, "anyint listening on ")
    try:
        assert base.startswith("https://"), base
        req = urllib.request.Request(
            base + "/admin/v1/keys",
            method="POST",
            data=json.dumps({"name": "tls"}).encode(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(old_cert))) as r:
            key = json.load(r)["key"]
        yield {"base": base, "key": key, "work": work, "old_cert": old_cert, "live": (live_cert, live_key)}
    finally:
        _stop(proc)


def _clients(gw, cert):
    verify = ssl.create_default_context(cafile=str(cert))
    # Each SDK's own HTTP client class, told to trust only `cert`.
    oai = openai.OpenAI(
        base_url=gw["base"] + "/openai/v1", api_key=gw["key"], http_client=openai.DefaultHttpxClient(verify=verify)
    )
    ant = anthropic.Anthropic(
        base_url=gw["base"] + "/anthropic", api_key=gw["key"], http_client=anthropic.DefaultHttpxClient(verify=verify)
    )
    return oai, ant


def _ask(oai, ant):
    chat = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Reply with exactly: secure"}])
    assert chat.choices[0].message.content
    with oai.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        assert any(c.choices and c.choices[0].delta.content for c in stream)
    msg = ant.messages.create(model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text


def test_official_sdks_over_tls_through_a_certificate_swap(tls_gateway):
    gw = tls_gateway
    new_cert, new_key = _self_signed(gw["work"], "new")
    # The clients that live through the renewal trust both certificates, as clients trusting a
    # CA do; the ones made after it trust only the new one.
    both = gw["work"] / "both.pem"
    both.write_bytes(gw["old_cert"].read_bytes() + new_cert.read_bytes())
    oai, ant = _clients(gw, both)
    _ask(oai, ant)
    old_only, _ = _clients(gw, gw["old_cert"])
    old_only.with_options(max_retries=0).models.list()

    # An SDK that does not trust the certificate refuses the gateway: the TLS is real.
    stranger, _ = _self_signed(gw["work"], "stranger")
    untrusting, _ = _clients(gw, stranger)
    with pytest.raises(openai.APIConnectionError):
        untrusting.with_options(max_retries=0).models.list()

    # Renew on disk while the long-lived clients keep asking; the gateway reloads without a
    # restart.
    failures, asked, done = [], [0], threading.Event()

    def keep_asking():
        while not done.is_set():
            try:
                _ask(oai, ant)
                asked[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure during the swap is the finding
                failures.append(repr(e))

    worker = threading.Thread(target=keep_asking)
    worker.start()
    live_cert, live_key = gw["live"]
    shutil.copy(new_key, live_key)
    shutil.copy(new_cert, live_cert)
    fresh_oai, fresh_ant = _clients(gw, new_cert)
    # Bounded wait for the reload (checked every second): a new client trusting only the new
    # certificate gets through once it is served.
    try:
        for _ in range(100):
            try:
                fresh_oai.with_options(max_retries=0).models.list()
                break
            except openai.APIConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("the renewed certificate was never served")
        _ask(fresh_oai, fresh_ant)
        _ask(oai, ant)
        # Let the background client finish a few rounds across the swap.
        seen = asked[0]
        for _ in range(200):
            if asked[0] >= seen + 2 or failures:
                break
            time.sleep(0.05)
    finally:
        done.set()
        worker.join()
    assert failures == [], failures[:3]
    assert asked[0] >= 2, "the background client made no requests across the swap"
    # New connections that trust only the old certificate are refused now.
    stale, _ = _clients(gw, gw["old_cert"])
    with pytest.raises(openai.APIConnectionError):
        stale.with_options(max_retries=0).models.list()
