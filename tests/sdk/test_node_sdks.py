"""Runs the official Node SDK tests (tests/clients/sdks.test.mjs, Node's test runner) against
the gateway: `openai` chat.completions (a call and a stream) and `@anthropic-ai/sdk` messages
(a call and a stream), for a model of every upstream kind."""

import shutil

import pytest

from conftest import ROOT, run_node_tests

CLIENTS = ROOT / "tests" / "clients"
MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]


@pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENTS / "node_modules" / "openai").exists(),
    reason="Node SDKs not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)
def test_openai_and_anthropic_node_sdks(gateway):
    proc = run_node_tests(gateway, "sdks.test.mjs", MODELS)
    assert f"pass {4 * len(MODELS)}" in proc.stdout, proc.stdout[-3000:]
