"""Runs the Vercel AI SDK tests (tests/clients/vercel.test.mjs, Node's test runner) against the
gateway: generateText, streamText, a tool call and generateObject through the default
`@ai-sdk/openai` provider (the Responses API), and generateObject through `openai.chat`,
`@ai-sdk/anthropic` and `@ai-sdk/google`, for a model of every upstream kind."""

from conftest import needs_node_clients, run_node_tests

MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]


@needs_node_clients
def test_vercel_ai_sdk(gateway):
    run_node_tests(gateway, "vercel.test.mjs", MODELS, 7 * len(MODELS))
