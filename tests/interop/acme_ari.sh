#!/usr/bin/env bash
# ACME renewal information (RFC 9773): a certificate the CA says to renew now is renewed at
# once, long before two thirds of its life, and the next one is scheduled inside the window
# the CA suggests for it rather than at two thirds.
#
# Debian's pebble (2.4) has no renewalInfo endpoint (ARI came in pebble 2.5). So pebble sits
# behind a small HTTPS front (python3, below) that passes every ACME request through to it
# unchanged (pebble builds its URLs from the Host header, which the front keeps) and adds
# what a CA with ARI adds: `renewalInfo` in the directory, and the endpoint itself. The
# front tells geoline to renew the first certificate it is asked about now (a window in the
# past, as a CA does before revoking), and suggests a window 30 minutes on for any other.
# It also does what such a CA does with a new order's `replaces` (RFC 9773 5): reflects it
# in the order it answers, and logs it. Everything else — account, order, DNS-01 against
# geoline, issuance — is pebble's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acme.bash"
interop_install pebble openssl curl python3

dns_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
ari_port=$(free_port)
https_port=$(free_port)
admin_port=$(free_port)
admin="http://127.0.0.1:$admin_port"
cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/example.com.zone"

# Certificates that live an hour: two thirds is 40 minutes.
pebble_config "$acme_port" "$mgmt_port" 3600
pebble_up 1 "$dns_port"

cat >"$WORK/ari.py" <<'PY'
import base64, http.client, http.server, json, ssl, sys, time, urllib.parse

port, upstream, cert, key, ca, log, replaces_log = sys.argv[1:8]
upstream_ctx = ssl.create_default_context(cafile=ca)
asked = []
new_order = []

def jws_payload(body):
    payload = json.loads(body)["payload"]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) or b"{}")

def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def renewal_info(self):
        cert_id = self.path.rsplit("/", 1)[1]
        if cert_id not in asked:
            asked.append(cert_id)
        now = time.time()
        if cert_id == asked[0]:
            start, end = now - 120, now - 60
        else:
            start, end = now + 1800, now + 1860
        with open(log, "a") as f:
            f.write(f"{cert_id} {int(start)} {int(end)}\n")
        body = json.dumps({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}})
        self.reply(200, [("Content-Type", "application/json"), ("Retry-After", "60")], body.encode())

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn = http.client.HTTPSConnection("127.0.0.1", int(upstream), context=upstream_ctx)
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if self.command == "GET" and self.path == "/dir":
            directory = json.loads(data)
            directory["renewalInfo"] = f"https://{self.headers['Host']}/renewal-info"
            new_order[:] = [urllib.parse.urlsplit(directory["newOrder"]).path]
            data = json.dumps(directory).encode()
        if self.command == "POST" and [self.path] == new_order:
            replaces = jws_payload(body).get("replaces")
            with open(replaces_log, "a") as f:
                f.write(f"{replaces or '-'} {r.status}\n")
            if replaces and r.status == 201:
                order = json.loads(data)
                order["replaces"] = replaces
                data = json.dumps(order).encode()
        self.reply(r.status, r.getheaders(), data)

    def do_GET(self):
        if self.path.startswith("/renewal-info/"):
            self.renewal_info()
        else:
            self.forward()

    do_POST = forward
    do_HEAD = forward

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Front)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
run_bg ari python3 "$WORK/ari.py" "$ari_port" "$acme_port" "$WORK/pebble.crt" "$WORK/pebble.key" \
    "$WORK/pebble-ca.crt" "$WORK/ari-asked.log" "$WORK/ari-replaces.log"
wait_tcp "$ari_port" 20 || fail "the ARI front did not start"

acme_redirect_config "https://127.0.0.1:$ari_port/dir"

start_geoline "$WORK/geoline.toml" "$dns_port"
wait_field successes 'v >= 1' 60 || fail "no first certificate: $(acme_field last_error)"
first_at=$(date +%s)
# The CA says: renew the first certificate now. It is renewed at once, not at 40 minutes.
wait_field successes 'v >= 2' 60 || fail "the certificate the CA said to renew was not renewed: $(acme_field last_error)"
took=$(($(date +%s) - first_at))
[[ $(wc -l <"$WORK/ari-asked.log") -ge 2 ]] || fail "geoline asked the CA's renewal information $(wc -l <"$WORK/ari-asked.log") times"
first_id=$(head -n1 "$WORK/ari-asked.log" | cut -d' ' -f1)
second_id=$(sed -n 2p "$WORK/ari-asked.log" | cut -d' ' -f1)
[[ $first_id != "$second_id" ]] || fail "the renewal information was asked for one certificate only"
# The renewed certificate is the one served, and its ARI identifier is the serial served.
serial=$(served_serial example.com | cut -d= -f2)
python3 -c "
import base64, sys
s = sys.argv[2].split('.')[1]
sys.exit(0 if int(sys.argv[1], 16) == int.from_bytes(base64.urlsafe_b64decode(s + '=' * (-len(s) % 4)), 'big') else 1)
" "$serial" "$second_id" || fail "served serial $serial is not the one whose renewal information was asked ($second_id)"
pass "renewed $took s after the first issue on the CA's word (two thirds would be 2400 s)"

# The first order replaced nothing; the renewal's named the first certificate by its ARI
# CertID, the one its renewal information was asked by.
orders=$(cat "$WORK/ari-replaces.log" 2>/dev/null)
[[ $orders == "- 201"$'\n'"$first_id 201" ]] \
    || fail "new orders' replaces (want none, then $first_id): $orders"
pass "the renewal order carried replaces=$first_id"

# The second certificate's renewal is scheduled inside the window the CA suggested for it
# (30 to 31 minutes on), not at two thirds of its life (40 minutes).
read -r _ start end < <(sed -n 2p "$WORK/ari-asked.log")
next=$(acme_status | python3 -c "
import json, sys, datetime
v = json.load(sys.stdin)['acme'][0]['next_attempt']
print(int(datetime.datetime.strptime(v, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc).timestamp()))")
((next >= start - 1 && next <= end + 1)) || fail "next attempt $next is outside the CA's window $start..$end"
[[ $(acme_field successes) == 2 ]] || fail "renewed more than once: $(acme_field successes)"
pass "next renewal at $next, inside the CA's window $start..$end"
