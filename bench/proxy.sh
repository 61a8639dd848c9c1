#!/usr/bin/env bash
# Proxy benchmark: the anyint gateway (everything on) against nginx proxy_pass, both in front of
# the same static nginx upstream, measured in the same run. Prints a markdown report and writes it
# to bench/results/proxy.md. See bench/README.md ("Against nginx proxy_pass") for what it measures.
#
# Usage: bench/proxy.sh
#   BENCH_SECONDS=10          measured seconds per closed-loop / open-loop / paced run
#   BENCH_WARMUP=2            warm-up seconds before each measured run (0 = none)
#   BENCH_RATE=200            the open-loop run's request rate (oha -q)
#   BENCH_PACED_C=64          concurrent paced streams
#   BENCH_LAT_ROUNDS=3        after the main part, the open loop and the paced streams again in this many
#                             rounds alternating nginx and the gateway (0 = none); the report gives each
#                             round's added latency and their median
#   BENCH_PARTS="main bodies slow"   which parts to run ("soak" is opt-in: add it to the list)
#   BENCH_SOAK=600            the soak's seconds of c32 non-streaming load through the gateway
#   BENCH_SOAK_EVERY=30       seconds between the soak's RSS readings
#   BENCH_BODIES="1k 64k 512k 2m agent500k"   the body-size sweep's bodies
#   BENCH_BODY_SECONDS=5      measured seconds per body and proxy (c=1)
#   BENCH_STREAMS=1000        many-slow-streams burst sizes, e.g. "1000 5000"
#   BENCH_AFTER=60            seconds after a burst before "RSS after" is read
#   BENCH_NGINX_WORKERS=N     nginx proxy worker_processes (default: the CPU count; 1 when pinned)
#   BENCH_PIN=1               one core per proxy, as on a larger machine: the proxy under test
#                             (nginx proxy_pass, the gateway) runs on the last CPU, and the load
#                             generator, the upstream and the stream tools on the others
#   OHA=/path/to/oha          use this oha instead of installing one into bench/.tools
#   ANYINT_BIN=/path/anyint   use this binary and skip `cargo build --release`
#   BARE_PROXY_BIN=/path      the floor's binary (the `bare_proxy` example); default: the one built
#                             with the gateway, or the one beside ANYINT_BIN; none: no floor column
#   BENCH_KEEP_TMP=1          keep the temp dir (configs, logs, raw results)
#   BENCH_PERF=DIR            profile the gateway with `perf record --call-graph dwarf` during its
#                             c32 non-streaming run and its agent500k body run, into DIR (the
#                             profiler's cost is in those runs' figures)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOL="$BENCH_DIR/proxy_tool.py"

SECS="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
RATE="${BENCH_RATE:-200}"
PACED_C="${BENCH_PACED_C:-64}"
LAT_ROUNDS="${BENCH_LAT_ROUNDS:-3}"
PARTS="${BENCH_PARTS:-main bodies slow}"
BODIES="${BENCH_BODIES:-1k 64k 512k 2m agent500k}"
BODY_SECS="${BENCH_BODY_SECONDS:-5}"
STREAMS="${BENCH_STREAMS:-1000}"
AFTER="${BENCH_AFTER:-60}"
SOAK="${BENCH_SOAK:-600}"
SOAK_EVERY="${BENCH_SOAK_EVERY:-30}"
PIN="${BENCH_PIN:-}"
ON_PROXY=()  # the command prefix that pins a proxy under test (empty unless BENCH_PIN)
ON_LOAD=()   # and the one for everything that drives or answers it
if [[ -n "$PIN" ]]; then
    CPUS="$(nproc)"
    (( CPUS >= 2 )) || { echo "proxy bench: BENCH_PIN needs at least 2 CPUs" >&2; exit 2; }
    command -v taskset >/dev/null || { echo "proxy bench: BENCH_PIN needs taskset (util-linux)" >&2; exit 2; }
    ON_PROXY=(taskset -c "$((CPUS - 1))")
    ON_LOAD=(taskset -c "0-$((CPUS - 2))")
fi
NGINX_WORKERS="${BENCH_NGINX_WORKERS:-$([[ -n "$PIN" ]] && echo 1 || nproc)}"
OHA_VERSION="${BENCH_OHA_VERSION:-1.16.0}"

for v in "$SECS" "$WARMUP" "$RATE" "$PACED_C" "$LAT_ROUNDS" "$BODY_SECS" "$AFTER" "$NGINX_WORKERS" "$SOAK" "$SOAK_EVERY"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "proxy bench: numeric knobs must be whole numbers, got '$v'" >&2; exit 2; }
done
for p in $PARTS; do
    [[ "$p" =~ ^(main|bodies|slow|soak)$ ]] || { echo "proxy bench: unknown part '$p' in BENCH_PARTS" >&2; exit 2; }
done
for b in $BODIES; do
    [[ "$b" =~ ^(1k|64k|512k|2m|agent500k)$ ]] || { echo "proxy bench: unknown body '$b' in BENCH_BODIES" >&2; exit 2; }
done
for n in $STREAMS; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "proxy bench: BENCH_STREAMS must be numbers, got '$n'" >&2; exit 2; }
done
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
command -v python3 >/dev/null || { echo "proxy bench: python3 is required (stdlib only)" >&2; exit 2; }
command -v curl >/dev/null || { echo "proxy bench: curl is required" >&2; exit 2; }

log() { printf '[proxy-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- cleanup -------------------------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/anyint-proxy-bench.XXXXXX")"
PIDS=()
NAMES=()
LOGS=()
CHILD=""  # the load generator running now
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    if [[ -n "$CHILD" ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
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

# Runs a load generator in the background (pinned with BENCH_PIN) and waits for it, so that
# Ctrl-C reaches the trap.
run_child() {
    local rc=0
    ${ON_LOAD[@]+"${ON_LOAD[@]}"} "$@" &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

check_alive() {
    local i
    for i in "${!PIDS[@]}"; do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "proxy bench: ${NAMES[$i]} (pid ${PIDS[$i]}) is no longer running; last lines of its log:" >&2
            tail -n 20 "${LOGS[$i]}" >&2 || true
            return 1
        fi
    done
}

# --- tools ---------------------------------------------------------------------------------------
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
if ! command -v nginx >/dev/null || [[ ! -f "$ECHO_MODULE" ]]; then
    log "installing Debian's nginx and its echo module (apt-get install -y nginx libnginx-mod-http-echo)"
    apt-get install -y nginx libnginx-mod-http-echo >&2
fi
NGINX="$(command -v nginx)"
NGINX_VERSION="$("$NGINX" -v 2>&1 | sed 's|.*version: ||')"

if [[ -z "${OHA:-}" ]]; then
    OHA="$BENCH_DIR/.tools/bin/oha"
    if [[ ! -x "$OHA" ]] || [[ "$("$OHA" --version 2>/dev/null)" != "oha $OHA_VERSION" ]]; then
        log "installing oha $OHA_VERSION into bench/.tools (one-off, takes a few minutes)"
        cargo install oha --version "$OHA_VERSION" --locked --root "$BENCH_DIR/.tools" >&2
    fi
fi
OHA_VERSION_SEEN="$("$OHA" --version)"

if [[ -z "${ANYINT_BIN:-}" ]]; then
    log "cargo build --release -p anyint, with the bare_proxy example (may wait for the cargo lock)"
    (cd "$ROOT" && cargo build --release -p anyint --bin anyint --example bare_proxy >&2)
    ANYINT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/anyint"
    GIT_REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(cd "$ROOT" && git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
        GIT_REV="$GIT_REV+uncommitted changes"
    fi
else
    GIT_REV="unknown (ANYINT_BIN=$ANYINT_BIN)"
fi
[[ -x "$ANYINT_BIN" ]] || { echo "proxy bench: $ANYINT_BIN is not an executable" >&2; exit 2; }
# The floor: the gateway's HTTP stack alone (crates/anyint/examples/bare_proxy.rs).
BARE_BIN="${BARE_PROXY_BIN:-$(dirname "$ANYINT_BIN")/examples/bare_proxy}"
if [[ ! -x "$BARE_BIN" ]]; then
    log "no bare_proxy at $BARE_BIN: the report leaves out the floor (the HTTP stack alone)"
    BARE_BIN=""
fi
ANYINT_VERSION="$("$ANYINT_BIN" --version 2>/dev/null || echo anyint)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    log "warning: load average is $LOAD_START on $(nproc) CPUs; the machine is not quiet and the figures will be noisy"
fi
unset RUST_LOG

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid name
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "proxy bench: $3 exited at start" >&2; return 1; }
        sleep 0.1
    done
    echo "proxy bench: $3 did not listen on port $1" >&2
    return 1
}

# --- the static upstream (nginx) -----------------------------------------------------------------
# One chat completion; an OpenAI stream of 20 events (17 content chunks, the finish chunk, the
# usage chunk, [DONE]) in one write; and the same stream paced: 21 events 1 ms apart ("paced") or
# 100 ms apart ("slow"). All answers come from the echo module after the whole request body was
# read, as a real upstream does (an answer sent before the body is read makes the proxies close
# their connections, which a `return 200` does to large bodies).
CHUNK='{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}'
FINISH='{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE='{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":17,"total_tokens":29}}'
JSON_REPLY='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hello world"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}'
sse_once() {
    local s="" i
    for i in $(seq 1 17); do s+="data: $CHUNK\\n\\n"; done
    printf '%s' "${s}data: $FINISH\\n\\ndata: $USAGE\\n\\ndata: [DONE]\\n\\n"
}
sse_paced() { # delay seconds; 18 chunks, finish, usage, [DONE]: 21 events, one write each
    local i
    printf '            echo_read_request_body;\n'
    for i in $(seq 1 18); do
        printf "            echo -n 'data: %s\\\\n\\\\n'; echo_flush; echo_sleep %s;\n" "$CHUNK" "$1"
    done
    printf "            echo -n 'data: %s\\\\n\\\\n'; echo_flush; echo_sleep %s;\n" "$FINISH" "$1"
    printf "            echo -n 'data: %s\\\\n\\\\n'; echo_flush; echo_sleep %s;\n" "$USAGE" "$1"
    printf "            echo -n 'data: [DONE]\\\\n\\\\n';\n"
}
nginx_common() { # dir
    cat <<EOF
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
EOF
}
nginx_http_common() { # dir
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_max_body_size 64m;
    client_body_buffer_size 4m;
EOF
}

UP_PORT="$(free_port)"
mkdir -p "$TMP/up"
{
    echo "load_module $ECHO_MODULE;"
    echo "worker_processes 1;"
    nginx_common "$TMP/up"
    echo "http {"
    nginx_http_common "$TMP/up"
    cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT backlog=8192;
        location = /json/v1/chat/completions {
            default_type application/json;
            echo_read_request_body;
            echo -n '$JSON_REPLY';
        }
        location = /sse/v1/chat/completions {
            default_type text/event-stream;
            echo_read_request_body;
            echo -n '$(sse_once)';
        }
        location = /paced/v1/chat/completions {
            default_type text/event-stream;
$(sse_paced 0.001)
        }
        location = /slow/v1/chat/completions {
            default_type text/event-stream;
$(sse_paced 0.1)
        }
    }
}
EOF
} >"$TMP/up/nginx.conf"

# --- nginx proxy_pass ------------------------------------------------------------------------------
NX_PORT="$(free_port)"
mkdir -p "$TMP/nx"
{
    echo "worker_processes $NGINX_WORKERS;"
    nginx_common "$TMP/nx"
    echo "http {"
    nginx_http_common "$TMP/nx"
    cat <<EOF
    upstream static {
        server 127.0.0.1:$UP_PORT;
        keepalive 512;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NX_PORT backlog=8192;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_request_buffering off;
        location /json/ { proxy_pass http://static; }
        location / { proxy_pass http://static; proxy_buffering off; }
    }
}
EOF
} >"$TMP/nx/nginx.conf"

start_nginx() { # dir name port [pinning prefix...]; sets STARTED to its master's pid
    local dir="$1" name="$2" port="$3"
    shift 3
    "$@" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stderr.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED"); NAMES+=("$name"); LOGS+=("$dir/error.log")
    wait_port "$port" "$STARTED" "$name"
}
"$NGINX" -t -p "$TMP/up" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log" >/dev/null 2>&1 \
    || { "$NGINX" -t -p "$TMP/up" -c "$TMP/up/nginx.conf" -e "$TMP/up/error.log"; exit 1; }
log "starting the static upstream (nginx) on 127.0.0.1:$UP_PORT"
start_nginx "$TMP/up" "the upstream nginx" "$UP_PORT" ${ON_LOAD[@]+"${ON_LOAD[@]}"}
log "starting nginx proxy_pass ($NGINX_WORKERS workers) on 127.0.0.1:$NX_PORT"
start_nginx "$TMP/nx" "nginx proxy_pass" "$NX_PORT" ${ON_PROXY[@]+"${ON_PROXY[@]}"}
NX_MASTER="$STARTED"
nginx_pids() { echo "$NX_MASTER" $(pgrep -P "$NX_MASTER" || true); }

# --- the gateway ---------------------------------------------------------------------------------
GW_DIR="$TMP/gw"
mkdir -p "$GW_DIR"
UP="http://127.0.0.1:$UP_PORT"
cat >"$GW_DIR/anyint.toml" <<EOF
[server]
listen = "127.0.0.1:0"
log_level = "warn"
max_connections = 30000

[store]
url = "sqlite://$GW_DIR/anyint.db"

[meter]
journal = true

[[providers]]
name = "static-json"
kind = "openai"
base_url = "$UP/json/v1"
api_key = "bench-upstream"

[[providers]]
name = "static-sse"
kind = "openai"
base_url = "$UP/sse/v1"
api_key = "bench-upstream"

[[providers]]
name = "static-paced"
kind = "openai"
base_url = "$UP/paced/v1"
api_key = "bench-upstream"

[[providers]]
name = "static-slow"
kind = "openai"
base_url = "$UP/slow/v1"
api_key = "bench-upstream"

[[models]]
id = "bench-json"
routes = [{ provider = "static-json", upstream_model = "gpt-4o-mini" }]

[[models]]
id = "bench-sse"
routes = [{ provider = "static-sse", upstream_model = "gpt-4o-mini" }]

[[models]]
id = "bench-paced"
routes = [{ provider = "static-paced", upstream_model = "gpt-4o-mini" }]

[[models]]
id = "bench-slow"
routes = [{ provider = "static-slow", upstream_model = "gpt-4o-mini" }]
EOF
# Prints the address a server just started announces in OUT ("PREFIX http://ADDR"); fails, with
# the server's ERR, when it exits first or says nothing for 30 s.
listening_on() { # out err pid name prefix
    local url _
    for _ in $(seq 1 300); do
        url="$(grep -Eo "$5 http://[0-9.:]+" "$1" 2>/dev/null | grep -Eo 'http://[0-9.:]+' || true)"
        [[ -n "$url" ]] && { echo "$url"; return 0; }
        kill -0 "$3" 2>/dev/null || { cat "$2" >&2; echo "proxy bench: $4 exited at start" >&2; return 1; }
        sleep 0.1
    done
    echo "proxy bench: $4 did not start" >&2
    return 1
}
# Starts a gateway on the config in $GW_DIR with a fresh store; sets GW_PID, GW and KEY.
start_gateway() {
    rm -rf "$GW_DIR/anyint.db"* "$GW_DIR/journal"
    KEY="$("$ANYINT_BIN" keys create --name bench-proxy --rpm 100000000 --concurrency 100000 --json \
        --config "$GW_DIR/anyint.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
    log "starting the gateway (fresh store)"
    ${ON_PROXY[@]+"${ON_PROXY[@]}"} "$ANYINT_BIN" serve --config "$GW_DIR/anyint.toml" >"$GW_DIR/stdout.log" 2>>"$GW_DIR/stderr.log" &
    GW_PID=$!
    PIDS+=("$GW_PID"); NAMES+=("the gateway"); LOGS+=("$GW_DIR/stderr.log")
    GW="$(listening_on "$GW_DIR/stdout.log" "$GW_DIR/stderr.log" "$GW_PID" "the gateway" 'anyint listening on')"
    log "gateway on $GW"
}
# Stops the gateway (it flushes its usage rows) and forgets it.
stop_gateway() {
    local i
    kill -TERM "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    for i in "${!PIDS[@]}"; do
        if [[ "${PIDS[$i]}" == "$GW_PID" ]]; then unset 'PIDS[i]' 'NAMES[i]' 'LOGS[i]'; fi
    done
}
start_gateway

# The floor, on the same upstream and with the gateway's worker count (one per core, as nginx).
FLOOR=""
if [[ -n "$BARE_BIN" ]]; then
    ${ON_PROXY[@]+"${ON_PROXY[@]}"} "$BARE_BIN" 127.0.0.1:0 "$UP" "$NGINX_WORKERS" >"$TMP/floor.log" 2>&1 &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID"); NAMES+=("the bare proxy"); LOGS+=("$TMP/floor.log")
    FLOOR="$(listening_on "$TMP/floor.log" "$TMP/floor.log" "$FLOOR_PID" "the bare proxy" 'bare proxy listening on')"
    log "bare proxy (the HTTP stack alone) on $FLOOR"
fi
# The proxies measured: the floor only where the report compares it.
WITH_FLOOR="nginx anyint"
[[ -n "$FLOOR" ]] && WITH_FLOOR="nginx floor anyint"

# Where each kind of request goes through each proxy, and its body.
url_of() { # proxy kind (a body of the sweep goes where json goes)
    local kind="$2"
    [[ "$kind" =~ ^(json|sse|paced|slow)$ ]] || kind=json
    case "$1" in
        nginx) echo "http://127.0.0.1:$NX_PORT/$kind/v1/chat/completions" ;;
        floor) echo "$FLOOR/$kind/v1/chat/completions" ;;
        *) echo "$GW/openai/v1/chat/completions" ;;
    esac
}
pids_of() {
    case "$1" in
        nginx) nginx_pids ;;
        floor) echo "$FLOOR_PID" ;;
        *) echo "$GW_PID" ;;
    esac
}
BODY_DIR="$TMP/bodies"
mkdir -p "$BODY_DIR"
for kind in json sse paced slow; do
    stream=false
    [[ "$kind" != json ]] && stream=true
    printf '{"model":"bench-%s","stream":%s,"messages":[{"role":"user","content":"Reply with exactly: hello world"}]}' \
        "$kind" "$stream" >"$BODY_DIR/$kind.json"
done
python3 "$TOOL" bodies "$BODY_DIR" bench-json

# --- preflight -------------------------------------------------------------------------------------
# One request of each kind through a proxy, its answer checked. It also makes a proxy's "idle" the
# idle of a proxy that has served: its request path's code paged in, its ledger connection open.
preflight() { # proxy kind...
    local proxy="$1" kind out code
    shift
    for kind in "$@"; do
        out="$TMP/preflight-$proxy-$kind.txt"
        code="$(curl -sS -o "$out" -w '%{http_code}' -X POST "$(url_of "$proxy" "$kind")" \
            -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
            --data-binary "@$BODY_DIR/$kind.json")" || code=curl-failed
        if [[ "$code" != 200 ]] || ! grep -q 'hello world\|tok ' "$out" \
            || { [[ "$kind" != json ]] && ! grep -q '^data: \[DONE\]' "$out"; }; then
            echo "proxy bench: preflight $proxy/$kind failed (HTTP $code):" >&2
            head -c 2000 "$out" >&2; echo >&2
            exit 1
        fi
    done
}
for proxy in $WITH_FLOOR; do
    preflight "$proxy" json sse paced
done
log "preflight ok"

RAW="$TMP/raw"
mkdir -p "$RAW"
cp "$BODY_DIR/sizes.json" "$RAW/body-sizes.json"
procstat() { python3 "$TOOL" procstat $(pids_of "$1"); }
idle_nginx="$(procstat nginx)"; idle_gw="$(procstat anyint)"

oha_run() { # out proxy kind c secs [extra oha args...]
    local out="$1" proxy="$2" kind="$3" c="$4" secs="$5"
    shift 5
    run_child "$OHA" --no-tui --output-format json -o "$out" -z "${secs}s" -w -c "$c" -m POST \
        -H "Authorization: Bearer $KEY" -T application/json -D "$BODY_DIR/$kind.json" "$@" \
        "$(url_of "$proxy" "$kind")" >/dev/null
    check_alive
}
# A measured oha run with the proxy's CPU ticks read around it.
measured() { # name proxy kind c secs [extra oha args...]
    local name="$1" proxy="$2"
    if [[ "$WARMUP" -gt 0 ]]; then
        oha_run "$RAW/warmup-$name-$proxy.json" "$proxy" "$3" "$4" "$WARMUP" "${@:6}"
    fi
    log "measure $name via $proxy ($5 s)"
    local perf_pid=""
    if [[ -n "${BENCH_PERF:-}" && "$proxy" == anyint && "$name" =~ ^(main-json|body-agent500k)$ ]]; then
        mkdir -p "$BENCH_PERF"
        perf record -q --call-graph dwarf -F 499 -p "$GW_PID" -o "$BENCH_PERF/$name.perf.data" \
            >"$BENCH_PERF/$name.perf.log" 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid"); NAMES+=("perf record"); LOGS+=("$BENCH_PERF/$name.perf.log")
        sleep 0.5
    fi
    procstat "$proxy" >"$RAW/$name-$proxy.cpu"
    oha_run "$RAW/$name-$proxy.oha.json" "$proxy" "$3" "$4" "$5" "${@:6}"
    procstat "$proxy" >>"$RAW/$name-$proxy.cpu"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        unset 'PIDS[-1]' 'NAMES[-1]' 'LOGS[-1]'
        log "profile written to $BENCH_PERF/$name.perf.data"
    fi
}

# PACED_C paced streams through a proxy for some seconds, their figures into a file.
paced_run() { # proxy secs out
    run_child python3 "$TOOL" streams "$(url_of "$1" paced)" "$KEY" "$BODY_DIR/paced.json" \
        "$PACED_C" "$2" "$3"
}

if has_part main; then
    for proxy in $WITH_FLOOR; do
        measured main-json "$proxy" json 32 "$SECS"
        measured main-sse "$proxy" sse 32 "$SECS"
        # The floor is compared on throughput and CPU only.
        [[ "$proxy" == floor ]] && continue
        measured main-open "$proxy" json 16 "$SECS" -q "$RATE"
        if [[ "$WARMUP" -gt 0 ]]; then
            paced_run "$proxy" "$WARMUP" "$RAW/warmup-paced-$proxy.json"
        fi
        log "measure $PACED_C paced streams via $proxy ($SECS s)"
        paced_run "$proxy" "$SECS" "$RAW/main-paced-$proxy.json"
        check_alive
    done
    # The two latency rows again, in rounds that alternate the proxies: one run of each sits
    # a minute or more from the other's above, and at a tenth of a millisecond the machine's
    # drift over that minute is as large as the difference measured.
    for (( round = 1; round <= LAT_ROUNDS; round++ )); do
        for proxy in nginx anyint; do
            log "latency round $round of $LAT_ROUNDS via $proxy: open loop and paced streams ($SECS s each)"
            oha_run "$RAW/lat-open-$round-$proxy.oha.json" "$proxy" json 16 "$SECS" -q "$RATE"
            paced_run "$proxy" "$SECS" "$RAW/lat-paced-$round-$proxy.json"
            check_alive
        done
    done
    python3 - "$(procstat nginx)" "$(procstat anyint)" "$idle_nginx" "$idle_gw" >"$RAW/rss.json" <<'PY'
import json, sys
n, g, ni, gi = (json.loads(a) for a in sys.argv[1:])
print(json.dumps({"nginx_hwm_kb": n["hwm_kb"], "anyint_hwm_kb": g["hwm_kb"],
                  "nginx_idle_kb": ni["rss_kb"], "anyint_idle_kb": gi["rss_kb"]}))
PY
fi

if has_part bodies; then
    for body in $BODIES; do
        for proxy in nginx anyint; do
            measured "body-$body" "$proxy" "$body" 1 "$BODY_SECS"
        done
    done
fi

if has_part slow; then
    # A fresh gateway: the store and the meter's queue left by the parts above are not what an
    # open stream costs (the ledger they leave is the metering work's to make cheap).
    # Its RSS at that cold start goes in the report; "before" is read after a preflight, as the
    # main part's idle is, so that the first burst is not charged with the code its first
    # request pages in.
    if has_part main || has_part bodies; then
        stop_gateway
        start_gateway
        procstat anyint >"$RAW/slow-cold-anyint.json"
    fi
    preflight anyint json sse paced slow
    for n in $STREAMS; do
        for proxy in $WITH_FLOOR; do
            pids="$(pids_of "$proxy")"
            python3 "$TOOL" resethwm $pids
            before="$(python3 "$TOOL" procstat $pids)"
            log "burst of $n slow streams via $proxy"
            run_child python3 "$TOOL" burst "$(url_of "$proxy" slow)" "$KEY" "$BODY_DIR/slow.json" "$n" \
                "$RAW/slow-$n-$proxy.json" $pids
            check_alive
            echo "$before" >"$RAW/slow-$n-$proxy.before.json"
        done
        log "waiting $AFTER s before reading RSS after the bursts"
        sleep "$AFTER"
        for proxy in $WITH_FLOOR; do
            python3 - "$RAW/slow-$n-$proxy.before.json" "$(procstat "$proxy")" >"$RAW/slow-$n-$proxy.rss.json" <<'PY'
import json, sys
before = json.load(open(sys.argv[1]))
after = json.loads(sys.argv[2])
print(json.dumps({"before_kb": before["rss_kb"], "after_kb": after["rss_kb"],
                  "after_pss_kb": after["pss_kb"]}))
PY
        done
    done
fi

if has_part soak; then
    # A fresh gateway, then closed-loop load for BENCH_SOAK seconds with its RSS read every
    # BENCH_SOAK_EVERY seconds: memory must level off, not grow with the requests served.
    if has_part main || has_part bodies || has_part slow; then
        stop_gateway
        start_gateway
    fi
    log "soak: c32 non-streaming through the gateway for $SOAK s, RSS every $SOAK_EVERY s"
    ${ON_LOAD[@]+"${ON_LOAD[@]}"} "$OHA" --no-tui --output-format json -o "$RAW/soak.oha.json" -z "${SOAK}s" -c 32 -m POST \
        -H "Authorization: Bearer $KEY" -T application/json -D "$BODY_DIR/json.json" \
        "$(url_of anyint json)" >/dev/null &
    CHILD=$!
    soak_start="$(date +%s)"
    soak_sample() { echo "{\"t\": $(( $(date +%s) - soak_start )), \"stat\": $(procstat anyint)}" >>"$RAW/soak.rss"; }
    : >"$RAW/soak.rss"
    while kill -0 "$CHILD" 2>/dev/null; do
        soak_sample
        sleep "$SOAK_EVERY"
    done
    soak_rc=0
    wait "$CHILD" || soak_rc=$?
    CHILD=""
    [[ "$soak_rc" == 0 ]] || { echo "proxy bench: the soak's load generator failed ($soak_rc)" >&2; exit 1; }
    soak_sample
    check_alive
fi

# --- report ----------------------------------------------------------------------------------------
M_COMMIT="$GIT_REV" M_ANYINT="$ANYINT_VERSION" M_NGINX="nginx $NGINX_VERSION" M_OHA="${OHA_VERSION_SEEN%%$'\n'*}" \
M_LOAD="$LOAD_START" M_BODIES="$(has_part bodies && echo "$BODIES" || true)" \
M_STREAMS="$(has_part slow && echo "$STREAMS" || true)" M_PIN="${ON_PROXY[*]:-}" \
python3 - "$(nproc)" "$SECS" "$WARMUP" "$RATE" "$PACED_C" "$NGINX_WORKERS" "$AFTER" \
    "$(has_part main && echo "$LAT_ROUNDS" || echo 0)" >"$RAW/meta.json" <<'PY'
import json, os, sys
cpus, secs, warmup, rate, paced_c, workers, after, lat_rounds = (int(a) for a in sys.argv[1:])
e = os.environ
print(json.dumps({
    "commit": e["M_COMMIT"], "anyint": e["M_ANYINT"], "nginx": e["M_NGINX"], "oha": e["M_OHA"],
    "cpus": cpus, "load": e["M_LOAD"], "seconds": secs, "warmup": warmup, "rate": rate,
    "paced_c": paced_c, "nginx_workers": workers, "after": after, "lat_rounds": lat_rounds,
    "bodies": e["M_BODIES"].split(), "streams": [int(n) for n in e["M_STREAMS"].split()],
    "pinned": e["M_PIN"],
}))
PY
mkdir -p "$BENCH_DIR/results"
set +e
python3 "$TOOL" report "$RAW" >"$BENCH_DIR/results/proxy.md"
report_rc=$?
set -e
cat "$BENCH_DIR/results/proxy.md"
rm -rf "$BENCH_DIR/results/proxy-raw"
cp -r "$RAW" "$BENCH_DIR/results/proxy-raw"
grep -E ' (WARN|ERROR) ' "$GW_DIR/stderr.log" | head -n 200 >"$BENCH_DIR/results/proxy-raw/gateway.warnings.log" || true
log "wrote bench/results/proxy.md (raw results in bench/results/proxy-raw/)"
if [[ "$report_rc" -ne 0 ]]; then
    log "FAILED: some runs had errors (see the report); the figures are not valid"
    exit 1
fi
