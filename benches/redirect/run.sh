#!/usr/bin/env bash
# geoline's redirector next to nginx doing the same jobs, on loopback.
#
#   bash benches/redirect/run.sh        # needs root for apt-get, or nginx, the geoip2 module and wrk
#   SCENARIOS=close LOGS=off ROUNDS=1 DURATION=2 bash benches/redirect/run.sh   # a smoke run
#
# The jobs (configs.sh): SCENARIOS, any of `keepalive` (a 301 on 50 kept-alive
# connections), `close` (the same, a new connection per request) and `passthrough` (a
# foreign client's request passed through to a local origin); each with LOGS, `on` (one
# JSON access-log line per request written to a file by both) and `off` (no access log on
# either). The request: `GET /a/b?c=1` for `example.com` from a load balancer at 127.0.0.1
# that says (X-Forwarded-For) the client is 1.2.4.8, a mainland address in the shipped
# database (8.8.8.8, a foreign one, for the pass-through); the redirect is `301 Location:
# https://example.cn/a/b?c=1` with `Cache-Control: private, max-age=3600`.
#
# nginx: Debian's package with libnginx-mod-http-geoip2 reading the same database
# (geoip/geo-whois-asn-country.mmdb, `country_code` at top level), realip believing
# X-Forwarded-For from 127.0.0.1, one process (master_process off), kept-alive connections
# to the origin. geoline: `geoline serve` with a [redirect] section, one tokio worker
# (taskset gives it one CPU, and tokio sizes its pool to the CPUs it may use). The origin:
# a plain nginx on core 1.
#
# Each server runs alone on core 0, wrk on core 1. Per job, ROUNDS rounds, alternating
# servers, each a WARMUP then DURATION seconds of wrk. Reported per run: requests/s, p99
# latency, server CPU per request (utime+stime of the whole process from /proc/PID/stat over
# the run, divided by the requests wrk counted as answered); then, per job and server, the
# medians and the best runs (on a shared machine the best run is the least disturbed one),
# the geoline/nginx ratios, and at the end one table of CPU per request of every job.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
SCENARIOS=${SCENARIOS:-keepalive close passthrough}
LOGS=${LOGS:-on off}
WORK=${WORK:-/tmp/geoline-redirect-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GEOLINE_PORT=18180 NGINX_PORT=18181 ORIGIN_PORT=18182
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

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run JOB NAME PORT PID -> "rps p99_ms cpu_us_per_request"
run() {
    local job=$1 name=$2 port=$3 pid=$4 out before after
    wrk_scenario "$SCENARIO" "$port" "$WARMUP" >/dev/null
    before=$(cpu_ticks "$pid")
    out=$(wrk_scenario "$SCENARIO" "$port" "$DURATION" --latency)
    after=$(cpu_ticks "$pid")
    echo "$out" >"$WORK/$job/wrk-$name-$(date +%s%N).txt"
    if echo "$out" | grep -qE 'Non-2xx or 3xx|Socket errors'; then
        echo "$job $name: errors:" >&2
        echo "$out" >&2
        # A few connect errors under `close` are the client's ephemeral ports, not the
        # server; responses other than the expected status are not.
        if echo "$out" | grep -q 'Non-2xx or 3xx'; then exit 1; fi
    fi
    local requests rps p99
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
        if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000;
        print v }')
    awk -v r="$rps" -v p="$p99" -v t=$((after - before)) -v n="$requests" -v hz="$HZ" \
        'BEGIN { printf "%.0f %.3f %.2f\n", r, p, t * 1e6 / hz / n }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pick() { case $1 in median) median ;; max) sort -n | tail -1 ;; min) sort -n | head -1 ;; esac; }
table() { # RESULTS TITLE PICK-for-rps PICK-for-p99 PICK-for-cpu, each "median", "max" or "min"
    col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$results"; }
    local results=$1 n_rps g_rps n_p99 g_p99 n_cpu g_cpu
    n_rps=$(col nginx 2 | pick "$3") g_rps=$(col geoline 2 | pick "$3")
    n_p99=$(col nginx 3 | pick "$4") g_p99=$(col geoline 3 | pick "$4")
    n_cpu=$(col nginx 4 | pick "$5") g_cpu=$(col geoline 4 | pick "$5")
    echo
    echo "== $2"
    printf '| %-22s | %10s | %10s | %14s |\n' '' nginx geoline 'geoline/nginx'
    printf '|%s|%s|%s|%s|\n' ------------------------ ------------ ------------ ----------------
    awk -v n="$n_rps" -v g="$g_rps" 'BEGIN { printf "| %-22s | %10d | %10d | %13.2fx |\n", "requests/s", n, g, g / n }'
    awk -v n="$n_p99" -v g="$g_p99" 'BEGIN { printf "| %-22s | %10.3f | %10.3f | %13.2fx |\n", "p99 latency (ms)", n, g, g / n }'
    awk -v n="$n_cpu" -v g="$g_cpu" 'BEGIN { printf "| %-22s | %10.2f | %10.2f | %13.2fx |\n", "server CPU us/request", n, g, g / n }'
}

: >"$WORK/summary"
for SCENARIO in $SCENARIOS; do
    for LOG in $LOGS; do
        job=$SCENARIO-log-$LOG
        mkdir -p "$WORK/$job"
        write_configs "$WORK/$job" "$GEOLINE_PORT" "$NGINX_PORT" "$ORIGIN_PORT" "$LOG"
        taskset -c 1 nginx -c "$WORK/$job/origin.conf" -p "$WORK/$job" &
        PIDS+=($!)
        taskset -c 0 "$GEOLINE_BIN" serve --config "$WORK/$job/geoline.toml" \
            >"$WORK/$job/geoline-stdout.log" 2>"$WORK/$job/geoline-error.log" &
        GEOLINE_PID=$!
        PIDS+=("$GEOLINE_PID")
        taskset -c 0 nginx -c "$WORK/$job/nginx.conf" -p "$WORK/$job" &
        NGINX_PID=$!
        PIDS+=("$NGINX_PID")
        wait_port "$ORIGIN_PORT"
        wait_port "$GEOLINE_PORT"
        wait_port "$NGINX_PORT"

        echo
        echo "=== $job: the responses (both $(expected_status "$SCENARIO"))"
        for port in "$GEOLINE_PORT" "$NGINX_PORT"; do
            client=$MAINLAND_CLIENT
            if [ "$SCENARIO" = passthrough ]; then client=$FOREIGN_CLIENT; fi
            curl -s -o /dev/null -D - -H 'Host: example.com' -H "X-Forwarded-For: $client" \
                "http://127.0.0.1:$port/a/b?c=1" | grep -iE '^(HTTP|location|cache-control)' | tr -d '\r'
        done

        echo "=== $job: $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections, server on core 0, wrk on core 1"
        printf '%-8s %-8s %12s %10s %16s\n' round server 'requests/s' 'p99 ms' 'CPU us/request'
        results=$WORK/$job/results
        : >"$results"
        for round in $(seq "$ROUNDS"); do
            for server in nginx geoline; do
                if [ "$server" = nginx ]; then r=$(run "$job" nginx "$NGINX_PORT" "$NGINX_PID");
                else r=$(run "$job" geoline "$GEOLINE_PORT" "$GEOLINE_PID"); fi
                echo "$server $r" >>"$results"
                # shellcheck disable=SC2086
                printf '%-8s %-8s %12s %10s %16s\n' "$round" "$server" $r
            done
        done
        table "$results" "$job: medians" median median median
        table "$results" "$job: best runs (each column on its own)" max min min
        cleanup
        if [ "$LOG" = on ]; then
            status=$(expected_status "$SCENARIO")
            echo "access-log lines written: nginx $(wc -l <"$WORK/$job/nginx-access.log"), geoline $(grep -c "\"status\":$status" "$WORK/$job/geoline-access.log")"
        fi
        n_cpu=$(awk '$1 == "nginx" { print $4 }' "$results" | median)
        g_cpu=$(awk '$1 == "geoline" { print $4 }' "$results" | median)
        echo "$SCENARIO $LOG $n_cpu $g_cpu" >>"$WORK/summary"
    done
done

echo
echo "== server CPU per answered request, medians of $ROUNDS rounds (the target: geoline at most 0.80x nginx)"
printf '| %-11s | %-10s | %12s | %14s | %13s |\n' scenario 'access log' 'nginx us' 'geoline us' 'geoline/nginx'
printf '|%s|%s|%s|%s|%s|\n' ------------- ------------ -------------- ---------------- ---------------
awk '{ printf "| %-11s | %-10s | %12.2f | %14.2f | %12.2fx |\n", $1, $2, $3, $4, $4 / $3 }' "$WORK/summary"
echo "logs and wrk output in $WORK"
