#!/usr/bin/env bash
# dnsdist in front of a pool of two geolines, configured as the README's deployment section
# says: a packet cache with parseECS=true behind two pools, queries that carry ECS (from a
# resolver) to a pool that keeps their ECS (useClientSubnet=false), the rest to a pool where
# dnsdist adds the client's own subnet (useClientSubnet=true).
#
# Checks: (1) a cached china answer never reaches a foreign client, whichever kind of
# query filled the cache (a resolver's ECS, dnsdist's own ECS for a client in the china
# line, none); (2) killing one geoline of the pool loses a bounded number of queries of a
# steady stream, and the pool answers everything once dnsdist has marked it down.
# Bounded: about 3000 queries, well under two minutes, 127.0.0.1 ports only.
source "$(dirname "$0")/lib.sh"
interop_install dnsdist bind9-dnsutils python3
interop_build

# The china line: the mainland test prefix, and 127.0.0.2 so that a client on loopback can
# be in it (dnsdist adds its address as ECS with a /32 source prefix).
g1=$(free_port)
g2=$(free_port)
for port in "$g1" "$g2"; do
    cat >"$WORK/geoline-$port.toml" <<TOML
[dns]
listen = ["127.0.0.1:$port"]

[[line]]
name = "china"
cidrs = ["1.2.4.0/22", "127.0.0.2/32"]

[[zone]]
file = "$INTEROP_ROOT/zones/example.com.zone"
overlays = { china = "$INTEROP_ROOT/zones/example.com.china.zone" }
TOML
done
start_geoline "$WORK/geoline-$g1.toml" "$g1"
pid1=$GEOLINE_PID
start_geoline "$WORK/geoline-$g2.toml" "$g2"

front=$(free_port)
cat >"$WORK/dnsdist.conf" <<LUA
setLocal("127.0.0.1:$front")
setACL({"127.0.0.0/8"})
setECSSourcePrefixV4(32)
setECSSourcePrefixV6(128)
-- One cache for both pools: parseECS=true keeps an answer for one ECS from another's.
cache = newPacketCache(10000, {parseECS=true})
for _, pool in ipairs({"ecs", "client"}) do
  getPool(pool):setCache(cache)
end
-- Queries that carry ECS already (from a resolver): keep it, add nothing.
newServer({address="127.0.0.1:$g1", pool="ecs", useClientSubnet=false,
           checkName="example.com.", checkType="SOA", checkInterval=1, maxCheckFailures=1})
newServer({address="127.0.0.1:$g2", pool="ecs", useClientSubnet=false,
           checkName="example.com.", checkType="SOA", checkInterval=1, maxCheckFailures=1})
-- Queries without: dnsdist adds the client's own address.
newServer({address="127.0.0.1:$g1", pool="client", useClientSubnet=true,
           checkName="example.com.", checkType="SOA", checkInterval=1, maxCheckFailures=1})
newServer({address="127.0.0.1:$g2", pool="client", useClientSubnet=true,
           checkName="example.com.", checkType="SOA", checkInterval=1, maxCheckFailures=1})
addAction(EDNSOptionRule(EDNSOptionCode.ECS), PoolAction("ecs"))
addAction(AllRule(), PoolAction("client"))
LUA
dnsdist --check-config -C "$WORK/dnsdist.conf" >"$WORK/dnsdist-check.log" 2>&1 \
    || fail "dnsdist refuses the README's configuration"
run_bg dnsdist dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf"
wait_tcp "$front" 20 || fail "dnsdist did not start"
# Until the first health check, every server is down.
for _ in $(seq 50); do
    dig @127.0.0.1 -p "$front" +time=1 +tries=1 example.com SOA | grep -q 'status: NOERROR' && break
    sleep 0.2
done

china=203.0.113.20
foreign=192.0.2.20
# `*.apps` differs by line; each case asks its own name, so the cache holds only that case.
answer() { # FROM NAME [DIG OPTIONS]
    local from="$1" name="$2"
    shift 2
    dig @127.0.0.1 -p "$front" -b "$from" +norec +time=2 +tries=1 +short "$name" A "$@"
}
expect() { # WHAT WANT GOT
    [[ $3 == "$2" ]] || fail "$1: got '$3', want '$2'"
}
case_no=0
for first in resolver-china client-china client-foreign resolver-foreign; do
    case_no=$((case_no + 1))
    name="c$case_no.apps.example.com"
    # Fill the cache with the first kind of query, twice (the second is a cache hit).
    for _ in 1 2; do
        case $first in
        resolver-china) expect "$first" "$china" "$(answer 127.0.0.1 "$name" +subnet=1.2.4.0/24)" ;;
        client-china) expect "$first" "$china" "$(answer 127.0.0.2 "$name")" ;;
        client-foreign) expect "$first" "$foreign" "$(answer 127.0.0.1 "$name")" ;;
        resolver-foreign) expect "$first" "$foreign" "$(answer 127.0.0.1 "$name" +subnet=8.8.8.0/24)" ;;
        esac
    done
    # Then every other kind, each twice: none may get another's answer.
    for _ in 1 2; do
        expect "foreign client after $first" "$foreign" "$(answer 127.0.0.1 "$name")"
        expect "foreign resolver after $first" "$foreign" "$(answer 127.0.0.1 "$name" +subnet=8.8.8.0/24)"
        expect "china client after $first" "$china" "$(answer 127.0.0.2 "$name")"
        expect "china resolver after $first" "$china" "$(answer 127.0.0.1 "$name" +subnet=1.2.4.0/24)"
        expect "resolver with ECS /0 after $first" "$foreign" "$(answer 127.0.0.1 "$name" +subnet=0.0.0.0/0)"
    done
done
pass "the packet cache never gave one line's answer to another (4 fill orders, 5 kinds of query)"

# A steady stream of distinct names (NXDOMAIN, never cached), 3000 queries at ~500 a
# second; one geoline is killed after 1000. Lost: no answer within 2 s.
python3 - "$front" "$pid1" >"$WORK/stream.log" 2>&1 <<'PY' || fail "query stream: $(cat "$WORK/stream.log")"
import os, signal, socket, struct, sys, threading, time
port, victim = int(sys.argv[1]), int(sys.argv[2])
total, kill_at, rate = 3000, 1000, 500
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(0.2)
answered, late = set(), set()
sent_at = {}
stop = threading.Event()
def receive():
    while not stop.is_set():
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        qid = struct.unpack("!H", data[:2])[0]
        if qid in sent_at:
            (answered if time.monotonic() - sent_at[qid] <= 2.0 else late).add(qid)
reader = threading.Thread(target=receive)
reader.start()
def query(qid):
    name = b"".join(bytes([len(l)]) + l for l in [b"q%d" % qid, b"example", b"com"]) + b"\0"
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
start = time.monotonic()
for qid in range(1, total + 1):
    if qid == kill_at:
        os.kill(victim, signal.SIGKILL)
    sent_at[qid] = time.monotonic()
    sock.sendto(query(qid), ("127.0.0.1", port))
    time.sleep(max(0.0, start + qid / rate - time.monotonic()))
time.sleep(2.5)
stop.set()
reader.join()
lost = [q for q in range(1, total + 1) if q not in answered]
tail_lost = [q for q in lost if q > kill_at + 5 * rate]
print(f"sent {total}, answered {len(answered)}, lost {len(lost)} (first {lost[:1]}, last {lost[-1:]}), lost after the failover window {len(tail_lost)}")
if len(lost) > total // 5 or tail_lost or any(q < kill_at for q in lost):
    sys.exit(1)
PY
pass "one geoline killed under a query stream: $(cat "$WORK/stream.log")"
