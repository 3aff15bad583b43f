#!/usr/bin/env bash
# geoline obtains a certificate for example.org, a zone it does not serve: BIND is the
# zone's primary and takes the DNS-01 records by RFC 2136 UPDATE signed with a TSIG key its
# `update-policy` grants the challenge TXT records; pebble validates against BIND. BIND's
# responses are TSIG-signed and geoline verifies them. Then geoline with the wrong secret:
# BIND refuses the update's signature (BADSIG), /status says so, and nothing is written.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/acme.bash"
interop_install pebble bind9 bind9-dnsutils openssl curl python3

secret="YWNtZS1yZW1vdGUtc2VjcmV0LWFjbWUtcmVtb3RlLTE="
bind_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
https_port=$(free_port)
admin_port=$(free_port)
admin="http://127.0.0.1:$admin_port"

mkdir -p "$WORK/bind"
cat >"$WORK/bind/example.org.db" <<ZONE
\$ORIGIN example.org.
\$TTL 300
@    SOA ns1 hostmaster 1 7200 900 1209600 60
     NS  ns1
ns1  A   127.0.0.1
www  A   192.0.2.10
ZONE
cat >"$WORK/named.conf" <<CONF
options {
    directory "$WORK/bind";
    pid-file "$WORK/bind/named.pid";
    session-keyfile "$WORK/bind/session.key";
    listen-on port $bind_port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
key "acme-upd" { algorithm hmac-sha256; secret "$secret"; };
zone "example.org" {
    type primary;
    file "example.org.db";
    update-policy { grant acme-upd name _acme-challenge.example.org. TXT; };
};
CONF
named-checkconf "$WORK/named.conf" || fail "named-checkconf"
run_bg named named -g -c "$WORK/named.conf"
wait_tcp "$bind_port" || fail "named did not start"

pebble_config "$acme_port" "$mgmt_port" 600
pebble_up 1 "$bind_port"

geoline_config() { # SECRET
    cat >"$WORK/geoline.toml" <<TOML
[admin]
listen = "127.0.0.1:$admin_port"

[[key]]
name = "acme-upd"
algorithm = "hmac-sha256"
secret = "$1"

$(acme_redirect_section example.org)

[[line]]
name = "china"
cidrs = ["1.2.4.0/22"]

[acme]
state_dir = "state"
directory = "https://127.0.0.1:$acme_port/dir"
ca_root = "pebble-ca.crt"
propagation_interval_ms = 200
propagation_timeout_secs = 30
retry_min_secs = 3600

[[acme.rfc2136]]
zone = "example.org"
server = "127.0.0.1:$bind_port"
key = "acme-upd"

[acme.nameservers]
"ns1.example.org" = "127.0.0.1:$bind_port"
TOML
}

geoline_config "$secret"
start_geoline "$WORK/geoline.toml" "$https_port"
wait_field last_success 'v is not None' 60 || fail "no certificate obtained: $(acme_field last_error)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/root-1.pem" \
    --resolve "www.example.org:$https_port:127.0.0.1" -H "X-Forwarded-For: 1.2.4.8" \
    "https://www.example.org:$https_port/x") || fail "TLS with pebble's root for www.example.org"
[[ $code == 301 ]] || fail "https://www.example.org answered $code"
names=$(openssl s_client -connect "127.0.0.1:$https_port" -servername example.org </dev/null 2>/dev/null \
    | openssl x509 -noout -ext subjectAltName)
grep -q 'DNS:example.org' <<<"$names" && grep -q 'DNS:\*.example.org' <<<"$names" \
    || fail "certificate names: $names"
# BIND took both values from the key, and removed them.
[[ $(grep -c "/key acme-upd: updating zone 'example.org/IN': adding an RR at '_acme-challenge.example.org' TXT" \
    "$WORK/named.log") == 2 ]] || fail "BIND did not add two challenge values from acme-upd"
[[ $(grep -c "/key acme-upd: updating zone 'example.org/IN': deleting an RR at _acme-challenge.example.org TXT" \
    "$WORK/named.log") == 2 ]] || fail "BIND did not delete two challenge values for acme-upd"
out=$(dig @127.0.0.1 -p "$bind_port" +norec _acme-challenge.example.org TXT)
grep -q 'status: NXDOMAIN' <<<"$out" || fail "challenge records left on BIND: $out"
pass "obtained example.org and *.example.org through BIND by signed RFC 2136, responses verified"

# The wrong secret: BIND answers NOTAUTH with an unsigned BADSIG, which geoline reports.
stop_pid "$GEOLINE_PID"
rm -rf "$WORK/state"
geoline_config "c29tZS1vdGhlci1zZWNyZXQtc29tZS1vdGhlci1zZWNyZXQ="
start_geoline "$WORK/geoline.toml" "$https_port"
wait_field last_error 'v is not None' 30 || fail "no error with the wrong secret"
[[ $(acme_field last_error) == *"refused the request's signature (TSIG error 16)"* ]] \
    || fail "the error does not name BADSIG: $(acme_field last_error)"
grep -q "request has invalid signature: TSIG acme-upd: tsig verify failure (BADSIG)" "$WORK/named.log" \
    || fail "BIND logged no BADSIG"
pass "wrong secret: $(acme_field last_error)"
