#!/usr/bin/env bash
# BIND's dig against geoline serving the repository's own zones and database: the china
# line for a mainland client subnet, the default line for a foreign one, the ECS scope
# echoed, and the same over TCP. dig parses every answer strictly, so a malformed response
# fails here even where geoline's own Rust client would accept it.
source "$(dirname "$0")/lib.sh"
interop_install bind9-dnsutils

port=$(free_port)
cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$port"]

[[geoip]]
path = "$INTEROP_ROOT/geoip/geo-whois-asn-country.mmdb"

[[line]]
name = "china"
countries = ["CN"]

[[zone]]
file = "$INTEROP_ROOT/zones/example.com.zone"
overlays = { china = "$INTEROP_ROOT/zones/example.com.china.zone" }
TOML
start_geoline "$WORK/geoline.toml" "$port"

ask() { dig @127.0.0.1 -p "$port" +norec +time=2 +tries=1 "$@"; }

out=$(ask www.example.com A +subnet=1.2.4.0/24)
grep -q 'status: NOERROR' <<<"$out" || fail "china query: $out"
grep -qE 'flags: qr aa;' <<<"$out" || fail "china query flags: $out"
grep -qE '^www\.example\.com\.\s+60\s+IN\s+A\s+203\.0\.113\.10$' <<<"$out" \
    || fail "china answer: $out"
grep -qE 'CLIENT-SUBNET: 1\.2\.4\.0/24/[1-9][0-9]*' <<<"$out" || fail "china ECS scope: $out"

out=$(ask www.example.com A +subnet=8.8.8.0/24)
grep -qE '^www\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.10$' <<<"$out" \
    || fail "default answer: $out"

out=$(ask www.example.com A +subnet=1.2.4.0/24 +tcp)
grep -qE '^www\.example\.com\.\s+60\s+IN\s+A\s+203\.0\.113\.10$' <<<"$out" \
    || fail "china answer over TCP: $out"

out=$(ask nothere.example.com A)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "NXDOMAIN: $out"
grep -qE '^example\.com\.\s+[0-9]+\s+IN\s+SOA\s' <<<"$out" || fail "NXDOMAIN SOA: $out"

out=$(ask example.org A)
grep -q 'status: REFUSED' <<<"$out" || fail "out of zone: $out"

pass "dig sees both lines, the ECS scope, TCP, NXDOMAIN and REFUSED"
