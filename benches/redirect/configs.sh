# What the redirector benchmarks (run.sh, callgrind.sh) share: the two servers'
# configurations, the same job for geoline and nginx, and waiting for them to listen.
# Sourced, not run, with ROOT set to the repository.

DB=$ROOT/geoip/geo-whois-asn-country.mmdb
GEOIP2_MODULE=/usr/lib/nginx/modules/ngx_http_geoip2_module.so

# write_configs WORK GEOLINE_PORT NGINX_PORT: writes WORK/geoline.toml and WORK/nginx.conf.
write_configs() {
    local WORK=$1 GEOLINE_PORT=$2 NGINX_PORT=$3
cat >"$WORK/geoline.toml" <<EOF
[[geoip]]
path = "$DB"

[[line]]
name = "china"
countries = ["CN"]

[redirect]
trusted_proxies = ["127.0.0.1"]

[[redirect.listen]]
address = "127.0.0.1:$GEOLINE_PORT"

[[redirect.rule]]
from = "example.com"
to = "example.cn"
lines = ["china"]
max_age_secs = 3600

[redirect.origin]
url = "https://example.com"
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
    access_log $WORK/nginx-access.log access;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name ~^(?<sub>.+\.)?example\.com\$;
        location / {
            if (\$mainland) {
                add_header Cache-Control "private, max-age=3600" always;
                return 301 https://\${sub}example.cn\$request_uri;
            }
            # The pass-through; never reached here (and an address: this sandbox may have
            # no DNS, and nginx resolves upstream names at start).
            proxy_pass https://127.0.0.1:9;
            proxy_set_header Host \$host;
        }
    }
}
EOF
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
