#!/usr/bin/env bash
# A zone of a million records: how long geoline takes to load it, how much memory it holds
# per record, and whether it answers at the rate it answers the small example zone.
#
#   benches/peers/big_zone.sh [--records N] [--duration S] [--load-only] [--install]
#
# The zone is zones/example.com.zone plus N host A records, with a china overlay
# replacing every tenth. geoline loads it (time to the first answer, resident and peak
# memory), reloads it after a change (POST /reload: peak memory during the reload, with
# the old zone still answering), and is queried with dnsperf (ECS mainland) on the peer
# benchmark's four-name mix, then on 100,000 random names of the zone (not with
# --load-only). geoline runs on core 0, dnsperf on core 1. Everything started here is
# stopped on exit.
#
# Knot DNS (knotd, when installed; --install installs it) loads the same base file the
# same way, on the same core: time to the first answer, resident and peak memory, then
# a reload of the changed file (knotc zone-reload, blocking) and its peak, so that the
# two servers' numbers are taken alike. Knot serves the base file only (it has no
# overlays; its geoip module would hold the china line's records in its own
# configuration).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$ROOT/benches/lib.sh"
RECORDS=1000000
DURATION=10
LOAD_ONLY=0
INSTALL=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --load-only) LOAD_ONLY=1 ;;
        --install) INSTALL=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

WORK="$(mktemp -d /tmp/geoline-big.XXXXXX)"
PID=""
KNOT_PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
    [[ -n "$KNOT_PID" ]] && kill "$KNOT_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --quiet --bin geoline)
GEOLINE="$CARGO_TARGET_DIR/release/geoline"

big_zone_files "$ROOT" "$WORK" "$RECORDS"
python3 - "$WORK" "$RECORDS" <<'EOF'
import random, sys
work, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
with open(f"{work}/random.txt", "w") as f:
    for _ in range(100_000):
        f.write(f"h{random.randrange(n)}.example.com A\n")
with open(f"{work}/mix.txt", "w") as f:
    f.write("www.example.com A\napi.example.com A\nexample.com MX\nnx.example.com A\n")
EOF
for name in big small; do
    if [[ $name == big ]]; then
        zone="$WORK/big.zone"; overlay="$WORK/big.china.zone"; port=5330
    else
        zone="$ROOT/zones/example.com.zone"; overlay="$ROOT/zones/example.com.china.zone"; port=5331
    fi
    geoline_toml "$port" "$ROOT/geoip/geo-whois-asn-country.mmdb" "$zone" "$overlay" \
        "udp_workers = 1" > "$WORK/$name.toml"
done
ADMIN=9335
# One reload, by POST /reload: the file watcher would start a second one.
printf '\n[admin]\nlisten = "127.0.0.1:%s"\n\n[reload]\nwatch = false\n' "$ADMIN" >> "$WORK/big.toml"

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# answering PORT PID LOG START: waits until the server PID answers on PORT, then prints
# the seconds since START; exits with its LOG if it stops first.
answering() {
    until dig +time=1 +tries=1 -p "$1" @127.0.0.1 example.com SOA 2>/dev/null \
        | grep -q 'status: NOERROR'; do
        kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
        sleep 0.2
    done
    python3 -c "print(round($(date +%s.%N) - $4, 1))"
}

if [[ $INSTALL == 1 ]] && ! command -v knotd > /dev/null; then
    [[ -e /usr/sbin/policy-rc.d ]] || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y knot > /dev/null
fi
if command -v knotd > /dev/null; then
    # Knot first, before the geoline reload below changes the file.
    mkdir -p "$WORK/knot"
    cp "$WORK/big.zone" "$WORK/knot/example.com.zone"
    knot_conf "$WORK/knot" 5332 "$WORK/knot/example.com.zone" > "$WORK/knot/knot.conf"
    start=$(date +%s.%N)
    taskset -c 0 knotd -c "$WORK/knot/knot.conf" > "$WORK/knot.log" 2>&1 &
    KNOT_PID=$!
    ready=$(answering 5332 "$KNOT_PID" "$WORK/knot.log" "$start")
    echo "== Knot $(knotd --version | awk '{print $NF}'), big zone (base file only): answering after ${ready}s, RSS $(rss "$KNOT_PID") kB (peak $(hwm "$KNOT_PID") kB)"
    # A new serial, or Knot keeps the zone it has.
    sed -i '0,/2026112201/s//2026112202/' "$WORK/knot/example.com.zone"
    echo 5 > "/proc/$KNOT_PID/clear_refs"
    start=$(date +%s.%N)
    knotc -c "$WORK/knot/knot.conf" -b zone-reload example.com. > /dev/null
    took=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
    dig +short -p 5332 @127.0.0.1 example.com SOA | grep -q 2026112202 \
        || { echo "Knot did not reload" >&2; cat "$WORK/knot.log"; exit 1; }
    echo "== Knot reloaded in ${took}s, RSS $(rss "$KNOT_PID") kB (peak $(hwm "$KNOT_PID") kB)"
    kill "$KNOT_PID"; wait "$KNOT_PID" 2>/dev/null || true; KNOT_PID=""
else
    echo "== Knot: knotd not installed (--install installs it); geoline only"
fi

echo "== loading $RECORDS records (+ $((RECORDS / 10)) in the china overlay)"
/usr/bin/env time -f "%e s, peak RSS %M kB" "$GEOLINE" check --config "$WORK/big.toml" 2>&1 \
    | grep -E "^zone|peak RSS"

run() { # pid port file
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$2" -d "$3" -l 2 -c 8 -q 400 -E 8:00011800010204 \
        > /dev/null 2>&1 || true
    local before after out completed
    before=$(awk '{print $14 + $15}' "/proc/$1/stat")
    out="$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$2" -d "$3" -l "$DURATION" -c 8 -q 400 \
        -E 8:00011800010204 2>&1)"
    after=$(awk '{print $14 + $15}' "/proc/$1/stat")
    completed=$(echo "$out" | awk '/Queries completed/ {print $3}')
    printf '  %-22s %8.0f queries/s  %5.2f us/query CPU  lost %s\n' "$(basename "$3")" \
        "$(echo "$out" | awk '/Queries per second/ {print $4}')" \
        "$(python3 -c "print(($after - $before) / $(getconf CLK_TCK) * 1e6 / $completed)")" \
        "$(echo "$out" | awk '/Queries lost/ {print $3}')"
}

for name in small big; do
    port=$([[ $name == big ]] && echo 5330 || echo 5331)
    start=$(date +%s.%N)
    taskset -c 0 "$GEOLINE" serve --config "$WORK/$name.toml" > "$WORK/$name.log" 2>&1 &
    PID=$!
    ready=$(answering "$port" "$PID" "$WORK/$name.log" "$start")
    echo "== $name zone: answering after ${ready}s, RSS $(rss "$PID") kB (peak $(hwm "$PID") kB)"
    if [[ $name == big ]]; then
        # A changed file is loaded beside the zone serving, then swapped in.
        echo "; changed" >> "$WORK/big.zone"
        # The peak from here on (Linux: 5 resets VmHWM to the current RSS).
        echo 5 > "/proc/$PID/clear_refs"
        start=$(date +%s.%N)
        curl -sf -X POST "127.0.0.1:$ADMIN/reload" > "$WORK/reload.json" \
            || { cat "$WORK/reload.json" "$WORK/$name.log"; exit 1; }
        took=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
        echo "== big zone reloaded in ${took}s, RSS $(rss "$PID") kB (peak $(hwm "$PID") kB)"
    fi
    if [[ $LOAD_ONLY == 1 ]]; then
        kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
        continue
    fi
    run "$PID" "$port" "$WORK/mix.txt"
    if [[ $name == big ]]; then
        run "$PID" "$port" "$WORK/random.txt"
        run "$PID" "$port" "$WORK/random.txt"
    fi
    echo "  RSS after the runs: $(rss "$PID") kB"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
