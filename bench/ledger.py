#!/usr/bin/env python3
"""Idle cost against the ledger's size (a benchmark, not a test).

Starts `anyint serve` on an empty SQLite store and on one seeded with BENCH_ROWS ledger rows
(default 5,000,000) in the current month (50 keys, 6 models, 5 accounts, 5 teams), with the
buckets and totals the gateway keeps beside them. For each it measures the time from launch to
"listening", the CPU the idle gateway uses over BENCH_IDLE_SECONDS (utime + stime from
/proc/PID/stat; default 60) and its RSS at the end (VmRSS, and the peak VmHWM). Before the
measurement it checks that the spend the gateway reports (the admin usage API grouped by
account for the month) equals the ledger's own sums. Prints a markdown table and writes it to
bench/results/ledger.md.

Usage: python3 bench/ledger.py
  ANYINT_BIN=/path/to/anyint   the binary (default target/release/anyint, else target/debug/anyint)
  BENCH_ROWS=5000000           ledger rows to seed
  BENCH_IDLE_SECONDS=60        idle measurement per store
  BENCH_STORE=/path/x.db       reuse (or keep) this seeded store instead of a temp one
"""

import calendar
import json
import os
import pathlib
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, TOKEN, binary, fill_aggregates, start, stop  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "5000000"))
IDLE = int(os.environ.get("BENCH_IDLE_SECONDS", "60"))
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4.1", "o4-mini"]
TICKS = os.sysconf("SC_CLK_TCK")




def config(store, journal):
    models = "".join(
        f'\n[[models]]\nid = "{m}"\nroutes = [{{ provider = "up", upstream_model = "{m}" }}]\n'
        f"price = {{ input = 150000, output = 600000 }}\n"
        for m in MODELS
    )
    return (
        f'[server]\nlisten = "127.0.0.1:0"\nlog_level = "warn"\n\n[store]\nurl = "sqlite://{store}"\n\n'
        f'[meter]\njournal_dir = "{journal}"\n\n'
        f'[[providers]]\nname = "up"\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "x"\n'
        + models
    )






def cpu_ticks(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def status_kb(pid, name):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def month_start_ms():
    return calendar.timegm(time.strptime(time.strftime("%Y-%m-01", time.gmtime()), "%Y-%m-%d")) * 1000


def seed(store):
    db = sqlite3.connect(store)
    have = db.execute("SELECT COUNT(*) FROM usage_ledger").fetchone()[0]
    if have >= ROWS:
        print(f"store has {have:,} ledger rows; not seeding", flush=True)
        db.close()
        return
    started = time.monotonic()
    now_ms = int(time.time() * 1000)
    month_start = month_start_ms()
    span = max(now_ms - month_start, 3_600_000)
    models = ", ".join(f"'{m}'" for m in MODELS)
    # One statement generating the rows inside SQLite: minutes for millions, not hours.
    db.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT {have} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {ROWS})
        INSERT INTO usage_ledger (request_id, key_id, account, model, provider, upstream_model,
          family, stream, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
          status, outcome, latency_ms, created_at_ms, cost_micros, team_id, web_searches)
        SELECT printf('req_seed%09d', i), printf('key_seed%02d', i % 50), printf('acct%d', i % 5),
          json_extract(json_array({models}), '$[' || (i % 6) || ']'), 'up', 'm', 'openai', 0,
          10 + (i * 7) % 2000, 5 + (i * 13) % 800, 0, 0,
          CASE WHEN i % 100 = 0 THEN 500 ELSE 200 END, 'ok', 50 + i % 3000,
          {month_start} + (i * 7919) % {span},
          (10 + (i * 7) % 2000) * 150 + (5 + (i * 13) % 800) * 600,
          printf('team%d', i % 5), 0
        FROM n
        """
    )
    db.commit()
    fill_aggregates(db)
    db.execute("ANALYZE")
    db.close()
    print(f"seeded {ROWS - have:,} ledger rows in {time.monotonic() - started:.0f} s", flush=True)


def ledger_sums(store):
    db = sqlite3.connect(store)
    month_start = month_start_ms()
    rows = db.execute(
        "SELECT account, SUM(cost_micros) FROM usage_ledger WHERE created_at_ms >= ? GROUP BY account",
        (month_start,),
    ).fetchall()
    db.close()
    return {a: c for a, c in rows}, month_start


def reported(base, month_start):
    req = urllib.request.Request(
        f"{base}/admin/v1/usage?group_by=account&from={month_start // 1000}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req) as r:
        data = json.load(r)["data"]
    return {g["group"]: g["cost_micros"] for g in data}


def measure(label, store, tmp):
    journal = os.path.join(tmp, f"journal-{label}")
    cfg = pathlib.Path(tmp) / f"{label}.toml"
    cfg.write_text(config(store, journal))
    proc, base, startup = start(cfg)
    try:
        want, month_start = ledger_sums(store)
        got = reported(base, month_start)
        assert got == want, f"{label}: the usage API says {got}, the ledger {want}"
        time.sleep(2)  # let start-up work settle before the idle window
        c0, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(IDLE)
        c1, t1 = cpu_ticks(proc.pid), time.monotonic()
        rss, hwm = status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM")
    finally:
        stop(proc)
    cpu = 100.0 * (c1 - c0) / TICKS / (t1 - t0)
    return startup, cpu, rss, hwm


def main():
    tmp = tempfile.mkdtemp(prefix="anyint-ledger-bench-")
    try:
        empty = os.path.join(tmp, "empty.db")
        seeded = os.environ.get("BENCH_STORE") or os.path.join(tmp, "seeded.db")
        for store in (empty, seeded):
            cfg = pathlib.Path(tmp) / "migrate.toml"
            cfg.write_text(config(store, os.path.join(tmp, "journal-migrate")))
            proc, _, _ = start(cfg)  # applies the migrations
            stop(proc)
        seed(seeded)
        lines = [
            f"Idle gateway against the ledger's size (SQLite, `{os.path.basename(os.path.dirname(binary()))}` build, "
            f"{IDLE} s idle each; spend checked against the ledger's sums first).",
            "",
            "| store | start to listening, ms | idle CPU, % of a core | RSS after, MB | peak RSS, MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, store in (("empty", empty), (f"{ROWS:,} rows", seeded)):
            startup, cpu, rss, hwm = measure(label.split()[0], store, tmp)
            lines.append(f"| {label} | {startup * 1000:.0f} | {cpu:.2f} | {rss / 1024:.1f} | {hwm / 1024:.1f} |")
            print(lines[-1], flush=True)
    finally:
        if not os.environ.get("BENCH_STORE"):
            shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ledger.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
