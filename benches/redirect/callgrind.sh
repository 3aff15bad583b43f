#!/usr/bin/env bash
# User-space instructions per redirect, geoline and nginx, under callgrind.
#
#   bash benches/redirect/callgrind.sh     # needs valgrind, nginx, libnginx-mod-http-geoip2, wrk
#   GEOLINE_BIN=/path/to/geoline bash benches/redirect/callgrind.sh   # another build, as is
#   SCENARIO=close LOG=off bash benches/redirect/callgrind.sh         # another of run.sh's jobs
#
# The same jobs and configurations as run.sh (configs.sh): SCENARIO keepalive (the
# default), close or passthrough, LOG on (the default) or off. Each server runs alone under
# `valgrind --tool=callgrind` on core 0; wrk warms it up, then two measured runs follow,
# SHORT and DURATION seconds, each with the counters zeroed before (callgrind_control -z)
# and dumped after (callgrind_control -d), and the access-log lines it wrote counted.
# Instructions per request = (long run's total - short run's) / (long run's requests -
# short run's): both runs open the same 50 connections, so what a connection costs once
# (accept, task, buffers) cancels out, and what is left is the cost of one more request on
# a kept-alive connection. Callgrind counts user-space instructions only, the same for every
# run: a measure of the work per request that the machine's load does not disturb (the
# kernel's part is in run.sh's CPU per request: count the system calls per request with
# `strace -c -f -p PID` over a short wrk run). Under `close` the difference is the cost of
# one more request on one more connection; under `passthrough` the origin (a plain nginx,
# not under callgrind) runs on core 1 with wrk. The dumps stay in WORK for
# callgrind_annotate.
set -euo pipefail

DURATION=${DURATION:-10}
SHORT=${SHORT:-2}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-50}
SCENARIO=${SCENARIO:-keepalive}
LOG=${LOG:-on}
WORK=${WORK:-/tmp/geoline-redirect-callgrind}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GEOLINE_PORT=18190 NGINX_PORT=18191 ORIGIN_PORT=18192
# shellcheck source=benches/redirect/configs.sh
. "$HERE/configs.sh"

if [ -z "${GEOLINE_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --bin geoline -q)
    GEOLINE_BIN=$CARGO_TARGET_DIR/release/geoline
fi

rm -rf "$WORK" && mkdir -p "$WORK"
write_configs "$WORK" "$GEOLINE_PORT" "$NGINX_PORT" "$ORIGIN_PORT" "$LOG"

PID= ORIGIN_PID=
cleanup() {
    for p in $PID $ORIGIN_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
taskset -c 1 nginx -c "$WORK/origin.conf" -p "$WORK" &
ORIGIN_PID=$!
wait_port "$ORIGIN_PORT"

load() { # PORT SECONDS
    wrk_scenario "$SCENARIO" "$1" "$2" >"$WORK/wrk-last.txt"
    if grep -q 'Non-2xx or 3xx' "$WORK/wrk-last.txt"; then
        echo "errors in the responses:" >&2
        cat "$WORK/wrk-last.txt" >&2
        exit 1
    fi
}

# counted NAME PORT PID SECONDS -> "instructions requests" of one run (the requests wrk
# counted as answered)
counted() {
    local name=$1 port=$2 pid=$3 seconds=$4 dump
    callgrind_control -z "$pid" >/dev/null 2>&1
    load "$port" "$seconds"
    callgrind_control -d "$pid" >/dev/null 2>&1
    dump=$(ls -t "$WORK/callgrind.$name".* | head -1)
    echo "$(awk '/^(summary|totals):/ { print $2; exit }' "$dump") $(awk '/requests in/ { print $1 }' "$WORK/wrk-last.txt")"
}

# measure NAME PORT COMMAND... -> one line of the table
measure() {
    local name=$1 port=$2
    shift 2
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.$name" \
        "$@" >"$WORK/$name-stdout.log" 2>"$WORK/$name-stderr.log" &
    PID=$!
    wait_port "$port"
    load "$port" "$WARMUP"
    local short long
    short=$(counted "$name" "$port" "$PID" "$SHORT")
    long=$(counted "$name" "$port" "$PID" "$DURATION")
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
    # shellcheck disable=SC2086
    set -- $short $long
    awk -v n="$name" -v si="$1" -v sr="$2" -v li="$3" -v lr="$4" 'BEGIN {
        printf "%-8s %9d %12.0f %9d %12.0f %14.0f\n", n, sr, si / sr, lr, li / lr, (li - si) / (lr - sr) }'
}

echo "== $SCENARIO, access log $LOG: user-space instructions per request"
printf '%-8s %9s %12s %9s %12s %14s\n' server requests 'instr/req' requests 'instr/req' 'per extra req'
printf '%-8s %22s %22s\n' '' "(${SHORT}s run)" "(${DURATION}s run)"
measure nginx "$NGINX_PORT" nginx -c "$WORK/nginx.conf" -p "$WORK"
measure geoline "$GEOLINE_PORT" "$GEOLINE_BIN" serve --config "$WORK/geoline.toml"
echo "dumps in $WORK (callgrind_annotate $WORK/callgrind.geoline.*)"
