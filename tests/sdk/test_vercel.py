"""Runs the Vercel AI SDK tests (tests/clients/vercel.test.mjs, Node's test runner) against the
gateway: generateText, streamText, a tool call and generateObject through the default
`@ai-sdk/openai` provider (the Responses API), for a model of every upstream kind."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT

CLIENTS = ROOT / "tests" / "clients"
MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]


@pytest.mark.skipif(
    shutil.which("node") is None or not (CLIENTS / "node_modules" / "ai").exists(),
    reason="Vercel AI SDK not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)
def test_vercel_ai_sdk(gateway):
    env = dict(os.environ, ANYINT_BASE=gateway.base, ANYINT_API_KEY=gateway.key, MODELS=",".join(MODELS))
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "vercel.test.mjs"],
        cwd=CLIENTS,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert f"pass {4 * len(MODELS)}" in proc.stdout, proc.stdout[-3000:]
