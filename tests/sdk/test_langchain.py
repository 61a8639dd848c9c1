"""LangChain (`langchain-openai`) against the gateway's OpenAI family with only the base URL
and key changed: `ChatOpenAI(...).with_structured_output(PydanticModel)` for a Claude- and a
Gemini-backed model (the gateway translates the JSON Schema format to each upstream), and a
plain call for a model of every upstream kind."""

import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]


class Weather(BaseModel):
    city: str
    degrees: float


def chat(gateway, model: str) -> ChatOpenAI:
    # The README's settings.
    return ChatOpenAI(model=model, base_url=f"{gateway.base}/openai/v1", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4o-mini"])
def test_with_structured_output_returns_the_pydantic_model(gateway, model):
    weather = chat(gateway, model).with_structured_output(Weather).invoke("The weather in Oslo, as JSON.")
    assert isinstance(weather, Weather)
    assert isinstance(weather.city, str) and weather.city


@pytest.mark.parametrize("model", MODELS)
def test_invoke_and_stream(gateway, model):
    llm = chat(gateway, model)
    msg = llm.invoke("Reply with exactly: AnyInt OK")
    assert msg.content == "AnyInt OK"
    assert msg.usage_metadata["input_tokens"] > 0
    text = "".join(chunk.content for chunk in llm.stream("Reply with exactly: one two three"))
    assert text == "one two three"
