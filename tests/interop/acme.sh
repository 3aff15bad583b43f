#!/usr/bin/env bash
# geoline obtains the redirector's certificate for example.com and *.example.com from pebble
# by itself: it writes the DNS-01 records into the zone it serves, pebble's validator asks
# geoline for them, and the TLS listener serves the result (checked with curl against
# pebble's root). Then: a restart serves the stored certificate without asking the CA (pebble
# is down), a renewal asked while pebble is down fails and keeps the old certificate serving
# with the error in /status, and is retried until it succeeds once pebble is back, swapped in
# under a client connected before the swap that keeps working.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acme.bash"
interop_install pebble openssl curl bind9-dnsutils python3

dns_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
https_port=$(free_port)
admin_port=$(free_port)
admin="http://127.0.0.1:$admin_port"

cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/example.com.zone"

# pebble, with certificates that live ten minutes.
pebble_config "$acme_port" "$mgmt_port" 600

acme_redirect_config "https://127.0.0.1:$acme_port/dir"

# HTTPS through the TLS listener, verified against pebble root $1, for host $2.
https_get() {
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/root-$1.pem" \
        --resolve "$2:$https_port:127.0.0.1" -H "X-Forwarded-For: 1.2.4.8" "https://$2:$https_port/x?y"
}

pebble_up 1 "$dns_port"
start_geoline "$WORK/geoline.toml" "$dns_port"
wait_field last_success 'v is not None' 60 || fail "no certificate obtained: $(acme_field last_error)"

# The chain verifies against pebble's root for the apex and a name under the wildcard, and
# the redirector answers through it.
[[ $(https_get 1 example.com) == 301 ]] || fail "https://example.com through the ACME certificate"
[[ $(https_get 1 www.example.com) == 301 ]] || fail "https://www.example.com through the ACME certificate"
names=$(openssl s_client -connect "127.0.0.1:$https_port" -servername example.com </dev/null 2>/dev/null \
    | openssl x509 -noout -ext subjectAltName)
grep -q 'DNS:example.com' <<<"$names" && grep -q 'DNS:\*.example.com' <<<"$names" \
    || fail "certificate names: $names"
[[ $(acme_field issuer) == *Pebble* ]] || fail "issuer in /status: $(acme_field issuer)"
# The challenge records are gone again.
out=$(dig @127.0.0.1 -p "$dns_port" +norec _acme-challenge.example.com TXT)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "challenge records left behind: $out"
# The state: 0600 files.
for f in "$WORK"/state/certificates/*/cert.pem "$WORK"/state/certificates/*/key.pem "$WORK"/state/accounts/*.json; do
    [[ $(stat -c %a "$f") == 600 ]] || fail "$f is $(stat -c %a "$f"), not 600"
done
first=$(served_serial example.com)
pass "obtained from pebble, served for example.com and www.example.com ($first)"

# A restart with pebble down serves the stored certificate and asks nothing.
stop_pid "$PEBBLE_PID"
stop_pid "$GEOLINE_PID"
start_geoline "$WORK/geoline.toml" "$dns_port"
wait_tcp "$https_port" 10 || fail "TLS listener after the restart"
[[ $(served_serial example.com) == "$first" ]] || fail "the restart did not serve the stored certificate"
[[ $(acme_field last_attempt) == null ]] || fail "the restart asked the CA: $(acme_field last_attempt)"
pass "restarted: the stored certificate is served, the CA not asked"

# A renewal while pebble is down fails; the old certificate keeps serving.
curl -sS -X POST "$admin/acme/renew" >/dev/null || fail "POST /acme/renew"
wait_field last_error 'v is not None' 30 || fail "no error in /status with pebble down"
[[ $(served_serial example.com) == "$first" ]] || fail "the old certificate is not served after a failed renewal"
pass "renewal with pebble down: old certificate kept, error: $(acme_field last_error)"

# pebble back (a new pebble: new root, no accounts): the asked-for renewal is retried until
# it succeeds, and swapped in. A keep-alive TLS connection made before the swap keeps
# working across it.
pebble_up 2 "$dns_port"
python3 - "$https_port" "$WORK/root-1.pem" >"$WORK/keepalive.log" 2>&1 <<'PY' &
import socket, ssl, sys, time
port, root = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=root)
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="example.com")
reader = tls.makefile("rb")
sent = 0
deadline = time.time() + 25
while time.time() < deadline:
    tls.sendall(b"GET /k HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 1.2.4.8\r\n\r\n")
    status = reader.readline()
    assert status.startswith(b"HTTP/1.1 301"), status
    length = 0
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    reader.read(length)
    sent += 1
    time.sleep(0.2)
print("requests", sent)
PY
keepalive=$!
wait_field last_error 'v is None' 60 || fail "no success after pebble came back: $(acme_field last_error)"
second=$(served_serial example.com)
[[ $second != "$first" ]] || fail "the renewed certificate is not served"
[[ $(https_get 2 www.example.com) == 301 ]] || fail "the renewed chain does not verify against the new root"
wait "$keepalive" || fail "the keep-alive client broke across the swap: $(cat "$WORK/keepalive.log")"
grep -q '^requests' "$WORK/keepalive.log" || fail "keep-alive client: $(cat "$WORK/keepalive.log")"
curl -sS "$admin/metrics" | grep -q 'geoline_acme_orders_total{names="example.com,\*.example.com",result="success"} 1' \
    || fail "metrics: $(curl -sS "$admin/metrics" | grep acme)"
pass "renewed once pebble was back ($second), swapped in under a keep-alive client ($(cat "$WORK/keepalive.log"))"
