"""LiteLLM's client (the `litellm` package, not its proxy) against the gateway, for a model of
every upstream kind: `litellm.completion` with the `openai/` prefix and `api_base` at
/openai/v1, and with the `anthropic/` prefix and `api_base` at /anthropic, a call and a stream
each."""

import os

# LiteLLM fetches its model price map from the network at import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
import pytest  # noqa: E402

MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]
litellm.telemetry = False


def settings(gateway, prefix: str) -> dict:
    # The README's settings.
    base = {"openai": f"{gateway.base}/openai/v1", "anthropic": f"{gateway.base}/anthropic"}[prefix]
    return {"api_base": base, "api_key": gateway.key, "num_retries": 0}


@pytest.mark.parametrize("prefix", ["openai", "anthropic"])
@pytest.mark.parametrize("model", MODELS)
def test_completion_and_stream(gateway, model, prefix):
    kw = settings(gateway, prefix)
    r = litellm.completion(
        model=f"{prefix}/{model}",
        messages=[{"role": "user", "content": "Reply with exactly: AnyInt OK"}],
        max_tokens=64,
        **kw,
    )
    assert r.choices[0].message.content == "AnyInt OK"
    assert r.usage.prompt_tokens > 0
    stream = litellm.completion(
        model=f"{prefix}/{model}",
        messages=[{"role": "user", "content": "Reply with exactly: one two three"}],
        max_tokens=64,
        stream=True,
        **kw,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "one two three"
