# What the redirector benchmarks (run.sh, callgrind.sh) share: the two servers'
# configurations, the same jobs for geoline and nginx, the origin of the pass-through, the
# wrk invocation of each scenario, and waiting for the servers to listen.
# Sourced, not run, with ROOT set to the repository.
#
# The scenarios (SCENARIO):
#   keepalive    GET /a/b?c=1 for example.com from a mainland client (X-Forwarded-For:
#                1.2.4.8 from the trusted 127.0.0.1): 301 to https://example.cn/a/b?c=1,
#                50 keep-alive connections
#   close        the same with `Connection: close`: a new connection per request
#   passthrough  the same request from a foreign client (X-Forwarded-For: 8.8.8.8), passed
#                through to a local origin (a plain nginx answering 200 with 13 bytes), over
#                kept-alive connections to it on both sides
# and the access log (LOG): `on`, one JSON line per request written to a file by both
# (nginx `access_log` with a JSON `log_format`, geoline `access_log = PATH`), or `off` on both.

DB=$ROOT/geoip/geo-whois-asn-country.mmdb
GEOIP2_MODULE=/usr/lib/nginx/modules/ngx_http_geoip2_module.so
MAINLAND_CLIENT=1.2.4.8
FOREIGN_CLIENT=8.8.8.8

# write_configs WORK GEOLINE_PORT NGINX_PORT ORIGIN_PORT LOG: writes WORK/geoline.toml,
# WORK/nginx.conf and WORK/origin.conf (LOG: on or off). The access logs are
# WORK/geoline-access.log and WORK/nginx-access.log.
write_configs() {
    local WORK=$1 GEOLINE_PORT=$2 NGINX_PORT=$3 ORIGIN_PORT=$4 LOG=$5
    local geoline_log nginx_log
    case $LOG in
        on) geoline_log="\"$WORK/geoline-access.log\"" nginx_log="$WORK/nginx-access.log access" ;;
        off) geoline_log='"off"' nginx_log=off ;;
        *) echo "LOG is on or off, not $LOG" >&2; exit 1 ;;
    esac
cat >"$WORK/geoline.toml" <<EOF
[[geoip]]
path = "$DB"

[[line]]
name = "china"
countries = ["CN"]

[redirect]
trusted_proxies = ["127.0.0.1"]
access_log = $geoline_log

[[redirect.listen]]
address = "127.0.0.1:$GEOLINE_PORT"

[[redirect.rule]]
from = "example.com"
to = "example.cn"
lines = ["china"]
max_age_secs = 3600

[redirect.origin]
url = "http://example.com:$ORIGIN_PORT"
connect_to = "127.0.0.1:$ORIGIN_PORT"
EOF

cat >"$WORK/nginx.conf" <<EOF
load_module $GEOIP2_MODULE;
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    geoip2 $DB {
        \$geoip2_country_code country_code;
    }
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    map \$geoip2_country_code \$mainland {
        CN 1;
        default 0;
    }
    log_format access escape=json '{"time":"\$time_iso8601","client":"\$remote_addr",'
        '"country":"\$geoip2_country_code","host":"\$host","path":"\$request_uri",'
        '"status":\$status,"bytes":\$body_bytes_sent,"duration":\$request_time}';
    access_log $nginx_log;
    keepalive_requests 1000000;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name ~^(?<sub>.+\.)?example\.com\$;
        location / {
            if (\$mainland) {
                add_header Cache-Control "private, max-age=3600" always;
                return 301 https://\${sub}example.cn\$request_uri;
            }
            # The pass-through, with what geoline tells the origin about the client.
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\$host";
        }
    }
}
EOF

cat >"$WORK/origin.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/origin.pid;
error_log $WORK/origin-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location / {
            default_type text/plain;
            return 200 "origin says hi";
        }
    }
}
EOF
}

# wrk_scenario SCENARIO PORT SECONDS [WRK_OPTION...]: wrk (one thread, CONNECTIONS
# connections, on core 1) doing SCENARIO against 127.0.0.1:PORT; wrk's report on stdout.
wrk_scenario() {
    local scenario=$1 port=$2 seconds=$3
    shift 3
    local args=(-t1 -c"${CONNECTIONS:-50}" -d"${seconds}s" -H 'Host: example.com')
    case $scenario in
        keepalive) args+=(-H "X-Forwarded-For: $MAINLAND_CLIENT") ;;
        close) args+=(-H "X-Forwarded-For: $MAINLAND_CLIENT" -H 'Connection: close') ;;
        passthrough) args+=(-H "X-Forwarded-For: $FOREIGN_CLIENT") ;;
        *) echo "SCENARIO is keepalive, close or passthrough, not $scenario" >&2; exit 1 ;;
    esac
    taskset -c 1 wrk "${args[@]}" "$@" "http://127.0.0.1:$port/a/b?c=1"
}

# expected_status SCENARIO: the status every response of SCENARIO has.
expected_status() {
    if [ "$1" = passthrough ]; then echo 200; else echo 301; fi
}

# wait_port PORT: until an HTTP server answers on 127.0.0.1:PORT (at most a minute: under
# callgrind geoline starts slowly).
wait_port() {
    for _ in $(seq 600); do
        if curl -s -o /dev/null "http://127.0.0.1:$1/"; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on port $1" >&2
    exit 1
}
