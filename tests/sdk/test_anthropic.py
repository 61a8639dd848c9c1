"""The official `anthropic` SDK (2.x: `Authorization: Bearer`, `anthropic-version: 2026-10-21`)
against anyint's Anthropic family, unchanged but for base_url and api_key.

Every upstream kind is exercised: claude-sonnet-4-5 passes through to an Anthropic-kind
upstream, gpt-4o-mini and gemini-2.5-flash are translated to OpenAI- and Gemini-kind ones.
"""

import json

import anthropic
import httpx2
import pytest

from conftest import tag

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

MODELS = ["claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-flash"]
ALL_MODEL_IDS = {"gpt-4o-mini", "gpt-4o", "gpt-5", "claude-sonnet-4-5", "gemini-2.5-flash", "claude-search", "gemini-search"}

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=gateway.key, max_retries=0)


@pytest.fixture
def old_client(gateway):
    """An SDK-1.x-style client: the key as `x-api-key`, `anthropic-version: 2023-06-01`."""
    return anthropic.Anthropic(
        base_url=gateway.base + "/anthropic",
        api_key=None,
        max_retries=0,
        default_headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01"},
    )


def user(text):
    return [{"role": "user", "content": text}]


def texts(message):
    return "".join(b.text for b in message.content if b.type == "text")


def upstream_request(gateway, t):
    """The last request the emulator saw under tag `t`: {"headers", "body"[, "path"]}."""
    return httpx2.get(f"{gateway.emulator}/_emulator/last/{t}").json()


def raw_headers(gateway, version="2023-06-01", **extra):
    h = {"x-api-key": gateway.key, "content-type": "application/json"}
    if version is not None:
        h["anthropic-version"] = version
    h.update(extra)
    return h


# --- Messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_messages_create(client, model):
    msg = client.messages.create(model=model, max_tokens=256, messages=user("Reply with exactly: AnyInt OK"))
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "AnyInt OK"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.model == model
    assert msg.id


@pytest.mark.parametrize("model", MODELS)
def test_messages_create_old_style_client(old_client, model):
    raw = old_client.messages.with_raw_response.create(
        model=model, max_tokens=256, messages=user("Reply with exactly: old style")
    )
    sent = raw.http_request.headers
    assert sent["x-api-key"] and "authorization" not in sent
    assert sent["anthropic-version"] == "2023-06-01"
    msg = raw.parse()
    assert texts(msg) == "old style"
    assert msg.stop_reason == "end_turn"
    assert msg.model == model
    assert raw.headers["request-id"]


def test_messages_response_carries_request_id(client):
    raw = client.messages.with_raw_response.create(model="gpt-4o-mini", max_tokens=64, messages=user("hi"))
    assert raw.headers["request-id"]
    assert raw.headers["x-request-id"] == raw.headers["request-id"]
    assert texts(raw.parse())


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream(client, model):
    with client.messages.stream(model=model, max_tokens=256, messages=user("Reply with exactly: one two three")) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == "one two three"
    assert texts(final) == "one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0
    assert final.model == model


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream_old_style_client(old_client, model):
    with old_client.messages.stream(model=model, max_tokens=256, messages=user("Reply with exactly: a b c")) as s:
        final = s.get_final_message()
    assert texts(final) == "a b c"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_reached(client, model):
    msg = client.messages.create(model=model, max_tokens=2, messages=user("Reply with exactly: one two three four"))
    assert texts(msg) == "one two"
    assert msg.stop_reason == "max_tokens"


@pytest.mark.parametrize("model", MODELS)
def test_sampling_params_with_old_version(old_client, model):
    # SDK 2.x dropped these parameters (API 2026-10-21); a 2023-06-01 client still sends them.
    msg = old_client.messages.create(
        model=model, max_tokens=64, messages=user("Reply with exactly: sampled"), extra_body={"temperature": 0.5, "top_p": 0.9}
    )
    assert texts(msg) == "sampled"


@pytest.mark.parametrize("model", MODELS)
def test_sampling_params_rejected_under_2026_version(gateway, model):
    r = httpx2.post(
        gateway.base + "/anthropic/v1/messages",
        headers=raw_headers(gateway, version="2026-10-21"),
        json={"model": model, "max_tokens": 16, "temperature": 0.5, "messages": user("hi")},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "temperature" in body["error"]["message"]


def test_passthrough_forwards_version_and_beta_but_not_the_client_key(gateway):
    c = anthropic.Anthropic(
        base_url=gateway.base + "/anthropic",
        api_key=gateway.key,
        max_retries=0,
        default_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
    )
    t = tag()
    c.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=user(f"hi [emulate: tag={t}]"))
    seen = upstream_request(gateway, t)
    assert seen["headers"]["anthropic-version"] == "2026-10-21"
    assert seen["headers"]["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
    assert gateway.key not in json.dumps(seen["headers"])
    assert seen["body"]["model"] == "claude-sonnet-4-5"


# --- Tool use ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_tool_use_round_trip(client, model):
    question = user("What is the weather in Oslo?")
    first = client.messages.create(
        model=model, max_tokens=256, messages=question, tools=[WEATHER_TOOL], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)
    assert call.input == {"city": "test"}
    assert call.id
    assert first.usage.output_tokens > 0

    second = client.messages.create(
        model=model,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=question
        + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "3C rain"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert texts(second) == "Tool result received: 3C rain"


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=256,
        messages=user("What is the weather in Oslo?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    ) as s:
        events = list(s)
        final = s.get_final_message()
    json_deltas = [e for e in events if e.type == "input_json"]
    assert json_deltas, "no input_json_delta events: the tool input was not streamed"
    assert json.loads("".join(e.partial_json for e in json_deltas)) == {"city": "test"}
    assert final.stop_reason == "tool_use"
    calls = [b for b in final.content if b.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].input == {"city": "test"}
    assert calls[0].id
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_named_tool_choice(client, model):
    tools = [
        WEATHER_TOOL,
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}},
    ]
    msg = client.messages.create(
        model=model, max_tokens=256, messages=user("What time is it?"), tools=tools, tool_choice={"type": "tool", "name": "get_time"}
    )
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_time", {"zone": "test"})]
    assert msg.stop_reason == "tool_use"


@pytest.mark.parametrize("model", MODELS)
def test_disable_parallel_tool_use_gives_one_call(client, model):
    tools = [
        WEATHER_TOOL,
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}},
    ]
    both = client.messages.create(
        model=model, max_tokens=256, tools=tools, messages=user("Use get_weather and get_time, please.")
    )
    assert [b.name for b in both.content if b.type == "tool_use"] == ["get_weather", "get_time"]
    request = dict(
        model=model,
        max_tokens=256,
        tools=tools,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=user("Use get_weather and get_time, please."),
    )
    # Gemini has no switch for it: the gateway keeps the turn's first call (issue 14).
    one = client.messages.create(**request)
    assert [b.name for b in one.content if b.type == "tool_use"] == ["get_weather"]


def echo_block(b):
    """An output block as a client sends it back in the next turn."""
    if b.type == "thinking":
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature}
    if b.type == "tool_use":
        return {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
    return {"type": "text", "text": b.text}


THINKING = {"type": "enabled", "budget_tokens": 2048}


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gemini-2.5-flash"])
@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_thinking_block_carries_text_and_signature(client, model, streamed):
    kwargs = dict(
        model=model, max_tokens=4096, thinking=THINKING, tools=[WEATHER_TOOL],
        messages=user("What is the weather in Oslo? Use get_weather."),
    )
    if streamed:
        with client.messages.stream(**kwargs) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kwargs)
    assert [b.type for b in msg.content] == ["thinking", "tool_use"], msg.content
    assert msg.content[0].thinking and msg.content[0].signature


@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_thinking_signature_survives_tool_loop_to_gemini(gateway, client, streamed):
    """Claude Code echoes thinking blocks back unchanged; on a Gemini upstream the signature
    must return to the upstream as the functionCall's thoughtSignature."""
    t = tag()
    question = user(f"What is the weather in Oslo? Use get_weather. [emulate: tag={t}]")
    kwargs = dict(model="gemini-2.5-flash", max_tokens=4096, thinking=THINKING, tools=[WEATHER_TOOL])
    if streamed:
        with client.messages.stream(messages=question, **kwargs) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=question, **kwargs)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    second = client.messages.create(
        messages=question
        + [
            {"role": "assistant", "content": [echo_block(b) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "3C rain"}]},
        ],
        **kwargs,
    )
    assert texts(second) == "Tool result received: 3C rain"
    upstream = upstream_request(gateway, t)["body"]
    model_parts = [p for c in upstream["contents"] if c["role"] == "model" for p in c["parts"]]
    fc_parts = [p for p in model_parts if "functionCall" in p]
    assert len(fc_parts) == 1
    assert fc_parts[0]["functionCall"]["name"] == "get_weather"
    assert fc_parts[0].get("thoughtSignature"), f"thoughtSignature lost on the way back upstream: {model_parts!r}"


# --- count_tokens and models ------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(client, model):
    counted = client.messages.count_tokens(
        model=model, messages=user("How many tokens is this sentence, roughly?"), system="Be brief."
    )
    assert counted.input_tokens > 0


def test_count_tokens_counts_tools(client):
    plain = client.messages.count_tokens(model="gpt-4o-mini", messages=user("weather?"))
    with_tools = client.messages.count_tokens(model="gpt-4o-mini", messages=user("weather?"), tools=[WEATHER_TOOL])
    assert with_tools.input_tokens > plain.input_tokens > 0


def test_models_list_shows_entitled_models(gateway, client):
    models = list(client.models.list())
    assert {m.id for m in models} == ALL_MODEL_IDS
    assert len(models) == len(ALL_MODEL_IDS)
    assert all(m.type == "model" for m in models)
    claude = next(m for m in models if m.id == "claude-sonnet-4-5")
    assert claude.display_name == "Claude Sonnet 4.5"

    restricted = anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=gateway.restricted_key, max_retries=0)
    assert [m.id for m in restricted.models.list()] == ["gpt-4o"]


# --- Errors -----------------------------------------------------------------------------------


def error_type(exc):
    return exc.body["error"]["type"]


@pytest.mark.parametrize("key_name", ["revoked", "made_up"])
def test_bad_key_raises_authentication_error(gateway, key_name):
    key = gateway.revoked_key if key_name == "revoked" else "sk-anyint-not-a-real-key"
    c = anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=key, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        c.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=user("hi"))
    assert e.value.status_code == 401
    assert e.value.body["type"] == "error"
    assert error_type(e.value) == "authentication_error"
    assert e.value.request_id


def test_bad_x_api_key_raises_authentication_error(gateway):
    c = anthropic.Anthropic(
        base_url=gateway.base + "/anthropic",
        api_key=None,
        max_retries=0,
        default_headers={"x-api-key": "sk-anyint-not-a-real-key", "anthropic-version": "2023-06-01"},
    )
    with pytest.raises(anthropic.AuthenticationError) as e:
        c.models.list()
    assert error_type(e.value) == "authentication_error"


def test_unentitled_model_raises_permission_denied(gateway):
    c = anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=gateway.restricted_key, max_retries=0)
    t = tag()
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        c.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=user(f"hi [emulate: tag={t}]"))
    assert e.value.status_code == 403
    assert error_type(e.value) == "permission_error"
    assert gateway.emulator_count(t) == 0


def test_unknown_model_raises_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="no-such-model", max_tokens=16, messages=user("hi"))
    assert e.value.status_code == 404
    assert error_type(e.value) == "not_found_error"


@pytest.mark.parametrize("model", MODELS)
def test_empty_messages_raises_bad_request(client, model):
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=model, max_tokens=16, messages=[])
    assert e.value.status_code == 400
    assert error_type(e.value) == "invalid_request_error"


def test_missing_max_tokens_is_invalid_request_envelope(gateway):
    r = httpx2.post(
        gateway.base + "/anthropic/v1/messages",
        headers=raw_headers(gateway),
        json={"model": "gpt-4o-mini", "messages": user("hi")},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    assert r.headers["request-id"]


def test_missing_anthropic_version_is_400(gateway):
    r = httpx2.post(
        gateway.base + "/anthropic/v1/messages",
        headers=raw_headers(gateway, version=None),
        json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": user("hi")},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in body["error"]["message"]
    assert "required" in body["error"]["message"]


def test_unknown_anthropic_version_is_400(gateway):
    r = httpx2.post(
        gateway.base + "/anthropic/v1/messages",
        headers=raw_headers(gateway, version="2099-01-01"),
        json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": user("hi")},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in body["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_upstream_throttle_raises_rate_limit_with_retry_after(client, model):
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(model=model, max_tokens=16, messages=user("hi [emulate: status=429 retry_after=30]"))
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "30"
    assert error_type(e.value) == "rate_limit_error"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_outage_raises_503(client, model):
    with pytest.raises(anthropic.InternalServerError) as e:
        client.messages.create(model=model, max_tokens=16, messages=user("hi [emulate: status=500]"))
    assert e.value.status_code == 503
    assert e.value.body["type"] == "error"


def test_sdk_retries_503_and_succeeds(gateway):
    c = anthropic.Anthropic(base_url=gateway.base + "/anthropic", api_key=gateway.key, max_retries=2)
    t = tag()
    msg = c.messages.create(
        model="gpt-4o-mini", max_tokens=64, messages=user(f"Reply with exactly: ok [emulate: status=503 times=2 tag={t}]")
    )
    assert texts(msg) == "ok"
    assert gateway.emulator_count(t) == 3


# --- A Claude Code–style request, translated, checked on the wire ------------------------------


def parse_sse(raw: bytes):
    """Splits an SSE body into (event, data) pairs, failing on anything that is not a clean
    `event:` + `data:` message."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    assert text.endswith("\n\n"), f"stream does not end with a blank line: {text[-80:]!r}"
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        events = [ln[len("event:"):].strip() for ln in lines if ln.startswith("event:")]
        datas = [ln[len("data:"):].strip() for ln in lines if ln.startswith("data:")]
        others = [ln for ln in lines if not ln.startswith(("event:", "data:"))]
        assert len(events) == 1, f"SSE message without exactly one event: line: {block!r}"
        assert len(datas) == 1, f"SSE message without exactly one data: line: {block!r}"
        assert not others, f"unexpected SSE lines: {others!r}"
        data = json.loads(datas[0])
        assert data["type"] == events[0], f"event {events[0]!r} carries data.type {data['type']!r}"
        out.append((events[0], data))
    return out


def check_anthropic_stream(events):
    """Checks the named-event grammar; returns (message_start, blocks, message_delta) where
    blocks is a list of (content_block, [deltas])."""
    names = [e for e, _ in events if e != "ping"]
    assert names[0] == "message_start", names
    assert names[-1] == "message_stop", names
    assert names.count("message_start") == 1 and names.count("message_stop") == 1
    assert names.count("message_delta") == 1 and names[-2] == "message_delta", names
    assert "error" not in names

    start = next(d for e, d in events if e == "message_start")
    delta = next(d for e, d in events if e == "message_delta")
    blocks = []
    open_index = None
    for name, data in events:
        if name in ("ping", "message_start", "message_delta", "message_stop"):
            if name in ("message_delta", "message_stop"):
                assert open_index is None, f"{name} while block {open_index} is open"
            continue
        if name == "content_block_start":
            assert open_index is None, f"block {data['index']} opened while {open_index} is open"
            assert data["index"] == len(blocks), f"block index {data['index']}, expected {len(blocks)}"
            open_index = data["index"]
            blocks.append((data["content_block"], []))
        elif name == "content_block_delta":
            assert open_index is not None and data["index"] == open_index, f"delta for unopened block {data['index']}"
            blocks[open_index][1].append(data["delta"])
        elif name == "content_block_stop":
            assert open_index is not None and data["index"] == open_index, f"stop for unopened block {data['index']}"
            open_index = None
        else:
            pytest.fail(f"unexpected event {name!r}")
    assert blocks, "no content blocks"
    return start, blocks, delta


CLAUDE_CODE_TOOLS = [
    {
        "name": "Read",
        "description": "Reads a file from the local filesystem.",
        "input_schema": {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "limit": {"type": "number"}},
            "required": ["file_path"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    },
    {
        "name": "Bash",
        "description": "Executes a bash command.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
            "required": ["command"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
        "cache_control": {"type": "ephemeral"},
    },
]


def claude_code_body(model, last_text, **extra):
    return {
        "model": model,
        "max_tokens": 8192,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "You are an interactive CLI tool. Be concise.", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": CLAUDE_CODE_TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "user_0123_account__session_abc"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What files are in this directory?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01ABCDEF", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01ABCDEF", "content": "README.md\nsrc"},
                    {"type": "text", "text": last_text, "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
        **extra,
    }


def stream_raw(gateway, body, **headers):
    with httpx2.stream(
        "POST", gateway.base + "/anthropic/v1/messages", headers=raw_headers(gateway, **headers), json=body, timeout=60
    ) as r:
        raw = r.read()
        return r.status_code, r.headers, raw


def test_claude_code_style_stream_to_openai_upstream(gateway):
    body = claude_code_body("gpt-4o-mini", "Reply with exactly: Two entries: README.md and src.")
    status, headers, raw = stream_raw(gateway, body)
    assert status == 200, raw
    assert headers["content-type"].startswith("text/event-stream")
    start, blocks, delta = check_anthropic_stream(parse_sse(raw))

    message = start["message"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "gpt-4o-mini"
    assert message["content"] == []
    assert message["usage"]["input_tokens"] > 0

    text = ""
    for block, deltas in blocks:
        if block["type"] == "text":
            assert block["text"] == ""
            assert all(d["type"] == "text_delta" for d in deltas)
            text += "".join(d["text"] for d in deltas)
        elif block["type"] == "thinking":
            assert all(d["type"] in ("thinking_delta", "signature_delta") for d in deltas)
        else:
            pytest.fail(f"unexpected block {block!r}")
    assert text == "Two entries: README.md and src."

    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


def test_claude_code_style_stream_with_tool_call_to_openai_upstream(gateway):
    body = claude_code_body("gpt-4o-mini", "Now use Read on README.md", tool_choice={"type": "auto"})
    status, headers, raw = stream_raw(
        gateway, body, **{"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}
    )
    assert status == 200, raw
    start, blocks, delta = check_anthropic_stream(parse_sse(raw))
    assert start["message"]["usage"]["input_tokens"] > 0
    tool_blocks = [(b, d) for b, d in blocks if b["type"] == "tool_use"]
    assert len(tool_blocks) == 1
    block, deltas = tool_blocks[0]
    assert block["name"] == "Read" and block["id"] and block["input"] == {}
    assert all(d["type"] == "input_json_delta" for d in deltas)
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {"file_path": "test"}
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_raw_stream_grammar_every_upstream(gateway, model):
    body = {"model": model, "max_tokens": 256, "stream": True, "messages": user("Reply with exactly: x y z")}
    status, _, raw = stream_raw(gateway, body)
    assert status == 200, raw
    start, blocks, delta = check_anthropic_stream(parse_sse(raw))
    assert start["message"]["usage"]["input_tokens"] > 0
    assert [b["type"] for b, _ in blocks] == ["text"]
    assert "".join(d["text"] for d in blocks[0][1]) == "x y z"
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_is_one_error_event_at_the_end(gateway, model):
    """After the 200 a failure is a single `event: error`, and nothing follows it."""
    body = {"model": model, "max_tokens": 256, "stream": True, "messages": user("Reply with exactly: a b c d e f [emulate: error_after=3]")}
    status, _, raw = stream_raw(gateway, body)
    assert status == 200, raw
    events = parse_sse(raw)
    names = [e for e, _ in events]
    assert names[0] == "message_start"
    assert names.count("error") == 1, f"expected exactly one error event, got {names!r}"
    assert names[-1] == "error", f"events after the error: {names!r}"
    assert "message_stop" not in names
    err = events[-1][1]
    assert err["type"] == "error" and err["error"]["type"] and err["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_raises_in_sdk(client, model):
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(
            model=model, max_tokens=256, messages=user("Reply with exactly: a b c d e f [emulate: error_after=3]")
        ) as s:
            s.get_final_message()
    assert e.value.body["type"] == "error"
