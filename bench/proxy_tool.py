#!/usr/bin/env python3
"""Helpers for bench/proxy.sh (standard library only).

  bodies DIR MODEL            write the body-size sweep's request bodies into DIR
  procstat PID...             CPU ticks (utime+stime, and each apart), VmHWM and VmRSS (kB) summed over
                              PIDs, and the whole machine's busy ticks, as JSON
  resethwm PID...             reset the peak RSS (VmHWM) of PIDs (/proc/PID/clear_refs, "5")
  streams URL KEY BODY C SECS OUT
                              C connections, each sending BODY again as soon as its stream ended
                              (closed loop, keep-alive) for SECS; per stream: time to the first
                              `data:` byte and to the last byte; writes a JSON summary to OUT
  burst URL KEY BODY N OUT PID...
                              N streams opened at once, each read to its end; samples the summed
                              RSS of PIDs every 100 ms; writes a JSON summary to OUT
  report RAWDIR               the markdown report of proxy.sh from its raw results (stdout);
                              also writes RAWDIR/results.json

The HTTP client is asyncio's low-level Protocol over raw sockets, so that one event costs one
callback and the client stays cheap next to the servers it measures.
"""

import asyncio
import json
import os
import random
import resource
import statistics
import sys
import time
from urllib.parse import urlsplit


# --- request bodies ------------------------------------------------------------------------------

WORDS = ("the gateway forwards each request to its upstream and meters the usage of every call "
         "while the client waits for tokens; coding agents resend the whole conversation").split()


def text_of(size, rng):
    out, n = [], 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def single_message(model, size, rng):
    # The JSON envelope is ~60 bytes; the content makes up the rest.
    content = text_of(max(size - 80, 1), rng)
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})


def agent_history(model, target, rng):
    """An agent transcript: a system prompt, then turns of user text, assistant tool calls
    (arguments are JSON inside a string) and tool results (code with quotes and newlines)."""
    messages = [{"role": "system", "content": text_of(4000, rng)}]
    i = 0
    while len(messages) < 300:
        if i % 3 == 0:
            messages.append({"role": "user", "content": text_of(rng.randint(100, 600), rng)})
        elif i % 3 == 1:
            args = {"path": f"src/module_{i}.rs", "pattern": "fn \"main\"", "context": rng.randint(1, 9)}
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{i:04d}", "type": "function",
                "function": {"name": "read_file", "arguments": json.dumps(args)}}]})
        else:
            lines = [f'    let x{j} = "{text_of(40, rng)}";\t// {j}' for j in range(rng.randint(20, 60))]
            messages.append({"role": "tool", "tool_call_id": f"call_{i - 1:04d}",
                             "content": "fn main() {\n" + "\n".join(lines) + "\n}\n"})
        i += 1
    body = {"model": model, "messages": messages,
            "tools": [{"type": "function", "function": {
                "name": "read_file", "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]}
    # Scale the tool results until the body is within 1% of the target size.
    tools = [m for m in messages if m["role"] == "tool"]
    originals = [m["content"] for m in tools]
    scale = 1.0
    for _ in range(20):
        size = len(json.dumps(body))
        if abs(size - target) < target / 100:
            break
        fixed = size - sum(len(json.dumps(m["content"])) for m in tools)
        scale *= (target - fixed) / (size - fixed)
        for m, c in zip(tools, originals):
            m["content"] = (c * (int(scale) + 1))[: int(len(c) * scale)]
    return json.dumps(body)


def cmd_bodies(out_dir, model):
    rng = random.Random(7)
    os.makedirs(out_dir, exist_ok=True)
    sizes = {"1k": 1024, "64k": 64 * 1024, "512k": 512 * 1024, "2m": 2 * 1024 * 1024}
    for name, size in sizes.items():
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            f.write(single_message(model, size, rng))
    with open(os.path.join(out_dir, "agent500k.json"), "w") as f:
        f.write(agent_history(model, 500 * 1024, rng))
    names = list(sizes) + ["agent500k"]
    with open(os.path.join(out_dir, "sizes.json"), "w") as f:
        json.dump({n: os.path.getsize(os.path.join(out_dir, f"{n}.json")) for n in names}, f)


# --- /proc ---------------------------------------------------------------------------------------

def machine_ticks():
    """The whole machine's busy CPU ticks (/proc/stat): user and nice, and system with the
    interrupts' time. On loopback the kernel often does one side's work in the other's process
    (a write runs the receiver's TCP input), so a proxy's own system time alone can mislead."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return {"user": v[0] + v[1], "system": v[2] + v[5] + v[6]}


def procstat(pids):
    uticks = sticks = hwm = rss = anon = file_ = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # fields[0] is field 3 (state): utime is field 14, stime field 15.
            uticks += int(fields[11])
            sticks += int(fields[12])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1])
                    elif line.startswith("RssFile:"):
                        file_ += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return {"ticks": uticks + sticks, "uticks": uticks, "sticks": sticks, "machine": machine_ticks(),
            "hz": os.sysconf("SC_CLK_TCK"), "hwm_kb": hwm, "rss_kb": rss,
            "anon_kb": anon, "file_kb": file_, "pss_kb": pss_kb(pids)}


def rss_kb(pids):
    return procstat(pids)["rss_kb"]


def pss_kb(pids):
    """Proportional set size summed over PIDs: shared pages counted once across processes
    (nginx's master and workers share most of theirs)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


# --- HTTP client ---------------------------------------------------------------------------------

def request_bytes(url, key, body):
    u = urlsplit(url)
    head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return u.hostname, u.port, head.encode() + body


class Exchange(asyncio.Protocol):
    """One keep-alive connection; `run()` sends the request and resolves when its response has
    ended, with (status, time to first `data:`, time to the end, saw [DONE])."""

    def __init__(self, request):
        self.request = request
        self.transport = None
        self.done = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(None)
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-response"))

    def run(self):
        self.done = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.head = None
        self.status = 0
        self.chunked = False
        self.remaining = None  # content-length left, or bytes left in the current chunk
        self.ttfb = None
        self.tail = b""
        self.sent = time.perf_counter()
        self.transport.write(self.request)
        return self.done

    def data_received(self, data):
        if self.done is None or self.done.done():
            return
        if self.ttfb is None and (b"data:" in data or (self.tail + data[:8]).find(b"data:") >= 0):
            self.ttfb = time.perf_counter() - self.sent
        if self.head is None:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = self.buf[:end].decode("latin-1").lower()
            self.status = int(self.head.split(" ", 2)[1])
            self.chunked = "transfer-encoding: chunked" in self.head
            if not self.chunked:
                for line in self.head.split("\r\n"):
                    if line.startswith("content-length:"):
                        self.remaining = int(line.split(":", 1)[1])
            data, self.buf = self.buf[end + 4:], b""
        self.feed(data)

    def feed(self, data):
        self.tail = (self.tail + data)[-24:]
        if not self.chunked:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self.finish()
            return
        # Chunked: skip chunk payloads by length, parse the size lines.
        self.buf += data
        while True:
            if self.remaining:
                take = min(self.remaining, len(self.buf))
                self.buf = self.buf[take:]
                self.remaining -= take
                if self.remaining:
                    return
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            line = self.buf[:nl]
            self.buf = self.buf[nl + 2:]
            if not line:
                continue  # the CRLF after a chunk's payload
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.finish()
                return
            self.remaining = size

    def finish(self):
        self.done.set_result((self.status, self.ttfb, time.perf_counter() - self.sent,
                              b"[DONE]" in self.tail))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def streams(url, key, body, conc, secs):
    host, port, req = request_bytes(url, key, body)
    loop = asyncio.get_running_loop()
    ttfbs, totals, bad = [], [], []
    deadline = time.perf_counter() + secs

    async def worker():
        _, proto = await loop.create_connection(lambda: Exchange(req), host, port)
        try:
            while time.perf_counter() < deadline:
                try:
                    status, ttfb, total, done = await proto.run()
                except ConnectionError as e:
                    bad.append(str(e))
                    return
                if status != 200 or not done or ttfb is None:
                    bad.append(f"status {status}, [DONE] {'seen' if done else 'missing'}")
                    continue
                ttfbs.append(ttfb)
                totals.append(total)
        finally:
            proto.transport.close()

    await asyncio.gather(*(worker() for _ in range(conc)))
    return {"ok": len(totals), "bad": len(bad), "bad_examples": bad[:3], "seconds": secs,
            "ttfb_p50": pct(ttfbs, 50), "ttfb_p99": pct(ttfbs, 99),
            "p50": pct(totals, 50), "p99": pct(totals, 99)}


async def burst(url, key, body, n, pids):
    host, port, req = request_bytes(url, key, body)
    loop = asyncio.get_running_loop()
    peak = rss_kb(pids)
    peak_pss = pss_kb(pids)
    stop = asyncio.Event()
    # Streams connected and not yet ended: the burst's connects take a while on a slow machine,
    # so not all of its streams are open at the peak.
    open_now = most_open = 0
    # The sample taken with the most streams open, and RSS then.
    sampled_open, rss_then = 0, peak

    async def sample():
        nonlocal peak, peak_pss, sampled_open, rss_then
        while not stop.is_set():
            rss = rss_kb(pids)
            peak = max(peak, rss)
            if open_now >= sampled_open:
                sampled_open, rss_then = open_now, rss
            peak_pss = max(peak_pss, pss_kb(pids))
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    sampler = asyncio.create_task(sample())
    results, bad = [], []
    ticks = procstat(pids)["ticks"]
    started = time.perf_counter()
    gate = asyncio.Semaphore(256)  # connects in flight at once (the listen backlogs are finite)

    async def one():
        nonlocal open_now, most_open
        try:
            async with gate:
                _, proto = await loop.create_connection(lambda: Exchange(req), host, port)
            open_now += 1
            most_open = max(most_open, open_now)
            try:
                status, ttfb, total, done = await proto.run()
            finally:
                proto.transport.close()
                open_now -= 1
            if status == 200 and done:
                results.append(total)
            else:
                bad.append(f"status {status}, [DONE] {'seen' if done else 'missing'}")
        except OSError as e:
            bad.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - started
    end = procstat(pids)
    stop.set()
    await sampler
    return {"n": n, "ok": len(results), "bad": len(bad), "bad_examples": bad[:3],
            "seconds": elapsed, "p50": pct(results, 50), "max": max(results, default=None),
            "cpu_s": (end["ticks"] - ticks) / end["hz"],
            "sampled_peak_rss_kb": peak, "sampled_peak_pss_kb": peak_pss,
            "most_open": most_open, "sampled_open": sampled_open, "rss_then_kb": rss_then,
            "hwm_kb": procstat(pids)["hwm_kb"]}


# --- report --------------------------------------------------------------------------------------

def oha_run(path, cpu_path=None):
    """An oha JSON result (and the proxy's CPU ticks around it) as one run's figures."""
    o = json.load(open(path))
    codes = o.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    errors = {k: v for k, v in o.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
    total = o["summary"]["total"]
    pctl = o.get("latencyPercentiles", {})
    run = {"rps": ok / total if total else 0.0, "p50": pctl.get("p50"), "p99": pctl.get("p99"),
           "ok": ok, "requests": sum(codes.values()),
           "bad": sum(v for k, v in codes.items() if not k.startswith("2")) + sum(errors.values()),
           "codes": codes, "errors": errors}
    if cpu_path:
        before, after = (json.loads(line) for line in open(cpu_path).read().splitlines())
        hz = after["hz"]
        run["cpu_s"] = (after["ticks"] - before["ticks"]) / hz
        # Older raw files have the sum only.
        if "uticks" in before and "uticks" in after:
            run["user_s"] = (after["uticks"] - before["uticks"]) / hz
            run["system_s"] = (after["sticks"] - before["sticks"]) / hz
        if "machine" in before and "machine" in after:
            run["machine_s"] = (sum(after["machine"].values()) - sum(before["machine"].values())) / hz
    return run


def streams_run(path):
    """A `streams` result (paced streams) as one run's figures."""
    run = json.load(open(path))
    run["requests"] = run["ok"] + run["bad"]
    return run


def load_raw(raw):
    """The results of one proxy.sh run from its raw directory."""
    meta = json.load(open(os.path.join(raw, "meta.json")))
    r = {"meta": meta, "main": {}, "bodies": {}, "slow": [], "failures": []}
    for proxy in ("nginx", "floor", "anyint"):
        for mode in ("json", "sse", "open"):
            f = os.path.join(raw, f"main-{mode}-{proxy}.oha.json")
            if os.path.exists(f):
                cpu = os.path.join(raw, f"main-{mode}-{proxy}.cpu")
                r["main"][f"{mode}-{proxy}"] = oha_run(f, cpu if os.path.exists(cpu) else None)
        f = os.path.join(raw, f"main-paced-{proxy}.json")
        if os.path.exists(f):
            r["main"][f"paced-{proxy}"] = streams_run(f)
    r["lat"] = []
    for rnd in range(1, meta.get("lat_rounds", 0) + 1):
        got = {}
        for proxy in ("nginx", "anyint"):
            f = os.path.join(raw, f"lat-open-{rnd}-{proxy}.oha.json")
            if os.path.exists(f):
                got[f"open-{proxy}"] = oha_run(f)
            f = os.path.join(raw, f"lat-paced-{rnd}-{proxy}.json")
            if os.path.exists(f):
                got[f"paced-{proxy}"] = streams_run(f)
        for key, run in got.items():
            r["main"][f"round {rnd} {key}"] = run
        if len(got) == 4:
            r["lat"].append(got)
    for key, run in r["main"].items():
        if run["bad"] or not run["ok"]:
            r["failures"].append(f"{key}: {run['ok']} ok, {run['bad']} failed "
                                 f"{run.get('codes') or run.get('bad_examples') or ''} {run.get('errors') or ''}")
    rss = os.path.join(raw, "rss.json")
    if os.path.exists(rss):
        r["rss"] = json.load(open(rss))
    for name in meta.get("bodies", []):
        runs = {}
        for proxy in ("nginx", "anyint"):
            f = os.path.join(raw, f"body-{name}-{proxy}.oha.json")
            if os.path.exists(f):
                runs[proxy] = oha_run(f, os.path.join(raw, f"body-{name}-{proxy}.cpu"))
                if runs[proxy]["bad"] or not runs[proxy]["ok"]:
                    r["failures"].append(f"body {name} via {proxy}: {runs[proxy]['ok']} ok, "
                                         f"{runs[proxy]['codes']} {runs[proxy]['errors']}")
        if len(runs) == 2:
            runs["bytes"] = json.load(open(os.path.join(raw, "body-sizes.json")))[name]
            r["bodies"][name] = runs
    for n in meta.get("streams", []):
        for proxy in ("nginx", "floor", "anyint"):
            f = os.path.join(raw, f"slow-{n}-{proxy}.json")
            if not os.path.exists(f):
                continue
            s = json.load(open(f))
            extra = json.load(open(os.path.join(raw, f"slow-{n}-{proxy}.rss.json")))
            s.update(extra)
            s["proxy"] = proxy
            s["peak_kb"] = max(s["sampled_peak_rss_kb"], s["hwm_kb"])
            r["slow"].append(s)
            if s["bad"] or s["ok"] != s["n"]:
                r["failures"].append(f"{n} slow streams via {proxy}: {s['ok']} completed, "
                                     f"{s['bad']} failed {s['bad_examples']}")
    cold = os.path.join(raw, "slow-cold-anyint.json")
    if os.path.exists(cold):
        r["slow_cold_kb"] = json.load(open(cold))["rss_kb"]
    soak = os.path.join(raw, "soak.rss")
    if os.path.exists(soak):
        samples = [json.loads(line) for line in open(soak).read().splitlines() if line.strip()]
        run = oha_run(os.path.join(raw, "soak.oha.json"))
        r["soak"] = {"samples": samples, "run": run}
        if run["bad"] or not run["ok"]:
            r["failures"].append(f"soak: {run['ok']} ok, {run['bad']} failed {run['codes']} {run['errors']}")
    return r


def cmd_report(raw):
    r = load_raw(raw)
    json.dump(r, open(os.path.join(raw, "results.json"), "w"), indent=1)
    meta = r["meta"]
    out = []
    w = out.append
    w(f"# Proxy benchmark: anyint vs nginx proxy_pass")
    w("")
    w(f"- commit: {meta['commit']}; {meta['anyint']}; {meta['nginx']}; {meta['oha']}")
    w(f"- {meta['cpus']} CPUs, load average at start {meta['load']}; {meta['seconds']} s per run "
      f"after {meta['warmup']} s of warm-up; nginx proxy: {meta['nginx_workers']} worker(s)")
    if meta.get("pinned"):
        w(f"- pinned (`BENCH_PIN`): the proxy under test runs alone on one core (`{meta['pinned']}`), "
          "the load generator, the upstream and the stream tools on the others")
    w("- upstream: static nginx (echo module: a chat completion, an SSE body of 20 events in one "
      "write, 21 events 1 ms or 100 ms apart); gateway: a key with rpm and concurrency limits, "
      "SQLite ledger, journal on, `log_level = \"warn\"`")
    w("")

    def cpu_ms(run, key="cpu_s"):
        """A run's CPU figure `key` (seconds over the run) in ms a request."""
        return run[key] * 1000 / run["requests"] if run.get("requests") else None

    def ms(v, d=2):
        return "n/a" if v is None else f"{v * 1000:.{d}f}"

    def num(v, fmt="{:,.0f}"):
        return "n/a" if v is None else fmt.format(v)

    def ratio(a, b, fmt="{:.0%}"):
        return "n/a" if a is None or b is None or b == 0 else fmt.format(a / b)

    def signed_ms(v):
        return "n/a" if v is None else f"{v * 1000:+.2f} ms"

    def diff_ms(a, b):
        return signed_ms(None if a is None or b is None else b - a)

    m = r["main"]
    rows = []
    # The floor (the HTTP stack alone, `bare_proxy`) is measured on these four rows only; the
    # other rows leave its two columns empty.
    floor = {}
    for mode, label in (("json", "c32 non-streaming, req/s"), ("sse", "c32 streaming (20 events, one write), req/s")):
        n, g, f = m.get(f"{mode}-nginx"), m.get(f"{mode}-anyint"), m.get(f"{mode}-floor")
        if n and g:
            rows.append((label, num(n["rps"]), num(g["rps"]), ratio(g["rps"], n["rps"])))
            if f:
                floor[label] = (num(f["rps"]), ratio(f["rps"], n["rps"]))
    for mode, label in (("json", "CPU per request, c32 non-streaming, ms"), ("sse", "CPU per request, c32 streaming, ms")):
        n, g, f = m.get(f"{mode}-nginx"), m.get(f"{mode}-anyint"), m.get(f"{mode}-floor")
        if n and g:
            rows.append((label, num(cpu_ms(n), "{:.3f}"), num(cpu_ms(g), "{:.3f}"),
                         ratio(cpu_ms(g), cpu_ms(n), "{:.1f}×")))
            if f:
                floor[label] = (num(cpu_ms(f), "{:.3f}"), ratio(cpu_ms(f), cpu_ms(n), "{:.1f}×"))
    n, g = m.get("open-nginx"), m.get("open-anyint")
    if n and g:
        rows.append((f"{meta['rate']} req/s open loop, p50 / p99, ms", f"{ms(n['p50'])} / {ms(n['p99'])}",
                     f"{ms(g['p50'])} / {ms(g['p99'])}",
                     f"{diff_ms(n['p50'], g['p50'])} / {diff_ms(n['p99'], g['p99'])}"))
    n, g = m.get("paced-nginx"), m.get("paced-anyint")
    if n and g:
        rows.append((f"{meta['paced_c']} paced streams (21 events 1 ms apart): TTFB p50, ms",
                     ms(n["ttfb_p50"]), ms(g["ttfb_p50"]), diff_ms(n["ttfb_p50"], g["ttfb_p50"])))
        rows.append((f"{meta['paced_c']} paced streams: p99 latency, ms", ms(n["p99"], 1), ms(g["p99"], 1),
                     ratio(g["p99"], n["p99"], "{:.2f}×")))
    rss = r.get("rss", {})
    if rss:
        rows.append(("RSS peak during the runs above (VmHWM), MB", num(rss["nginx_hwm_kb"] / 1024, "{:.0f}"),
                     num(rss["anyint_hwm_kb"] / 1024, "{:.0f}"),
                     ratio(rss["anyint_hwm_kb"], rss["nginx_hwm_kb"], "{:.1f}×")))
        rows.append(("RSS idle after start, MB", num(rss["nginx_idle_kb"] / 1024, "{:.0f}"),
                     num(rss["anyint_idle_kb"] / 1024, "{:.0f}"), ""))
    if rows:
        extra = ("HTTP stack alone", "stack ÷ nginx") if floor else ()
        w("| " + " | ".join(("test", "nginx proxy_pass", "anyint", "anyint ÷ nginx") + extra) + " |")
        w("|---|" + "---:|" * (3 + len(extra)))
        for row in rows:
            w("| " + " | ".join(row + (floor.get(row[0], ("", "")) if floor else ())) + " |")
        w("")
        w("(nginx figures are summed over its master and worker processes; the upstream's own CPU is not counted.")
        if floor:
            w("\"HTTP stack alone\" is `bare_proxy`: the gateway's server, client and runtime set-up forwarding "
              "every request unchanged, with no key, limits, body scan, routing or metering.)")
        else:
            w("The floor, the HTTP stack alone, was not measured: no `bare_proxy` binary.)")
        w("")

    if r.get("lat"):
        w(f"### Latency in alternating rounds ({len(r['lat'])} × nginx then anyint, {meta['seconds']} s each)")
        w("")
        w("The open loop and the paced streams again, after the runs above, alternating the proxies "
          "so that the machine's drift over a minute falls on both alike; the last row is the "
          "median of the rounds.")
        w("")
        w(f"| round | open loop ({meta['rate']} req/s) p50 / p99, nginx, ms | the same, anyint, ms | added | "
          f"paced TTFB p50, nginx, ms | the same, anyint, ms | added | paced p99 ÷ nginx |")
        w("|--:|--:|--:|--:|--:|--:|--:|--:|")
        added = {"p50": [], "p99": [], "ttfb": [], "ratio": []}
        for i, got in enumerate(r["lat"], 1):
            n, g = got["open-nginx"], got["open-anyint"]
            pn, pg = got["paced-nginx"], got["paced-anyint"]
            w(f"| {i} | {ms(n['p50'])} / {ms(n['p99'])} | {ms(g['p50'])} / {ms(g['p99'])} | "
              f"{diff_ms(n['p50'], g['p50'])} / {diff_ms(n['p99'], g['p99'])} | {ms(pn['ttfb_p50'])} | "
              f"{ms(pg['ttfb_p50'])} | {diff_ms(pn['ttfb_p50'], pg['ttfb_p50'])} | "
              f"{ratio(pg['p99'], pn['p99'], '{:.2f}×')} |")
            for key, a, b in (("p50", n["p50"], g["p50"]), ("p99", n["p99"], g["p99"]),
                              ("ttfb", pn["ttfb_p50"], pg["ttfb_p50"])):
                if a is not None and b is not None:
                    added[key].append(b - a)
            if pn["p99"]:
                added["ratio"].append(pg["p99"] / pn["p99"])

        def median(v):
            return statistics.median(v) if v else None

        w(f"| median | | | {signed_ms(median(added['p50']))} / {signed_ms(median(added['p99']))} | | | "
          f"{signed_ms(median(added['ttfb']))} | {num(median(added['ratio']), '{:.2f}×')} |")
        w("")

    if r.get("bodies"):
        w("## Body-size sweep (c=1, non-streaming, OpenAI passthrough)")
        w("")
        w("| body | bytes | nginx CPU/req, ms | anyint CPU/req, ms | CPU ratio | nginx p50, ms | anyint p50, ms | added p50 | target added p50 |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for name, b in r["bodies"].items():
            n, g = b["nginx"], b["anyint"]
            target = 0.1 + 0.25 * b["bytes"] / 1e6
            w(f"| {name} | {b['bytes']:,} | {num(cpu_ms(n), '{:.3f}')} | {num(cpu_ms(g), '{:.3f}')} | "
              f"{ratio(cpu_ms(g), cpu_ms(n), '{:.1f}×')} | {ms(n['p50'], 3)} | {ms(g['p50'], 3)} | "
              f"{diff_ms(n['p50'], g['p50'])} | ≤ {target:.2f} ms |")
        w("")
        split = [(name, b) for name, b in r["bodies"].items()
                 if all(k in b[p] for p in ("nginx", "anyint") for k in ("user_s", "machine_s"))]
        if split:
            w("Where the CPU goes, per request: each proxy's user and system time, and the whole "
              "machine's busy time over the same run (load generator, proxy and upstream together). "
              "On loopback the kernel runs much of a receiver's TCP input inside the sender's write, "
              "so a proxy's system time depends on how its writes interleave with its peers' reads; "
              "the whole machine's figure does not.")
            w("")
            w("| body | nginx user / system, ms | anyint user / system, ms | machine via nginx, ms | machine via anyint, ms | machine ratio |")
            w("|---|--:|--:|--:|--:|--:|")
            for name, b in split:
                n, g = b["nginx"], b["anyint"]
                w(f"| {name} | {num(cpu_ms(n, 'user_s'), '{:.3f}')} / {num(cpu_ms(n, 'system_s'), '{:.3f}')} | "
                  f"{num(cpu_ms(g, 'user_s'), '{:.3f}')} / {num(cpu_ms(g, 'system_s'), '{:.3f}')} | "
                  f"{num(cpu_ms(n, 'machine_s'), '{:.3f}')} | {num(cpu_ms(g, 'machine_s'), '{:.3f}')} | "
                  f"{ratio(cpu_ms(g, 'machine_s'), cpu_ms(n, 'machine_s'), '{:.2f}×')} |")
            w("")

    if r.get("slow"):
        w("## Many slow streams (21 events 100 ms apart, all opened at once)")
        w("")
        w(f"RSS after: VmRSS {meta['after']} s after the last stream of the burst ended.")
        w("")
        w("RSS is summed over the proxy's processes (nginx: master and workers, which share pages, "
          "so PSS is given too). `floor` is `bare_proxy`, the gateway's HTTP stack alone.")
        w("")
        w("CPU per stream: the proxy's CPU time (user + system) from the first connect to the last "
          "stream's end, over the streams completed.")
        w("")
        w("Per stream: the peak's rise over RSS before, divided by all the burst's streams, as if "
          "all were open at once. On a machine whose connects take longer than a stream lasts, "
          "fewer are: most open at once counts them, and per open stream divides the rise in RSS at "
          "the sample (every 100 ms) that saw the most streams open by the streams open then. "
          "Memory of streams already ended that the allocator has not returned counts too.")
        w("")
        if r.get("slow_cold_kb"):
            w(f"The gateway was restarted on a fresh store before the bursts: {r['slow_cold_kb'] / 1024:.1f} MB "
              "at its start. RSS before is read after a preflight (one request of each kind), as the "
              "main part's idle is.")
            w("")
        w("| streams | proxy | completed | failed | wall, s | CPU per stream, ms | peak RSS, MB | peak PSS, MB | per stream (RSS), KB | most open at once | open at that sample | per open stream, KB | RSS before, MB | RSS after, MB | after ÷ before | PSS after, MB |")
        w("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for s in r["slow"]:
            per = (s["peak_kb"] - s["before_kb"]) / s["n"]
            open_then = s.get("sampled_open")
            per_open = ((s["rss_then_kb"] - s["before_kb"]) / open_then) if open_then else None
            cpu = s["cpu_s"] * 1000 / s["ok"] if s.get("cpu_s") is not None and s["ok"] else None
            w(f"| {s['n']:,} | {s['proxy']} | {s['ok']:,} | {s['bad']:,} | {s['seconds']:.1f} | {num(cpu, '{:.2f}')} | "
              f"{s['peak_kb'] / 1024:.0f} | {s['sampled_peak_pss_kb'] / 1024:.0f} | {per:.1f} | "
              f"{num(s.get('most_open'), '{:,}')} | {num(open_then, '{:,}')} | {num(per_open, '{:.1f}')} | "
              f"{s['before_kb'] / 1024:.1f} | {s['after_kb'] / 1024:.1f} | "
              f"{num(s['after_kb'] / s['before_kb'] if s['before_kb'] else None, '{:.2f}×')} | "
              f"{s['after_pss_kb'] / 1024:.0f} |")
        w("")

    if r.get("soak"):
        samples, run = r["soak"]["samples"], r["soak"]["run"]
        w("## Soak (c32 non-streaming through the gateway, fresh store)")
        w("")
        w(f"{run['ok']:,} requests at {run['rps']:,.0f} req/s. RSS (VmRSS) of the gateway over the run:")
        w("")
        w("| seconds | RSS, MB | of it anonymous, MB | of it file-backed (binary, SQLite's map), MB | peak so far (VmHWM), MB |")
        w("|--:|--:|--:|--:|--:|")
        for s in samples:
            st = s["stat"]
            w(f"| {s['t']} | {st['rss_kb'] / 1024:.1f} | {st.get('anon_kb', 0) / 1024:.1f} | "
              f"{st.get('file_kb', 0) / 1024:.1f} | {st['hwm_kb'] / 1024:.1f} |")
        # Flat: the second half's readings against the first minute's (warm-up) reading.
        late = [s["stat"]["rss_kb"] for s in samples if s["t"] >= 60]
        if len(late) >= 2:
            half = late[len(late) // 2:]
            w("")
            w(f"From the first reading after a minute to the last: {late[0] / 1024:.1f} → {late[-1] / 1024:.1f} MB "
              f"({(late[-1] - late[0]) / late[0]:+.1%}); second half min–max {min(half) / 1024:.1f}–{max(half) / 1024:.1f} MB.")
        w("")

    bad = r.get("failures", [])
    if bad:
        w("**Runs with errors — these figures are not valid:**")
        w("")
        for b in bad:
            w(f"- {b}")
        w("")
    sys.stdout.write("\n".join(out) + "\n")
    sys.exit(1 if bad else 0)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "bodies":
        cmd_bodies(args[0], args[1])
    elif cmd == "procstat":
        print(json.dumps(procstat([int(p) for p in args])))
    elif cmd == "resethwm":
        for p in args:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
    elif cmd == "streams":
        url, key, body, conc, secs, out = args
        raise_nofile()
        res = asyncio.run(streams(url, key, open(body, "rb").read(), int(conc), float(secs)))
        json.dump(res, open(out, "w"))
    elif cmd == "burst":
        url, key, body, n, out, *pids = args
        raise_nofile()
        res = asyncio.run(burst(url, key, open(body, "rb").read(), int(n), [int(p) for p in pids]))
        json.dump(res, open(out, "w"))
    elif cmd == "report":
        cmd_report(args[0])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
