#!/usr/bin/env bash
# The soak: queries at half the maximum rate for ten minutes while the GeoIP database and
# the zone are replaced every ten seconds (each alternately, five seconds apart), counting
# lost queries and sampling resident memory. See README.md, "Reliability".
#
#   benches/hostile/soak.sh [--duration S] [--rate QPS] [--interval S]
#
# geoline (one UDP worker) on core 0, dnsperf on core 1 at --rate (default 70000: half of
# what one dnsperf core sends), with ECS for a mainland and a foreign /24 in turn over the
# benchmark mix. The database is replaced the way geoipupdate does it (a new file renamed
# into place), the zone the way an editor or a deploy does (serial bumped, renamed into
# place); geoline's file watcher reloads both. Passes when nothing is lost, every reload
# succeeded, and the answers still come from the newest zone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION=600
RATE=70000
INTERVAL=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift ;;
        --rate) RATE="$2"; shift ;;
        --interval) INTERVAL="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
need dnsperf python3 taskset curl
build_geoline

mkdir -p "$WORK/geoip" "$WORK/zones"
cp "$ROOT/geoip/geo-whois-asn-country.mmdb" "$WORK/geoip/country.mmdb"
cp "$ROOT/zones/example.com.zone" "$ROOT/zones/example.com.china.zone" "$WORK/zones/"
PORT=5350
ADMIN=127.0.0.1:9350
geoline_config "$PORT" "$WORK/geoip/country.mmdb" "$WORK/zones" "" \
    "$(printf '[admin]\nlisten = "%s"\n\n[reload]\ndebounce_ms = 200' "$ADMIN")" \
    > "$WORK/geoline.toml"
start_geoline soak 0 "$WORK/geoline.toml"
pid="$PID_soak"
wait_dns "$PORT"

printf '%s\n' "www.example.com A" "api.example.com A" "example.com MX" \
    "nx.example.com A" > "$WORK/mix.txt"

SERIAL=$(awk '/; serial/ {print $1; exit}' "$WORK/zones/example.com.zone")
replace_db() {
    cp "$ROOT/geoip/geo-whois-asn-country.mmdb" "$WORK/geoip/.country.mmdb.tmp"
    mv "$WORK/geoip/.country.mmdb.tmp" "$WORK/geoip/country.mmdb"
}
replace_zone() {
    SERIAL=$((SERIAL + 1))
    sed "s/^\( *\)[0-9]* ; serial/\1$SERIAL ; serial/" "$ROOT/zones/example.com.zone" \
        > "$WORK/zones/.example.com.zone.tmp"
    mv "$WORK/zones/.example.com.zone.tmp" "$WORK/zones/example.com.zone"
}
metric() { # NAME{LABELS}: the sample's value
    curl -s "http://$ADMIN/metrics" | awk -v m="$1" 'index($0, m) == 1 { print $NF; exit }'
}

echo "== soak: ${DURATION}s at $RATE q/s, database and zone replaced every ${INTERVAL}s"
half=$((RATE / 2))
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/mix.txt" -l "$DURATION" -Q "$half" \
    -c 4 -q 500 -E 8:00011800010204 > "$WORK/mainland.out" 2>&1 &
perf1=$!
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/mix.txt" -l "$DURATION" -Q "$half" \
    -c 4 -q 500 -E 8:00011800080808 > "$WORK/foreign.out" 2>&1 &
perf2=$!

start_rss=$(rss_kb "$pid")
start_ticks=$(cpu_ticks "$pid")
printf '%6s %10s %10s %8s\n' second rss_kb hwm_kb serial
printf '%6s %10s %10s %8s\n' 0 "$start_rss" "$(hwm_kb "$pid")" "$SERIAL"
elapsed=0
db_reloads=0
zone_reloads=0
while [[ $elapsed -lt $DURATION ]]; do
    sleep $((INTERVAL / 2)); elapsed=$((elapsed + INTERVAL / 2))
    [[ $elapsed -ge $DURATION ]] && break
    replace_db; db_reloads=$((db_reloads + 1))
    sleep $((INTERVAL - INTERVAL / 2)); elapsed=$((elapsed + INTERVAL - INTERVAL / 2))
    [[ $elapsed -ge $DURATION ]] && break
    replace_zone; zone_reloads=$((zone_reloads + 1))
    if (( elapsed % 60 == 0 )); then
        printf '%6s %10s %10s %8s\n' "$elapsed" "$(rss_kb "$pid")" "$(hwm_kb "$pid")" "$SERIAL"
    fi
done
wait "$perf1" "$perf2" || true
end_rss=$(rss_kb "$pid")
end_ticks=$(cpu_ticks "$pid")
sleep 1

sent=0; done_=0; lost=0
for f in mainland foreign; do
    out="$(cat "$WORK/$f.out")"
    sent=$((sent + $(dnsperf_field "$out" "Queries sent:")))
    done_=$((done_ + $(dnsperf_field "$out" "Queries completed:")))
    lost=$((lost + $(dnsperf_field "$out" "Queries lost:")))
done
serving=$(metric 'geoline_zone_serial{zone="example.com."}')
echo "== result"
echo "queries sent $sent ($((sent / DURATION)) per second), answered $done_, lost $lost"
echo "server CPU per query $(awk -v t=$((end_ticks - start_ticks)) -v hz="$TICK" -v n="$done_" \
    'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }') µs"
echo "resident memory: start ${start_rss} kB, end ${end_rss} kB, peak $(hwm_kb "$pid") kB"
echo "replacements: database $db_reloads, zone $zone_reloads; serving zone serial $serving (last written $SERIAL)"
curl -s "http://$ADMIN/metrics" | grep -E '^geoline_(geoip|zone)_reloads_total' | sed 's/^/  /'
fail=0
[[ $lost == 0 ]] || { echo "FAIL: $lost queries lost"; fail=1; }
[[ ${serving%.*} == "$SERIAL" ]] || { echo "FAIL: serving serial $serving, expected $SERIAL"; fail=1; }
if curl -s "http://$ADMIN/metrics" | grep -E '^geoline_(geoip|zone)_reloads_total\{.*result="failure"' \
    | awk '$NF > 0 { bad = 1 } END { exit !bad }'; then
    echo "FAIL: a reload failed"; fail=1
fi
[[ $fail == 0 ]] && echo "PASS"
exit "$fail"
