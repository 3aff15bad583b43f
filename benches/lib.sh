# Shared by the benchmark scripts (benches/hostile, benches/peers). Sourced, not run.

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
