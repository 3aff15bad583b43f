#!/usr/bin/env bash
# geoline's rewriting proxy next to nginx proxy_pass + sub_filter, on loopback.
#
#   bash benches/proxy/run.sh            # needs root for apt-get, or nginx and wrk installed
#
# One shared origin (a plain nginx serving fixed files, gzip_static for the .gz variants).
# The server side runs on core 0 (the proxy under test, and the origin: ORIGIN_CORE), wrk
# alone on core 1. With the origin next to wrk instead (ORIGIN_CORE=1), core 1 saturates
# first and both proxies idle at 20-30 %: the run then measures the load generator, not the
# proxies. The origin does the same work for both proxies. Each case runs
# DURATION seconds against each proxy, REPEAT times alternating (the best run is kept).
# Reported per case and proxy: requests/s, MB/s (as wrk
# counts them: bytes received), server CPU per request (utime+stime from /proc/PID/stat over
# the run, divided by the requests), peak RSS (VmHWM of a process started for the case), and the
# geoline/nginx ratios (higher is better for req/s and MB/s, lower for CPU and RSS).
set -euo pipefail

DURATION=${DURATION:-10}
ONLY=${ONLY:-}          # a regex of case names to run, e.g. ONLY='html20k.*'
REPEAT=${REPEAT:-2}     # runs per case and proxy, alternating; the best req/s run is kept
ORIGIN_CORE=${ORIGIN_CORE:-0}
CONNECTIONS=${CONNECTIONS:-16}
# INFLIGHT=1: instead of wrk, CONNECTIONS slow clients with one request each, all in flight
# at once (inflight.py): the peak memory of that many responses, deterministically. Only
# the peak MiB column means anything then.
INFLIGHT=${INFLIGHT:-}
WORK=${WORK:-/tmp/geoline-proxy-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ORIGIN_PORT=18080 NGINX_PORT=18081 GEOLINE_PORT=18082

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null
fi
# The package may start a system nginx on port 80; it is not part of the benchmark.
if command -v systemctl >/dev/null; then systemctl stop nginx 2>/dev/null || true; fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi

# The shipped binary, `geoline serve` with a [proxy] section: its allocator (mimalloc) and its
# runtime (one thread on one CPU) are part of what is measured, memory above all.
(cd "$ROOT" && cargo build --release --bin geoline -q)
GEOLINE_BIN=$CARGO_TARGET_DIR/release/geoline

rm -rf "$WORK" && mkdir -p "$WORK/www" "$WORK/logs"

# --- the files ------------------------------------------------------------------------
python3 - "$WORK/www" <<'PY'
import json, os, random, sys
out = sys.argv[1]
rnd = random.Random(42)
hosts = ["example.com", "www.example.com", "api.example.com", "static.example.com"]
def url(i):
    return f"https://{hosts[i % 4]}/path/{i:06d}/item?id={i}"

# 20 KB of HTML: links, assets, and a few near-misses that must stay (example.com.au, ...).
parts = ['<!doctype html><html><head><meta charset="utf-8"><title>Example</title>',
         '<link rel="stylesheet" href="https://static.example.com/css/site.css"></head><body>']
i = 0
while sum(map(len, parts)) < 20_000 - 200:
    parts.append(f'<p>Paragraph {i} about our products, see <a href="{url(i)}">this page</a>. '
                 'Partners: example.com.au, notexample.com, example.community.</p>\n')
    i += 1
parts.append('<script src="https://static.example.com/js/app.js"></script></body></html>\n')
open(f"{out}/page.html", "w").write("".join(parts))

# 2 MB of JavaScript with thousands of URLs, escaped the ways bundlers write them.
js, i = [], 0
size = 0
while size < 2_000_000:
    forms = [f'fetch("{url(i)}");',
             f'var u{i}="https:\\/\\/{hosts[i % 4]}\\/a\\/{i}";',
             f'x.push(encodeURIComponent("https%3A%2F%2F{hosts[i % 4]}%2Fq%2F{i}"));',
             f'function f{i}(a,b){{return a*{i}+b-Math.floor(a/{i % 7 + 1});}}']
    line = forms[i % 4] + "\n"
    js.append(line); size += len(line); i += 1
open(f"{out}/bundle.js", "w").write("".join(js))

# 200 KB of JSON.
items, i = [], 0
while len(json.dumps(items)) < 200_000:
    items.append({"id": i, "url": url(i), "title": f"Item {i}", "price": rnd.randint(1, 9999),
                  "tags": ["a", "b", "c"][: i % 3 + 1]})
    i += 1
open(f"{out}/data.json", "w").write(json.dumps(items))

# 1 MB of incompressible binary.
open(f"{out}/blob.bin", "wb").write(rnd.randbytes(1 << 20))
PY
for f in page.html bundle.js data.json; do gzip -6 -k "$WORK/www/$f"; done

# --- configurations -------------------------------------------------------------------
cat > "$WORK/origin.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $WORK/origin.pid;
error_log $WORK/logs/origin-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WORK/www;
        gzip_static on;
    }
}
CONF

cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    keepalive_requests 1000000;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name example.cn;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host example.com;
            # Production-style buffers: the defaults (8 x 4k) spill a 1 MB body to a temp
            # file on disk, which would make nginx look slower than it need be.
            proxy_buffer_size 16k;
            proxy_buffers 16 32k;
            proxy_busy_buffers_size 64k;
            proxy_max_temp_file_size 0;
            # sub_filter cannot read compressed bodies.
            proxy_set_header Accept-Encoding "";
            sub_filter_types text/css application/javascript application/json text/plain;
            sub_filter_once off;
            sub_filter "example.com" "example.cn";
            proxy_redirect http://example.com/ http://example.cn/;
            proxy_cookie_domain example.com example.cn;
            # For the gzip case: compress again towards the client, as geoline does.
            gzip on;
            gzip_comp_level 1;
            gzip_types text/css application/javascript application/json text/plain;
        }
    }
}
CONF

cat > "$WORK/geoline.toml" <<CONF
[proxy]
listen = "127.0.0.1:$GEOLINE_PORT"
origin = "http://example.com"
connect_to = "127.0.0.1:$ORIGIN_PORT"
hosts = [
  { public = "example.cn", origin = "example.com" },
  { public = "www.example.cn", origin = "www.example.com" },
  { public = "api.example.cn", origin = "api.example.com" },
  { public = "static.example.cn", origin = "static.example.com" },
]
CONF

# --- processes ------------------------------------------------------------------------
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c "$ORIGIN_CORE" nginx -c "$WORK/origin.conf" -p "$WORK" & PIDS+=($!)

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" -H 'Host: example.cn' && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2; exit 1
}

# Fresh proxies for every case: a process keeps the memory its allocator got during an
# earlier case, which would otherwise show up as the next case's peak RSS.
start_proxies() {
    taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!); NGINX_PID=$!
    RUST_LOG=warn taskset -c 0 "$GEOLINE_BIN" serve --config "$WORK/geoline.toml" \
        >>"$WORK/logs/geoline.log" 2>&1 & PIDS+=($!); GEOLINE_PID=$!
    wait_port $NGINX_PORT; wait_port $GEOLINE_PORT
}
stop_proxies() {
    kill "$NGINX_PID" "$GEOLINE_PID" 2>/dev/null || true
    wait "$NGINX_PID" "$GEOLINE_PID" 2>/dev/null || true
}

wait_port $ORIGIN_PORT
start_proxies

# --- correctness first: both proxies answer, and geoline rewrote what it should ---------
for f in page.html bundle.js data.json blob.bin; do
    curl -s -H 'Host: example.cn' "http://127.0.0.1:$GEOLINE_PORT/$f" -o "$WORK/geoline-$f"
    curl -s -H 'Host: example.cn' "http://127.0.0.1:$NGINX_PORT/$f" -o "$WORK/nginx-$f"
done
cmp -s "$WORK/geoline-blob.bin" "$WORK/www/blob.bin" || { echo "geoline changed the binary" >&2; exit 1; }
curl -s -H 'Host: example.cn' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$GEOLINE_PORT/bundle.js" \
    | gunzip | cmp -s - "$WORK/geoline-bundle.js" || { echo "gzip path differs" >&2; exit 1; }
left=$(grep -o '[^a-z0-9-]example\.com[^.a-z0-9-]' "$WORK/geoline-page.html" "$WORK/geoline-bundle.js" "$WORK/geoline-data.json" | wc -l || true)
[ "$left" -eq 0 ] || { echo "geoline left $left origin hosts" >&2; exit 1; }
echo "nginx sub_filter turned 'example.community' into: $(grep -o 'example\.cn[a-z]*munity' "$WORK/nginx-page.html" | head -n1 || true)"

# --- measurements ---------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
to_mb() { # wrk's "12.34MB" -> MB
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; gsub(/[0-9.]/, "", u);
        if (u == "GB") n *= 1024; else if (u == "KB") n /= 1024; else if (u == "B") n /= 1048576;
        printf "%.1f", n }'
}

run_case() { # name pid port path [header]
    local name=$1 pid=$2 port=$3 path=$4 hdr=${5:-}
    echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true
    local c0; c0=$(cpu_ticks "$pid")
    local args=(-t1 -c"$CONNECTIONS" -d"${DURATION}s" -H 'Host: example.cn')
    [ -n "$hdr" ] && args+=(-H "$hdr")
    if [ -n "$INFLIGHT" ]; then
        taskset -c 1 python3 "$HERE/inflight.py" "$port" "$CONNECTIONS" "$path" "$hdr" > "$WORK/wrk-$name.txt"
    else
        taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$path" > "$WORK/wrk-$name.txt"
    fi
    local c1; c1=$(cpu_ticks "$pid")
    local reqs rps mbs errs
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk-$name.txt")
    mbs=$(to_mb "$(awk '/Transfer\/sec/ {print $2}' "$WORK/wrk-$name.txt")")
    errs=$(awk '/Non-2xx|Socket errors/' "$WORK/wrk-$name.txt" | tr -s ' ' | tr '\n' ' ')
    local us; us=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", (b - a) / hz / n * 1e6 }')
    local rss; rss=$(( $(peak_kib "$pid") / 1024 ))
    echo "$rps $mbs $us $rss $errs"
}

CASES=(
    "html20k /page.html"
    "js2m /bundle.js"
    "json200k /data.json"
    "bin1m /blob.bin"
    "html20k-gzip /page.html Accept-Encoding:gzip"
    "js2m-gzip /bundle.js Accept-Encoding:gzip"
    "json200k-gzip /data.json Accept-Encoding:gzip"
)

stop_proxies
printf '\n%-15s %-8s %10s %9s %12s %9s\n' case proxy "req/s" "MB/s" "CPU us/req" "peak MiB"
for c in "${CASES[@]}"; do
    read -r name path hdr <<<"$c"
    [[ "$name" =~ ^(${ONLY:-.*})$ ]] || continue
    hdr=${hdr/:/: }
    start_proxies
    g_best="0" n_best="0"
    # Alternating runs, best kept: the machine may be shared, and load that comes and goes
    # should not decide which proxy looks faster.
    for _ in $(seq "$REPEAT"); do
        g=$(run_case "$name-geoline" "$GEOLINE_PID" "$GEOLINE_PORT" "$path" "$hdr")
        n=$(run_case "$name-nginx" "$NGINX_PID" "$NGINX_PORT" "$path" "$hdr")
        awk -v a="${g%% *}" -v b="${g_best%% *}" 'BEGIN { exit !(a > b) }' && g_best=$g
        awk -v a="${n%% *}" -v b="${n_best%% *}" 'BEGIN { exit !(a > b) }' && n_best=$n
    done
    read -r g_rps g_mbs g_us g_rss g_err <<<"$g_best"
    read -r n_rps n_mbs n_us n_rss n_err <<<"$n_best"
    stop_proxies
    printf '%-15s %-8s %10s %9s %12s %9s %s\n' "$name" geoline "$g_rps" "$g_mbs" "$g_us" "$g_rss" "$g_err"
    printf '%-15s %-8s %10s %9s %12s %9s %s\n' "" nginx "$n_rps" "$n_mbs" "$n_us" "$n_rss" "$n_err"
    awk -v a="$g_rps" -v b="$n_rps" -v c="$g_mbs" -v d="$n_mbs" -v e="$g_us" -v f="$n_us" -v g="$g_rss" -v h="$n_rss" \
        'BEGIN { printf "%-15s %-8s %9.2fx %8.2fx %11.2fx %8.2fx\n", "", "ratio", a / b, c / d, e / f, g / h }'
done
