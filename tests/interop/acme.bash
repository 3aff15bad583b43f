# pebble and geoline's ACME status for the ACME scripts (acme*.sh). Sourced after lib.sh,
# not run (tests/interop/run runs *.sh only).
#
#   pebble_config ACME_PORT MGMT_PORT VALIDITY_SECS  pebble's configuration and its own TLS
#                         certificate, issued by $WORK/pebble-ca.crt (the Debian package
#                         ships none; rustls, unlike certbot's and lego's TLS stacks, does
#                         not take a self-signed server certificate as its own anchor)
#   pebble_up TAG DNS_PORT  start pebble validating against DNS_PORT; its root (new at every
#                         start) in $WORK/root-TAG.pem; PEBBLE_PID is its PID
#   acme_field FIELD      acme[0].FIELD of geoline's /status at $admin, as JSON
#   wait_field FIELD PREDICATE SECS  until acme[0].FIELD satisfies the python predicate on v
#   acme_redirect_config DIRECTORY_URL  $WORK/geoline.toml: example.com served on $dns_port,
#                         admin on $admin_port, a TLS redirector on $https_port whose
#                         certificate for example.com and *.example.com is obtained from
#                         the CA at DIRECTORY_URL (pebble's root trusted), a china line
#   served_serial SNI     the serial of the certificate the TLS listener serves for SNI

pebble_config() {
    PEBBLE_ACME_PORT="$1" PEBBLE_MGMT_PORT="$2"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pebble test CA" \
        -keyout "$WORK/pebble-ca.key" -out "$WORK/pebble-ca.crt" 2>"$WORK/openssl.log" || fail "openssl CA"
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
        -keyout "$WORK/pebble.key" -out "$WORK/pebble.csr" 2>>"$WORK/openssl.log" || fail "openssl CSR"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$WORK/pebble.ext"
    openssl x509 -req -in "$WORK/pebble.csr" -CA "$WORK/pebble-ca.crt" -CAkey "$WORK/pebble-ca.key" \
        -CAcreateserial -days 2 -extfile "$WORK/pebble.ext" -out "$WORK/pebble.crt" \
        2>>"$WORK/openssl.log" || fail "openssl sign"
    cat >"$WORK/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$1",
            "managementListenAddress": "127.0.0.1:$2",
            "certificate": "$WORK/pebble.crt", "privateKey": "$WORK/pebble.key",
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": $3}}
JSON
}

pebble_up() {
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
        run_bg "pebble-$1" pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$2"
    PEBBLE_PID=$LAST_PID
    wait_tcp "$PEBBLE_ACME_PORT" 20 || fail "pebble did not start"
    wait_tcp "$PEBBLE_MGMT_PORT" 20 || fail "pebble's management listener did not start"
    curl -sS --cacert "$WORK/pebble-ca.crt" "https://127.0.0.1:$PEBBLE_MGMT_PORT/roots/0" \
        >"$WORK/root-$1.pem" || fail "pebble root"
}

acme_status() { curl -sS "$admin/status"; }
acme_field() { # FIELD: acme[0].FIELD of /status, as JSON
    acme_status | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['acme'][0]['$1']))"
}
wait_field() { # FIELD PREDICATE SECS: until acme[0].FIELD satisfies the python predicate on v
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        if acme_status | python3 -c "import json,sys; v=json.load(sys.stdin)['acme'][0]['$1']; sys.exit(0 if ($2) else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# The redirector's TLS listener on $https_port with an ACME certificate for $1 and *.$1,
# redirecting $1 to example.cn for the china line (TOML, on standard output).
acme_redirect_section() { # DOMAIN
    cat <<TOML
[redirect]
trusted_proxies = ["127.0.0.1"]
access_log = "off"

[[redirect.listen]]
address = "127.0.0.1:$https_port"
tls = true

[[redirect.certificate]]
names = ["$1", "*.$1"]
acme = true

[[redirect.rule]]
from = "$1"
to = "example.cn"
lines = ["china"]

[redirect.origin]
url = "http://$1"
connect_to = "127.0.0.1:9"
TOML
}

acme_redirect_config() { # DIRECTORY_URL
    cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$dns_port"]

[admin]
listen = "127.0.0.1:$admin_port"

[[line]]
name = "china"
cidrs = ["1.2.4.0/22"]

[[zone]]
file = "example.com.zone"

$(acme_redirect_section example.com)

[acme]
state_dir = "state"
directory = "$1"
ca_root = "pebble-ca.crt"
contact = ["ops@example.com"]
propagation_interval_ms = 200
propagation_timeout_secs = 30
retry_min_secs = 2
retry_max_secs = 4

[acme.nameservers]
"ns1.example.com" = "127.0.0.1:$dns_port"
"ns2.example.com" = "127.0.0.1:$dns_port"
TOML
}

# The serial of the certificate the TLS listener serves for SNI $1.
served_serial() {
    openssl s_client -connect "127.0.0.1:$https_port" -servername "$1" </dev/null 2>/dev/null \
        | openssl x509 -noout -serial
}
