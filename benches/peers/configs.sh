#!/usr/bin/env bash
# Writes every server's configuration for benches/peers/run.sh:
#   configs.sh ROOT WORK GEOIP2_DB [GEOLINE_WORKERS]
# All serve example.com from zones/example.com.zone, with the china overlay
# (zones/example.com.china.zone) for clients the database puts in CN, by ECS when the
# query has it. Each peer expresses the overlay its own way; the names the benchmark asks
# for (www A, api CNAME, apex MX, an NXDOMAIN) answer alike everywhere.
set -euo pipefail
ROOT="$1"; WORK="$2"; DB="$3"; WORKERS="${4:-}"
ZONE="$ROOT/zones/example.com.zone"
source "$ROOT/benches/lib.sh"

# geoline: the repository's zone and overlay as they are.
mkdir -p "$WORK/geoline"
geoline_toml 5310 "$DB" "$ZONE" "$ROOT/zones/example.com.china.zone" \
    ${WORKERS:+"udp_workers = $WORKERS"} > "$WORK/geoline/geoline.toml"

# Knot DNS: the base zone as is; the geoip module answers the china line's RRsets. One
# module instance per TTL, since the module gives all its records one TTL.
mkdir -p "$WORK/knot"
cp "$ZONE" "$WORK/knot/example.com.zone"
cat > "$WORK/knot/geo60.conf" <<EOF
www.example.com:
  - geo: "CN"
    A: 203.0.113.10
    AAAA: 2001:db8:cafe::10
EOF
cat > "$WORK/knot/geo300.conf" <<EOF
api.example.com:
  - geo: "CN"
    CNAME: api.example.cn.
EOF
knot_conf "$WORK/knot" 5311 "$WORK/knot/example.com.zone" \
    "    edns-client-subnet: on" \
    "mod-geoip:
  - id: ttl60
    config-file: \"$WORK/knot/geo60.conf\"
    ttl: 60
    mode: geodb
    geodb-file: \"$DB\"
    geodb-key: [ country/iso_code ]
  - id: ttl300
    config-file: \"$WORK/knot/geo300.conf\"
    ttl: 300
    mode: geodb
    geodb-file: \"$DB\"
    geodb-key: [ country/iso_code ]" \
    "    module: [ mod-geoip/ttl60, mod-geoip/ttl300 ]" > "$WORK/knot/knot.conf"

# gdnsd: www and api become geoip resources (DYNA, DYNC) over a map of two datacenters.
# gdnsd gives a dynamic record one TTL for every datacenter: www answers 300 on both lines.
mkdir -p "$WORK/gdnsd/zones" "$WORK/gdnsd/geoip"
ln -sf "$DB" "$WORK/gdnsd/geoip/GeoIP2-Country.mmdb"
sed -e 's/^www     IN A    192.0.2.10$/www     300 DYNA geoip!www/' \
    -e '/^        IN AAAA 2001:db8::10$/d' \
    -e 's/^api     IN CNAME api.global.example.net.$/api     300 DYNC geoip!api/' \
    "$ZONE" > "$WORK/gdnsd/zones/example.com"
cat > "$WORK/gdnsd/config" <<EOF
options => {
    listen => [ 127.0.0.1:5312 ]
    udp_threads => 1
    tcp_threads => 1
    # Its largest: a burst of queries is queued rather than dropped, as geoline's is.
    udp_rcvbuf => 1048576
}
plugins => {
    geoip => {
        maps => {
            lines => {
                geoip2_db => GeoIP2-Country.mmdb
                datacenters => [ china, default ]
                map => {
                    default => [ default ]
                    AS => { default => [ default ], CN => [ china ] }
                }
            }
        }
        resources => {
            www => {
                map => lines
                dcmap => {
                    china => { addrs_v4 => [ 203.0.113.10 ], addrs_v6 => [ 2001:db8:cafe::10 ] }
                    default => { addrs_v4 => [ 192.0.2.10 ], addrs_v6 => [ 2001:db8::10 ] }
                }
            }
            api => {
                map => lines
                dcmap => {
                    china => api.example.cn.
                    default => api.global.example.net.
                }
            }
        }
    }
}
EOF

# PowerDNS: the geoip backend's YAML zone; www and api are services whose first existing
# alternative is the client's country's name, else the default one.
mkdir -p "$WORK/pdns"
cat > "$WORK/pdns/pdns.conf" <<EOF
launch=geoip
geoip-database-files=mmdb:$DB
geoip-zones-file=$WORK/pdns/zones.yaml
local-address=127.0.0.1
local-port=5313
edns-subnet-processing=yes
socket-dir=$WORK/pdns
guardian=no
daemon=no
disable-syslog=yes
loglevel=3
receiver-threads=1
distributor-threads=1
EOF
cat > "$WORK/pdns/zones.yaml" <<EOF
domains:
- domain: example.com
  ttl: 300
  records:
    example.com:
      - soa: ns1.example.com hostmaster.example.com 2026112201 7200 900 1209600 60
      - ns: ns1.example.com
      - ns: ns2.example.com
      - mx: 10 mail.example.com
      - txt: '"v=spf1 mx -all"'
      - a: 192.0.2.10
    ns1.example.com:
      - a: 192.0.2.53
      - aaaa: 2001:db8::53
    ns2.example.com:
      - a: 198.51.100.53
      - aaaa: 2001:db8:1::53
    mail.example.com:
      - a: 192.0.2.25
    shop.example.com:
      - cname: www.example.com
    www.cn.lines.example.com:
      - a: 203.0.113.10
      - aaaa: 2001:db8:cafe::10
    www.default.lines.example.com:
      - a: 192.0.2.10
      - aaaa: 2001:db8::10
    api.cn.lines.example.com:
      - cname: api.example.cn
    api.default.lines.example.com:
      - cname: api.global.example.net
  services:
    www.example.com: [ 'www.%cc.lines.example.com', 'www.default.lines.example.com' ]
    api.example.com: [ 'api.%cc.lines.example.com', 'api.default.lines.example.com' ]
EOF

# BIND: a view per line, chosen by the source address (BIND cannot use ECS for views);
# the china view's zone is the base with the overlay applied by hand.
mkdir -p "$WORK/bind"
ln -sf "$DB" "$WORK/bind/GeoIP2-Country.mmdb"
cp "$ZONE" "$WORK/bind/default.zone"
sed -e 's/^www     IN A    192.0.2.10$/www     60 IN A 203.0.113.10/' \
    -e 's/^        IN AAAA 2001:db8::10$/        60 IN AAAA 2001:db8:cafe::10/' \
    -e 's/^api     IN CNAME api.global.example.net.$/api     IN CNAME api.example.cn./' \
    -e 's/^\*.apps  IN A    192.0.2.20$/*.apps  IN A 203.0.113.20\ncdn     IN A 203.0.113.80/' \
    "$ZONE" > "$WORK/bind/china.zone"
cat > "$WORK/bind/named.conf" <<EOF
options {
    directory "$WORK/bind";
    pid-file "$WORK/bind/named.pid";
    listen-on port 5314 { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    geoip-directory "$WORK/bind";
    udp-receive-buffer 4194304;
};
controls { };
view china {
    match-clients { geoip country CN; };
    zone "example.com" { type primary; file "china.zone"; };
};
view default {
    match-clients { any; };
    zone "example.com" { type primary; file "default.zone"; };
};
EOF
