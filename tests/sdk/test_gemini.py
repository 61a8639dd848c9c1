"""The official `google-genai` SDK (3.x: calls `/v1/…` with `x-goog-api-key`) against anyint's
Gemini family, unchanged but for the base URL and key, plus `api_version="v1beta"` clients.

Every upstream kind is exercised: gemini-2.5-flash passes through to a Gemini-kind upstream,
gpt-4o-mini and claude-sonnet-4-5 are translated to OpenAI- and Anthropic-kind ones.
"""

import json

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from conftest import tag

MODELS = ["gemini-2.5-flash", "gpt-4o-mini", "claude-sonnet-4-5"]
ALL_MODEL_NAMES = {"models/gpt-4o-mini", "models/gpt-4o", "models/gpt-5", "models/claude-sonnet-4-5", "models/gemini-2.5-flash", "models/claude-search", "models/gemini-search", "models/text-embedding-3-small", "models/gemini-embedding-001"}
API_VERSIONS = [None, "v1beta"]  # None: the SDK's default (v1 in 3.x)

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
)


def make_client(gateway, key=None, api_version=None):
    opts = {"base_url": gateway.base + "/gemini"}
    if api_version:
        opts["api_version"] = api_version
    return genai.Client(api_key=key or gateway.key, http_options=types.HttpOptions(**opts))


@pytest.fixture(params=API_VERSIONS, ids=["v1", "v1beta"])
def client(gateway, request):
    return make_client(gateway, api_version=request.param)


@pytest.fixture
def v1_client(gateway):
    return make_client(gateway)


def forced_call_config(**extra):
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        **extra,
    )


def upstream_request(gateway, t):
    """The last request the emulator saw under tag `t`: {"headers", "body"[, "path"]}."""
    return httpx2.get(f"{gateway.emulator}/_emulator/last/{t}").json()


def chunk_text(chunk):
    if not chunk.candidates or not chunk.candidates[0].content or not chunk.candidates[0].content.parts:
        return ""
    return "".join(p.text or "" for p in chunk.candidates[0].content.parts if not p.thought)


# --- generateContent --------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_generate_content(client, model):
    resp = client.models.generate_content(model=model, contents="Reply with exactly: AnyInt OK")
    assert resp.text == "AnyInt OK"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.candidates[0].content.role == "model"
    usage = resp.usage_metadata
    assert usage.prompt_token_count > 0
    assert usage.candidates_token_count > 0
    assert usage.total_token_count >= usage.prompt_token_count + usage.candidates_token_count
    assert resp.model_version == model


@pytest.mark.parametrize("model", MODELS)
def test_generate_content_with_system_instruction_and_history(client, model):
    resp = client.models.generate_content(
        model=model,
        contents=[
            types.Content(role="user", parts=[types.Part.from_text(text="Hello")]),
            types.Content(role="model", parts=[types.Part.from_text(text="Hi, how can I help?")]),
            types.Content(role="user", parts=[types.Part.from_text(text="Reply with exactly: second turn")]),
        ],
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64, temperature=0.5),
    )
    assert resp.text == "second turn"


@pytest.mark.parametrize("model", MODELS)
def test_generate_content_stream(client, model):
    chunks = list(client.models.generate_content_stream(model=model, contents="Reply with exactly: one two three"))
    assert chunks
    assert "".join(chunk_text(c) for c in chunks) == "one two three"
    last = chunks[-1]
    assert last.usage_metadata is not None
    assert last.usage_metadata.prompt_token_count > 0
    assert last.usage_metadata.candidates_token_count > 0
    assert last.candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("model", MODELS)
def test_max_output_tokens_reached(v1_client, model):
    resp = v1_client.models.generate_content(
        model=model,
        contents="Reply with exactly: one two three four",
        config=types.GenerateContentConfig(max_output_tokens=2),
    )
    assert resp.text == "one two"
    assert resp.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_candidate_count_two_on_translated_model_is_invalid_argument(v1_client):
    """The translated path carries one choice back, so several are refused, not truncated."""
    for stream in (False, True):
        with pytest.raises(errors.ClientError) as e:
            call = v1_client.models.generate_content_stream if stream else v1_client.models.generate_content
            result = call(model="gpt-4o-mini", contents="hi", config=types.GenerateContentConfig(candidate_count=2))
            if stream:
                list(result)
        assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT"


@pytest.mark.parametrize("model", ["gemini-2.5-flash"])
def test_candidate_count_two(v1_client, model):
    """Both upstream kinds can produce several choices (Gemini candidateCount, OpenAI n)."""
    resp = v1_client.models.generate_content(
        model=model, contents="Reply with exactly: one two", config=types.GenerateContentConfig(candidate_count=2)
    )
    assert len(resp.candidates) == 2, resp.candidates
    assert sorted(c.index or 0 for c in resp.candidates) == [0, 1]
    assert all(c.content.parts[0].text == "one two" for c in resp.candidates)


@pytest.mark.parametrize("model", ["gemini-2.5-flash"])
def test_candidate_count_two_streamed(v1_client, model):
    chunks = list(
        v1_client.models.generate_content_stream(
            model=model, contents="Reply with exactly: one two", config=types.GenerateContentConfig(candidate_count=2)
        )
    )
    texts, finished = {}, {}
    for chunk in chunks:
        for cand in chunk.candidates or []:
            i = cand.index or 0
            if cand.content and cand.content.parts:
                texts[i] = texts.get(i, "") + "".join(p.text or "" for p in cand.content.parts)
            if cand.finish_reason:
                finished[i] = cand.finish_reason
    assert texts == {0: "one two", 1: "one two"}
    assert finished == {0: types.FinishReason.STOP, 1: types.FinishReason.STOP}


def test_candidate_count_two_on_anthropic_upstream_is_invalid_argument(gateway, v1_client):
    t = tag()
    with pytest.raises(errors.ClientError) as e:
        v1_client.models.generate_content(
            model="claude-sonnet-4-5", contents=f"hi [emulate: tag={t}]", config=types.GenerateContentConfig(candidate_count=2)
        )
    assert e.value.code == 400
    assert e.value.status == "INVALID_ARGUMENT"
    assert gateway.emulator_count(t) == 0


def test_passthrough_uses_upstream_key_not_client_key(gateway, v1_client):
    t = tag()
    v1_client.models.generate_content(model="gemini-2.5-flash", contents=f"hi [emulate: tag={t}]")
    seen = upstream_request(gateway, t)
    assert gateway.key not in json.dumps(seen)
    assert seen["headers"]["x-goog-api-key"]
    assert seen["path"].startswith("/v1beta/models/gemini-2.5-flash:generateContent")


# --- Function calling -------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_function_call_round_trip(client, model):
    question = types.Content(role="user", parts=[types.Part.from_text(text="What is the weather in Oslo?")])
    first = client.models.generate_content(model=model, contents=[question], config=forced_call_config())
    calls = first.function_calls
    assert calls and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert isinstance(calls[0].args, dict)
    assert calls[0].args == {"city": "test"}
    assert first.candidates[0].finish_reason == types.FinishReason.STOP
    assert first.usage_metadata.candidates_token_count > 0

    second = client.models.generate_content(
        model=model,
        contents=[
            question,
            first.candidates[0].content,
            types.Content(
                role="user",
                parts=[types.Part.from_function_response(name="get_weather", response={"result": "3C rain"})],
            ),
        ],
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]),
    )
    assert not second.function_calls
    assert "Tool result received" in second.text
    assert "3C rain" in second.text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_function_call(v1_client, model):
    chunks = list(
        v1_client.models.generate_content_stream(
            model=model, contents="What is the weather in Oslo?", config=forced_call_config()
        )
    )
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args == {"city": "test"}
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0


@pytest.mark.parametrize("model", MODELS)
def test_allowed_function_names_selects_the_call(v1_client, model):
    time_fn = types.FunctionDeclaration(
        name="get_time", parameters={"type": "OBJECT", "properties": {"zone": {"type": "STRING"}}, "required": ["zone"]}
    )
    resp = v1_client.models.generate_content(
        model=model,
        contents="What time is it?",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER, time_fn])],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"])
            ),
        ),
    )
    assert [(c.name, c.args) for c in resp.function_calls] == [("get_time", {"zone": "test"})]


@pytest.mark.parametrize("model", MODELS)
def test_parallel_function_calls_round_trip(gateway, v1_client, model):
    time_fn = types.FunctionDeclaration(
        name="get_time", parameters={"type": "OBJECT", "properties": {"zone": {"type": "STRING"}}, "required": ["zone"]}
    )
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, time_fn])])
    t = tag()
    question = types.Content(role="user", parts=[types.Part.from_text(text=f"Use get_weather and get_time. [emulate: tag={t}]")])
    first = v1_client.models.generate_content(model=model, contents=[question], config=config)
    assert [(c.name, c.args) for c in first.function_calls] == [("get_weather", {"city": "test"}), ("get_time", {"zone": "test"})]
    second = v1_client.models.generate_content(
        model=model,
        contents=[
            question,
            first.candidates[0].content,
            types.Content(
                role="user",
                parts=[
                    types.Part.from_function_response(name="get_weather", response={"result": "3C rain"}),
                    types.Part.from_function_response(name="get_time", response={"result": "noon"}),
                ],
            ),
        ],
        config=config,
    )
    assert second.text.startswith("Tool result received: ")
    # The OpenAI emulator acknowledges only the last tool message; both must reach every upstream.
    assert "noon" in second.text
    sent = json.dumps(upstream_request(gateway, t)["body"])
    assert "3C rain" in sent and "noon" in sent


# --- countTokens and models -------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(client, model):
    counted = client.models.count_tokens(model=model, contents="How many tokens is this sentence, roughly?")
    assert counted.total_tokens > 0


def test_models_list_shows_entitled_models(gateway, client):
    models = list(client.models.list())
    names = [m.name for m in models]
    assert "models/gemini-2.5-flash" in names
    assert set(names) == ALL_MODEL_NAMES and len(names) == len(ALL_MODEL_NAMES)
    flash = next(m for m in models if m.name == "models/gemini-2.5-flash")
    assert flash.display_name == "Gemini 2.5 Flash"

    restricted = make_client(gateway, key=gateway.restricted_key)
    assert [m.name for m in restricted.models.list()] == ["models/gpt-4o"]


def test_models_get(v1_client):
    m = v1_client.models.get(model="gemini-2.5-flash")
    assert m.name == "models/gemini-2.5-flash"


# --- Errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["revoked", "made_up"])
def test_bad_key_raises_client_error_401(gateway, key_name):
    key = gateway.revoked_key if key_name == "revoked" else "sk-anyint-not-a-real-key"
    c = make_client(gateway, key=key)
    with pytest.raises(errors.ClientError) as e:
        c.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert e.value.code == 401
    assert e.value.status == "UNAUTHENTICATED"
    assert e.value.message


def test_unentitled_model_raises_client_error_403(gateway):
    c = make_client(gateway, key=gateway.restricted_key)
    t = tag()
    with pytest.raises(errors.ClientError) as e:
        c.models.generate_content(model="gemini-2.5-flash", contents=f"hi [emulate: tag={t}]")
    assert e.value.code == 403
    assert e.value.status == "PERMISSION_DENIED"
    assert gateway.emulator_count(t) == 0


def test_unknown_model_raises_client_error_404(v1_client):
    with pytest.raises(errors.ClientError) as e:
        v1_client.models.generate_content(model="no-such-model", contents="hi")
    assert e.value.code == 404
    assert e.value.status == "NOT_FOUND"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_throttle_raises_resource_exhausted(client, model):
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model=model, contents="hi [emulate: status=429 retry_after=30]")
    assert e.value.code == 429
    assert e.value.status == "RESOURCE_EXHAUSTED"
    assert e.value.response.headers["retry-after"] == "30"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_outage_raises_server_error_503(v1_client, model):
    with pytest.raises(errors.ServerError) as e:
        v1_client.models.generate_content(model=model, contents="hi [emulate: status=500]")
    assert e.value.code == 503
    assert e.value.status == "UNAVAILABLE"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_throttle_on_stream_raises_before_first_chunk(v1_client, model):
    with pytest.raises(errors.ClientError) as e:
        list(v1_client.models.generate_content_stream(model=model, contents="hi [emulate: status=429]"))
    assert e.value.code == 429
    assert e.value.status == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_raises_server_error(v1_client, model):
    with pytest.raises(errors.ServerError) as e:
        list(v1_client.models.generate_content_stream(model=model, contents="Reply with exactly: a b c d e f [emulate: error_after=3]"))
    assert e.value.code == 503


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_is_one_error_at_the_end_sse(gateway, model):
    r = httpx2.post(
        f"{gateway.base}/gemini/v1beta/models/{model}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": gateway.key},
        json=gen_body("Reply with exactly: a b c d e f [emulate: error_after=3]"),
        timeout=60,
    )
    assert r.status_code == 200
    lines = [ln for ln in r.content.decode("utf-8").replace("\r\n", "\n").split("\n") if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    chunks = [json.loads(ln[len("data: "):]) for ln in lines]
    errs = [i for i, c in enumerate(chunks) if "error" in c]
    assert len(errs) == 1, f"expected exactly one error chunk, got {[c for c in chunks if 'error' in c]!r}"
    assert errs[0] == len(chunks) - 1
    assert chunks[-1]["error"]["code"] == 503 and chunks[-1]["error"]["status"] == "UNAVAILABLE"


@pytest.mark.parametrize("model", MODELS)
def test_mid_stream_failure_is_one_error_at_the_end_json_array(gateway, model):
    r = httpx2.post(
        f"{gateway.base}/gemini/v1beta/models/{model}:streamGenerateContent",
        headers={"x-goog-api-key": gateway.key},
        json=gen_body("Reply with exactly: a b c d e f [emulate: error_after=3]"),
        timeout=60,
    )
    assert r.status_code == 200
    items = json.loads(r.content)
    errs = [i for i, item in enumerate(items) if "error" in item]
    assert len(errs) == 1, f"expected exactly one error element, got {[x for x in items if 'error' in x]!r}"
    assert errs[0] == len(items) - 1
    assert items[-1]["error"]["code"] == 503


def test_empty_contents_is_invalid_argument(gateway):
    r = httpx2.post(
        gateway.base + "/gemini/v1beta/models/gpt-4o-mini:generateContent",
        headers={"x-goog-api-key": gateway.key},
        json={"contents": []},
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT" and err["message"]


# --- Raw HTTP: query-key auth and the two stream framings -------------------------------------


def gen_body(text):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_query_key_auth(gateway, version):
    r = httpx2.post(
        f"{gateway.base}/gemini/{version}/models/gemini-2.5-flash:generateContent",
        params={"key": gateway.key},
        json=gen_body("Reply with exactly: query key"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "query key"


def test_query_key_auth_rejects_bad_key(gateway):
    r = httpx2.post(
        f"{gateway.base}/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        params={"key": "sk-anyint-not-a-real-key"},
        json=gen_body("hi"),
    )
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("model", MODELS)
def test_stream_without_alt_sse_is_a_json_array(gateway, model):
    r = httpx2.post(
        f"{gateway.base}/gemini/v1beta/models/{model}:streamGenerateContent",
        headers={"x-goog-api-key": gateway.key},
        json=gen_body("Reply with exactly: alpha beta gamma"),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    items = json.loads(r.content)
    assert isinstance(items, list) and items
    assert all("candidates" in item for item in items)
    text = "".join(p.get("text", "") for item in items for p in item["candidates"][0]["content"].get("parts", []))
    assert text == "alpha beta gamma"
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"
    assert items[-1]["usageMetadata"]["candidatesTokenCount"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_with_alt_sse_has_only_data_lines(gateway, model):
    r = httpx2.post(
        f"{gateway.base}/gemini/v1beta/models/{model}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": gateway.key},
        json=gen_body("Reply with exactly: alpha beta gamma"),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    lines = [ln for ln in r.content.decode("utf-8").replace("\r\n", "\n").split("\n") if ln]
    assert lines
    bad = [ln for ln in lines if not ln.startswith("data: ")]
    assert not bad, f"non-data lines in a Gemini SSE stream: {bad!r}"
    chunks = [json.loads(ln[len("data: "):]) for ln in lines]
    assert all("candidates" in c for c in chunks)
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"].get("parts", []))
    assert text == "alpha beta gamma"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] > 0
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0
