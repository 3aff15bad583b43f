#!/usr/bin/env bash
# An ACME certificate entry added by a configuration reload (SIGHUP) is obtained and served:
# geoline runs with its certificate for example.com obtained from pebble; SIGHUP then adds
# the zone example.org, a redirector rule for it and a certificate entry for example.org
# and *.example.org. The new entry's task starts without a restart, writes its DNS-01
# records into the zone added, pebble issues, and the TLS listener serves the new
# certificate for example.org (verified against pebble's root) while example.com keeps the
# one it had.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acme.bash"
interop_install pebble openssl curl python3

dns_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
https_port=$(free_port)
admin_port=$(free_port)
admin="http://127.0.0.1:$admin_port"

cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/example.com.zone"
cat >"$WORK/example.org.zone" <<'ZONE'
$ORIGIN example.org.
$TTL 300
@    SOA ns1.example.com. hostmaster.example.com. 2026120801 7200 900 1209600 60
     NS  ns1.example.com.
     NS  ns2.example.com.
www  A   192.0.2.80
ZONE

pebble_config "$acme_port" "$mgmt_port" 3600
acme_redirect_config "https://127.0.0.1:$acme_port/dir"

# The ACME entry of /status whose first name is $1: FIELD $2, as JSON.
entry_field() {
    acme_status | python3 -c "
import json, sys
entries = [e for e in json.load(sys.stdin)['acme'] if e['names'][0] == sys.argv[1]]
print(json.dumps(entries[0][sys.argv[2]]) if entries else 'absent')" "$1" "$2"
}
# HTTPS through the TLS listener for host $1, verified against pebble's root.
https_get() {
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/root-1.pem" \
        --resolve "$1:$https_port:127.0.0.1" -H "X-Forwarded-For: 1.2.4.8" "https://$1:$https_port/x"
}

pebble_up 1 "$dns_port"
start_geoline "$WORK/geoline.toml" "$dns_port"
wait_field last_success 'v is not None' 60 || fail "no certificate for example.com: $(acme_field last_error)"
com_serial=$(served_serial example.com)
[[ $(https_get example.com) == 301 ]] || fail "https://example.com through its ACME certificate"
[[ $(entry_field example.org names) == absent ]] || fail "an example.org entry before the reload"

cat >>"$WORK/geoline.toml" <<TOML

[[zone]]
file = "example.org.zone"

[[redirect.certificate]]
names = ["example.org", "*.example.org"]
acme = true

[[redirect.rule]]
from = "example.org"
to = "example.cn"
lines = ["china"]
TOML
kill -HUP "$GEOLINE_PID"
for ((i = 0; i < 300; i++)); do
    grep -q "configuration reloaded\|configuration not reloaded" "$WORK/geoline.log" && break
    sleep 0.1
done
grep -q "configuration reloaded" "$WORK/geoline.log" \
    || fail "the reload: $(grep 'configuration' "$WORK/geoline.log")"

obtained=0
for ((i = 0; i < 300; i++)); do
    success=$(entry_field example.org last_success)
    if [[ $success != null && $success != absent ]]; then
        obtained=1
        break
    fi
    sleep 0.2
done
[[ $obtained == 1 ]] || fail "the entry added by SIGHUP was not obtained: $(entry_field example.org last_error)"
[[ $(https_get example.org) == 301 ]] || fail "https://example.org through the certificate added by SIGHUP"
[[ $(https_get www.example.org) == 301 ]] || fail "https://www.example.org (the wildcard)"
openssl s_client -connect "127.0.0.1:$https_port" -servername example.org </dev/null 2>/dev/null \
    | openssl x509 -noout -ext subjectAltName | grep -q "DNS:example.org" \
    || fail "the certificate served for example.org does not name it"
# example.com keeps the certificate it had, from the one order made for it.
[[ $(served_serial example.com) == "$com_serial" ]] || fail "example.com's certificate changed"
[[ $(entry_field example.com successes) == 1 ]] || fail "example.com ordered again: $(entry_field example.com successes)"
pass "a certificate entry added by SIGHUP obtained from pebble and served for example.org and www.example.org; example.com's kept ($com_serial)"
