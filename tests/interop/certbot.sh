#!/usr/bin/env bash
# certbot with its dns-rfc2136 plugin, at its defaults (HMAC-MD5, TCP, signed SOA
# queries), gets a certificate for example.com and *.example.com from pebble, whose
# validator asks geoline for the challenge records: geoline takes the two TXT values by
# UPDATE, serves them to pebble, and certbot deletes them again.
source "$(dirname "$0")/lib.sh"
interop_install bind9-dnsutils pebble certbot python3-certbot-dns-rfc2136 openssl

dns_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
secret="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="

cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/example.com.zone"
acme_geoline certbot-key hmac-md5 "$secret" "$dns_port"
start_pebble "$acme_port" "$mgmt_port" "$dns_port"

cat >"$WORK/rfc2136.ini" <<INI
dns_rfc2136_server = 127.0.0.1
dns_rfc2136_port = $dns_port
dns_rfc2136_name = certbot-key
dns_rfc2136_secret = $secret
INI
chmod 600 "$WORK/rfc2136.ini"

REQUESTS_CA_BUNDLE="$WORK/pebble.crt" timeout 150 certbot certonly --non-interactive \
    --agree-tos --register-unsafely-without-email \
    --server "https://127.0.0.1:$acme_port/dir" \
    --config-dir "$WORK/certbot" --work-dir "$WORK/certbot" --logs-dir "$WORK/certbot-logs" \
    --dns-rfc2136 --dns-rfc2136-credentials "$WORK/rfc2136.ini" \
    --dns-rfc2136-propagation-seconds 1 \
    --cert-name example -d example.com -d '*.example.com' >"$WORK/certbot.log" 2>&1 \
    || { cp "$WORK"/certbot-logs/letsencrypt.log "$WORK/certbot-debug.log" 2>/dev/null; fail "certbot"; }

cert="$WORK/certbot/live/example/cert.pem"
names=$(openssl x509 -in "$cert" -noout -ext subjectAltName) || fail "no certificate at $cert"
grep -q 'DNS:example.com' <<<"$names" || fail "certificate names: $names"
grep -q 'DNS:\*.example.com' <<<"$names" || fail "certificate names: $names"

# certbot removed both challenge values again.
out=$(dig @127.0.0.1 -p "$dns_port" +norec _acme-challenge.example.com TXT)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "challenge records left behind: $out"

pass "certbot (dns-rfc2136, HMAC-MD5) got a certificate for example.com and *.example.com from pebble"
