#!/usr/bin/env bash
# Dynamic updates per second, beside Knot DNS and BIND, and what 100 updates/s cost the
# queries. See README.md, "Performance", for how to read what it prints.
#
#   benches/updates/run.sh [--duration S] [--inflight N] [--servers "geoline knot bind"]
#                          [--syscalls]
#
# Phase 1, for each server: dnsperf -u keeps N TSIG-signed (hmac-sha256) UPDATE messages in
# flight over UDP for S seconds, each adding a new A record to one zone; every server is
# pinned to core 0, dnsperf to core 1. Printed: acknowledged (NOERROR) updates per second
# and the server's CPU time per update (utime+stime from /proc). Durability is each
# server's default: geoline fsyncs its journal before every NOERROR; Knot's journal is an
# LMDB database in its default "robust" mode (synced per transaction); BIND appends to its
# .jnl journal without an fsync of its own.
# Phase 2, geoline only: queries at a fixed rate (dnsperf -Q) alone, then 100 updates/s
# alone, then both; printed: the server's CPU time per query, the updates' own CPU per
# update, and the queries' share with updates beside them (the both phase's CPU less the
# updates' own, per query). Each geoline phase starts from the zone file, its journal gone.
# --syscalls: then 100 updates/s once more under `strace -c -f`, and the system calls per
# update by name (strace slows the server: its CPU is not measured in that phase).
# Needs (Debian): knot, bind9, dnsperf; strace for --syscalls. Everything started here is
# stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION=10
INFLIGHT=20
SERVERS="geoline knot bind"
QUERY_RATE=20000
SYSCALLS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift ;;
        --inflight) INFLIGHT="$2"; shift ;;
        --servers) SERVERS="$2"; shift ;;
        --query-rate) QUERY_RATE="$2"; shift ;;
        --syscalls) SYSCALLS=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

WORK="$(mktemp -d /tmp/geoline-updates.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --quiet --bin geoline)
GEOLINE="$ROOT/target/release/geoline"
SECRET="$(head -c 32 /dev/urandom | base64)"
KEY="bench-key"
# A port free for both UDP and TCP on 127.0.0.1.
PORT=$(python3 -c 'import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        t.close()')

zone() { # DIR
    mkdir -p "$1"
    cat >"$1/example.test.zone" <<ZONE
\$ORIGIN example.test.
\$TTL 300
@   SOA ns1 hostmaster 1 7200 900 1209600 60
    NS  ns1
ns1 A   127.0.0.1
www A   192.0.2.10
ZONE
}

# One message per update, each adding a name never added before, so that every one changes
# the zone (an add that is already there changes nothing, and a server may skip its journal).
python3 - "$WORK/updates.txt" "$WORK/updates-slow.txt" "$DURATION" <<'PY'
import sys
fast, slow, duration = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(fast, "w") as f:
    for i in range(max(200000, duration * 30000)):
        f.write(f"example.test\nadd u{i}.example.test 300 A 192.0.2.{i % 250 + 1}\nsend\n")
with open(slow, "w") as f:
    for i in range(duration * 200):
        f.write(f"example.test\nadd s{i}.example.test 300 A 192.0.2.{i % 250 + 1}\nsend\n")
PY
printf 'www.example.test A\nns1.example.test A\nexample.test SOA\nnx.example.test A\n' >"$WORK/queries.txt"

start_geoline() {
    zone "$WORK/geoline"
    # Every phase starts from the zone file alone: the journal a phase before left would
    # be replayed, and a zone of thousands of names is not the small zone the others get.
    # (A zone grown by updates: benches/update_cost.rs `full`.)
    rm -f "$WORK/geoline/example.test.jnl"
    cat >"$WORK/geoline/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$PORT"]

[[key]]
name = "$KEY"
algorithm = "hmac-sha256"
secret = "$SECRET"

[[zone]]
file = "example.test.zone"

[update]
rate = 0

[[update.grant]]
key = "$KEY"
zones = ["example.test"]
TOML
    taskset -c 0 "$GEOLINE" serve --config "$WORK/geoline/geoline.toml" \
        >"$WORK/geoline.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID=$!
}

start_knot() {
    zone "$WORK/knot"
    cat >"$WORK/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: "$WORK/knot"
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: "$WORK/knot"
key:
  - id: $KEY
    algorithm: hmac-sha256
    secret: $SECRET
acl:
  - id: update
    key: $KEY
    action: update
zone:
  - domain: example.test
    storage: "$WORK/knot"
    file: example.test.zone
    zonefile-sync: -1
    acl: update
log:
  - target: stderr
    any: warning
CONF
    taskset -c 0 knotd -c "$WORK/knot/knot.conf" >"$WORK/knot.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID=$!
}

start_bind() {
    zone "$WORK/bind"
    cat >"$WORK/bind/named.conf" <<CONF
options {
    directory "$WORK/bind";
    pid-file "$WORK/bind/named.pid";
    listen-on port $PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    notify no;
};
key "$KEY" { algorithm hmac-sha256; secret "$SECRET"; };
zone "example.test" {
    type primary;
    file "example.test.zone";
    allow-update { key "$KEY"; };
};
CONF
    taskset -c 0 named -g -n 1 -c "$WORK/bind/named.conf" >"$WORK/bind.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID=$!
}

wait_ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        if dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 example.test SOA 2>/dev/null \
            | grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.2
    done
    echo "server did not start; log:" >&2
    tail -n 20 "$WORK"/*.log >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

printf '%-8s %14s %18s %10s\n' server "updates/s" "CPU µs/update" "NOERROR%"
for server in $SERVERS; do
    "start_$server"
    wait_ready
    before=$(cpu_ticks "$SERVER_PID")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -u -d "$WORK/updates.txt" \
        -y "hmac-sha256:$KEY:$SECRET" -l "$DURATION" -q "$INFLIGHT" -c 1 2>&1)
    after=$(cpu_ticks "$SERVER_PID")
    qps=$(awk '/(Queries|Updates) per second/ {print $4}' <<<"$out")
    done_=$(awk '/(Queries|Updates) completed/ {print $3}' <<<"$out")
    ok=$(awk '/NOERROR/ {for (i = 1; i <= NF; i++) if ($i == "NOERROR") print $(i + 1)}' <<<"$out" | head -n 1)
    ok=${ok:-0}
    awk -v s="$server" -v q="$qps" -v t=$((after - before)) -v hz="$TICK" -v n="$done_" -v ok="$ok" \
        'BEGIN { printf "%-8s %14.0f %18.1f %10.1f\n", s, q, (n > 0 ? t / hz * 1e6 / n : 0), (n > 0 ? 100 * ok / n : 0) }'
    stop_server
done

if [[ " $SERVERS " == *" geoline "* ]]; then
    echo
    printf '%-34s %14s %16s\n' "geoline, queries at ${QUERY_RATE}/s" "queries/s" "CPU µs/query"
    # Three phases: the queries alone, the 100 updates/s alone (their own CPU, journal
    # syncs included), and both. The queries' share of the last is its CPU less the
    # updates' own: what applying updates costs the queries beside them.
    declare -A ticks
    for phase in alone updates-only with-updates; do
        start_geoline
        wait_ready
        upd_pid=""
        if [[ $phase != alone ]]; then
            taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -u -d "$WORK/updates-slow.txt" \
                -y "hmac-sha256:$KEY:$SECRET" -l "$DURATION" -Q 100 -q 10 >"$WORK/slow.out" 2>&1 &
            upd_pid=$!
        fi
        before=$(cpu_ticks "$SERVER_PID")
        if [[ $phase == updates-only ]]; then
            wait "$upd_pid"
            after=$(cpu_ticks "$SERVER_PID")
            n=$(awk '/(Queries|Updates) completed/ {print $3}' "$WORK/slow.out")
            ticks[updates]=$((after - before))
            awk -v p="updates alone ($n updates)" -v t=$((after - before)) -v hz="$TICK" -v n="$n" \
                'BEGIN { printf "%-34s %14s %16s   (%.0f µs per update)\n", p, "-", "-", t / hz * 1e6 / n }'
            stop_server
            continue
        fi
        out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" \
            -l "$DURATION" -Q "$QUERY_RATE" -q 200 2>&1)
        after=$(cpu_ticks "$SERVER_PID")
        [[ -n $upd_pid ]] && wait "$upd_pid"
        qps=$(awk '/(Queries|Updates) per second/ {print $4}' <<<"$out")
        done_=$(awk '/(Queries|Updates) completed/ {print $3}' <<<"$out")
        upd=""
        [[ -n $upd_pid ]] && upd=" ($(awk '/(Queries|Updates) completed/ {print $3}' "$WORK/slow.out") updates)"
        awk -v p="$phase$upd" -v q="$qps" -v t=$((after - before)) -v hz="$TICK" -v n="$done_" \
            'BEGIN { printf "%-34s %14.0f %16.2f\n", p, q, t / hz * 1e6 / n }'
        if [[ $phase == with-updates ]]; then
            awk -v t=$((after - before - ${ticks[updates]})) -v hz="$TICK" -v n="$done_" \
                'BEGIN { printf "%-34s %14s %16.2f\n", "  less the updates alone", "", t / hz * 1e6 / n }'
        fi
        stop_server
    done
fi

if [[ -n $SYSCALLS && " $SERVERS " == *" geoline "* ]]; then
    echo
    echo "geoline, system calls per update at 100 updates/s (strace -c -f)"
    start_geoline
    wait_ready
    strace -c -f -o "$WORK/strace.out" -p "$SERVER_PID" 2>/dev/null &
    strace_pid=$!
    sleep 1
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -u -d "$WORK/updates-slow.txt" \
        -y "hmac-sha256:$KEY:$SECRET" -l "$DURATION" -Q 100 -q 10 >"$WORK/slow.out" 2>&1
    kill -INT "$strace_pid"
    wait "$strace_pid" || true
    n=$(awk '/(Queries|Updates) completed/ {print $3}' "$WORK/slow.out")
    # Lines `% time, seconds, usecs/call, calls, [errors,] syscall`: calls is the fourth.
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / n >= 0.05 {
            printf "  %-16s %6.2f\n", $NF, $4 / n
        }' "$WORK/strace.out"
    stop_server
fi
