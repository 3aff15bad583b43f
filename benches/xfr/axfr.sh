#!/usr/bin/env bash
# AXFR of the million-record zone: geoline beside Knot DNS serving the same zone to the same
# client.
#
#   benches/xfr/axfr.sh [--records N] [--runs N]
#
# The zone is the one benches/peers/big_zone.sh loads (benches/lib.sh big_zone_files:
# zones/example.com.zone plus N host A records; geoline also has the china overlay, and the
# default line, which unsigned transfers from 127.0.0.1 get, is exactly Knot's zone). Both
# servers run pinned to core 0; `kdig +tcp AXFR` runs on core 1, RUNS times against each,
# alternating which goes first. Per server: the median wall time of the transfer (kdig
# started to kdig done), the bytes, messages and records kdig received, and the server's
# CPU time for the transfer (utime + stime from /proc/PID/stat, median); then geoline's
# ratio to Knot. Run it on a quiet machine. Needs (Debian): knot, knot-dnsutils. Everything
# started here is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$ROOT/benches/lib.sh"
RECORDS=1000000
RUNS=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift ;;
        --runs) RUNS="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
for tool in knotd kdig taskset; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install knot knot-dnsutils)" >&2; exit 2; }
done

WORK="$(mktemp -d /tmp/geoline-axfr.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --quiet --bin geoline)
GEOLINE="$CARGO_TARGET_DIR/release/geoline"

big_zone_files "$ROOT" "$WORK" "$RECORDS"
GPORT=5340
KPORT=5341
# geoline_toml ends with the [[zone]] table: the transfer keys go into it.
{
    geoline_toml "$GPORT" "$ROOT/geoip/geo-whois-asn-country.mmdb" "$WORK/big.zone" \
        "$WORK/big.china.zone" "udp_workers = 1"
    printf 'transfer.networks = ["127.0.0.1"]\n'
} > "$WORK/geoline.toml"
mkdir -p "$WORK/knot"
knot_conf "$WORK/knot" "$KPORT" "$WORK/big.zone" "" "acl:
  - id: transfer
    address: 127.0.0.1
    action: transfer" "    acl: transfer" > "$WORK/knot/knot.conf"

ready() { # port
    dig +time=1 +tries=1 -p "$1" @127.0.0.1 example.com SOA 2>/dev/null | grep -q 'status: NOERROR'
}
declare -A PID PORT=([geoline]=$GPORT [knot]=$KPORT)
taskset -c 0 "$GEOLINE" serve --config "$WORK/geoline.toml" > "$WORK/geoline.log" 2>&1 &
PID[geoline]=$!
PIDS+=("$!")
taskset -c 0 knotd -c "$WORK/knot/knot.conf" > "$WORK/knot.log" 2>&1 &
PID[knot]=$!
PIDS+=("$!")
for server in geoline knot; do
    until ready "${PORT[$server]}"; do
        kill -0 "${PID[$server]}" 2>/dev/null || { cat "$WORK/$server.log"; exit 1; }
        sleep 0.5
    done
done
echo "== AXFR of example.com ($RECORDS records + the example zone's), $RUNS runs each"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
declare -A WALL CPU SUMMARY
transfer() { # server run
    local server="$1" before after start end footer
    before=$(cpu "${PID[$server]}")
    start=$(date +%s%N)
    footer=$(taskset -c 1 kdig @127.0.0.1 -p "${PORT[$server]}" +tcp +time=60 AXFR example.com \
        | tail -3)
    end=$(date +%s%N)
    after=$(cpu "${PID[$server]}")
    grep -q "Received" <<<"$footer" || { echo "$server: no transfer: $footer" >&2; exit 1; }
    WALL[$server]+="$(( (end - start) / 1000000 )) "
    CPU[$server]+="$(( (after - before) * 1000 / TCK )) "
    # ";; Received 24887191 B (380 messages, 1000021 records)"
    SUMMARY[$server]=$(sed -n 's/^;; Received \([0-9]*\) B (\([0-9]*\) messages, \([0-9]*\) records).*/\1 \2 \3/p' <<<"$footer")
}
for ((run = 0; run < RUNS; run++)); do
    if ((run % 2 == 0)); then order="geoline knot"; else order="knot geoline"; fi
    for server in $order; do transfer "$server" "$run"; done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %10s %10s %12s %9s %10s\n' server "wall ms" "cpu ms" bytes messages records
for server in geoline knot; do
    read -r bytes messages records <<<"${SUMMARY[$server]}"
    printf '%-8s %10s %10s %12s %9s %10s\n' "$server" "$(median "${WALL[$server]}")" \
        "$(median "${CPU[$server]}")" "$bytes" "$messages" "$records"
done
read -r gbytes _ grecords <<<"${SUMMARY[geoline]}"
read -r kbytes _ krecords <<<"${SUMMARY[knot]}"
[[ $grecords == "$krecords" ]] || echo "!! record counts differ: geoline $grecords, Knot $krecords"
python3 - "$(median "${WALL[geoline]}")" "$(median "${WALL[knot]}")" \
    "$(median "${CPU[geoline]}")" "$(median "${CPU[knot]}")" "$gbytes" "$kbytes" <<'EOF'
import sys
gw, kw, gc, kc, gb, kb = map(float, sys.argv[1:])
ratio = lambda a, b: f"{a / b:.2f}" if b else "-"
print(f"geoline / Knot: wall {ratio(gw, kw)}, server CPU {ratio(gc, kc)}, bytes {ratio(gb, kb)}")
EOF
