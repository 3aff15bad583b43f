#!/usr/bin/env bash
# Knot DNS as a secondary of geoline's default line: it pulls the zone with the default
# line's key, takes geoline's NOTIFYs (signed with that key, an ACL that checks it), and
# must answer every RRset of the line as geoline does. Then an update on geoline must be
# answered by Knot within a second, having come by NOTIFY and IXFR (not a whole-zone
# transfer), for several updates in a row.
source "$(dirname "$0")/lib.sh"
interop_install knot bind9-dnsutils
interop_build

gport=$(free_port)
kport=$(free_port)
start_xfr_primary "$gport" "$(cat <<TOML
transfer.keys = { "default-xfr" = "default" }
transfer.notify = [{ address = "127.0.0.1:$kport", key = "default-xfr" }]
TOML
)"

start_knot "$kport" "$gport" "$(cat <<ACL
  - id: notify-from-geoline
    address: 127.0.0.1
    key: default-xfr
    action: notify
ACL
)" "$(cat <<ZONE
    master: geoline
    acl: notify-from-geoline
    zonefile-load: none
    journal-content: changes
ZONE
)"

answers() {
    local port="$1" name="$2" type="$3"
    dig @127.0.0.1 -p "$port" +norec +time=2 +tries=2 +noall +answer "$name" "$type" | sort
}
serial() { dig @127.0.0.1 -p "$1" +norec +time=1 +tries=1 +short example.com SOA | awk '{ print $3 }'; }

want=$(serial "$gport")
for ((i = 0; i < 100; i++)); do
    [[ $(serial "$kport") == "$want" ]] && break
    sleep 0.1
done
[[ $(serial "$kport") == "$want" ]] || fail "Knot did not load serial $want"

dig @127.0.0.1 -p "$gport" +tcp +noall +answer -y "hmac-sha256:default-xfr:$XFR_SECRET" example.com AXFR \
    >"$WORK/default.axfr" || fail "AXFR"
checked=0
while read -r name type; do
    ours=$(answers "$gport" "$name" "$type")
    theirs=$(answers "$kport" "$name" "$type")
    [[ "$ours" == "$theirs" ]] || fail "$name $type: geoline [$ours] Knot [$theirs]"
    checked=$((checked + 1))
done < <(awk '$4 != "SOA" && $4 != "TSIG" { print $1, $4 }' "$WORK/default.axfr" | sort -u)
[[ $checked -gt 5 ]] || fail "only $checked RRsets compared"
# Knot holds the default line: the china overlay's www is not there.
[[ $(answers "$kport" www.example.com A) == $(answers "$gport" www.example.com A) ]] || fail "www"

# Updates on geoline, each answered by Knot within a second.
latencies=()
for n in 1 2 3 4 5; do
    printf 'server 127.0.0.1 %s\nzone example.com\nupdate add u%s.example.com 60 TXT "v%s"\nsend\n' \
        "$gport" "$n" "$n" | nsupdate -y "hmac-sha256:upd:$XFR_SECRET" || fail "nsupdate $n"
    # From the update's answer (nsupdate returned) to Knot's answer, dig's own start-up
    # included: on a loaded machine that is most of it.
    start=$(date +%s%N)
    for ((i = 0; i < 1000; i++)); do
        [[ -n $(dig @127.0.0.1 -p "$kport" +norec +time=1 +tries=1 +short "u$n.example.com" TXT) ]] && break
        sleep 0.005
    done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    [[ -n $(dig @127.0.0.1 -p "$kport" +norec +short "u$n.example.com" TXT) ]] \
        || fail "update $n never reached Knot"
    [[ $ms -le 1000 ]] || fail "update $n reached Knot after $ms ms"
    latencies+=("$ms")
done
grep -q "IXFR, incoming, remote 127.0.0.1@$gport.*finished" "$WORK/knot.log" \
    || fail "Knot received no IXFR"
grep -Eq "notify, incoming, remote 127.0.0.1@[0-9]+.*serial" "$WORK/knot.log" \
    || fail "Knot logged no NOTIFY from geoline"
axfrs=$(grep -c "AXFR, incoming, remote 127.0.0.1@$gport.*finished" "$WORK/knot.log" || true)
[[ $axfrs -eq 1 ]] || fail "Knot transferred the whole zone $axfrs times (only the first should)"
grep -qi "failed\|denied\|BADSIG\|BADKEY" "$WORK/knot.log" && fail "Knot logged a failure"
pass "Knot secondary of the default line: $checked RRsets equal; 5 updates by NOTIFY+IXFR in ${latencies[*]} ms"
