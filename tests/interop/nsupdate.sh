#!/usr/bin/env bash
# BIND's nsupdate against geoline: with a key of each TSIG algorithm, add records (UDP,
# and TCP with -v), check them with dig on both lines, delete them, and see an unsigned
# update and a key updating outside its grant refused. nsupdate verifies the signature of
# every response, so a badly signed answer fails here.
source "$(dirname "$0")/lib.sh"
interop_install bind9-dnsutils

port=$(free_port)
secret="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
algorithms=(hmac-md5 hmac-sha1 hmac-sha224 hmac-sha256 hmac-sha384 hmac-sha512)
cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/example.com.zone"
cp "$INTEROP_ROOT/zones/example.com.china.zone" "$WORK/example.com.china.zone"
{
    cat <<TOML
[dns]
listen = ["127.0.0.1:$port"]

[[geoip]]
path = "$INTEROP_ROOT/geoip/geo-whois-asn-country.mmdb"

[[line]]
name = "china"
countries = ["CN"]

[[zone]]
file = "example.com.zone"
overlays = { china = "example.com.china.zone" }

TOML
    for alg in "${algorithms[@]}"; do
        printf '[[key]]\nname = "k-%s"\nalgorithm = "%s"\nsecret = "%s"\n\n' "$alg" "$alg" "$secret"
    done
    echo "[update]"
    for alg in "${algorithms[@]}"; do
        printf '[[update.grant]]\nkey = "k-%s"\nzones = ["example.com"]\nnames = ["*.dyn"]\n\n' "$alg"
    done
} >"$WORK/geoline.toml"
start_geoline "$WORK/geoline.toml" "$port"

ask() { dig @127.0.0.1 -p "$port" +norec +time=2 +tries=1 +short "$@"; }

update() {
    local alg="$1" flags="$2"
    shift 2
    {
        echo "server 127.0.0.1 $port"
        echo "zone example.com"
        printf '%s\n' "$@"
        echo "send"
    } | timeout 20 nsupdate $flags -y "$alg:k-$alg:$secret" 2>&1
}

i=0
for alg in "${algorithms[@]}"; do
    for transport in udp tcp; do
        i=$((i + 1))
        flags=""
        [[ $transport == tcp ]] && flags="-v"
        host="h$i.$alg.dyn.example.com"
        out=$(update "$alg" "$flags" "update add $host 60 A 192.0.2.$i" \
            "update add $host 60 TXT \"made by nsupdate $alg $transport\"") \
            || fail "$alg $transport add: $out"
        [[ $(ask "$host" A) == "192.0.2.$i" ]] || fail "$alg $transport: A not served"
        [[ $(ask "$host" A +subnet=1.2.4.0/24) == "192.0.2.$i" ]] \
            || fail "$alg $transport: A not on the china line"
        [[ $(ask "$host" TXT) == "\"made by nsupdate $alg $transport\"" ]] \
            || fail "$alg $transport: TXT not served: $(ask "$host" TXT)"
        out=$(update "$alg" "$flags" "update delete $host A") \
            || fail "$alg $transport delete: $out"
        [[ -z $(ask "$host" A) ]] || fail "$alg $transport: A still served after delete"
        out=$(update "$alg" "$flags" "update delete $host") || fail "$alg $transport delete name: $out"
        dig @127.0.0.1 -p "$port" +norec "$host" TXT | grep -q 'status: NXDOMAIN' \
            || fail "$alg $transport: name not gone"
    done
done

# A prerequisite nsupdate sends: `prereq nxdomain` on a name that exists fails YXDOMAIN.
out=$(update hmac-sha256 "" "update add keep.dyn.example.com 60 A 192.0.2.200") || fail "add: $out"
out=$(update hmac-sha256 "" "prereq nxdomain keep.dyn.example.com" \
    "update add keep.dyn.example.com 60 A 192.0.2.201" || true)
grep -q YXDOMAIN <<<"$out" || fail "prereq nxdomain on an existing name: $out"
[[ $(ask keep.dyn.example.com A) == "192.0.2.200" ]] || fail "a failed prerequisite changed data"

# Outside the grant: REFUSED.
out=$(update hmac-sha256 "" "update add www.example.com 60 A 192.0.2.99" || true)
grep -q REFUSED <<<"$out" || fail "update outside the grant: $out"
# Unsigned: REFUSED.
out=$(printf 'server 127.0.0.1 %s\nzone example.com\nupdate add x.dyn.example.com 60 A 192.0.2.1\nsend\n' "$port" \
    | timeout 20 nsupdate 2>&1 || true)
grep -q REFUSED <<<"$out" || fail "unsigned update: $out"
# A wrong secret: the TSIG check refuses it (BADSIG), nothing changes.
out=$(printf 'server 127.0.0.1 %s\nzone example.com\nupdate add y.dyn.example.com 60 A 192.0.2.1\nsend\n' "$port" \
    | timeout 20 nsupdate -y "hmac-sha256:k-hmac-sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" 2>&1 || true)
grep -qiE 'NOTAUTH|BADSIG|tsig' <<<"$out" || fail "wrong secret: $out"
[[ -z $(ask y.dyn.example.com A) ]] || fail "a badly signed update was applied"

pass "nsupdate with ${#algorithms[@]} algorithms over UDP and TCP: add, delete, prerequisites, refusals"
