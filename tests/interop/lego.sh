#!/usr/bin/env bash
# lego with its rfc2136 provider, at its defaults (hmac-sha1, UDP, delete-then-insert
# updates) gets a certificate for example.com and *.example.com from pebble, whose
# validator asks geoline. lego's resolvers are this geoline; its own check of every
# authoritative NS is turned off (--dns.disable-cp): it dials each NS host name on port 53
# after resolving it through the system resolver, and in this sandbox Go's resolver sends
# even `localhost.` to the network's DNS server, so no NS name can lead it here. Only the
# waits are shortened (sequence, polling) to bound the run.
source "$(dirname "$0")/lib.sh"
interop_install bind9-dnsutils pebble lego openssl

dns_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
secret="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="

cat >"$WORK/example.com.zone" <<'ZONE'
$ORIGIN example.com.
$TTL 300
@    SOA localhost. hostmaster 2026120701 7200 900 1209600 60
     NS  localhost.
www  A   192.0.2.10
ZONE
acme_geoline lego-key hmac-sha1 "$secret" "$dns_port"
start_pebble "$acme_port" "$mgmt_port" "$dns_port"

LEGO_CA_CERTIFICATES="$WORK/pebble.crt" \
    RFC2136_NAMESERVER="127.0.0.1:$dns_port" \
    RFC2136_TSIG_KEY="lego-key" \
    RFC2136_TSIG_SECRET="$secret" \
    RFC2136_SEQUENCE_INTERVAL=2 \
    RFC2136_POLLING_INTERVAL=1 \
    RFC2136_PROPAGATION_TIMEOUT=40 \
    timeout 160 lego --accept-tos --email test@example.com \
    --server "https://127.0.0.1:$acme_port/dir" --path "$WORK/lego" \
    --dns rfc2136 --dns.resolvers "127.0.0.1:$dns_port" --dns.disable-cp \
    --domains example.com --domains '*.example.com' run >"$WORK/lego.log" 2>&1 \
    || fail "lego"

cert="$WORK/lego/certificates/example.com.crt"
names=$(openssl x509 -in "$cert" -noout -ext subjectAltName) || fail "no certificate at $cert"
grep -q 'DNS:example.com' <<<"$names" || fail "certificate names: $names"
grep -q 'DNS:\*.example.com' <<<"$names" || fail "certificate names: $names"

out=$(dig @127.0.0.1 -p "$dns_port" +norec _acme-challenge.example.com TXT)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "challenge records left behind: $out"

pass "lego (rfc2136, hmac-sha1) got a certificate for example.com and *.example.com from pebble"
