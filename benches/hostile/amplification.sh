#!/usr/bin/env bash
# How many bytes geoline sends back per byte it receives, for the queries an amplification
# attacker picks: ANY at the apex, and a large TXT (about 1.6 KB of text), with EDNS UDP
# sizes of 512 and 4096 and without EDNS, under the default `max_udp_payload = 1232` and
# under 4096. See README.md, "Reliability".
#
#   benches/hostile/amplification.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 taskset
build_geoline

# The shipped zone plus one large TXT RRset: seven strings of 230 characters.
ZONE="$WORK/example.com.zone"
cp "$ROOT/zones/example.com.zone" "$ROOT/zones/example.com.china.zone" "$WORK/"
{
    printf 'big IN TXT'
    for i in 1 2 3 4 5 6 7; do printf ' "%s"' "$(printf "$i%.0s" $(seq 1 230))"; done
    printf '\n'
} >> "$ZONE"

printf '%-10s %-6s %-10s %6s %6s %7s %3s %3s\n' max_udp query edns q_bytes r_bytes ratio tc an
port=5330
for max in 1232 4096; do
    port=$((port + 1))
    geoline_config "$port" "$ROOT/geoip/geo-whois-asn-country.mmdb" "$WORK" \
        "max_udp_payload = $max" > "$WORK/geoline-$max.toml"
    start_geoline "g$max" 0 "$WORK/geoline-$max.toml"
    pid_var="PID_g$max"
    wait_dns "$port"
    for q in "example.com ANY" "big.example.com TXT"; do
        for edns in 0 512 4096; do
            read -r qb rb ratio tc an _ < <(python3 "$HERE/dnsprobe.py" "$port" $q "$edns")
            label="$edns"; [[ $edns == 0 ]] && label="none(512)"
            printf '%-10s %-6s %-10s %6s %6s %6sx %3s %3s\n' "$max" "${q#* }" "$label" \
                "$qb" "$rb" "$ratio" "$tc" "$an"
        done
    done
    stop "${!pid_var}"
done
