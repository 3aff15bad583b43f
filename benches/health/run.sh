#!/usr/bin/env bash
# The cost of health checks: geoline watching 1,000 addresses (500 TCP, 500 HTTP monitors'
# addresses, every 10 s) on local listeners, and the CPU it spends, from /proc/PID/stat.
# The target the issue sets: under 2 % of one core. With --dns, also the DNS CPU per
# query at a fixed rate (dnsperf) with those 1,000 monitors running versus none, on a zone
# whose answers hold watched addresses (so every answer goes through the health table).
# The issue's target: the same CPU per query.
#
#   benches/health/run.sh [SECONDS] [--dns] [--rate Q] [--dns-seconds S]
#
# SECONDS        the checks' measurement (default 120), after 2.5 intervals of warm-up
# --dns          then the DNS phase: the same server, then one without [health]
# --rate Q       dnsperf -Q, queries/s (default 20000: well under what one core answers,
#                so both runs answer all of it and CPU per query compares equal work)
# --dns-seconds S  each DNS measurement (default 30)
#
# Environment: GEOLINE (default target/release/geoline, built when missing), PIN (a CPU
# list for taskset for geoline, default none), DNSPERF_PIN (the same for dnsperf),
# ADDRESSES (default 1000), INTERVAL_MS (default 10000). The targets are one Python
# process listening on 127.1.X.Y:PORT, one socket per address (loopback only), answering
# HTTP `200 ok` and accepting TCP connects. Prints the server's CPU as a percentage of one
# core and per check, the checks done, and the failures (which must be 0: otherwise the
# targets, not geoline, are the bottleneck); with --dns, per run the queries answered, the
# CPU, the CPU per query, and with monitors the same less the checks' own CPU (their rate
# measured in the first phase).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_MEASURED=120
DNS=0
RATE=20000
DNS_SECONDS=30
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dns) DNS=1 ;;
        --rate) RATE="$2"; shift ;;
        --dns-seconds) DNS_SECONDS="$2"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        [0-9]*) SECONDS_MEASURED="$1" ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
ADDRESSES="${ADDRESSES:-1000}"
INTERVAL_MS="${INTERVAL_MS:-10000}"
GEOLINE="${GEOLINE:-target/release/geoline}"
if [[ ! -x "$GEOLINE" ]]; then
    cargo build --release --bin geoline
fi
if [[ $DNS == 1 ]]; then
    for tool in dnsperf dig; do
        command -v "$tool" >/dev/null || { echo "$tool missing (apt-get install dnsperf bind9-dnsutils)" >&2; exit 1; }
    done
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
target_port="$(free_port)"
admin_port="$(free_port)"
dns_port="$(free_port)"

# The addresses: 127.1.0.1 onwards.
addresses=()
for ((i = 0; i < ADDRESSES; i++)); do
    addresses+=("127.1.$((i / 250)).$((i % 250 + 1))")
done

cat >"$work/targets.py" <<'PY'
import asyncio, sys
port = int(sys.argv[1])
addresses = sys.argv[2:]
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

async def handle(reader, writer):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await reader.read(4096)
            if not chunk:
                break  # a TCP check: connect and close
            data += chunk
        if data:
            writer.write(RESPONSE)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()

async def main():
    servers = [await asyncio.start_server(handle, a, port) for a in addresses]
    print("listening", len(servers), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
PY
python3 "$work/targets.py" "$target_port" "${addresses[@]}" >"$work/targets.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$work/targets.log" && break
    sleep 0.1
done
grep -q listening "$work/targets.log" || { cat "$work/targets.log"; exit 1; }

# The zone the DNS phase asks: www's RRset holds two watched addresses (the first two
# targets), plain's none; an MX with glue and an NXDOMAIN besides.
cat >"$work/example.com.zone" <<ZONE
\$ORIGIN example.com.
\$TTL 300
@     SOA ns1 hostmaster 1 3600 600 86400 60
@     NS  ns1
@     MX  10 mail
ns1   A   192.0.2.53
mail  A   192.0.2.25
www   A   ${addresses[0]}
www   A   ${addresses[1]}
plain A   192.0.2.10
ZONE
printf '%s\n' "www.example.com A" "plain.example.com A" "example.com MX" \
    "nx.example.com A" >"$work/mix.txt"

half=$((ADDRESSES / 2))
list() { printf '"%s", ' "$@" | sed 's/, $//'; }
# write_config FILE MONITORS(0|1)
write_config() {
    cat >"$1" <<TOML
[dns]
listen = ["127.0.0.1:$dns_port"]

[admin]
listen = "127.0.0.1:$admin_port"

[reload]
watch = false

[[zone]]
file = "$work/example.com.zone"
TOML
    [[ $2 == 1 ]] || return 0
    cat >>"$1" <<TOML

[health]
state_file = "$work/health-state.json"

[[health.monitor]]
addresses = [$(list "${addresses[@]:0:half}")]
type = "tcp"
port = $target_port
interval_ms = $INTERVAL_MS

[[health.monitor]]
addresses = [$(list "${addresses[@]:half}")]
type = "http"
port = $target_port
path = "/health"
body = "ok"
interval_ms = $INTERVAL_MS
TOML
}
write_config "$work/monitored.toml" 1
write_config "$work/unmonitored.toml" 0

# launch CONFIG: starts geoline, sets $server, waits for its admin listener.
launch() {
    local cmd=("$GEOLINE" serve --config "$1")
    if [[ -n "${PIN:-}" ]]; then cmd=(taskset -c "$PIN" "${cmd[@]}"); fi
    "${cmd[@]}" >>"$work/geoline.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    cat "$work/geoline.log" >&2
    exit 1
}

ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
checks() {
    curl -sf "http://127.0.0.1:$admin_port/metrics" |
        awk -v f="$1" '$1 ~ "^"f"\\{" {s += $2} END {printf "%d\n", s}'
}

launch "$work/monitored.toml"
# Every address checked at least twice (the first check is within the first interval):
# two and a half intervals, 25 s at the default interval.
sleep $(((INTERVAL_MS * 5 + 1999) / 2000))
t0=$(ticks) c0=$(checks geoline_health_checks_total) f0=$(checks geoline_health_check_failures_total)
start=$(date +%s.%N)
sleep "$SECONDS_MEASURED"
t1=$(ticks) c1=$(checks geoline_health_checks_total) f1=$(checks geoline_health_check_failures_total)
end=$(date +%s.%N)

hz=$(getconf CLK_TCK)
python3 - "$t0" "$t1" "$c0" "$c1" "$f0" "$f1" "$start" "$end" "$hz" "$ADDRESSES" "$INTERVAL_MS" <<'PY' | tee "$work/checks.txt"
import sys
t0, t1, c0, c1, f0, f1 = map(int, sys.argv[1:7])
start, end, hz = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
addresses, interval = int(sys.argv[10]), int(sys.argv[11])
wall = end - start
cpu = (t1 - t0) / hz
checks = c1 - c0
print(f"addresses {addresses}, interval {interval} ms, measured {wall:.1f} s")
print(f"checks {checks} ({checks / wall:.1f}/s, expected about {addresses * 1000 / interval:.1f}/s), failures {f1 - f0}")
print(f"geoline CPU {cpu:.2f} s = {100 * cpu / wall:.2f} % of one core (target: < 2 %)")
if checks:
    print(f"CPU per check {1e6 * cpu / checks:.1f} µs")
print(f"checks_cpu_per_second {cpu / wall:.6f}")
PY
[[ $DNS == 1 ]] || exit 0

# dns_run LABEL: one fixed-rate dnsperf run against $server; a tab-separated line.
dns_run() {
    local perf=(dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/mix.txt" -c 8 -q 400)
    if [[ -n "${DNSPERF_PIN:-}" ]]; then perf=(taskset -c "$DNSPERF_PIN" "${perf[@]}"); fi
    # Warm-up: the answer cache filled as in steady state.
    "${perf[@]}" -l 1 -Q "$RATE" >/dev/null 2>&1 || true
    local before after out
    before=$(ticks)
    out="$("${perf[@]}" -l "$DNS_SECONDS" -Q "$RATE" 2>&1)"
    after=$(ticks)
    local done lost
    done=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
    printf '%s\t%s\t%s\t%s\n' "$1" "$((after - before))" "${done:-0}" "${lost:-0}" >>"$work/dns.tsv"
}

answers() { dig +short +norec -p "$dns_port" @127.0.0.1 www.example.com A | sort | tr '\n' ' '; }
echo "== DNS at $RATE queries/s, ${DNS_SECONDS} s per run (mix: $(tr '\n' ',' <"$work/mix.txt"))"
echo "with $ADDRESSES monitors: www answers $(answers)"
dns_run "$ADDRESSES"
kill "$server"
wait "$server" 2>/dev/null || true
launch "$work/unmonitored.toml"
echo "without monitors: www answers $(answers)"
dns_run 0
python3 - "$work/dns.tsv" "$hz" "$work/checks.txt" "$DNS_SECONDS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
hz, seconds = int(sys.argv[2]), float(sys.argv[4])
checks_cpu = next(float(l.split()[1]) for l in open(sys.argv[3]) if l.startswith("checks_cpu_per_second"))
print(f"{'monitors':>8} {'answered':>10} {'lost':>6} {'CPU s':>7} {'µs/query':>9} {'less checks':>12}")
per = {}
for monitors, ticks, done, lost in rows:
    cpu, done = int(ticks) / hz, int(done)
    us = 1e6 * cpu / done if done else float("nan")
    less = 1e6 * (cpu - (checks_cpu * seconds if monitors != "0" else 0)) / done if done else float("nan")
    per[monitors] = less
    print(f"{monitors:>8} {done:>10} {lost:>6} {cpu:>7.2f} {us:>9.2f} {less:>12.2f}")
with_monitors = [v for k, v in per.items() if k != "0"]
if with_monitors and per.get("0"):
    print(f"CPU per query with monitors (less the checks) / without: {with_monitors[0] / per['0']:.3f} (target: 1.00)")
PY
