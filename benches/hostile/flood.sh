#!/usr/bin/env bash
# A random-subdomain ("water torture") flood at full rate while a legitimate client keeps
# asking: the share of legitimate queries answered, with response rate limiting off and
# on. See README.md, "Reliability".
#
#   benches/hostile/flood.sh [--duration S] [--legit-rate QPS] [--quota PERCENT]
#
# geoline runs one UDP worker on core 0, the flood (dnsperf, every query a new random name
# under example.com, from 127.0.0.1) and the legitimate client (dnsperf at a fixed rate
# from 127.0.1.1, another /24, over 2,000 names of a wildcard) on core 1. On two cores one dnsperf
# cannot send faster than one core of geoline answers, so by default geoline gets half a
# core (a cgroup CPU quota, --quota 50; 0 = no limit): the flood then outruns it, as an
# attack outruns a real server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION=10
LEGIT_RATE=2000
QUOTA=50
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift ;;
        --legit-rate) LEGIT_RATE="$2"; shift ;;
        --quota) QUOTA="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
need dnsperf python3 taskset
build_geoline

python3 - "$WORK/flood.txt" <<'PY'
import random, string, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    for _ in range(200_000):
        label = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        f.write(f"{label}.example.com A\n")
PY
# The legitimate side stands for many resolvers, each asking for a name now and then: 2,000
# names under the line-dependent wildcard *.apps, each asked about once a second at the
# default rate, as resolvers' caches do. Those resolvers sit in many networks, each far below
# the RRL limit; one source address cannot be many /24s (and RRL counts every answer from
# one wildcard in one bucket), so with RRL on its /24 is whitelisted.
for i in $(seq 1 2000); do echo "host$i.apps.example.com A"; done > "$WORK/legit.txt"

CGROUP=""
if [[ $QUOTA != 0 ]]; then
    if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        CGROUP="/sys/fs/cgroup/geoline-flood"
        mkdir -p "$CGROUP"
        echo "$((QUOTA * 100)) 10000" > "$CGROUP/cpu.max"
    elif [[ -d /sys/fs/cgroup/cpu ]]; then
        CGROUP="/sys/fs/cgroup/cpu/geoline-flood"
        mkdir -p "$CGROUP"
        echo 10000 > "$CGROUP/cpu.cfs_period_us"
        echo "$((QUOTA * 100))" > "$CGROUP/cpu.cfs_quota_us"
    else
        echo "no cgroup CPU controller: run with --quota 0" >&2
        exit 1
    fi
    trap 'cleanup; rmdir "$CGROUP" 2>/dev/null || true' EXIT INT TERM
fi

PORT=5340
config() { # RRL_BLOCK
    geoline_config "$PORT" "$ROOT/geoip/geo-whois-asn-country.mmdb" "$ROOT/zones" "" \
        "$(printf '[admin]\nlisten = "127.0.0.1:9340"\n\n%s' "$1")"
}

echo "== ${DURATION}s per phase; flood at full rate from 127.0.0.1, legitimate $LEGIT_RATE q/s from 127.0.1.1; geoline CPU quota ${QUOTA:-0}% of core 0"
printf '%-4s %12s %12s %10s %12s %12s %9s %10s %10s\n' rrl flood_sent flood_answ flood_q/s \
    legit_sent legit_answ answered legit_avg legit_max
for rrl in off on; do
    block=""
    [[ $rrl == on ]] && block=$'[dns.rrl]\nenabled = true\nresponses_per_second = 20\nslip = 2\nwhitelist = ["127.0.1.0/24"]'
    config "$block" > "$WORK/geoline-$rrl.toml"
    start_geoline "$rrl" 0 "$WORK/geoline-$rrl.toml"
    pid_var="PID_$rrl"; pid="${!pid_var}"
    # cgroup.procs moves every thread of the process, in cgroup v1 and v2 alike.
    [[ -n $CGROUP ]] && echo "$pid" > "$CGROUP/cgroup.procs"
    wait_dns "$PORT"
    # The flood waits for nothing: a short timeout keeps its window of queries moving
    # when answers are dropped.
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.0.1 -d "$WORK/flood.txt" \
        -l "$DURATION" -c 8 -q 20000 -t 0.1 > "$WORK/flood-$rrl.out" 2>&1 &
    flood=$!
    # Ahead of the flood for core 1, so that it sends at its rate whatever the flood does.
    legit_out="$(nice -n -10 taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.1.1 -d "$WORK/legit.txt" \
        -l "$DURATION" -Q "$LEGIT_RATE" -c 1 -q 4000 -t 1 2>&1)"
    wait "$flood" || true
    flood_out="$(cat "$WORK/flood-$rrl.out")"
    fs=$(dnsperf_field "$flood_out" "Queries sent:")
    fc=$(dnsperf_field "$flood_out" "Queries completed:")
    fq=$(dnsperf_field "$flood_out" "Queries per second:")
    ls=$(dnsperf_field "$legit_out" "Queries sent:")
    lc=$(dnsperf_field "$legit_out" "Queries completed:")
    lavg=$(dnsperf_field "$legit_out" "Average Latency (s):")
    lmax=$(echo "$legit_out" | sed -n 's/.*max \([0-9.]*\).*/\1/p' | head -1)
    share=$(awk -v c="$lc" -v s="$ls" 'BEGIN { printf "%.2f%%", s ? 100 * c / s : 0 }')
    printf '%-4s %12s %12s %10.0f %12s %12s %9s %8.2fms %8.2fms\n' "$rrl" "$fs" "$fc" "$fq" \
        "$ls" "$lc" "$share" "$(awk -v v="$lavg" 'BEGIN{print v*1000}')" \
        "$(awk -v v="${lmax:-0}" 'BEGIN{print v*1000}')"
    if [[ $rrl == on ]]; then
        curl -s http://127.0.0.1:9340/metrics | grep -E '^geoline_dns_rrl' | sed 's/^/    /' || true
    fi
    stop "$pid"
done
