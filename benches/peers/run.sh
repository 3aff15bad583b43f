#!/usr/bin/env bash
# geoline beside Knot DNS (geoip module), gdnsd (geoip plugin), PowerDNS (geoip backend)
# and optionally BIND (geoip ACL views), on the same zone, lines and database, loaded with
# dnsperf. See README.md, "Performance", for what it prints and how to read it.
#
#   benches/peers/run.sh [--install] [--duration S] [--runs N] [--rate Q] [--bind]
#                        [--servers "geoline knot gdnsd pdns"] [--geoline-workers N]
#                        [--server-cpus 0] [--dnsperf-cpus 1] [--realtime] [--out FILE]
#
# --install      apt-get install the peers, dnsperf, dig and python3 (Debian), stopping
#                any service a package starts.
# --duration S   seconds per dnsperf run (default 10)
# --runs N       runs per (server, ECS variant, phase); tables show medians (default 3)
# --rate Q       the fixed-rate phase's queries/s (dnsperf -Q; default 100000; 0 skips
#                it): every server answers all of it, so CPU per query compares equal work
# --bind         add BIND 9 (views by source address: it cannot choose a view by ECS)
# --realtime     run the servers SCHED_FIFO (chrt -f 50): less disturbed by other load
# --out FILE     also write the final tables to FILE
#
# Every server is pinned to --server-cpus (default core 0) and dnsperf to --dnsperf-cpus
# (default core 1). Each run is a full-load phase (as fast as dnsperf sends) and a
# fixed-rate phase. Everything started here is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION=10
RUNS=3
INSTALL=0
SERVERS="geoline knot gdnsd pdns"
GEOLINE_WORKERS=""
SERVER_CPUS=0
DNSPERF_CPUS=1
CLIENTS=8
OUTSTANDING=400
LATENCY_QPS=20000
RATE=100000
REALTIME=0
OUT=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --install) INSTALL=1 ;;
        --duration) DURATION="$2"; shift ;;
        --runs) RUNS="$2"; shift ;;
        --rate) RATE="$2"; shift ;;
        --realtime) REALTIME=1 ;;
        --bind) SERVERS="$SERVERS bind" ;;
        --servers) SERVERS="$2"; shift ;;
        --geoline-workers) GEOLINE_WORKERS="$2"; shift ;;
        --server-cpus) SERVER_CPUS="$2"; shift ;;
        --dnsperf-cpus) DNSPERF_CPUS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ $INSTALL == 1 ]]; then
    apt-get update
    # policy-rc.d keeps the packages' services from starting; whatever starts anyway is
    # stopped below, by unit or by PID.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        REMOVE_POLICY=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y knot knot-module-geoip gdnsd \
        pdns-server pdns-backend-geoip bind9 dnsperf mmdb-bin bind9-dnsutils python3
    [[ ${REMOVE_POLICY:-0} == 1 ]] && rm -f /usr/sbin/policy-rc.d
    for unit in knot gdnsd pdns named bind9; do
        if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
            systemctl stop "$unit" || true
        fi
    done
    for daemon in knotd gdnsd pdns_server named; do
        for pid in $(pidof "$daemon" 2>/dev/null); do
            # Only a packaged service runs from the system configuration: ours run from WORK.
            if ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q geoline-peers; then
                kill "$pid" || true
            fi
        done
    done
fi

for tool in dnsperf dig taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool missing: run with --install" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/geoline-peers.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "== building geoline (release)"
(cd "$ROOT" && cargo build --release --quiet --bin geoline --example geoip2_country)
GEOLINE="$CARGO_TARGET_DIR/release/geoline"

echo "== converting the database to GeoIP2 Country layout"
DB="$WORK/GeoIP2-Country.mmdb"
"$CARGO_TARGET_DIR/release/examples/geoip2_country" "$ROOT/geoip/geo-whois-asn-country.mmdb" "$DB"

declare -A PORT=([geoline]=5310 [knot]=5311 [gdnsd]=5312 [pdns]=5313 [bind]=5314)

"$HERE/configs.sh" "$ROOT" "$WORK" "$DB" "${GEOLINE_WORKERS}"

SCHED=()
[[ $REALTIME == 1 ]] && SCHED=(chrt -f 50)

start() { # name, command...
    local name="$1"; shift
    taskset -c "$SERVER_CPUS" "${SCHED[@]}" "$@" > "$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
}

wait_ready() { # name
    local port="${PORT[$1]}"
    for _ in $(seq 1 100); do
        if dig +time=1 +tries=1 +norec -p "$port" @127.0.0.1 example.com SOA 2>/dev/null \
            | grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.2
    done
    echo "$1 did not start; its log:" >&2
    cat "$WORK/$1.log" >&2
    return 1
}

for s in $SERVERS; do
    case "$s" in
        geoline) start geoline "$GEOLINE" serve --config "$WORK/geoline/geoline.toml" ;;
        knot) start knot knotd -c "$WORK/knot/knot.conf" ;;
        gdnsd) mkdir -p /run/gdnsd /var/lib/gdnsd; start gdnsd gdnsd -c "$WORK/gdnsd" start ;;
        pdns) start pdns pdns_server --config-dir="$WORK/pdns" ;;
        bind) start bind named -g -c "$WORK/bind/named.conf" -n 1 -U 1 ;;
    esac
done
for s in $SERVERS; do wait_ready "$s"; done
echo "== started: $SERVERS"

# The query mix: a line-dependent A, a line-dependent CNAME, an MX that is the same on
# every line (with glue), and an NXDOMAIN.
MIX="$WORK/mix.txt"
printf '%s\n' "www.example.com A" "api.example.com A" "example.com MX" \
    "nx.example.com A" > "$MIX"
# ECS option payloads for dnsperf -E (family 1, source /24, scope 0, address).
declare -A ECS=([mainland]="8:00011800010204" [foreign]="8:00011800080808" [none]="")
declare -A ECS_DIG=([mainland]="+subnet=1.2.4.0/24" [foreign]="+subnet=8.8.8.0/24" [none]="")
VARIANTS="mainland foreign none"

echo "== answers (TTLs, ECS scope and additional sections aside; see README)"
MISMATCH=0
for v in $VARIANTS; do
    while read -r name type; do
        ref=""
        for s in $SERVERS; do
            got="$(dig +norec +time=2 +tries=1 ${ECS_DIG[$v]} -p "${PORT[$s]}" @127.0.0.1 \
                "$name" "$type" | python3 "$HERE/normalize.py")"
            printf '%-8s %-9s %-18s %s\n' "$s" "$v" "$name/$type" "$got" >> "$WORK/answers.txt"
            if [[ -z "$ref" ]]; then
                ref="$got"
            elif [[ "${got%%#*}" != "${ref%%#*}" ]]; then
                if [[ $s == bind && $v == mainland ]]; then
                    note="(expected: BIND chooses views by source address, not ECS)"
                else
                    note=""
                    MISMATCH=1
                fi
                echo "DIFFERS $s $v $name/$type: $got  vs  $ref $note"
            fi
        done
    done < "$MIX"
done
column -t -s $'\t' "$WORK/answers.txt" | sort -k3,3 -k2,2 -s | sed 's/^/  /'
[[ $MISMATCH == 0 ]] && echo "all servers agree (BIND's ECS differences aside, if it runs)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

PHASES="full"
[[ $RATE != 0 ]] && PHASES="full fixed"
echo "== load: $RUNS x ${DURATION}s per server, variant and phase (full load; fixed $RATE/s), dnsperf -c $CLIENTS -q $OUTSTANDING on CPU $DNSPERF_CPUS, servers on CPU $SERVER_CPUS"
RESULTS="$WORK/results.tsv"
for run in $(seq 1 "$RUNS"); do
    for v in $VARIANTS; do
        for s in $SERVERS; do
            pid_var="PID_$s"; pid="${!pid_var}"
            # Warm-up, so that caches (geoline's, PowerDNS's) are filled as in steady state.
            taskset -c "$DNSPERF_CPUS" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$MIX" -l 1 \
                -c "$CLIENTS" -q "$OUTSTANDING" ${ECS[$v]:+-E ${ECS[$v]}} > /dev/null 2>&1 || true
            for phase in $PHASES; do
                rate=()
                [[ $phase == fixed ]] && rate=(-Q "$RATE")
                before=$(cpu_ticks "$pid"); user_before=$(user_ticks "$pid")
                out="$(taskset -c "$DNSPERF_CPUS" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$MIX" \
                    -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" "${rate[@]}" \
                    ${ECS[$v]:+-E ${ECS[$v]}} 2>&1)"
                after=$(cpu_ticks "$pid"); user_after=$(user_ticks "$pid")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$s" "$v" "$run" \
                    "$((after - before))" "$((user_after - user_before))" "$(hwm_kb "$pid")" \
                    "$(echo "$out" | tr '\n' '|')" >> "$RESULTS"
                printf '  run %s %-5s %-8s %-9s %s, CPU %s ticks\n' "$run" "$phase" "$s" "$v" \
                    "$(echo "$out" | grep -E 'Queries per second' | tr -s ' ')" "$((after - before))"
            done
        done
    done
done

# p99 latency: dnsperf 2.10 prints only mean and deviation, so one more run per server
# with -v (a line per query, latency last). At a fixed rate every server sustains: at full
# load, latency is only the queue dnsperf's outstanding window makes (Little's law).
echo "== latency percentiles (one ${DURATION}s run per server at $LATENCY_QPS queries/s, ECS mainland)"
for s in $SERVERS; do
    taskset -c "$DNSPERF_CPUS" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$MIX" -l "$DURATION" \
        -c "$CLIENTS" -q "$OUTSTANDING" -Q "$LATENCY_QPS" -E "${ECS[mainland]}" -v 2>/dev/null \
        | awk -v s="$s" '$1 == ">" {print s "\t" $NF}' > "$WORK/lat-$s.tsv" || true
done
cat "$WORK"/lat-*.tsv > "$WORK/latency.tsv" 2>/dev/null || true

# Where each server's memory is, at the end: the peak (VmHWM, the tables' column), and what
# is resident now split into anonymous (heap, stacks, relocated data) and file-backed (code
# and read-only data of the binary and its libraries, mapped 64 KiB around each page used),
# with the thread count. A difference in VmHWM is then seen to be code or data.
echo "== memory at the end (MiB): peak, resident anonymous + file-backed, threads"
for s in $SERVERS; do
    pid_var="PID_$s"; pid="${!pid_var}"
    awk -v s="$s" -v threads="$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" '
        /^VmHWM/ {hwm = $2} /^RssAnon/ {anon = $2} /^RssFile/ {file = $2}
        END {printf "  %-8s VmHWM %5.1f  anonymous %5.1f + file-backed %5.1f  threads %d\n",
             s, hwm / 1024, anon / 1024, file / 1024, threads}' "/proc/$pid/status" || true
done

echo "== results ($(date -u +%F), $(nproc) cores, $(uname -r))"
python3 "$HERE/report.py" "$RESULTS" "$WORK/latency.tsv" "$TICK" "$RATE" | tee "$WORK/table.txt"
if [[ -n "$OUT" ]]; then
    cp "$WORK/table.txt" "$OUT"
    echo "table written to $OUT"
fi
