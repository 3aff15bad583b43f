#!/usr/bin/env bash
# The cost of health checks: geoline watching 1,000 addresses (500 TCP, 500 HTTP monitors'
# addresses, every 10 s) on local listeners, and the CPU it spends, from /proc/PID/stat.
# The target the issue sets: under 2 % of one core.
#
#   benches/health/run.sh [SECONDS]      (default 120 of measuring, after 25 s of warm-up)
#
# Environment: GEOLINE (default target/release/geoline, built when missing), PIN (a CPU
# list for taskset, default none), ADDRESSES (default 1000), INTERVAL_MS (default 10000).
# The targets are one Python process listening on 127.1.X.Y:PORT, one socket per
# address (loopback only), answering HTTP `200 ok` and accepting TCP connects. Prints the
# server's CPU as a percentage of one core and per check, the checks done, and the
# failures (which must be 0: otherwise the targets, not geoline, are the bottleneck).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_MEASURED="${1:-120}"
ADDRESSES="${ADDRESSES:-1000}"
INTERVAL_MS="${INTERVAL_MS:-10000}"
GEOLINE="${GEOLINE:-target/release/geoline}"
if [[ ! -x "$GEOLINE" ]]; then
    cargo build --release --bin geoline
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

half=$((ADDRESSES / 2))
list() { printf '"%s", ' "$@" | sed 's/, $//'; }
cat >"$work/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$dns_port"]

[admin]
listen = "127.0.0.1:$admin_port"

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

launch=("$GEOLINE" serve --config "$work/geoline.toml")
if [[ -n "${PIN:-}" ]]; then launch=(taskset -c "$PIN" "${launch[@]}"); fi
"${launch[@]}" >"$work/geoline.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null && break
    sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
checks() {
    curl -sf "http://127.0.0.1:$admin_port/metrics" |
        awk -v f="$1" '$1 ~ "^"f"\\{" {s += $2} END {printf "%d\n", s}'
}

sleep 25 # every address checked at least twice (the first check is within the first interval)
t0=$(ticks) c0=$(checks geoline_health_checks_total) f0=$(checks geoline_health_check_failures_total)
start=$(date +%s.%N)
sleep "$SECONDS_MEASURED"
t1=$(ticks) c1=$(checks geoline_health_checks_total) f1=$(checks geoline_health_check_failures_total)
end=$(date +%s.%N)

hz=$(getconf CLK_TCK)
python3 - "$t0" "$t1" "$c0" "$c1" "$f0" "$f1" "$start" "$end" "$hz" "$ADDRESSES" "$INTERVAL_MS" <<'PY'
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
PY
