"""Runs the Vercel AI SDK tests (tests/clients/vercel.test.mjs, Node's test runner) against the
gateway: generateText, streamText, a tool call and generateObject through the default
`@ai-sdk/openai` provider (the Responses API), and generateObject through `openai.chat`,
`@ai-sdk/anthropic` and `@ai-sdk/google`, for a model of every upstream kind."""

import shutil

import pytest

from conftest import ROOT, run_node_tests

CLIENTS = ROOT / "tests" / "clients"
MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]


@pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENTS / "node_modules" / "ai").exists(),
    reason="Vercel AI SDK not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)
def test_vercel_ai_sdk(gateway):
    proc = run_node_tests(gateway, "vercel.test.mjs", MODELS)
    assert f"pass {7 * len(MODELS)}" in proc.stdout, proc.stdout[-3000:]
