# Shared by benches/hostile/*.sh: build geoline, start it pinned, stop what was started.
# Sourced, not run. Sets HERE, ROOT, WORK, GEOLINE; the caller sets `set -euo pipefail`.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$ROOT/benches/lib.sh"
WORK="$(mktemp -d /tmp/geoline-hostile.XXXXXX)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "$tool missing (Debian: apt-get install dnsperf knot-dnsutils python3 curl)" >&2
            exit 1
        }
    done
}

build_geoline() {
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    echo "== building geoline (release)"
    (cd "$ROOT" && cargo build --release --quiet --bin geoline)
    GEOLINE="$CARGO_TARGET_DIR/release/geoline"
}

# start_geoline NAME CPUS CONFIG: starts `geoline serve` pinned to CPUS, sets PID_<NAME>.
start_geoline() {
    local name="$1" cpus="$2" config="$3"
    taskset -c "$cpus" "$GEOLINE" serve --config "$config" > "$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
}

# geoline_config PORT DB ZONE_DIR [DNS_KEYS] [SECTIONS]: on stdout, a geoline.toml with one
# UDP worker on 127.0.0.1:PORT, the china line from DB, and ZONE_DIR/example.com.zone with
# its overlay ZONE_DIR/example.com.china.zone; DNS_KEYS go into [dns], SECTIONS after it.
geoline_config() {
    geoline_toml "$1" "$2" "$3/example.com.zone" "$3/example.com.china.zone" \
        "udp_workers = 1" ${4:+"$4"}
    if [[ -n ${5:-} ]]; then printf '\n%s\n' "$5"; fi
}

# wait_dns PORT: until the server answers the apex SOA.
wait_dns() {
    for _ in $(seq 1 100); do
        if python3 "$HERE/dnsprobe.py" "$1" example.com SOA >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "geoline on port $1 did not start; logs:" >&2
    cat "$WORK"/*.log >&2
    return 1
}

stop() { # PID
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

# dnsperf_field OUTPUT LABEL: the first number after LABEL in dnsperf's summary.
dnsperf_field() {
    echo "$1" | awk -v label="$2" 'index($0, label) { for (i = 1; i <= NF; i++)
        if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}
