"""Codex CLI (npm `@openai/codex`, pinned in tests/clients) end to end against the gateway's
Responses API: `codex exec` runs its shell tool (`exec_command`) and finishes the loop, for a
model of every upstream kind. The config is the one the README shows."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ROOT, tag

CODEX = ROOT / "tests" / "clients" / "node_modules" / ".bin" / "codex"
MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-5"]

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not CODEX.exists(),
    reason="Codex CLI not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)


def codex_config(base: str) -> str:
    # The README's Codex configuration, with this gateway's address.
    return f"""model_provider = "anyint"
web_search = "disabled"

[model_providers.anyint]
name = "anyint"
base_url = "{base}/openai/v1"
wire_api = "responses"
env_key = "ANYINT_API_KEY"
"""


def run_codex(gateway, tmp_path: pathlib.Path, model: str, prompt: str):
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(codex_config(gateway.base))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(CODEX_HOME=str(home), ANYINT_API_KEY=gateway.key, NO_COLOR="1")
    proc = subprocess.run(
        [str(CODEX), "exec", "--json", "--skip-git-repo-check", "-m", model, prompt],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, events


@pytest.mark.parametrize("model", MODELS)
def test_codex_exec_runs_its_shell_tool_and_finishes(gateway, tmp_path, model):
    t = tag()
    proc, events = run_codex(gateway, tmp_path, model, f"Use exec_command to look at the directory [emulate: tag={t}]")
    assert proc.returncode == 0, proc.stderr[-2000:]
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in items if i["type"] == "command_execution"]
    assert commands, events
    answers = [i["text"] for i in items if i["type"] == "agent_message"]
    assert answers and answers[-1].startswith("Tool result received:"), answers
    assert events[-1]["type"] == "turn.completed"
    assert events[-1]["usage"]["input_tokens"] > 0
    # Two model turns reached the upstream: the call, then the answer to its result.
    assert gateway.emulator_count(t) == 2


def test_codex_without_web_search_disabled_is_told_how_to_turn_it_off(gateway, tmp_path):
    home = tmp_path / "codex-home"
    home.mkdir()
    config = codex_config(gateway.base).replace('web_search = "disabled"\n', "")
    (home / "config.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(CODEX_HOME=str(home), ANYINT_API_KEY=gateway.key, NO_COLOR="1")
    proc = subprocess.run(
        [str(CODEX), "exec", "--json", "--skip-git-repo-check", "-m", "claude-sonnet-4-5", "hello"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "web_search" in proc.stdout + proc.stderr
