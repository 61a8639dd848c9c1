"""Per-key restrictions (expiry, address allowlist, requests per minute, concurrency) as the
official SDKs see them: the right exception class, the error code, `Retry-After` and the
family's rate-limit headers, and the SDK's own retry honouring the gateway's `Retry-After`.

Every test creates its own key through the admin API, so limits never leak between tests."""

import math
import time

import anthropic
import openai
import pytest

from conftest import tag


def user(text):
    return [{"role": "user", "content": text}]


def new_key(gateway, **limits):
    """A fresh key with `limits` (rpm, concurrency, expires_at, ip_allowlist, …)."""
    body = {"name": "sdk-limits-" + tag(), **limits}
    return gateway.admin("POST", "/admin/v1/keys", body)["key"]


def openai_client(gateway, key, max_retries=0):
    return openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=key, max_retries=max_retries)


def anthropic_client(gateway, key, max_retries=0):
    return anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=key, max_retries=max_retries)


# --- Requests per minute ------------------------------------------------------------------------


def test_rpm_counts_down_then_raises_rate_limit_error_without_reaching_upstream(gateway):
    client = openai_client(gateway, new_key(gateway, rpm=2))
    ok_tag, refused_tag = tag(), tag()
    remaining = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=user(f"Reply with exactly: ok [emulate: tag={ok_tag}]")
        )
        assert raw.parse().choices[0].message.content == "ok"
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["1", "0"]
    assert gateway.emulator_count(ok_tag) == 2

    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=user(f"hi [emulate: tag={refused_tag}]"))
    assert e.value.status_code == 429
    assert e.value.code == "rate_limit_exceeded"
    headers = e.value.response.headers
    # One request per 30 s: the next slot is at most 30 s away, rounded up to whole seconds.
    assert 1 <= int(headers["retry-after"]) <= 30
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "2 requests per minute" in e.value.message
    # max_retries=0: the SDK sent the call once, and the gateway refused it before any upstream.
    assert gateway.emulator_count(refused_tag) == 0


def test_sdk_retry_honours_retry_after_and_then_succeeds(gateway):
    # 12 rpm is one request per 5 s after the burst: a refusal says to retry in just under 5 s
    # (`retry-after-ms`, which the SDK prefers to the rounded-up `retry-after`). The slot is far
    # longer than anything the client does between the refusal and its next call, even on a
    # loaded machine, so the next call is refused once and retried (at 120 rpm the half-second
    # slot could pass while the test was descheduled, and the call then went through unrefused).
    key = new_key(gateway, rpm=12)
    # Watch the SDK's attempts on the wire: when each was sent, and what each got back.
    seen = []
    hooks = {
        "request": [lambda request: seen.append(("sent", time.monotonic(), None))],
        "response": [lambda response: seen.append(("got", time.monotonic(), response))],
    }
    retrying = openai.OpenAI(
        base_url=gateway.base + "/openai/v1",
        api_key=key,
        max_retries=2,
        http_client=openai.DefaultHttpxClient(event_hooks=hooks),
    )
    exhaust = retrying.with_options(max_retries=0)
    t = tag()
    for sent in range(1, 40):
        try:
            exhaust.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        except openai.RateLimitError as e:
            assert e.code == "rate_limit_exceeded"
            told_ms = int(e.response.headers["retry-after-ms"])
            assert 0 < told_ms <= 5000
            assert int(e.response.headers["retry-after"]) == math.ceil(told_ms / 1000)
            break
    else:
        pytest.fail("rpm=12 never refused in 40 calls")
    seen.clear()
    raw = retrying.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user(f"Reply with exactly: retried [emulate: tag={t}]")
    )
    # The burst is the full minute's 12.
    assert sent - 1 >= 12, f"only {sent - 1} calls admitted before the first refusal"
    assert raw.parse().choices[0].message.content == "retried"
    statuses = [r.status_code for kind, _, r in seen if kind == "got"]
    assert raw.retries_taken >= 1, f"the call succeeded without the SDK retrying a 429: {statuses}"
    assert statuses[0] == 429 and statuses[-1] == 200 and set(statuses[1:-1]) <= {429}, statuses
    # Between the first 429 and the next attempt the SDK slept at least what the gateway said
    # (seconds), not its own first backoff (at most 0.5 s), which would have been refused again.
    assert [kind for kind, _, _ in seen[:3]] == ["sent", "got", "sent"], seen
    told = int(seen[1][2].headers["retry-after-ms"]) / 1000
    slept = seen[2][1] - seen[1][1]
    assert told > 1.0 and slept >= told, (told, slept)
    assert gateway.emulator_count(t) == 1, "only the admitted attempt reached upstream"


# --- Address allowlist and expiry ---------------------------------------------------------------


def test_ip_allowlist_refuses_other_addresses_with_permission_denied(gateway):
    t = tag()
    elsewhere = openai_client(gateway, new_key(gateway, ip_allowlist=["10.0.0.0/8"]))
    with pytest.raises(openai.PermissionDeniedError) as e:
        elsewhere.chat.completions.create(model="gpt-4o-mini", messages=user(f"hi [emulate: tag={t}]"))
    assert e.value.status_code == 403
    assert e.value.code == "ip_not_allowed"
    assert "127.0.0.1" in e.value.message
    assert gateway.emulator_count(t) == 0

    here = openai_client(gateway, new_key(gateway, ip_allowlist=["127.0.0.0/8"]))
    resp = here.chat.completions.create(model="gpt-4o-mini", messages=user("Reply with exactly: allowed"))
    assert resp.choices[0].message.content == "allowed"


def test_expired_key_raises_authentication_error(gateway):
    client = openai_client(gateway, new_key(gateway, expires_at=int(time.time()) - 60))
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert e.value.status_code == 401
    assert e.value.code == "invalid_api_key"
    assert "expired" in e.value.message
    with pytest.raises(openai.AuthenticationError):
        client.models.list()

    later = openai_client(gateway, new_key(gateway, expires_at=int(time.time()) + 3600))
    assert later.chat.completions.create(model="gpt-4o-mini", messages=user("hi")).choices


# --- Concurrency --------------------------------------------------------------------------------


def test_concurrency_limit_holds_a_slot_for_the_whole_stream(gateway):
    client = openai_client(gateway, new_key(gateway, concurrency=1))
    words = " ".join(["w"] * 30)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        messages=user(f"Reply with exactly: {words} [emulate: chunk_delay_ms=20]"),
    )
    chunks = iter(stream)
    first = next(chunks)
    assert first.choices

    # The stream is still open (about 30 chunks x 20 ms to go): its slot is taken.
    t = tag()
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=user(f"hi [emulate: tag={t}]"))
    assert e.value.code == "rate_limit_exceeded"
    assert "in flight" in e.value.message
    assert "retry-after" in e.value.response.headers
    assert gateway.emulator_count(t) == 0

    text = (first.choices[0].delta.content or "") + "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices
    )
    assert text == words

    # The stream ended: its slot comes back (released when the gateway drops the body, which
    # may be a moment after the client read the last byte).
    for _ in range(50):
        try:
            resp = client.chat.completions.create(model="gpt-4o-mini", messages=user("Reply with exactly: free"))
            break
        except openai.RateLimitError:
            time.sleep(0.02)
    else:
        pytest.fail("the stream's concurrency slot was not released within 1 s")
    assert resp.choices[0].message.content == "free"


# --- Anthropic family ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
def test_anthropic_rpm_headers_and_rate_limit_error(gateway):
    client = anthropic_client(gateway, new_key(gateway, rpm=1))
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=16, messages=user("Reply with exactly: once")
    )
    assert raw.parse().content[0].text == "once"
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert "x-ratelimit-limit-requests" not in raw.headers

    t = tag()
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=user(f"hi [emulate: tag={t}]"))
    assert e.value.status_code == 429
    assert e.value.body["error"]["type"] == "rate_limit_error"
    headers = e.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["anthropic-ratelimit-requests-limit"] == "1"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert gateway.emulator_count(t) == 0


def test_exhausted_credit_is_insufficient_quota_and_not_retried(gateway):
    """The two 429s are told apart: a used-up budget says insufficient_quota and tells the SDK
    not to retry, unlike a rate limit."""
    key = gateway.admin("POST", "/admin/v1/keys", {"name": "budget", "budget_micros": 1})["key"]
    client = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=key, max_retries=2)
    first = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert first.choices[0].message.content
    t = tag()
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"hi [emulate: tag={t}]"}])
    assert e.value.code == "insufficient_quota"
    assert e.value.type == "insufficient_quota"
    assert "resets at" in e.value.message
    assert e.value.response.headers["x-should-retry"] == "false"
    assert gateway.emulator_count(t) == 0
