#!/usr/bin/env bash
# geoline's redirector next to nginx doing the same job, on loopback.
#
#   bash benches/redirect/run.sh        # needs root for apt-get, or nginx, the geoip2 module and wrk
#
# The job: `GET /a/b?c=1` for `example.com` from a load balancer at 127.0.0.1 that says
# (X-Forwarded-For) the client is 1.2.4.8, a mainland address in the shipped database;
# the answer is `301 Location: https://example.cn/a/b?c=1` with `Cache-Control: private,
# max-age=3600`, and one JSON access-log line written to a file.
#
# nginx: Debian's package with libnginx-mod-http-geoip2 reading the same database
# (geoip/geo-whois-asn-country.mmdb, `country_code` at top level), realip believing
# X-Forwarded-For from 127.0.0.1, one process (master_process off).
# geoline: `geoline serve` with a [redirect] section, one tokio worker (taskset gives it one
# CPU, and tokio sizes its pool to the CPUs it may use).
#
# Each server runs alone on core 0, wrk on core 1. ROUNDS rounds, alternating servers, each
# a WARMUP then DURATION seconds of wrk. Reported per run: requests/s, p99 latency, server
# CPU per request (utime+stime of the whole process from /proc/PID/stat over the run,
# divided by the requests wrk counted); then, per server, the medians and the best runs
# (on a shared machine the best run is the least disturbed one), and geoline/nginx ratios.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
WORK=${WORK:-/tmp/geoline-redirect-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GEOLINE_PORT=18180 NGINX_PORT=18181
# shellcheck source=benches/redirect/configs.sh
. "$HERE/configs.sh"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || [ ! -f "$GEOIP2_MODULE" ]; then
    apt-get update -qq && apt-get install -y -qq nginx libnginx-mod-http-geoip2 wrk >/dev/null
fi
# The package may start a system nginx on port 80; it is not part of the benchmark.
if command -v systemctl >/dev/null; then systemctl stop nginx 2>/dev/null || true; fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi

(cd "$ROOT" && cargo build --release --bin geoline -q)
GEOLINE_BIN=$CARGO_TARGET_DIR/release/geoline

rm -rf "$WORK" && mkdir -p "$WORK"

write_configs "$WORK" "$GEOLINE_PORT" "$NGINX_PORT"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

taskset -c 0 "$GEOLINE_BIN" serve --config "$WORK/geoline.toml" \
    >"$WORK/geoline-access.log" 2>"$WORK/geoline-error.log" &
GEOLINE_PID=$!
PIDS+=("$GEOLINE_PID")
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

wait_port "$GEOLINE_PORT"
wait_port "$NGINX_PORT"

URL_PATH='/a/b?c=1'
echo "== the responses (must both be 301 to https://example.cn/a/b?c=1)"
for port in "$GEOLINE_PORT" "$NGINX_PORT"; do
    curl -s -o /dev/null -D - -H 'Host: example.com' -H 'X-Forwarded-For: 1.2.4.8' \
        "http://127.0.0.1:$port$URL_PATH" | grep -iE '^(HTTP|location|cache-control)' | tr -d '\r'
    echo
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME PORT PID -> "rps p99_ms cpu_us_per_request"
run() {
    local port=$2 pid=$3 out before after
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" \
        -H 'Host: example.com' -H 'X-Forwarded-For: 1.2.4.8' \
        "http://127.0.0.1:$port$URL_PATH" >/dev/null
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H 'Host: example.com' -H 'X-Forwarded-For: 1.2.4.8' \
        "http://127.0.0.1:$port$URL_PATH")
    after=$(cpu_ticks "$pid")
    echo "$out" >"$WORK/wrk-$1-$(date +%s%N).txt"
    if echo "$out" | grep -q 'Non-2xx or 3xx'; then
        echo "$1: errors in the responses:" >&2
        echo "$out" >&2
        exit 1
    fi
    local requests rps p99
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
        if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000;
        print v }')
    local hz
    hz=$(getconf CLK_TCK)
    awk -v r="$rps" -v p="$p99" -v t=$((after - before)) -v n="$requests" -v hz="$hz" \
        'BEGIN { printf "%.0f %.3f %.2f\n", r, p, t * 1e6 / hz / n }'
}

echo "== $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections, server on core 0, wrk on core 1"
printf '%-8s %-6s %12s %10s %16s\n' round server 'requests/s' 'p99 ms' 'CPU us/request'
: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
    for server in nginx geoline; do
        if [ "$server" = nginx ]; then r=$(run nginx "$NGINX_PORT" "$NGINX_PID");
        else r=$(run geoline "$GEOLINE_PORT" "$GEOLINE_PID"); fi
        echo "$server $r" >>"$WORK/results"
        # shellcheck disable=SC2086
        printf '%-8s %-6s %12s %10s %16s\n' "$round" "$server" $r
    done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$WORK/results"; }
table() { # TITLE PICK-for-rps PICK-for-p99 PICK-for-cpu, each "median", "max" or "min"
    pick() { case $1 in median) median ;; max) sort -n | tail -1 ;; min) sort -n | head -1 ;; esac; }
    local n_rps g_rps n_p99 g_p99 n_cpu g_cpu
    n_rps=$(col nginx 2 | pick "$2") g_rps=$(col geoline 2 | pick "$2")
    n_p99=$(col nginx 3 | pick "$3") g_p99=$(col geoline 3 | pick "$3")
    n_cpu=$(col nginx 4 | pick "$4") g_cpu=$(col geoline 4 | pick "$4")
    echo
    echo "== $1"
    printf '| %-22s | %10s | %10s | %14s |\n' '' nginx geoline 'geoline/nginx'
    printf '|%s|%s|%s|%s|\n' ------------------------ ------------ ------------ ----------------
    awk -v n="$n_rps" -v g="$g_rps" 'BEGIN { printf "| %-22s | %10d | %10d | %13.2fx |\n", "requests/s", n, g, g / n }'
    awk -v n="$n_p99" -v g="$g_p99" 'BEGIN { printf "| %-22s | %10.3f | %10.3f | %13.2fx |\n", "p99 latency (ms)", n, g, g / n }'
    awk -v n="$n_cpu" -v g="$g_cpu" 'BEGIN { printf "| %-22s | %10.2f | %10.2f | %13.2fx |\n", "server CPU us/request", n, g, g / n }'
}
table "medians" median median median
table "best runs (each column on its own)" max min min
echo
echo "access-log lines written: nginx $(wc -l <"$WORK/nginx-access.log"), geoline $(grep -c '"status":301' "$WORK/geoline-access.log")"
echo "logs and wrk output in $WORK"
