"""The OpenAI Agents SDK (`openai-agents`) with its default model, which speaks the Responses
API, calling one function tool through the gateway for a Claude-backed model (and a
Gemini-backed one): the agent loop runs the tool and finishes with its result."""

import openai
import pytest
from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

from conftest import tag


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"3 degrees and rain in {city}"


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gemini-2.5-flash"])
def test_agent_runs_a_tool_through_the_responses_api(gateway, model):
    set_tracing_disabled(True)  # no export to the vendor's tracing endpoint
    client = openai.AsyncOpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    agent = Agent(
        name="weather",
        instructions="Answer weather questions with the get_weather tool.",
        tools=[get_weather],
        model=model,
    )
    t = tag()
    result = Runner.run_sync(agent, f"Call get_weather for Oslo [emulate: tag={t}]")
    assert "3 degrees and rain in" in result.final_output
    # The tool call and the answer to its result: two model turns.
    assert gateway.emulator_count(t) == 2
