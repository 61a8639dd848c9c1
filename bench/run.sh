#!/usr/bin/env bash
# Gateway overhead benchmark: the same load, sent by oha to the upstream emulator directly and
# through the anyint gateway, for non-streaming and streaming chat completions at two
# concurrencies; plus, through the gateway only, Anthropic-family streaming translated to the
# OpenAI-kind emulator ("translated", compared with the passthrough stream) and non-streaming
# requests to a route that fails every 10th upstream call with a 503 ("retry", compared with the
# healthy model) and non-streaming requests with a key whose rate and concurrency limits every
# request is checked against but never reaches ("policy", compared with the plain key; with the
# in-process limiter and, when Redis is reachable, with the Redis one); plus the OpenAI Responses
# API streaming ("responses": direct to the emulator's /v1/responses, through the gateway to a
# native Responses upstream (passthrough) and to an Anthropic-kind upstream (translated),
# compared with the chat passthrough stream). Prints markdown tables and writes them to
# bench/results/latest.md.
#
# Usage: bench/run.sh            (see bench/README.md for the knobs)
#   BENCH_SECONDS=10             measured seconds per run
#   BENCH_WARMUP=2               warm-up seconds before each measured run (0 = none)
#   BENCH_CONCURRENCY="1 32"     oha -c values
#   BENCH_MODES="nonstream stream translated retry policy responses"
#                                (translated and responses need stream's runs, retry and
#                                policy need nonstream's; they are added when missing)
#   BENCH_LOG_LEVELS="warn info" gateway [server] log_level variants; the first is the headline
#   BENCH_OHA_VERSION=1.16.0     oha version installed into bench/.tools
#   OHA=/path/to/oha             use this oha instead of installing one
#   ANYINT_BIN=/path/to/anyint   use this binary and skip `cargo build --release`
#   BENCH_KEEP_TMP=1             keep the temp dir (configs, logs, raw oha JSON) on exit
#   BENCH_POLICY_REDIS=1         policy mode: also measure the Redis limiter (0 = in-process only)
#   BENCH_JOURNAL=on             the usage journal (always on in the headline run); off: the
#                                gateways run with [meter] journal = false, to measure its cost
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 32}"
MODES="${BENCH_MODES:-nonstream stream translated retry policy responses}"
LOG_LEVELS="${BENCH_LOG_LEVELS:-warn info}"
OHA_VERSION="${BENCH_OHA_VERSION:-1.16.0}"
JOURNAL="${BENCH_JOURNAL:-on}"
MODEL="gpt-4o-mini"
PROMPT="Reply with exactly: hello world"
ANTHROPIC_VERSION="2023-06-01"
# The responses mode's models: RESP_NATIVE on a provider with `api = "responses"` (the emulator's
# /v1/responses, passthrough) and RESP_CLAUDE on an anthropic-kind provider (the emulator's
# /v1/messages, translated Responses <-> Anthropic). The direct run sends RESP_UPSTREAM, the
# model the gateway sends upstream on the native route. `store: false`: the stream path, not
# the response store.
RESP_NATIVE="resp-native"
RESP_CLAUDE="resp-claude"
RESP_UPSTREAM="gpt-5"
RESP_CLAUDE_UPSTREAM="claude-sonnet-4-5"
# The retry mode's model: one route whose upstream model name carries an emulator fault spec, so
# every FLAKY_EVERY-th upstream request counted under FLAKY_TAG is answered with a 503.
FLAKY_MODEL="flaky"
FLAKY_TAG="benchflaky"
FLAKY_EVERY=10
FLAKY_UPSTREAM="$MODEL+status=503,every=$FLAKY_EVERY,tag=$FLAKY_TAG"
# The policy mode's key: limits so high that no request is ever refused, so every request pays
# for both checks (concurrency slot, then GCRA rate) and nothing else changes.
POLICY_RPM=100000000
POLICY_CONCURRENCY=100000
# The policy mode's Redis variant: the same Redis `scripts/test` uses, keys under a prefix of
# this run's own (deleted at exit).
POLICY_REDIS="${BENCH_POLICY_REDIS:-1}"
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
REDIS_PREFIX=""

for v in "$SECONDS_PER_RUN" "$WARMUP"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_SECONDS/BENCH_WARMUP must be whole seconds, got '$v'" >&2; exit 2; }
done
[[ "$SECONDS_PER_RUN" -ge 1 ]] || { echo "bench: BENCH_SECONDS must be >= 1" >&2; exit 2; }
for m in $MODES; do
    [[ "$m" =~ ^(nonstream|stream|translated|retry|policy|responses)$ ]] || { echo "bench: unknown mode '$m' in BENCH_MODES" >&2; exit 2; }
done
[[ -n "${MODES// /}" ]] || { echo "bench: BENCH_MODES is empty" >&2; exit 2; }
[[ "$JOURNAL" =~ ^(on|off)$ ]] || { echo "bench: BENCH_JOURNAL must be on or off, got '$JOURNAL'" >&2; exit 2; }
[[ "$POLICY_REDIS" =~ ^[01]$ ]] || { echo "bench: BENCH_POLICY_REDIS must be 0 or 1, got '$POLICY_REDIS'" >&2; exit 2; }
# translated and responses are compared with the stream runs, retry and policy with the nonstream
# runs: add them first when they were not asked for.
RUN_MODES=""
for m in $MODES; do
    ref=""
    [[ "$m" == translated || "$m" == responses ]] && ref=stream
    [[ "$m" == retry || "$m" == policy ]] && ref=nonstream
    if [[ -n "$ref" && " $RUN_MODES " != *" $ref "* && " $MODES " != *" $ref "* ]]; then
        RUN_MODES="$RUN_MODES $ref"
    fi
    [[ " $RUN_MODES " == *" $m "* ]] || RUN_MODES="$RUN_MODES $m"
done
RUN_MODES="${RUN_MODES# }"
command -v python3 >/dev/null || { echo "bench: python3 is required (stdlib only)" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench: curl is required" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ "$RUN_MODES" == "$(echo $MODES)" ]] || log "modes: $RUN_MODES (reference runs added for translated/retry/policy/responses)"

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
    # The Redis variant's limiter keys (in-flight counters live for 15 minutes otherwise).
    if [[ -n "$REDIS_PREFIX" ]]; then
        redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$REDIS_PREFIX:*" 2>/dev/null \
            | xargs -r redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del >/dev/null 2>&1 || true
    fi
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

has_mode() { [[ " $RUN_MODES " == *" $1 "* ]]; }
HEADLINE="${LOG_LEVELS%% *}"

# --- Redis, for the policy mode's shared-limiter variant ------------------------------------------
redis_up() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; }
# Starts Redis when it is down, the way scripts/test does (it keeps running afterwards, as there).
# Returns 1 with REDIS_NOTE set when Redis can be neither reached nor started.
ensure_redis() {
    if ! command -v redis-cli >/dev/null; then
        REDIS_NOTE="redis-cli not found"; return 1
    fi
    redis_up && return 0
    if ! command -v redis-server >/dev/null; then
        REDIS_NOTE="nothing answers on $REDIS_HOST:$REDIS_PORT and redis-server is not installed"; return 1
    fi
    log "starting Redis on $REDIS_HOST:$REDIS_PORT (as scripts/test does; it stays up afterwards)"
    if ! { mkdir -p /var/lib/redis /var/log/redis \
        && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2; }; then
        REDIS_NOTE="redis-server could not be started"; return 1
    fi
    for _ in $(seq 1 30); do redis_up && return 0; sleep 1; done
    REDIS_NOTE="redis-server was started but $REDIS_HOST:$REDIS_PORT did not answer within 30 s"
    return 1
}
REDIS_NOTE=""
if has_mode policy; then
    if [[ "$POLICY_REDIS" != 1 ]]; then
        REDIS_NOTE="skipped (BENCH_POLICY_REDIS=0)"
    elif ensure_redis; then
        REDIS_PREFIX="anyint-bench-${TMP##*.}-$$"
        REDIS_NOTE="$REDIS_URL, key_prefix $REDIS_PREFIX"
        # policy-redis runs right after policy.
        m2=""
        for m in $RUN_MODES; do
            m2="$m2 $m"
            [[ "$m" == policy ]] && m2="$m2 policy-redis"
        done
        RUN_MODES="${m2# }"
    else
        log "warning: skipping the policy mode's Redis variant: $REDIS_NOTE"
        REDIS_NOTE="skipped: $REDIS_NOTE"
    fi
fi

# Writes a gateway config to $1/anyint.toml for log level $2, with $3 appended (extra sections).
write_config() {
    local dir="$1" level="$2" extra="${3:-}"
    mkdir -p "$dir"
    cat >"$dir/anyint.toml" <<EOF
[server]
listen = "127.0.0.1:0"
log_level = "$level"

# Retries of the flaky model: a 1-5 ms backoff instead of the default 100 ms-2 s, so the retry
# mode measures what a retry costs (a second upstream call), not a sleep. Under concurrency the
# emulator's every-10th counter is shared, so a retry is itself a 10th request about 1 time in 10;
# with the default 3 attempts about 1 request in 1,000 would fail three times and reach the client
# as a 503. 10 attempts make that ~1e-10. The healthy model never retries, so the other modes are
# unaffected.
[routing]
max_attempts = 10
backoff_base_ms = 1
backoff_max_ms = 5

[store]
url = "sqlite://$dir/anyint.db"

# The usage journal (journal/ beside the store) is on unless BENCH_JOURNAL=off.
[meter]
journal = $([[ "$JOURNAL" == off ]] && echo false || echo true)

[[providers]]
name = "emu"
kind = "openai"
base_url = "$EMU/v1"
api_key = "bench-upstream"

[[models]]
id = "$MODEL"
routes = [{ provider = "emu", upstream_model = "$MODEL" }]

[[models]]
id = "$FLAKY_MODEL"
routes = [{ provider = "emu", upstream_model = "$FLAKY_UPSTREAM" }]

# The responses mode: a native Responses upstream (passthrough) and an Anthropic-kind one
# (translated). Unused by the other modes.
[[providers]]
name = "emu-responses"
kind = "openai"
api = "responses"
base_url = "$EMU/v1"
api_key = "bench-upstream"

[[providers]]
name = "emu-anthropic"
kind = "anthropic"
base_url = "$EMU"
api_key = "bench-upstream"

[[models]]
id = "$RESP_NATIVE"
routes = [{ provider = "emu-responses", upstream_model = "$RESP_UPSTREAM" }]

[[models]]
id = "$RESP_CLAUDE"
routes = [{ provider = "emu-anthropic", upstream_model = "$RESP_CLAUDE_UPSTREAM" }]
$extra
EOF
}

key_of() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["key"])'; }

# Starts gateway $1 (an index into GW_URL/GW_KEY/GW_POLICY_KEY) from the config in $2 with the
# description $3; creates its plain key and, for the policy mode, its policy key.
start_gateway() {
    local id="$1" dir="$2" what="$3" pid
    GW_KEY[$id]="$("$ANYINT_BIN" keys create --name "bench-$id" --json --config "$dir/anyint.toml" | key_of)"
    if has_mode policy; then
        GW_POLICY_KEY[$id]="$("$ANYINT_BIN" keys create --name "bench-policy-$id" \
            --rpm "$POLICY_RPM" --concurrency "$POLICY_CONCURRENCY" --json --config "$dir/anyint.toml" | key_of)"
    fi
    log "starting $what"
    "$ANYINT_BIN" serve --config "$dir/anyint.toml" >"$dir/stdout.log" 2>"$dir/stderr.log" &
    pid=$!
    PIDS+=("$pid"); NAMES+=("$what"); LOGS+=("$dir/stderr.log")
    GW_URL[$id]="$(wait_for_addr "$dir/stdout.log" 'anyint listening on http://[0-9.:]+' "$pid")"
    log "$what on ${GW_URL[$id]}"
}

declare -A GW_URL GW_KEY GW_POLICY_KEY
for level in $LOG_LEVELS; do
    write_config "$TMP/gw-$level" "$level"
    start_gateway "$level" "$TMP/gw-$level" "the gateway (log_level=$level)"
done
# The Redis variant: the headline gateway's config plus a [limits] section. on_redis_error is
# "closed" so that a Redis failure shows up as 503s (an invalid run), never as a fast fail-open
# path that skipped the limiter.
if has_mode policy-redis; then
    write_config "$TMP/gw-redis" "$HEADLINE" "
[limits]
redis_url = \"$REDIS_URL\"
key_prefix = \"$REDIS_PREFIX\"
on_redis_error = \"closed\""
    start_gateway redis "$TMP/gw-redis" "the gateway with the Redis limiter (log_level=$HEADLINE)"
fi

# Per mode: the request body, the gateway path, the auth headers, and whether a direct run exists.
# policy and policy-redis send the nonstream request with the policy key. responses: the direct
# run (target name $2 = direct) names the upstream model, the gateway runs the gateway's native
# model or, for the targets named gateway-LEVEL-translated, its Anthropic-kind one.
resp_body() { # model
    printf '{"model":"%s","input":"%s","stream":true,"store":false}' "$1" "$PROMPT"
}
body_for() { # mode [target name]
    case "$1" in
        nonstream | policy | policy-redis) printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$PROMPT" ;;
        stream) printf '{"model":"%s","stream":true,"messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$PROMPT" ;;
        translated) printf '{"model":"%s","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"%s"}]}' "$MODEL" "$PROMPT" ;;
        retry) printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]}' "$FLAKY_MODEL" "$PROMPT" ;;
        responses)
            case "${2:-}" in
                direct) resp_body "$RESP_UPSTREAM" ;;
                *-translated) resp_body "$RESP_CLAUDE" ;;
                *) resp_body "$RESP_NATIVE" ;;
            esac ;;
    esac
}
gw_path() {
    case "$1" in
        translated) echo /anthropic/v1/messages ;;
        responses) echo /openai/v1/responses ;;
        *) echo /openai/v1/chat/completions ;;
    esac
}
auth_args() { # mode key; sets AUTH_ARGS (curl and oha take the same -H form)
    if [[ "$1" == translated ]]; then
        AUTH_ARGS=(-H "x-api-key: $2" -H "anthropic-version: $ANTHROPIC_VERSION")
    else
        AUTH_ARGS=(-H "Authorization: Bearer $2")
    fi
}
has_direct() { [[ "$1" == nonstream || "$1" == stream || "$1" == responses ]]; }
# Every target of a mode, as "name|url|key|gateway base url" (empty base for the direct run) in
# TARGETS. The policy modes measure each gateway twice in a row, first with the plain key
# ("gateway-LEVEL-off", policy off) and then with the policy key ("gateway-LEVEL", policy on), so
# that the pair compared is measured back to back on the same process. policy-redis runs on the
# Redis gateway only, under the headline log level's name. responses measures, at each c, the
# direct run, then each gateway's native model ("gateway-LEVEL") and right after its Anthropic-kind
# model ("gateway-LEVEL-translated", reported as mode responses-translated), so that the two
# compared by the p99 target are measured back to back.
targets_for() { # mode
    local mode="$1" level url
    TARGETS=()
    if has_direct "$mode"; then
        if [[ "$mode" == responses ]]; then
            TARGETS+=("direct|$EMU/v1/responses|bench-upstream|")
        else
            TARGETS+=("direct|$EMU/v1/chat/completions|bench-upstream|")
        fi
    fi
    if [[ "$mode" == policy-redis ]]; then
        url="${GW_URL[redis]}"
        TARGETS+=("gateway-$HEADLINE-off|$url$(gw_path "$mode")|${GW_KEY[redis]}|$url")
        TARGETS+=("gateway-$HEADLINE|$url$(gw_path "$mode")|${GW_POLICY_KEY[redis]}|$url")
        return
    fi
    for level in $LOG_LEVELS; do
        url="${GW_URL[$level]}"
        if [[ "$mode" == policy ]]; then
            TARGETS+=("gateway-$level-off|$url$(gw_path "$mode")|${GW_KEY[$level]}|$url")
            TARGETS+=("gateway-$level|$url$(gw_path "$mode")|${GW_POLICY_KEY[$level]}|$url")
        else
            TARGETS+=("gateway-$level|$url$(gw_path "$mode")|${GW_KEY[$level]}|$url")
        fi
        if [[ "$mode" == responses ]]; then
            TARGETS+=("gateway-$level-translated|$url$(gw_path "$mode")|${GW_KEY[$level]}|$url")
        fi
    done
}

# The emulator's request counter for a tag, by default the flaky tag (every upstream attempt of
# the flaky model); `_responses_total` / `_anthropic_total` count its Responses / Anthropic calls.
emu_count() { # [tag]
    curl -sS "$EMU/_emulator/counts/${1:-$FLAKY_TAG}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}
# The gateway's own retry counter for the flaky model, from its /metrics (0 before the first).
gw_retries() { # gateway base url
    curl -sS "$1/metrics" | awk -v m="model=\"$FLAKY_MODEL\"" \
        '$1 ~ /^anyint_retries_total\{/ && index($1, m) { n += $2 } END { printf "%d\n", n }'
}

# --- preflight: one request per target and mode, checked by content ------------------------------
preflight() { # name url key mode
    local name="$1" url="$2" key="$3" mode="$4" out="$TMP/preflight-$1-$4.txt" code
    auth_args "$mode" "$key"
    local resp_before anth_before
    if [[ "$mode" == responses ]]; then
        resp_before="$(emu_count _responses_total)"; anth_before="$(emu_count _anthropic_total)"
    fi
    code="$(curl -sS -o "$out" -D "$out.headers" -w '%{http_code}' -X POST "$url" \
        "${AUTH_ARGS[@]}" -H 'Content-Type: application/json' -d "$(body_for "$mode" "$name")")" || code="curl-failed"
    if [[ "$code" != 200 ]] || ! grep -q 'hello' "$out" \
        || { [[ "$mode" == stream ]] && ! grep -q '^data: \[DONE\]' "$out"; } \
        || { [[ "$mode" == translated ]] && { ! grep -q '^event: message_stop' "$out" || grep -q '^event: error' "$out"; }; } \
        || { [[ "$mode" == responses ]] && { ! grep -q '^event: response.completed' "$out" \
            || grep -Eq '^event: (error|response\.failed|response\.incomplete)' "$out"; }; }; then
        echo "bench: preflight $name/$mode failed (HTTP $code); response:" >&2
        head -c 2000 "$out" >&2 || true
        echo >&2
        return 1
    fi
    # policy: the policy key's limit was applied (the rate headers say so), the plain key's not.
    if [[ "$mode" == policy* && "$name" != *-off ]] \
        && ! grep -qi "^x-ratelimit-limit-requests: $POLICY_RPM"$'\r'"\?$" "$out.headers"; then
        echo "bench: preflight $name/$mode: no 'x-ratelimit-limit-requests: $POLICY_RPM' header, so the key's limits were not applied; headers:" >&2
        cat "$out.headers" >&2 || true
        return 1
    fi
    if [[ "$mode" == policy* && "$name" == *-off ]] && grep -qi '^x-ratelimit-' "$out.headers"; then
        echo "bench: preflight $name/$mode: the plain key got x-ratelimit-* headers; it is not policy-free" >&2
        return 1
    fi
    # responses: the request reached the upstream API it is meant to measure (the emulator counts
    # its Responses and Anthropic requests): direct and native on /v1/responses, translated on
    # /v1/messages.
    if [[ "$mode" == responses ]]; then
        local dr da want
        dr=$(($(emu_count _responses_total) - resp_before)); da=$(($(emu_count _anthropic_total) - anth_before))
        if [[ "$name" == *-translated ]]; then want="0/1"; else want="1/0"; fi
        if [[ "$dr/$da" != "$want" ]]; then
            echo "bench: preflight $name/$mode: the emulator saw $dr Responses and $da Anthropic requests, expected $want; the route is not the one measured" >&2
            return 1
        fi
    fi
    # policy-redis: the limiter state is in Redis under this run's prefix.
    if [[ "$mode" == policy-redis && "$name" != *-off ]] \
        && [[ -z "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$REDIS_PREFIX:gcra:*" 2>/dev/null)" ]]; then
        echo "bench: preflight $name/$mode: no $REDIS_PREFIX:gcra:* key in Redis after a request; the Redis limiter was not used" >&2
        return 1
    fi
}
# retry: FLAKY_EVERY requests in a row must all succeed, and at least one of them must have hit a
# 503 upstream and been retried (the tag counter moved by more than FLAKY_EVERY).
preflight_retry() { # name url key
    local before after i
    before="$(emu_count)"
    for i in $(seq 1 "$FLAKY_EVERY"); do
        preflight "$1" "$2" "$3" retry
    done
    after="$(emu_count)"
    if [[ $((after - before)) -le "$FLAKY_EVERY" ]]; then
        echo "bench: preflight $1/retry: $FLAKY_EVERY requests made $((after - before)) upstream requests under tag $FLAKY_TAG; expected at least one 503 and its retry" >&2
        return 1
    fi
}
for mode in $RUN_MODES; do
    targets_for "$mode"
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r name url key base <<<"$t"
        if [[ "$mode" == retry && "$name" != direct ]]; then
            preflight_retry "$name" "$url" "$key"
        else
            preflight "$name" "$url" "$key" "$mode"
        fi
    done
done
log "preflight ok"

# --- runs ----------------------------------------------------------------------------------------
# Keep-alive stays on (oha's default; we never pass --disable-keepalive). -w lets requests in
# flight at the deadline finish instead of being counted as "aborted due to deadline".
# oha runs in the background and we `wait` for it, so that Ctrl-C reaches our trap at once
# (oha catches SIGINT itself and exits 0, which a foreground wait would take as "handled").
run_oha() { # out.json url key mode concurrency seconds target-name
    local out="$1" url="$2" key="$3" mode="$4" c="$5" secs="$6" name="$7" rc=0
    auth_args "$mode" "$key"
    "$OHA" --no-tui --output-format json -o "$out" \
        -z "${secs}s" -w -c "$c" -m POST \
        "${AUTH_ARGS[@]}" -T 'application/json' \
        -d "$(body_for "$mode" "$name")" "$url" >/dev/null &
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
for mode in $RUN_MODES; do
    for c in $CONCURRENCY; do
        targets_for "$mode"
        for t in "${TARGETS[@]}"; do
            IFS='|' read -r name url key base <<<"$t"
            if [[ "$WARMUP" -gt 0 ]]; then
                log "warm-up  $mode c=$c $name (${WARMUP}s)"
                run_oha "$RAW/warmup-$mode-c$c-$name.json" "$url" "$key" "$mode" "$c" "$WARMUP" "$name"
            fi
            # retry: upstream attempts (emulator tag counter) and gateway retries around the run.
            extra="-"
            if [[ "$mode" == retry ]]; then
                emu_before="$(emu_count)"; gw_before="$(gw_retries "$base")"
            fi
            log "measure  $mode c=$c $name (${SECONDS_PER_RUN}s)"
            run_oha "$RAW/$mode-c$c-$name.json" "$url" "$key" "$mode" "$c" "$SECONDS_PER_RUN" "$name"
            if [[ "$mode" == retry ]]; then
                extra="$emu_before,$(emu_count),$gw_before,$(gw_retries "$base")"
            fi
            # The responses mode's translated targets are reported as their own mode.
            rmode="$mode"; rname="$name"
            if [[ "$mode" == responses && "$name" == *-translated ]]; then
                rmode=responses-translated; rname="${name%-translated}"
            fi
            printf '%s\t%s\t%s\t%s\t%s\n' "$rmode" "$c" "$rname" "$RAW/$mode-c$c-$name.json" "$extra" >>"$MANIFEST"
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
levels=$LOG_LEVELS
flakyevery=$FLAKY_EVERY
flakytag=$FLAKY_TAG
policyrpm=$POLICY_RPM
policyconcurrency=$POLICY_CONCURRENCY
respnative=$RESP_NATIVE
respclaude=$RESP_CLAUDE
respupstream=$RESP_UPSTREAM
journal=$JOURNAL
redis=$REDIS_NOTE"
set +e
python3 - "$MANIFEST" "$BENCH_DIR/results/latest.md" "$META" <<'PY'
import json, sys

manifest, out_path, meta_text = sys.argv[1], sys.argv[2], sys.argv[3]
meta = dict(line.split("=", 1) for line in meta_text.splitlines() if "=" in line)
levels = meta["levels"].split()
every = int(meta["flakyevery"])
DEADLINE = "aborted due to deadline"
# The direct run each gateway-only mode is compared with (the emulator has no equivalent).
REF = {"translated": "stream", "retry": "nonstream", "policy": "nonstream", "policy-redis": "nonstream",
       "responses-translated": "responses"}

runs = {}
order = []
for line in open(manifest):
    parts = line.rstrip("\n").split("\t")
    mode, c, name, path = parts[:4]
    extra = parts[4] if len(parts) > 4 else "-"
    with open(path) as f:
        r = json.load(f)
    codes = {k: v for k, v in r.get("statusCodeDistribution", {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    non2xx = {k: v for k, v in codes.items() if not k.startswith("2")}
    errs = {k: v for k, v in r.get("errorDistribution", {}).items() if k != DEADLINE}
    total = r["summary"]["total"]
    pct = r.get("latencyPercentiles", {})
    run = {
        "rps": ok / total if total else 0.0,
        "p50": pct.get("p50"), "p99": pct.get("p99"),
        "ok": ok, "responses": sum(codes.values()), "non2xx": non2xx, "errors": errs,
    }
    if extra != "-":
        emu_before, emu_after, gw_before, gw_after = (int(x) for x in extra.split(","))
        run["upstream"] = emu_after - emu_before
        # `every=N` fails the tagged requests whose counter value is a multiple of N.
        run["503s"] = emu_after // every - emu_before // every
        run["gw_retries"] = gw_after - gw_before
    runs[(mode, int(c), name)] = run
    if (mode, int(c)) not in order:
        order.append((mode, int(c)))

def us(sec):
    return None if sec is None else sec * 1e6

def f_us(sec):
    return "n/a" if sec is None else f"{us(sec):,.0f}"

def f_add(a, b):
    return "n/a" if a is None or b is None else f"{us(b) - us(a):+,.0f}"

def added(a, b):
    return None if a is None or b is None else us(b) - us(a)

def f_rps(run):
    return "n/a" if run is None else f"{run['rps']:,.0f}"

def bad(run):
    return sum(run["non2xx"].values()) + sum(run["errors"].values())

mode_name = {"nonstream": "non-streaming", "stream": "streaming",
             "translated": "translated streaming", "retry": "retry non-streaming",
             "policy": "policy non-streaming (in-process limiter)",
             "policy-redis": "policy non-streaming (Redis limiter)",
             "responses": "Responses streaming (passthrough)",
             "responses-translated": "Responses streaming (translated → Anthropic)"}
lines = []
lines.append("# anyint gateway overhead benchmark")
lines.append("")
lines.append(f"- date: {meta['date']}, {meta['version']}, commit: {meta['commit']}")
lines.append(f"- usage journal: {meta['journal']}" + ("" if meta["journal"] == "on" else
             " (BENCH_JOURNAL=off: rows wait in memory; not the headline configuration)"))
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
if any(m in ("translated", "retry") for m, _ in order):
    lines.append("- translated: `POST /anthropic/v1/messages` streaming, translated to the OpenAI-kind "
                 "emulator and back; its direct columns are the direct *streaming* run. "
                 f"retry: model `flaky`, whose only route fails every {every}th upstream request "
                 "with a 503 that the gateway retries (backoff 1–5 ms); its direct columns are the "
                 "direct *non-streaming* run")
if any(m.startswith("policy") for m, _ in order):
    lines.append(f"- policy: the non-streaming request with a key limited to {int(meta['policyrpm']):,} "
                 f"requests per minute and {int(meta['policyconcurrency']):,} in flight (every request "
                 "takes a concurrency slot and a GCRA rate check, none is refused); its direct "
                 "columns are the direct *non-streaming* run. Redis limiter: " + meta["redis"])
if any(m.startswith("responses") for m, _ in order):
    lines.append("- Responses: `POST /openai/v1/responses` streaming with `store: false`; direct = the "
                 f"emulator's `/v1/responses` (model `{meta['respupstream']}`), passthrough = model "
                 f"`{meta['respnative']}` on a provider with `api = \"responses\"` (the emulator's "
                 f"`/v1/responses`), translated = model `{meta['respclaude']}` on an anthropic-kind "
                 "provider (the emulator's `/v1/messages`, re-framed as Responses events); both "
                 "gateway rows use the direct *Responses* run as their direct columns")
lines.append("")
lines.append("| mode | c | gateway log | direct req/s | gateway req/s | gw/direct | "
             "direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 | "
             "errors (direct/gw) |")
lines.append("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
failures = []
for mode, c in order:
    d = runs.get((REF.get(mode, mode), c, "direct"))
    if d is None:
        continue
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
    if "503s" in run and run["responses"] >= every and run["503s"] == 0:
        failures.append(f"{mode_name[mode]} c={c} {name}: no upstream 503 in {run['upstream']} "
                        "upstream requests; the fault was not applied")

cs = sorted({c for _, c in order})
modes_run = {m for m, _ in order}

# Translation cost: both gateway runs against the same direct streaming run.
if "translated" in modes_run:
    lines.append("")
    lines.append("## Translation cost (Anthropic → OpenAI streaming vs passthrough streaming)")
    lines.append("")
    lines.append("Both against the direct emulator streaming run at the same c; "
                 "ratio = translated added p99 ÷ passthrough added p99.")
    lines.append("")
    lines.append("| c | gateway log | passthrough req/s | translated req/s | "
                 "passthrough added p50 | translated added p50 | "
                 "passthrough added p99 | translated added p99 | added p99 ratio |")
    lines.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for c in cs:
        d = runs.get(("stream", c, "direct"))
        for level in levels:
            p = runs.get(("stream", c, f"gateway-{level}"))
            t = runs.get(("translated", c, f"gateway-{level}"))
            if d is None or p is None or t is None:
                continue
            pa, ta = added(d["p99"], p["p99"]), added(d["p99"], t["p99"])
            ratio = f"{ta / pa:.1f}×" if pa is not None and ta is not None and pa > 0 else "n/a"
            lines.append(f"| {c} | {level} | {f_rps(p)} | {f_rps(t)} | "
                         f"{f_add(d['p50'], p['p50'])} | {f_add(d['p50'], t['p50'])} | "
                         f"{f_add(d['p99'], p['p99'])} | {f_add(d['p99'], t['p99'])} | {ratio} |")

# Responses API: passthrough to a native Responses upstream and translation to an Anthropic-kind
# one, each against the direct Responses stream, next to chat passthrough streaming against the
# direct chat stream.
def ratio_of(num, den):
    return None if num is None or den is None or den <= 0 else num / den

def f_ratio(r, digits=2):
    return "n/a" if r is None else f"{r:.{digits}f}×"

if "responses" in modes_run:
    lines.append("")
    lines.append("## Responses API (native passthrough and translated to Anthropic vs chat passthrough)")
    lines.append("")
    lines.append("added = gateway − direct at the same c: chat passthrough against the direct chat "
                 "stream, Responses passthrough and translated against the direct Responses stream. "
                 "p50 ratio = Responses passthrough added p50 ÷ chat passthrough added p50; "
                 "p99 ratio = translated added p99 ÷ Responses passthrough added p99 "
                 "(n/a when the denominator is ≤ 0, i.e. within noise).")
    lines.append("")
    lines.append("| c | gateway log | direct Responses req/s | passthrough req/s | translated req/s | "
                 "chat passthrough req/s | chat passthrough added p50 | Responses passthrough added p50 | "
                 "translated added p50 | chat passthrough added p99 | Responses passthrough added p99 | "
                 "translated added p99 | p50 ratio (Responses ÷ chat) | p99 ratio (translated ÷ passthrough) |")
    lines.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c in cs:
        rd = runs.get(("responses", c, "direct"))
        cd = runs.get(("stream", c, "direct"))
        for level in levels:
            rp = runs.get(("responses", c, f"gateway-{level}"))
            rt = runs.get(("responses-translated", c, f"gateway-{level}"))
            cp = runs.get(("stream", c, f"gateway-{level}"))
            if rd is None or rp is None:
                continue
            c50 = added(cd["p50"], cp["p50"]) if cd and cp else None
            c99 = added(cd["p99"], cp["p99"]) if cd and cp else None
            p50, p99 = added(rd["p50"], rp["p50"]), added(rd["p99"], rp["p99"])
            t50 = added(rd["p50"], rt["p50"]) if rt else None
            t99 = added(rd["p99"], rt["p99"]) if rt else None
            fa = lambda a: "n/a" if a is None else f"{a:+,.0f}"
            lines.append(f"| {c} | {level} | {f_rps(rd)} | {f_rps(rp)} | {f_rps(rt)} | {f_rps(cp)} | "
                         f"{fa(c50)} | {fa(p50)} | {fa(t50)} | {fa(c99)} | {fa(p99)} | {fa(t99)} | "
                         f"{f_ratio(ratio_of(p50, c50), 3)} | {f_ratio(ratio_of(t99, p99))} |")

# Failover cost: the flaky model against the healthy model through the same gateway.
if "retry" in modes_run:
    lines.append("")
    lines.append(f"## Failover cost (1 in {every} upstream requests answered 503 and retried, "
                 "vs the healthy model)")
    lines.append("")
    lines.append("added = flaky − healthy (both through the gateway, non-streaming, same c); "
                 "upstream = requests the emulator saw under the fault's tag; "
                 "503s = how many of them it failed; gateway retries = `anyint_retries_total` delta.")
    lines.append("")
    lines.append("| c | gateway log | healthy req/s | flaky req/s | flaky/healthy | "
                 "healthy p50 | flaky p50 | added p50 | healthy p99 | flaky p99 | added p99 | "
                 "client requests | upstream | 503s absorbed | gateway retries | client non-2xx |")
    lines.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    mismatches = []
    for c in cs:
        for level in levels:
            h = runs.get(("nonstream", c, f"gateway-{level}"))
            f = runs.get(("retry", c, f"gateway-{level}"))
            if h is None or f is None:
                continue
            ratio = f"{f['rps'] / h['rps']:.0%}" if h["rps"] else "n/a"
            lines.append(f"| {c} | {level} | {f_rps(h)} | {f_rps(f)} | {ratio} | "
                         f"{f_us(h['p50'])} | {f_us(f['p50'])} | {f_add(h['p50'], f['p50'])} | "
                         f"{f_us(h['p99'])} | {f_us(f['p99'])} | {f_add(h['p99'], f['p99'])} | "
                         f"{f['responses']:,} | {f['upstream']:,} | {f['503s']:,} | "
                         f"{f['gw_retries']:,} | {bad(f)} |")
            # Each absorbed 503 should cost exactly one retry, i.e. one more upstream request.
            if f["gw_retries"] != f["503s"]:
                mismatches.append(
                    f"c={c} log {level}: {f['503s'] - f['gw_retries']:,} of {f['503s']:,} upstream "
                    f"503s were not followed by a retry ({f['gw_retries']:,} gateway retries); "
                    "a request whose attempts all get a 503 returns the last one to the client")
            if f["upstream"] != f["responses"] + f["gw_retries"]:
                mismatches.append(
                    f"c={c} log {level}: {f['upstream']:,} upstream requests ≠ "
                    f"{f['responses']:,} client requests + {f['gw_retries']:,} gateway retries")
    if mismatches:
        lines.append("")
        lines.append("Retry accounting does not add up (reported, not asserted):")
        lines.append("")
        lines.extend(f"- {m}" for m in mismatches)

# Policy cost: the limited key against the plain key, both non-streaming at the same c, measured
# back to back on the same gateway process (the "-off" run right before the policy run).
if "policy" in modes_run or "policy-redis" in modes_run:
    lines.append("")
    lines.append("## Policy cost (key with rpm and concurrency limits vs a plain key)")
    lines.append("")
    lines.append("added = policy on − policy off: the same non-streaming request through the same "
                 "gateway process at the same c, with the plain key (off) and then right after with "
                 "the limited key (on). The Redis rows use the gateway configured with "
                 "`[limits] redis_url` for both.")
    lines.append("")
    lines.append("| limiter | c | gateway log | off req/s | on req/s | on/off | off p50 | on p50 | "
                 "added p50 | off p99 | on p99 | added p99 | errors (off/on) |")
    lines.append("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for mode, limiter in (("policy", "in-process"), ("policy-redis", "Redis")):
        for c in cs:
            for level in levels:
                h = runs.get((mode, c, f"gateway-{level}-off"))
                p = runs.get((mode, c, f"gateway-{level}"))
                if h is None or p is None:
                    continue
                ratio = f"{p['rps'] / h['rps']:.0%}" if h["rps"] else "n/a"
                lines.append(f"| {limiter} | {c} | {level} | {f_rps(h)} | {f_rps(p)} | {ratio} | "
                             f"{f_us(h['p50'])} | {f_us(p['p50'])} | {f_add(h['p50'], p['p50'])} | "
                             f"{f_us(h['p99'])} | {f_us(p['p99'])} | {f_add(h['p99'], p['p99'])} | "
                             f"{bad(h)}/{bad(p)} |")
    if "policy" in modes_run and "policy-redis" not in modes_run:
        lines.append("")
        lines.append(f"Redis limiter: {meta['redis']}.")

lines.append("")
lines.append("Targets from the issue (reported, not asserted):")
lines.append("")
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
    if "translated" in modes_run and 1 in cs:
        d = runs.get(("stream", 1, "direct"))
        p = runs.get(("stream", 1, f"gateway-{level}"))
        t = runs.get(("translated", 1, f"gateway-{level}"))
        if d and p and t and None not in (d["p99"], p["p99"], t["p99"]):
            pa, ta = added(d["p99"], p["p99"]), added(d["p99"], t["p99"])
            if pa > 0:
                verdict = f"{ta / pa:.1f}× (target ≤ 2×: {'met' if ta <= 2 * pa else 'NOT met'})"
            else:
                verdict = "ratio n/a: passthrough added p99 ≤ 0, within noise (target not judged)"
            lines.append(f"- translated added p99 at c=1, log {level}: {ta:,.0f} µs vs passthrough "
                         f"{pa:,.0f} µs: {verdict}")
    if "responses" in modes_run and 1 in cs:
        rd, rp = runs.get(("responses", 1, "direct")), runs.get(("responses", 1, f"gateway-{level}"))
        rt = runs.get(("responses-translated", 1, f"gateway-{level}"))
        cd, cp = runs.get(("stream", 1, "direct")), runs.get(("stream", 1, f"gateway-{level}"))
        if rd and rp and cd and cp:
            c50, p50 = added(cd["p50"], cp["p50"]), added(rd["p50"], rp["p50"])
            r = ratio_of(p50, c50)
            verdict = ("n/a, chat passthrough added p50 ≤ 0 (within noise; not judged)" if r is None
                       else f"{r:.3f}× (target ≤ 1.10×: {'PASS' if r <= 1.10 else 'MISS'})")
            lines.append(f"- Responses passthrough added p50 at c=1, log {level}: {p50:+,.0f} µs vs chat "
                         f"passthrough {c50:+,.0f} µs: {verdict}")
        if rd and rp and rt:
            p99, t99 = added(rd["p99"], rp["p99"]), added(rd["p99"], rt["p99"])
            r = ratio_of(t99, p99)
            verdict = ("n/a, Responses passthrough added p99 ≤ 0 (within noise; not judged)" if r is None
                       else f"{r:.3f}× (target ≤ 2×: {'PASS' if r <= 2 else 'MISS'})")
            lines.append(f"- Responses translated (→ Anthropic) added p99 at c=1, log {level}: "
                         f"{t99:+,.0f} µs vs Responses passthrough {p99:+,.0f} µs: {verdict}")
    if "retry" in modes_run:
        for c in cs:
            f = runs.get(("retry", c, f"gateway-{level}"))
            if f is None:
                continue
            n = bad(f)
            lines.append(f"- retry at c={c}, log {level}: {f['responses']:,} client requests, "
                         f"{n} non-2xx or errors (target 0: {'met' if n == 0 else 'NOT met'}), "
                         f"{f['503s']:,} upstream 503s absorbed")
    for mode, limiter in (("policy", "in-process"), ("policy-redis", "Redis")):
        if mode not in modes_run:
            continue
        for c in cs:
            h = runs.get((mode, c, f"gateway-{level}-off"))
            p = runs.get((mode, c, f"gateway-{level}"))
            a = None if h is None or p is None else added(h["p50"], p["p50"])
            if a is None:
                continue
            if mode == "policy":
                verdict = f"target ≤ 50 µs: {'met' if a <= 50 else 'NOT met'}"
            else:
                verdict = "no target; the 50 µs target is for the in-process limiter"
            lines.append(f"- policy added p50 at c={c}, {limiter} limiter, log {level}: "
                         f"{a:+,.0f} µs ({verdict})")
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
rm -f "$BENCH_DIR/results/raw/"*.warnings.log
for gw in $LOG_LEVELS $(has_mode policy-redis && echo redis); do
    # The info-level log has one line per request; keep only the warnings and errors.
    grep -E ' (WARN|ERROR) ' "$TMP/gw-$gw/stderr.log" 2>/dev/null | head -n 500 \
        >"$BENCH_DIR/results/raw/gateway-$gw.warnings.log" || true
    n="$(grep -cE ' (WARN|ERROR) ' "$TMP/gw-$gw/stderr.log" 2>/dev/null || true)"
    if [[ "${n:-0}" -gt 0 ]]; then
        log "gateway ($gw) logged $n WARN/ERROR lines; see bench/results/raw/gateway-$gw.warnings.log"
    fi
done
log "wrote bench/results/latest.md (raw oha JSON in bench/results/raw/)"
if [[ "$report_rc" -ne 0 ]]; then
    log "FAILED: some runs had non-2xx responses or errors, or the retry fault was not applied (see the report); the figures are not valid"
    exit 1
fi
