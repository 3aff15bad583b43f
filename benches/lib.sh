# Shared by the benchmark scripts (benches/hostile, benches/peers, benches/xfr). Sourced,
# not run.

# geoline_toml PORT DB ZONE OVERLAY [DNS_KEY...]: on stdout, the geoline.toml of the DNS
# benchmarks: DNS on 127.0.0.1:PORT, the china line (clients the database DB puts in CN),
# and the zone file ZONE with OVERLAY as its china overlay. Each DNS_KEY (`key = value`)
# goes into [dns]; a caller appends further sections after the output.
geoline_toml() {
    local port="$1" db="$2" zone="$3" overlay="$4"
    shift 4
    printf '[dns]\nlisten = ["127.0.0.1:%s"]\n' "$port"
    if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
    cat <<TOML

[[geoip]]
path = "$db"

[[line]]
name = "china"
countries = ["CN"]

[[zone]]
file = "$zone"
overlays = { china = "$overlay" }
TOML
}

# big_zone_files ROOT WORK N: the million-record zone of the benchmarks, written into WORK:
# big.zone is zones/example.com.zone plus N host A records (h0 ... hN-1, in 10.0.0.0/8),
# big.china.zone the china overlay replacing every tenth (benches/peers/big_zone.sh,
# benches/xfr/axfr.sh).
big_zone_files() {
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
root, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(f"{work}/big.zone", "w") as f:
    f.write(open(f"{root}/zones/example.com.zone").read())
    for i in range(n):
        f.write(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
with open(f"{work}/big.china.zone", "w") as f:
    f.write(open(f"{root}/zones/example.com.china.zone").read())
    for i in range(0, n, 10):
        f.write(f"h{i} 60 IN A 203.0.{(i >> 8) & 255}.{i & 255}\n")
EOF
}

# knot_conf DIR PORT ZONE [SERVER_KEYS] [SECTIONS] [ZONE_KEYS]: on stdout, the knot.conf of
# the benchmarks: Knot DNS on 127.0.0.1:PORT with one worker of each kind (as geoline runs
# pinned to one core), DIR its run and database directory, warnings only on stderr, and
# example.com from the file ZONE, read and never written back, without a journal. Then what
# differs, as knot.conf lines (indented as there) or empty: SERVER_KEYS further `server:`
# keys, SECTIONS further top-level sections (`acl:`, `mod-geoip:`), ZONE_KEYS further keys
# of the zone (benches/peers/configs.sh, benches/peers/big_zone.sh, benches/xfr/axfr.sh).
knot_conf() {
    local dir="$1" port="$2" zone="$3" server_keys="${4:-}" sections="${5:-}" zone_keys="${6:-}"
    cat <<CONF
server:
    rundir: "$dir"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
CONF
    [[ -z $server_keys ]] || printf '%s\n' "$server_keys"
    cat <<CONF
log:
  - target: stderr
    any: warning
database:
    storage: "$dir"
CONF
    [[ -z $sections ]] || printf '%s\n' "$sections"
    cat <<CONF
zone:
  - domain: example.com.
    storage: "$(dirname "$zone")"
    file: $(basename "$zone")
    journal-content: none
    zonefile-sync: -1
CONF
    [[ -z $zone_keys ]] || printf '%s\n' "$zone_keys"
}
