#!/usr/bin/env python3
"""Console page latency over a seeded ledger (a benchmark, not a test).

Seeds a SQLite store with BENCH_ROWS ledger rows (default 1,000,000) spread over the last 30
days (20 keys, 6 models, 3 accounts, 2% errors), starts `anyint serve` on it with an admin
token, signs in to the console like a browser and times each page BENCH_RUNS times (the first
answer is a warm-up and not counted). Prints a markdown table (median and max milliseconds)
and writes it to bench/results/console.md.

Usage: python3 bench/console.py
  ANYINT_BIN=/path/to/anyint   the binary (default target/release/anyint, else target/debug/anyint)
  BENCH_ROWS=1000000           ledger rows to seed
  BENCH_RUNS=5                 timed answers per page
  BENCH_STORE=/path/x.db       reuse (or keep) this seeded store instead of a temp one
"""

import http.cookiejar
import os
import pathlib
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, TOKEN, binary, fill_aggregates, start, stop  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4.1", "o4-mini"]
PAGES = [
    "/console/?range=hour",
    "/console/?range=day",
    "/console/?range=month",
    "/console/usage",
    "/console/usage?group_by=model",
    "/console/usage?group_by=key",
    "/console/usage?group_by=hour&from={day_ago}",
    "/console/directory",
]




def config(store):
    models = "".join(
        f'\n[[models]]\nid = "{m}"\nroutes = [{{ provider = "up", upstream_model = "{m}" }}]\n'
        f"price = {{ input = 150000, output = 600000 }}\n"
        for m in MODELS
    )
    return (
        f'[server]\nlisten = "127.0.0.1:0"\n\n[store]\nurl = "sqlite://{store}"\n\n'
        f'[[providers]]\nname = "up"\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "x"\n'
        + models
    )






def seed(store):
    db = sqlite3.connect(store)
    have = db.execute("SELECT COUNT(*) FROM usage_ledger").fetchone()[0]
    if have >= ROWS:
        print(f"store has {have} ledger rows; not seeding")
        return
    rng = random.Random(17)
    now_ms = int(time.time() * 1000)
    span = 30 * 86_400_000
    keys = [f"key_bench{i:02d}" for i in range(20)]
    accounts = ["acme", "globex", "initech"]
    started = time.monotonic()

    def rows():
        for i in range(have, ROWS):
            k = rng.randrange(len(keys))
            status = 429 if rng.random() < 0.01 else (500 if rng.random() < 0.01 else 200)
            p, c = rng.randrange(10, 2000), rng.randrange(5, 800)
            yield (
                f"req_bench{i:09d}", keys[k], accounts[k % 3], rng.choice(MODELS), "up",
                "m", "openai", 0, p, c, 0, 0, status, "ok" if status == 200 else "error",
                rng.randrange(50, 3000), now_ms - rng.randrange(span), p * 150 + c * 600, None, 0,
            )

    db.executemany(
        "INSERT INTO usage_ledger (request_id, key_id, account, model, provider, upstream_model, "
        "family, stream, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, "
        "status, outcome, latency_ms, created_at_ms, cost_micros, team_id, web_searches) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    db.commit()
    fill_aggregates(db)
    db.execute("ANALYZE")
    db.close()
    print(f"seeded {ROWS - have} ledger rows in {time.monotonic() - started:.1f} s")


def signed_in(base):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/console/sign-in").read().decode()
    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', page).group(1)
    data = urllib.parse.urlencode({"_csrf": csrf, "token": TOKEN}).encode()
    landed = opener.open(base + "/console/sign-in", data=data)
    assert landed.geturl().endswith("/console/"), landed.geturl()
    return opener


def main():
    tmp = tempfile.mkdtemp(prefix="anyint-console-bench-")
    store = os.environ.get("BENCH_STORE") or os.path.join(tmp, "ledger.db")
    cfg = pathlib.Path(tmp) / "anyint.toml"
    cfg.write_text(config(store))
    proc, _, _ = start(cfg)  # applies the migrations
    stop(proc)
    seed(store)
    proc, base, _ = start(cfg)
    try:
        opener = signed_in(base)
        day_ago = str(int(time.time()) - 86_400)
        lines = [
            f"Console pages over {ROWS:,} ledger rows (SQLite, 30 days), `{os.path.basename(os.path.dirname(binary()))}` build, "
            f"{RUNS} timed answers each after a warm-up.",
            "",
            "| page | median ms | max ms | bytes |",
            "|---|---:|---:|---:|",
        ]
        for path in PAGES:
            path = path.format(day_ago=day_ago)
            opener.open(base + path).read()
            times = []
            size = 0
            for _ in range(RUNS):
                t0 = time.perf_counter()
                with opener.open(base + path) as r:
                    assert r.status == 200, (path, r.status)
                    size = len(r.read())
                times.append((time.perf_counter() - t0) * 1000)
            lines.append(f"| `{path}` | {statistics.median(times):.0f} | {max(times):.0f} | {size:,} |")
            print(lines[-1], flush=True)
    finally:
        stop(proc)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "console.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
