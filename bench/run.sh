#!/usr/bin/env bash
# Gateway overhead benchmark: the same load, sent by oha to the upstream emulator directly and
# through the anyint gateway, for non-streaming and streaming chat completions at two
# concurrencies. Prints a markdown table and writes it to bench/results/latest.md.
#
# Usage: bench/run.sh            (see bench/README.md for the knobs)
#   BENCH_SECONDS=10             measured seconds per run
#   BENCH_WARMUP=2               warm-up seconds before each measured run (0 = none)
#   BENCH_CONCURRENCY="1 32"     oha -c values
#   BENCH_MODES="nonstream stream"
#   BENCH_LOG_LEVELS="warn info" gateway [server] log_level variants; the first is the headline
#   BENCH_OHA_VERSION=1.16.0     oha version installed into bench/.tools
#   OHA=/path/to/oha             use this oha instead of installing one
#   ANYINT_BIN=/path/to/anyint   use this binary and skip `cargo build --release`
#   BENCH_KEEP_TMP=1             keep the temp dir (configs, logs, raw oha JSON) on exit
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 32}"
MODES="${BENCH_MODES:-nonstream stream}"
LOG_LEVELS="${BENCH_LOG_LEVELS:-warn info}"
OHA_VERSION="${BENCH_OHA_VERSION:-1.16.0}"
MODEL="gpt-4o-mini"
PROMPT="Reply with exactly: hello world"

for v in "$SECONDS_PER_RUN" "$WARMUP"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_SECONDS/BENCH_WARMUP must be whole seconds, got '$v'" >&2; exit 2; }
done
[[ "$SECONDS_PER_RUN" -ge 1 ]] || { echo "bench: BENCH_SECONDS must be >= 1" >&2; exit 2; }
for m in $MODES; do
    [[ "$m" == nonstream || "$m" == stream ]] || { echo "bench: unknown mode '$m' in BENCH_MODES" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "bench: python3 is required (stdlib only)" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench: curl is required" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- cleanup -------------------------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/anyint-bench.XXXXXX")"
PIDS=()   # background servers we started, with a name and a log file each
NAMES=()
LOGS=()
OHA_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    if [[ -n "$OHA_PID" ]]; then
        kill -TERM "$OHA_PID" 2>/dev/null || true
        wait "$OHA_PID" 2>/dev/null || true
    fi
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        # Graceful stop first (the gateway flushes its usage meter), then insist.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "${BENCH_KEEP_TMP:-}" ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits for a line matching the regex $2 in file $1 written by pid $3; prints the http://ADDR.
wait_for_addr() {
    local file="$1" pattern="$2" pid="$3" addr=""
    for _ in $(seq 1 300); do
        addr="$(grep -Eo "$pattern" "$file" 2>/dev/null | head -n1 | grep -Eo 'http://[0-9.:]+' || true)"
        if [[ -n "$addr" ]]; then printf '%s\n' "$addr"; return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: process $pid exited before it was ready; its output:" >&2
            cat "$file" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "bench: timed out waiting for '$pattern' in $file" >&2
    cat "$file" >&2 || true
    return 1
}

# --- oha -----------------------------------------------------------------------------------------
if [[ -z "${OHA:-}" ]]; then
    OHA="$BENCH_DIR/.tools/bin/oha"
    if [[ ! -x "$OHA" ]] || [[ "$("$OHA" --version 2>/dev/null)" != "oha $OHA_VERSION" ]]; then
        log "installing oha $OHA_VERSION into bench/.tools (one-off, takes a few minutes)"
        cargo install oha --version "$OHA_VERSION" --locked --root "$BENCH_DIR/.tools" >&2
    fi
fi
OHA_VERSION_SEEN="$("$OHA" --version)"
log "using $OHA_VERSION_SEEN ($OHA)"

# --- anyint --------------------------------------------------------------------------------------
if [[ -z "${ANYINT_BIN:-}" ]]; then
    log "cargo build --release -p anyint (may wait for the cargo lock)"
    (cd "$ROOT" && cargo build --release -p anyint >&2)
    ANYINT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/anyint"
    GIT_REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(cd "$ROOT" && git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
        GIT_REV="$GIT_REV+uncommitted changes"
    fi
else
    GIT_REV="unknown (ANYINT_BIN=$ANYINT_BIN)"
fi
[[ -x "$ANYINT_BIN" ]] || { echo "bench: $ANYINT_BIN is not an executable" >&2; exit 2; }
ANYINT_VERSION="$("$ANYINT_BIN" --version 2>/dev/null || echo anyint)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
if awk -v l="${LOAD_START%% *}" -v n="$(nproc 2>/dev/null || echo 1)" 'BEGIN { exit !(l > n / 4) }' 2>/dev/null; then
    log "warning: load average is $LOAD_START on $(nproc) CPUs; the machine is not quiet and the figures will be noisy"
fi

# RUST_LOG would override the configured log_level; the level is part of what we measure.
unset RUST_LOG

log "starting the emulator"
"$ANYINT_BIN" emulate --listen 127.0.0.1:0 >"$TMP/emulator.log" 2>&1 &
EMU_PID=$!
PIDS+=("$EMU_PID"); NAMES+=("the emulator"); LOGS+=("$TMP/emulator.log")
EMU="$(wait_for_addr "$TMP/emulator.log" 'anyint emulator on http://[0-9.:]+' "$EMU_PID")"
log "emulator on $EMU"

declare -A GW_URL GW_KEY
for level in $LOG_LEVELS; do
    dir="$TMP/gw-$level"
    mkdir -p "$dir"
    cat >"$dir/anyint.toml" <<EOF
[server]
listen = "127.0.0.1:0"
log_level = "$level"

[store]
url = "sqlite://$dir/anyint.db"

[[providers]]
name = "emu"
kind = "openai"
base_url = "$EMU/v1"
api_key = "bench-upstream"

[[models]]
id = "$MODEL"
routes = [{ provider = "emu", upstream_model = "$MODEL" }]
EOF
    key_json="$("$ANYINT_BIN" keys create --name "bench-$level" --json --config "$dir/anyint.toml")"
    GW_KEY[$level]="$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["key"])' <<<"$key_json")"
    log "starting the gateway (log_level=$level)"
    "$ANYINT_BIN" serve --config "$dir/anyint.toml" >"$dir/stdout.log" 2>"$dir/stderr.log" &
    pid=$!
    PIDS+=("$pid"); NAMES+=("the gateway (log_level=$level)"); LOGS+=("$dir/stderr.log")
    GW_URL[$level]="$(wait_for_addr "$dir/stdout.log" 'anyint listening on http://[0-9.:]+' "$pid")"
    log "gateway (log_level=$level) on ${GW_URL[$level]}"
done

body_for() {
    if [[ "$1" == stream ]]; then
        printf '{"model":"%s","stream":true,"messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$PROMPT"
    else
        printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$PROMPT"
    fi
}

# --- preflight: one request per target and mode, checked by content ------------------------------
preflight() { # name url key mode
    local name="$1" url="$2" key="$3" mode="$4" out="$TMP/preflight-$1-$4.txt" code
    code="$(curl -sS -o "$out" -w '%{http_code}' -X POST "$url" \
        -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$(body_for "$mode")")" || code="curl-failed"
    if [[ "$code" != 200 ]] || ! grep -q 'hello' "$out" \
        || { [[ "$mode" == stream ]] && ! grep -q '^data: \[DONE\]' "$out"; }; then
        echo "bench: preflight $name/$mode failed (HTTP $code); response:" >&2
        head -c 2000 "$out" >&2 || true
        echo >&2
        return 1
    fi
}
for mode in $MODES; do
    preflight direct "$EMU/v1/chat/completions" bench-upstream "$mode"
    for level in $LOG_LEVELS; do
        preflight "gateway-$level" "${GW_URL[$level]}/openai/v1/chat/completions" "${GW_KEY[$level]}" "$mode"
    done
done
log "preflight ok"

# --- runs ----------------------------------------------------------------------------------------
# Keep-alive stays on (oha's default; we never pass --disable-keepalive). -w lets requests in
# flight at the deadline finish instead of being counted as "aborted due to deadline".
# oha runs in the background and we `wait` for it, so that Ctrl-C reaches our trap at once
# (oha catches SIGINT itself and exits 0, which a foreground wait would take as "handled").
run_oha() { # out.json url key mode concurrency seconds
    local out="$1" url="$2" key="$3" mode="$4" c="$5" secs="$6" rc=0
    "$OHA" --no-tui --output-format json -o "$out" \
        -z "${secs}s" -w -c "$c" -m POST \
        -H "Authorization: Bearer $key" -T 'application/json' \
        -d "$(body_for "$mode")" "$url" >/dev/null &
    OHA_PID=$!
    wait "$OHA_PID" || rc=$?
    OHA_PID=""
    if [[ "$rc" -ne 0 ]]; then
        echo "bench: oha exited with status $rc" >&2
        return "$rc"
    fi
    check_alive
}

# Fails the run if the emulator or a gateway has died (e.g. crashed under load).
check_alive() {
    local i
    for i in "${!PIDS[@]}"; do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "bench: ${NAMES[$i]} (pid ${PIDS[$i]}) is no longer running; last lines of its log:" >&2
            tail -n 20 "${LOGS[$i]}" >&2 || true
            return 1
        fi
    done
}

RAW="$TMP/raw"
mkdir -p "$RAW"
MANIFEST="$TMP/manifest.tsv"
: >"$MANIFEST"
for mode in $MODES; do
    for c in $CONCURRENCY; do
        targets=("direct|$EMU/v1/chat/completions|bench-upstream")
        for level in $LOG_LEVELS; do
            targets+=("gateway-$level|${GW_URL[$level]}/openai/v1/chat/completions|${GW_KEY[$level]}")
        done
        for t in "${targets[@]}"; do
            IFS='|' read -r name url key <<<"$t"
            if [[ "$WARMUP" -gt 0 ]]; then
                log "warm-up  $mode c=$c $name (${WARMUP}s)"
                run_oha "$RAW/warmup-$mode-c$c-$name.json" "$url" "$key" "$mode" "$c" "$WARMUP"
            fi
            log "measure  $mode c=$c $name (${SECONDS_PER_RUN}s)"
            run_oha "$RAW/$mode-c$c-$name.json" "$url" "$key" "$mode" "$c" "$SECONDS_PER_RUN"
            printf '%s\t%s\t%s\t%s\n' "$mode" "$c" "$name" "$RAW/$mode-c$c-$name.json" >>"$MANIFEST"
        done
    done
done

# --- report --------------------------------------------------------------------------------------
mkdir -p "$BENCH_DIR/results"
META="date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$GIT_REV
version=$ANYINT_VERSION
loadstart=$LOAD_START
oha=$OHA_VERSION_SEEN
seconds=$SECONDS_PER_RUN
warmup=$WARMUP
cpus=$(nproc 2>/dev/null || echo '?')
loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
host=$(uname -srm)
levels=$LOG_LEVELS"
set +e
python3 - "$MANIFEST" "$BENCH_DIR/results/latest.md" "$META" <<'PY'
import json, sys

manifest, out_path, meta_text = sys.argv[1], sys.argv[2], sys.argv[3]
meta = dict(line.split("=", 1) for line in meta_text.splitlines() if "=" in line)
levels = meta["levels"].split()
DEADLINE = "aborted due to deadline"

runs = {}
order = []
for line in open(manifest):
    mode, c, name, path = line.rstrip("\n").split("\t")
    with open(path) as f:
        r = json.load(f)
    codes = {k: v for k, v in r.get("statusCodeDistribution", {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    non2xx = {k: v for k, v in codes.items() if not k.startswith("2")}
    errs = {k: v for k, v in r.get("errorDistribution", {}).items() if k != DEADLINE}
    total = r["summary"]["total"]
    pct = r.get("latencyPercentiles", {})
    runs[(mode, int(c), name)] = {
        "rps": ok / total if total else 0.0,
        "p50": pct.get("p50"), "p99": pct.get("p99"),
        "ok": ok, "non2xx": non2xx, "errors": errs,
    }
    if (mode, int(c)) not in order:
        order.append((mode, int(c)))

def us(sec):
    return None if sec is None else sec * 1e6

def f_us(sec):
    return "n/a" if sec is None else f"{us(sec):,.0f}"

def f_add(a, b):
    return "n/a" if a is None or b is None else f"{us(b) - us(a):+,.0f}"

def bad(run):
    return sum(run["non2xx"].values()) + sum(run["errors"].values())

mode_name = {"nonstream": "non-streaming", "stream": "streaming"}
lines = []
lines.append("# anyint gateway overhead benchmark")
lines.append("")
lines.append(f"- date: {meta['date']}, {meta['version']}, commit: {meta['commit']}")
lines.append(f"- host: {meta['host']}, CPUs: {meta['cpus']}, "
             f"load average at start: {meta['loadstart']}, at end: {meta['loadavg']}")
lines.append(f"- load generator: {meta['oha']}, HTTP/1.1 keep-alive, "
             f"{meta['seconds']} s per run after a {meta['warmup']} s warm-up; "
             "oha, emulator and gateway share the same machine")
lines.append(f"- gateway log_level: {', '.join(levels)} (first is the headline; "
             "`info` is the gateway default and writes one access-log line per request to stderr, "
             "redirected to a file)")
lines.append("- latencies in µs (whole response, including the full SSE stream when streaming); "
             "added = gateway − direct; req/s counts 2xx only")
lines.append("")
lines.append("| mode | c | gateway log | direct req/s | gateway req/s | gw/direct | "
             "direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 | "
             "errors (direct/gw) |")
lines.append("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
failures = []
for mode, c in order:
    d = runs[(mode, c, "direct")]
    for level in levels:
        g = runs.get((mode, c, f"gateway-{level}"))
        if g is None:
            continue
        ratio = f"{g['rps'] / d['rps']:.0%}" if d["rps"] else "n/a"
        lines.append(
            f"| {mode_name[mode]} | {c} | {level} | {d['rps']:,.0f} | {g['rps']:,.0f} | {ratio} | "
            f"{f_us(d['p50'])} | {f_us(g['p50'])} | {f_add(d['p50'], g['p50'])} | "
            f"{f_us(d['p99'])} | {f_us(g['p99'])} | {f_add(d['p99'], g['p99'])} | "
            f"{bad(d)}/{bad(g)} |")
for (mode, c, name), run in runs.items():
    if bad(run) or run["ok"] == 0:
        failures.append(f"{mode_name[mode]} c={c} {name}: {run['ok']} ok, "
                        f"non-2xx {run['non2xx'] or '{}'}, errors {run['errors'] or '{}'}")

lines.append("")
lines.append("Targets from the issue (reported, not asserted):")
lines.append("")
cs = sorted({c for _, c in order})
for level in levels:
    for mode in [m for m in ("nonstream", "stream") if any(k[0] == m for k in order)]:
        if 32 in cs:
            d, g = runs.get((mode, 32, "direct")), runs.get((mode, 32, f"gateway-{level}"))
            if d and g and d["rps"]:
                r = g["rps"] / d["rps"]
                lines.append(f"- throughput through the gateway at c=32, {mode_name[mode]}, log {level}: "
                             f"{r:.0%} of direct (target ≥ 50%: {'met' if r >= 0.5 else 'NOT met'})")
        if 1 in cs:
            d, g = runs.get((mode, 1, "direct")), runs.get((mode, 1, f"gateway-{level}"))
            if d and g and d["p99"] is not None and g["p99"] is not None:
                a = us(g["p99"]) - us(d["p99"])
                lines.append(f"- added p99 at c=1, {mode_name[mode]}, log {level}: "
                             f"{a:,.0f} µs (target ≤ 300 µs: {'met' if a <= 300 else 'NOT met'})")
if failures:
    lines.append("")
    lines.append("**Runs with errors — these figures are not valid:**")
    lines.append("")
    lines.extend(f"- {f}" for f in failures)

text = "\n".join(lines) + "\n"
with open(out_path, "w") as f:
    f.write(text)
sys.stdout.write(text)
sys.exit(1 if failures else 0)
PY
report_rc=$?
set -e
mkdir -p "$BENCH_DIR/results/raw"
rm -f "$BENCH_DIR/results/raw/"*.json
cp "$RAW"/*.json "$BENCH_DIR/results/raw/" 2>/dev/null || true
for level in $LOG_LEVELS; do
    # The info-level log has one line per request; keep only the warnings and errors.
    grep -E ' (WARN|ERROR) ' "$TMP/gw-$level/stderr.log" 2>/dev/null | head -n 500 \
        >"$BENCH_DIR/results/raw/gateway-$level.warnings.log" || true
    n="$(grep -cE ' (WARN|ERROR) ' "$TMP/gw-$level/stderr.log" 2>/dev/null || true)"
    if [[ "${n:-0}" -gt 0 ]]; then
        log "gateway (log_level=$level) logged $n WARN/ERROR lines; see bench/results/raw/gateway-$level.warnings.log"
    fi
done
log "wrote bench/results/latest.md (raw oha JSON in bench/results/raw/)"
if [[ "$report_rc" -ne 0 ]]; then
    log "FAILED: some runs had non-2xx responses or errors (see the table); the figures are not valid"
    exit 1
fi
