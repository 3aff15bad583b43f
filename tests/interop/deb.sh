#!/usr/bin/env bash
# interop-timeout: 2400
# The Debian package as an operator installs it: `cargo deb` (one release build) makes the
# .deb; its contents, conffiles and maintainer scripts are checked; `dpkg -i` installs it
# into this machine (the `geoline` user, state directories with their owners and modes);
# `systemd-analyze` verifies the units and rates their sandbox. Then geoline runs as the
# unit runs it: where systemd is PID 1, `systemctl start/reload/stop`; elsewhere (a
# container, CI) the unit's own ExecStartPre and ExecStart lines as the packaged user with
# the unit's one capability (setpriv), its umask and a NOTIFY_SOCKET of ours, in a network
# namespace of its own so that port 53 on its loopback is free: READY=1, answers from the
# packaged configuration with dig, a SIGHUP reload (RELOADING=1 and READY=1), STOPPING=1
# and a clean exit on SIGTERM. Then an upgrade and a rollback keep an edited conffile and
# the state; `dpkg -r` keeps /etc/geoline and /var/lib/geoline, `dpkg -P` removes them.
# The release build takes minutes (twenty under load from nothing): the header above
# gives tests/interop/run a longer limit for this script.
source "$(dirname "$0")/lib.sh"
interop_install bind9-dnsutils adduser systemd iproute2 binutils util-linux

UNIT=/usr/lib/systemd/system/geoline.service
TEMPLATE=/usr/lib/systemd/system/geoline@.service
NETNS="geoline-deb-$$"

# dpkg -i, a network namespace and setpriv's change of user all need root.
[[ $(id -u) -eq 0 ]] || fail "run as root"
deb_cleanup() {
    ip netns del "$NETNS" 2>/dev/null || true
    if dpkg-query -W geoline >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive dpkg -P geoline >/dev/null 2>&1 || true
    fi
    interop_cleanup
}
trap deb_cleanup EXIT

# A package left by an interrupted run would make "install" an upgrade.
if dpkg-query -W geoline >/dev/null 2>&1; then dpkg -P geoline >/dev/null; fi

# --- Build: one release build; revision 2 repackages the same binary for the upgrade.
if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --locked --quiet || fail "cargo install cargo-deb"
fi
(cd "$INTEROP_ROOT" && cargo deb --locked --quiet --output "$WORK/geoline_1.deb") \
    >"$WORK/cargo-deb.log" 2>&1 || fail "cargo deb"
(cd "$INTEROP_ROOT" && cargo deb --no-build --quiet --deb-revision 2 \
    --output "$WORK/geoline_2.deb") >>"$WORK/cargo-deb.log" 2>&1 || fail "cargo deb (revision 2)"

# --- Contents: every file where the README says, with its mode.
contents=$(dpkg-deb -c "$WORK/geoline_1.deb")
has() {
    local mode="$1" path="$2"
    grep -qE "^$mode [^ ]+ +[0-9]+ [0-9-]+ [0-9:]+ \./${path#/}$" <<<"$contents" \
        || fail "the package lacks $path ($mode): $contents"
}
has -rwxr-xr-x /usr/bin/geoline
has -rw-r--r-- /etc/geoline/geoline.toml
has -rw-r--r-- /etc/geoline/zones/example.com.zone
has -rw-r--r-- /etc/geoline/zones/example.com.china.zone
has -rw-r--r-- /usr/share/geoline/geo-whois-asn-country.mmdb
has -rw-r--r-- "$UNIT"
has -rw-r--r-- "$TEMPLATE"
has -rw-r--r-- /usr/share/doc/geoline/README.md
has -rw-r--r-- /usr/share/doc/geoline/geoip/NRO_LICENSE
conffiles=$(dpkg-deb -I "$WORK/geoline_1.deb" conffiles)
for f in /etc/geoline/geoline.toml /etc/geoline/zones/example.com.zone \
    /etc/geoline/zones/example.com.china.zone; do
    grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done
control=$(dpkg-deb -f "$WORK/geoline_1.deb")
grep -qE '^Depends: .*adduser' <<<"$control" || fail "no Depends on adduser: $control"
grep -qE '^Version: 0\.1\.0-1$' <<<"$control" || fail "version: $control"
# The binary leaves MemoryDenyWriteExecute=yes possible: no executable stack, no text
# relocations (either would need a writable and executable mapping).
dpkg-deb -x "$WORK/geoline_1.deb" "$WORK/root"
headers=$(readelf -lW "$WORK/root/usr/bin/geoline")
[[ $(awk '$1 == "GNU_STACK" { print $7 }' <<<"$headers") == RW ]] \
    || fail "executable stack: $headers"
if readelf -dW "$WORK/root/usr/bin/geoline" | grep -q TEXTREL; then fail "text relocations"; fi

# --- Install, with no daemon started by the install (policy-rc.d, as interop_install).
install_deb() {
    local policy=/usr/sbin/policy-rc.d had_policy=0
    [[ -e $policy ]] && had_policy=1
    if [[ $had_policy -eq 0 ]]; then
        printf '#!/bin/sh\nexit 101\n' | tee "$policy" >/dev/null
        chmod +x "$policy"
    fi
    # No terminal: a conffile question would fail the install rather than wait.
    DEBIAN_FRONTEND=noninteractive dpkg -i "$1" </dev/null >"$WORK/dpkg.log" 2>&1
    local rc=$?
    [[ $had_policy -eq 0 ]] && rm -f "$policy"
    return $rc
}
install_deb "$WORK/geoline_1.deb" || fail "dpkg -i: $(cat "$WORK/dpkg.log")"

getent passwd geoline | grep -qE '^geoline:x:[0-9]+:[0-9]+:[^:]*:/var/lib/geoline:/usr/sbin/nologin$' \
    || fail "the geoline user: $(getent passwd geoline)"
[[ $(getent passwd geoline | cut -d: -f3) -lt 1000 ]] || fail "geoline is not a system user"
mode_is() {
    local want="$1" path="$2" got
    got=$(stat -c '%U:%G %a' "$path" 2>&1) || fail "$path missing"
    [[ $got == "$want" ]] || fail "$path is $got, not $want"
}
mode_is "root:geoline 750" /etc/geoline
mode_is "root:root 644" /etc/geoline/geoline.toml
mode_is "geoline:geoline 750" /var/lib/geoline
mode_is "geoline:geoline 750" /var/lib/geoline/journal
mode_is "geoline:geoline 750" /var/lib/geoline/zones
mode_is "geoline:geoline 700" /var/lib/geoline/acme
mode_is "geoline:adm 2750" /var/log/geoline
[[ -x /usr/bin/geoline ]] || fail "no /usr/bin/geoline"

# --- The units: systemd's own checks, without systemd running.
systemd-analyze verify "$UNIT" >"$WORK/verify.log" 2>&1 || fail "systemd-analyze verify $UNIT"
[[ ! -s $WORK/verify.log ]] || fail "systemd-analyze verify warns: $(cat "$WORK/verify.log")"
# A template is verified through an instance name.
cp "$TEMPLATE" "$WORK/geoline@dns.service"
systemd-analyze verify "$WORK/geoline@dns.service" >"$WORK/verify-template.log" 2>&1 \
    || fail "systemd-analyze verify geoline@dns.service"
[[ ! -s $WORK/verify-template.log ]] || fail "verify warns: $(cat "$WORK/verify-template.log")"
for unit in "$UNIT" "$WORK/geoline@dns.service"; do
    security=$(systemd-analyze security --offline=true "$unit" 2>&1) || true
    exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$security")
    [[ -n $exposure ]] || fail "no exposure for $unit: $security"
    # README.md reports 1.4; more means a setting was lost.
    awk -v e="$exposure" 'BEGIN { exit !(e <= 1.4) }' || fail "exposure $exposure > 1.4: $security"
done
# The template differs from geoline.service only in its files: the configuration named by
# the instance and the state systemd creates for it.
settings() {
    grep -E '^[A-Za-z]+=' "$1" | grep -vE \
        '^(Description|ExecStartPre|ExecStart|ReadWritePaths|StateDirectory|StateDirectoryMode|LogsDirectory|LogsDirectoryMode)='
}
diff <(settings "$UNIT") <(settings "$TEMPLATE") >"$WORK/units.diff" \
    || fail "geoline.service and geoline@.service differ: $(cat "$WORK/units.diff")"
grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$UNIT" || fail "ambient capabilities"
grep -qx 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' "$UNIT" || fail "capability bounding set"

# --- Run it as the unit does.
unit_line() { sed -n "s/^$1=//p" "$UNIT"; }
read -ra exec_start_pre <<<"$(unit_line ExecStartPre)"
read -ra exec_start <<<"$(unit_line ExecStart)"
[[ ${exec_start[0]} == /usr/bin/geoline && ${exec_start[1]} == serve ]] \
    || fail "ExecStart: ${exec_start[*]}"
as_service() {
    setpriv --reuid=geoline --regid=geoline --init-groups --no-new-privs \
        --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
        --bounding-set=-all,+net_bind_service -- "$@"
}

if [[ -d /run/systemd/system ]]; then
    # systemd is PID 1: the real unit, on the host's loopback port 53.
    dig_at() { dig "$@"; }
    systemctl daemon-reload
    systemctl start geoline.service || fail "systemctl start: $(journalctl -u geoline -n 40)"
    [[ $(systemctl show -p ActiveState --value geoline) == active ]] || fail "not active"
    GEOLINE_PID=$(systemctl show -p MainPID --value geoline)
else
    # No systemd: our own notification socket, our own network namespace.
    ip netns add "$NETNS"
    ip netns exec "$NETNS" ip link set lo up
    dig_at() { ip netns exec "$NETNS" dig "$@"; }
    install -d -m 0711 "$WORK/notify"
    chmod 0711 "$WORK"
    run_bg notify python3 -u -c '
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
while True:
    print(s.recv(4096).decode().replace("\n", " "), flush=True)
' "$WORK/notify/notify.sock"
    for ((i = 0; i < 50; i++)); do [[ -S $WORK/notify/notify.sock ]] && break; sleep 0.1; done
    (umask 0077 && as_service "${exec_start_pre[@]}") >"$WORK/check.log" 2>&1 \
        || fail "ExecStartPre (${exec_start_pre[*]}) as geoline"
    run_bg geoline ip netns exec "$NETNS" env NOTIFY_SOCKET="$WORK/notify/notify.sock" \
        bash -c 'umask 0077 && exec "$@"' - setpriv --reuid=geoline --regid=geoline \
        --init-groups --no-new-privs --inh-caps=-all,+net_bind_service \
        --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service -- \
        "${exec_start[@]}"
    GEOLINE_PID=$LAST_PID
    notified() {
        local want="$1" count="${2:-1}" i
        for ((i = 0; i < 600; i++)); do
            [[ $(grep -c -- "$want" "$WORK/notify.log") -ge $count ]] && return 0
            kill -0 "$GEOLINE_PID" 2>/dev/null || fail "geoline exited"
            sleep 0.1
        done
        fail "no $want (x$count) from geoline: $(cat "$WORK/notify.log")"
    }
    notified '^READY=1 STATUS=serving$'
    status=$(cat "/proc/$GEOLINE_PID/status")
    grep -qE "^Uid:\s+$(id -u geoline)\s" <<<"$status" || fail "not running as geoline: $status"
    grep -qE '^CapEff:\s+0000000000000400$' <<<"$status" || fail "capabilities: $status"
    grep -qE '^CapBnd:\s+0000000000000400$' <<<"$status" || fail "bounding set: $status"
    grep -qE '^NoNewPrivs:\s+1$' <<<"$status" || fail "NoNewPrivs: $status"
fi

# --- Answers from the packaged configuration, on port 53.
ask() { dig_at +norec +time=2 +tries=2 "$@"; }
out=$(ask @127.0.0.1 www.example.com A +subnet=1.2.4.0/24)
grep -qE '^www\.example\.com\.\s+60\s+IN\s+A\s+203\.0\.113\.10$' <<<"$out" \
    || fail "china line over 127.0.0.1:53: $out"
grep -qE 'flags: qr aa;' <<<"$out" || fail "flags: $out"
out=$(ask @::1 www.example.com A +subnet=8.8.8.0/24 +tcp)
grep -qE '^www\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.10$' <<<"$out" \
    || fail "default line over [::1]:53 TCP: $out"

# --- Reload: an edited zone (a conffile) served after SIGHUP.
sed -i 's/2026112201 ; serial/2026112202 ; serial/; $a deb-reload IN A 192.0.2.200' \
    /etc/geoline/zones/example.com.zone
if [[ -d /run/systemd/system ]]; then
    systemctl reload geoline.service || fail "systemctl reload"
else
    kill -HUP "$GEOLINE_PID"
    notified '^RELOADING=1 MONOTONIC_USEC=[0-9]\+$'
    notified '^READY=1 STATUS=serving; last reload (SIGHUP): ok$'
fi
out=$(ask @127.0.0.1 deb-reload.example.com A)
grep -qE '^deb-reload\.example\.com\.\s+300\s+IN\s+A\s+192\.0\.2\.200$' <<<"$out" \
    || fail "the reloaded zone: $out"

# --- Stop: drain, STOPPING=1, a clean exit.
if [[ -d /run/systemd/system ]]; then
    systemctl stop geoline.service || fail "systemctl stop"
    [[ $(systemctl show -p Result --value geoline) == success ]] || fail "stop result"
else
    kill -TERM "$GEOLINE_PID"
    notified '^STOPPING=1 STATUS=draining$'
    wait "$GEOLINE_PID" || fail "geoline exited with $? on SIGTERM"
fi
pass "installed: dig answers both lines on port 53 as the geoline user, SIGHUP reloads, SIGTERM stops"

# --- Upgrade to revision 2 and roll back: the edited conffile and the state are kept,
# without a question (none is asked for a conffile the package did not change).
runuser -u geoline -- sh -c 'echo state >/var/lib/geoline/journal/marker'
install_deb "$WORK/geoline_2.deb" || fail "upgrade: $(cat "$WORK/dpkg.log")"
[[ $(dpkg-query -W -f '${Version}' geoline) == 0.1.0-2 ]] || fail "not upgraded"
grep -q '^deb-reload' /etc/geoline/zones/example.com.zone || fail "upgrade lost the edit"
[[ -f /var/lib/geoline/journal/marker ]] || fail "upgrade lost the state"
install_deb "$WORK/geoline_1.deb" || fail "rollback: $(cat "$WORK/dpkg.log")"
[[ $(dpkg-query -W -f '${Version}' geoline) == 0.1.0-1 ]] || fail "not rolled back"
grep -q '^deb-reload' /etc/geoline/zones/example.com.zone || fail "rollback lost the edit"
as_service /usr/bin/geoline check --config /etc/geoline/geoline.toml >"$WORK/check.log" 2>&1 \
    || fail "check after the rollback"
mode_is "root:geoline 750" /etc/geoline
pass "upgrade and rollback keep the edited zone and the state"

# --- Remove keeps the configuration and the state; purge removes them.
dpkg -r geoline >"$WORK/dpkg.log" 2>&1 || fail "dpkg -r: $(cat "$WORK/dpkg.log")"
[[ ! -e /usr/bin/geoline ]] || fail "dpkg -r left the binary"
[[ -f /etc/geoline/geoline.toml ]] || fail "dpkg -r removed the configuration"
[[ -f /var/lib/geoline/journal/marker ]] || fail "dpkg -r removed the state"
[[ $(dpkg-query -W -f '${Status}' geoline) == "deinstall ok config-files" ]] \
    || fail "status after remove: $(dpkg-query -W -f '${Status}' geoline)"
dpkg -P geoline >"$WORK/dpkg.log" 2>&1 || fail "dpkg -P: $(cat "$WORK/dpkg.log")"
for gone in /etc/geoline /var/lib/geoline /var/log/geoline; do
    [[ ! -e $gone ]] || fail "dpkg -P left $gone"
done
if dpkg-statoverride --list /etc/geoline >/dev/null; then fail "purge left the stat override"; fi
pass "dpkg -r keeps /etc/geoline and /var/lib/geoline, dpkg -P removes them"
