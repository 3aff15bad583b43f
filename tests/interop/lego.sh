#!/usr/bin/env bash
# lego with its rfc2136 provider, at its defaults (hmac-sha1, UDP, delete-then-insert
# updates) gets a certificate for example.com and *.example.com from pebble, whose
# validator asks geoline — with lego's own check that every authoritative server of the
# zone serves the challenge (its "complete propagation" check, on by default) left on.
#
# That check is why this script once needed `--dns.disable-cp`; it was not geoline's
# doing. lego answers its SOA query (the zone) and NS query (the servers) from geoline as
# it should, then queries each NS *host name* itself: it resolves the name through the
# system's resolver (Go's, /etc/resolv.conf) and dials port 53, always — not the port of
# `--dns.resolvers` (lego 4.9 challenge/dns01/precheck.go: net.JoinHostPort(ns, "53")).
# Production NS names resolve and listen on 53; here, neither does: the sandbox's resolver
# does not know the test's names (not even `localhost.`, which Go's resolver of the
# Debian lego looks up with its final dot and so never finds in /etc/hosts), and port 53
# may be taken. So the script runs in a network and mount namespace of its own: geoline
# listens on 127.0.0.1:53 as the zone's one NS (ns1.example.com, A 127.0.0.1), and
# /etc/resolv.conf, for lego, says 127.0.0.1 — the resolution of the NS name goes to
# geoline too. Only the waits are shortened (sequence, polling) to bound the run.
source "$(dirname "$0")/lib.sh"

if [[ -z ${LEGO_NAMESPACE:-} ]]; then
    # Outside: install what is needed (network), then run again inside the namespaces.
    interop_install bind9-dnsutils pebble lego openssl util-linux iproute2
    rm -rf "$WORK"
    trap - EXIT
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    exec "${sudo[@]}" env LEGO_NAMESPACE=1 unshare --net --mount bash "$0" "$@"
fi
ip link set lo up || fail "cannot bring up the namespace's loopback"
printf 'nameserver 127.0.0.1\n' >"$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf || fail "cannot give lego its resolv.conf"

dns_port=53
acme_port=$(free_port)
mgmt_port=$(free_port)
secret="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="

cat >"$WORK/example.com.zone" <<'ZONE'
$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 2026120701 7200 900 1209600 60
     NS  ns1
ns1  A   127.0.0.1
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
    --dns rfc2136 --dns.resolvers "127.0.0.1:$dns_port" \
    --domains example.com --domains '*.example.com' run >"$WORK/lego.log" 2>&1 \
    || fail "lego"

cert="$WORK/lego/certificates/example.com.crt"
names=$(openssl x509 -in "$cert" -noout -ext subjectAltName) || fail "no certificate at $cert"
grep -q 'DNS:example.com' <<<"$names" || fail "certificate names: $names"
grep -q 'DNS:\*.example.com' <<<"$names" || fail "certificate names: $names"

out=$(dig @127.0.0.1 -p "$dns_port" +norec _acme-challenge.example.com TXT)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "challenge records left behind: $out"

pass "lego (rfc2136, hmac-sha1, every authoritative NS checked) got a certificate for example.com and *.example.com from pebble"
