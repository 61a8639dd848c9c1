"""What the Python benchmarks share: finding the binary, starting and stopping `anyint serve`,
and filling the aggregates of a seeded ledger. The gateway keeps hourly buckets and monthly
totals beside the ledger in the same transaction as its rows, so a benchmark that writes
ledger rows directly must fill them the same way (the SQL is the SQLite half of migration 11).
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOKEN = "bench-admin-token"


def binary():
    """ANYINT_BIN, else target/release/anyint, else target/debug/anyint."""
    if os.environ.get("ANYINT_BIN"):
        return os.environ["ANYINT_BIN"]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("release", "debug"):
        if (target / profile / "anyint").exists():
            return str(target / profile / "anyint")
    sys.exit("build anyint first (cargo build --release -p anyint)")


def start(cfg):
    """Starts `anyint serve --config cfg` with the admin token; returns (process, base URL,
    seconds from launch to listening)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYINT_")}
    env["ANYINT_ADMIN_TOKEN"] = TOKEN
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [binary(), "serve", "--config", str(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("anyint listening on "):
            return proc, line.split()[-1], time.monotonic() - t0
    sys.exit("anyint exited before it listened")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)

HOURLY = """
INSERT INTO usage_hourly (hour_ms, key_id, model, account, team_id, requests, errors,
  prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, web_searches,
  cost_micros)
SELECT CAST(created_at_ms / 3600000 AS BIGINT) * 3600000, key_id, model, account,
  COALESCE(team_id, ''), COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
  SUM(prompt_tokens), SUM(completion_tokens), SUM(cache_read_tokens),
  SUM(cache_write_tokens), SUM(web_searches), SUM(cost_micros)
FROM usage_ledger GROUP BY 1, 2, 3, 4, 5
"""

MONTH = "CAST(strftime('%s', hour_ms / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000"

TOTALS = f"""
INSERT INTO usage_totals (month_ms, scope, id, requests, cost_micros)
SELECT m, scope, id, SUM(requests), SUM(cost_micros) FROM (
  SELECT {MONTH} AS m, 'key' AS scope, key_id AS id, requests, cost_micros FROM usage_hourly
  UNION ALL
  SELECT {MONTH}, 'team', team_id, requests, cost_micros FROM usage_hourly WHERE team_id <> ''
  UNION ALL
  SELECT {MONTH}, 'account', account, requests, cost_micros FROM usage_hourly
) GROUP BY m, scope, id
"""


def fill_aggregates(db):
    """Recomputes the buckets and totals from the ledger rows (an open sqlite3 connection)."""
    db.execute("DELETE FROM usage_hourly")
    db.execute("DELETE FROM usage_totals")
    db.execute(HOURLY)
    db.execute(TOTALS)
    db.commit()
