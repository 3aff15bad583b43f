# Shared by the interoperability scripts in tests/interop/. Sourced, not run.
#
# Each script drives geoline's real binary against the tools operators run (dig, nsupdate,
# certbot, lego, pebble, dnsdist, BIND, Knot as installed from Debian), on 127.0.0.1 ports
# only, and exits non-zero when the interop is broken. `tests/interop/run` runs them all
# (.ci/run calls it); one script can be run alone: `bash tests/interop/nsupdate.sh`.
#
# What a script gets from here:
#   interop_install PKG...     install Debian packages if missing (services kept stopped)
#   GEOLINE                    path of the geoline binary (built by interop_build)
#   WORK                       a fresh temporary directory, removed at exit
#   free_port                  a port free on 127.0.0.1 for both UDP and TCP, below the
#                              ephemeral range, never the same twice in a script
#   start_geoline CONFIG PORT  start `geoline serve --config CONFIG`, wait until PORT
#                              answers TCP; GEOLINE_PID is its PID
#   stop_pid PID               stop a process started by the script (TERM, then KILL)
#   run_bg NAME CMD...         start CMD in the background, logs in $WORK/NAME.log
#   wait_tcp PORT [SECS]       wait until 127.0.0.1:PORT accepts connections
#   acme_geoline KEY ALG SECRET DNS_PORT  serve $WORK/example.com.zone with KEY granted
#                              the zone's ACME challenge TXT records
#   start_pebble ACME_PORT MGMT_PORT DNS_PORT  pebble validating against geoline; its
#                              certificate is $WORK/pebble.crt
#   start_knot KPORT GPORT ACLS ZONE_KEYS  Knot DNS beside geoline, serving example.com
#   pass MSG / fail MSG        report; fail exits 1 after printing the logs in $WORK
set -euo pipefail

INTEROP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INTEROP_NAME="$(basename "$0" .sh)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/geoline-interop-$INTEROP_NAME.XXXXXX")"
GEOLINE="$INTEROP_ROOT/target/debug/geoline"
INTEROP_PIDS=()

interop_cleanup() {
    local pid
    for pid in "${INTEROP_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in "${INTEROP_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap interop_cleanup EXIT

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Debian packages start their daemons on install; policy-rc.d (exit 101) forbids it for the
# duration of the install so nothing listens on the ports the scripts use.
interop_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "interop: installing ${missing[*]}" >&2
    local policy=/usr/sbin/policy-rc.d had_policy=0
    [[ -e $policy ]] && had_policy=1
    if [[ $had_policy -eq 0 ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
    fi
    # A stale package list makes install fail on a fresh machine; refresh once per run.
    if [[ ! -e "${TMPDIR:-/tmp}/geoline-interop-apt-updated" ]]; then
        as_root apt-get update -qq
        touch "${TMPDIR:-/tmp}/geoline-interop-apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    [[ $had_policy -eq 0 ]] && as_root rm -f "$policy"
    return 0
}

interop_build() {
    (cd "$INTEROP_ROOT" && cargo build --locked --quiet --bin geoline)
}

# Binding port 0 and dropping the socket is racy: the kernel hands the same ephemeral port
# to the next port-0 bind — a client's socket, or another script's server — before the
# server the port was meant for binds it. As tests/common/ports.rs does for `cargo test`:
# ports come from a counter over a range below the kernel's ephemeral range (which no
# port-0 bind gets), starting at an offset taken from the script's PID so that scripts run
# side by side walk different parts of it, and a port is handed out only once both its UDP
# and its TCP side bind on 127.0.0.1. The counter is kept in $WORK (each `$(free_port)` is a
# subshell), so a script never gets one port twice.
free_port() {
    python3 - "$WORK/free_port.next" "$$" <<'PY'
import socket, sys

path, pid = sys.argv[1], int(sys.argv[2])
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral = 32768
low, high = (10000, ephemeral) if ephemeral > 11000 else (61000, 65000)
span = high - low
try:
    with open(path) as f:
        n = int(f.read())
except (OSError, ValueError):
    # Not the offset ports.rs takes for the same PID: a test binary and a script started
    # side by side start apart too.
    n = (pid * 7919 + span // 2) % span
for _ in range(span):
    port = low + n % span
    n += 1
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        udp.close()
        tcp.close()
    with open(path, "w") as f:
        f.write(str(n))
    print(port)
    sys.exit(0)
sys.exit(f"free_port: no free port in {low}..{high}")
PY
}

wait_tcp() {
    local port="$1" secs="${2:-20}" i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

run_bg() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    INTEROP_PIDS+=("$!")
    LAST_PID=$!
}

start_geoline() {
    local config="$1" port="$2"
    run_bg geoline "$GEOLINE" serve --config "$config"
    GEOLINE_PID=$LAST_PID
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$GEOLINE_PID" 2>/dev/null || fail "geoline exited at start"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    fail "geoline did not start on port $port"
}

# geoline as the primary of example.com for a secondary under test (bind_secondary.sh,
# knot_secondary.sh): the repository's zone and china overlay, the china line is the
# client 127.0.0.2, the keys china-xfr, default-xfr and upd all have $XFR_SECRET (hmac-sha256)
# and upd may update the zone. $1: the DNS port; $2: the zone's `transfer.` lines (TOML).
XFR_SECRET="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
start_xfr_primary() {
    cp "$INTEROP_ROOT/zones/example.com.zone" "$INTEROP_ROOT/zones/example.com.china.zone" "$WORK/"
    cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$1"]

[[line]]
name = "china"
cidrs = ["127.0.0.2/32"]

[[zone]]
file = "example.com.zone"
overlays = { china = "example.com.china.zone" }
$2

[[key]]
name = "china-xfr"
secret = "$XFR_SECRET"

[[key]]
name = "default-xfr"
secret = "$XFR_SECRET"

[[key]]
name = "upd"
secret = "$XFR_SECRET"

[update]
rate = 0
[[update.grant]]
key = "upd"
zones = ["example.com"]
TOML
    start_geoline "$WORK/geoline.toml" "$1"
}

# Knot DNS beside a geoline on GPORT (knot.sh, knot_secondary.sh, secondary_from_knot.sh):
# writes $WORK/knot.conf and starts knotd on 127.0.0.1:KPORT (its log $WORK/knot.log), its
# state under $WORK/knot, info logs; the keys default-xfr and upd ($XFR_SECRET,
# hmac-sha256); the remote `geoline` (127.0.0.1:GPORT, key default-xfr); ACLS the entries
# of `acl:` (none when empty); and example.com stored in $WORK/knot/zones, never written
# back, with ZONE_KEYS further keys of the zone (its file or primary, ACLs, journal).
# ACLS and ZONE_KEYS are knot.conf lines, indented as there.
start_knot() {
    local kport="$1" gport="$2" acls="$3" zone_keys="$4"
    # Knot 3.2 does not create its journal's directory: without it every IXFR fails to be
    # stored and falls back to AXFR.
    mkdir -p "$WORK/knot/journal" "$WORK/knot/timers" "$WORK/knot/zones"
    cat >"$WORK/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$kport
    rundir: $WORK/knot
database:
    storage: $WORK/knot
log:
  - target: stderr
    any: info
key:
  - id: default-xfr
    algorithm: hmac-sha256
    secret: $XFR_SECRET
  - id: upd
    algorithm: hmac-sha256
    secret: $XFR_SECRET
remote:
  - id: geoline
    address: 127.0.0.1@$gport
    key: default-xfr
CONF
    [[ -z $acls ]] || printf 'acl:\n%s\n' "$acls" >>"$WORK/knot.conf"
    cat >>"$WORK/knot.conf" <<CONF
zone:
  - domain: example.com
    storage: $WORK/knot/zones
    zonefile-sync: -1
$zone_keys
CONF
    run_bg knot knotd -c "$WORK/knot.conf"
    wait_tcp "$kport" || fail "knotd did not start"
}

stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

acme_geoline() {
    local key="$1" algorithm="$2" secret="$3" dns_port="$4"
    cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$dns_port"]

[[zone]]
file = "example.com.zone"

[[key]]
name = "$key"
algorithm = "$algorithm"
secret = "$secret"

[update]
[[update.grant]]
key = "$key"
zones = ["example.com"]
names = ["_acme-challenge.*"]
types = ["TXT"]
max_records = 4
TOML
    start_geoline "$WORK/geoline.toml" "$dns_port"
}

# pebble's own TLS certificate is made here (the Debian package ships none).
start_pebble() {
    local acme_port="$1" mgmt_port="$2" dns_port="$3"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$WORK/pebble.key" -out "$WORK/pebble.crt" 2>"$WORK/openssl.log" \
        || fail "openssl"
    cat >"$WORK/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port",
            "managementListenAddress": "127.0.0.1:$mgmt_port",
            "certificate": "$WORK/pebble.crt", "privateKey": "$WORK/pebble.key",
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false}}
JSON
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
        run_bg pebble pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$dns_port"
    wait_tcp "$acme_port" 20 || fail "pebble did not start"
}

pass() {
    echo "interop $INTEROP_NAME: ok: $*"
}

fail() {
    echo "interop $INTEROP_NAME: FAILED: $*" >&2
    local log
    for log in "$WORK"/*.log; do
        [[ -e $log ]] || continue
        echo "----- $(basename "$log") (last 40 lines)" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}
