"""The official `openai` SDK's Responses API against anyint, for a model of every upstream kind:
gpt-4o-mini (translated to Chat Completions), claude-sonnet-4-5 (to Anthropic), gemini-2.5-flash
(to Gemini) and gpt-5 (passed through to a native Responses upstream)."""

import json

import openai
import pytest
from pydantic import BaseModel

MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_create_returns_output_text_and_usage(client, model):
    resp = client.responses.create(model=model, input="Reply with exactly: AnyInt OK")
    assert resp.status == "completed"
    assert resp.output_text == "AnyInt OK"
    assert resp.id.startswith("resp_")
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_sees_deltas_and_the_final_response(client, model):
    deltas = []
    with client.responses.stream(model=model, input="Reply with exactly: one two three") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three"
    assert final.output_text == "one two three"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_raw_stream_numbers_every_event(client, model):
    events = list(client.responses.create(model=model, input="Reply with exactly: hi there", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_loop(client, model):
    first = client.responses.create(model=model, input="Call get_weather for Oslo", tools=[WEATHER], store=False)
    calls = [o for o in first.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    history = [{"role": "user", "content": "Call get_weather for Oslo"}, calls[0]]
    history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "3 degrees, rain"})
    second = client.responses.create(model=model, input=history, tools=[WEATHER], store=False)
    assert "3 degrees, rain" in second.output_text


class Weather(BaseModel):
    city: str
    degrees: int


@pytest.mark.parametrize("model", MODELS)
def test_parse_with_a_pydantic_text_format(client, model):
    resp = client.responses.parse(model=model, input="What is the weather in Oslo? Answer as JSON.", text_format=Weather)
    assert isinstance(resp.output_parsed, Weather)
    assert isinstance(resp.output_parsed.city, str)


@pytest.mark.parametrize("model", MODELS)
def test_previous_response_id_retrieve_and_delete(client, model):
    first = client.responses.create(model=model, input="Reply with exactly: first")
    second = client.responses.create(
        model=model, previous_response_id=first.id, input="Reply with exactly: second"
    )
    assert second.output_text == "second"
    items = client.responses.input_items.list(second.id)
    texts = json.dumps([i.model_dump() for i in items.data])
    assert "first" in texts and "second" in texts
    got = client.responses.retrieve(second.id)
    assert got.id == second.id and got.output_text == "second"
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_errors_raise_the_sdks_classes(gateway, client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude-sonnet-4-5", input="hi", tools=[{"type": "web_search"}])
    assert "web_search" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="gpt-4o-mini", input="hi", previous_response_id="resp_nothing_here")
    assert e.value.code == "previous_response_not_found"
    bad = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key="sk-anyint-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="gpt-4o-mini", input="hi")
    restricted = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.restricted_key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        restricted.responses.create(model="gpt-4o-mini", input="hi")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    limited_key = gateway.admin("POST", "/admin/v1/keys", {"name": "responses-rpm", "rpm": 1})["key"]
    limited = openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=limited_key, max_retries=0)
    limited.responses.create(model="gpt-4o-mini", input="hi", store=False)
    with pytest.raises(openai.RateLimitError):
        limited.responses.create(model="gpt-4o-mini", input="hi", store=False)


@pytest.mark.parametrize("model", ["claude-search", "gemini-search"])
def test_web_search_items_and_citations_parse_in_the_sdk(client, model):
    # The emulator searches when the prompt says "search", then cites its two results.
    ask = "Search the web for Café Nørd\nReply with exactly: Café Nørd opened in 2024."
    resp = client.responses.create(
        model=model,
        input=ask,
        tools=[{"type": "web_search"}],
        include=["web_search_call.action.sources"],
        store=False,
    )
    assert [o.type for o in resp.output] == ["web_search_call", "message"]
    search = resp.output[0]
    assert search.status == "completed" and search.id.startswith("ws_")
    assert search.action.type == "search" and search.action.query == "Search the web for Café Nørd"
    assert len(search.action.sources) == 2
    part = resp.output[1].content[0]
    assert resp.output_text == "Based on a web search: Café Nørd opened in 2024."
    assert [a.type for a in part.annotations] == ["url_citation", "url_citation"]
    for a in part.annotations:
        assert part.text[a.start_index : a.end_index] == "Café Nørd opened in 2024."

    with client.responses.stream(model=model, input=ask, tools=[{"type": "web_search"}], store=False) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    for kind in [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_text.annotation.added",
    ]:
        assert kind in kinds, kind
    message = next(o for o in final.output if o.type == "message")
    assert [(a.start_index, a.end_index) for a in message.content[0].annotations] == [(23, 48), (23, 48)]


def test_web_search_without_the_provider_setting_names_codexs_switch(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude-sonnet-4-5", input="search", tools=[{"type": "web_search"}])
    assert 'web_search = "disabled"' in e.value.message
