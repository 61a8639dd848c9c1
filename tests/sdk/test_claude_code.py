"""Claude Code (npm `@anthropic-ai/claude-code`, pinned in tests/clients) end to end against the
gateway's Anthropic family, with `ANTHROPIC_BASE_URL` at /anthropic, for a Claude-, a GPT- and
a Gemini-backed model: `claude -p` answers text, and runs its Bash tool and finishes the loop.
The environment is the one the README shows.

The emulator answers "Reply with exactly: …" with that text, and `Call tool NAME with {…}` with
one call of NAME carrying exactly that object; once the tool's result is back it answers
"Tool result received: …", which ends Claude Code's loop."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ROOT, tag

CLAUDE = ROOT / "tests" / "clients" / "node_modules" / ".bin" / "claude"
MODELS = ["claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-flash"]

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not CLAUDE.exists(),
    reason="Claude Code not installed: Node is missing, or scripts/test did not run `npm ci` in tests/clients",
)


def run_claude(gateway, tmp_path: pathlib.Path, model: str, prompt: str, *args: str):
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=f"{gateway.base}/anthropic",
        ANTHROPIC_API_KEY=gateway.key,
        ANTHROPIC_MODEL=model,
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        NO_COLOR="1",
    )
    proc = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", *args],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON result (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return proc, json.loads(lines[-1]), work


@pytest.mark.parametrize("model", MODELS)
def test_claude_code_answers_text(gateway, tmp_path, model):
    t = tag()
    proc, result, _ = run_claude(gateway, tmp_path, model, f"Reply with exactly: AnyInt OK [emulate: tag={t}]")
    assert proc.returncode == 0, result
    assert result["is_error"] is False, result
    assert result["result"] == "AnyInt OK"
    assert result["num_turns"] == 1
    assert gateway.emulator_count(t) == 1


@pytest.mark.parametrize("model", MODELS)
def test_claude_code_runs_its_bash_tool_and_finishes(gateway, tmp_path, model):
    t = tag()
    out = tmp_path / "work" / "made-by-bash.txt"
    args = json.dumps({"command": f"echo made by bash > {out}", "description": "Write a file"})
    proc, result, _ = run_claude(
        gateway,
        tmp_path,
        model,
        f"Call tool Bash with {args} [emulate: tag={t}]",
        "--allowedTools",
        "Bash",
    )
    assert proc.returncode == 0, result
    assert result["is_error"] is False, result
    # The command ran: the file exists with what it wrote.
    assert out.read_text() == "made by bash\n"
    assert result["permission_denials"] == [], result
    assert result["result"].startswith("Tool result received:"), result
    assert result["num_turns"] == 2, result
    # Two model turns reached the upstream: the call, then the answer to its result.
    assert gateway.emulator_count(t) == 2
