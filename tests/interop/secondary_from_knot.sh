#!/usr/bin/env bash
# Knot DNS as the PRIMARY and geoline as its secondary: geoline pulls the zone with a TSIG
# key (every message verified), takes Knot's signed NOTIFYs, and must answer every RRset as
# Knot does. Then updates on Knot must reach geoline by NOTIFY and IXFR (Knot's journal), not
# by whole-zone transfers, each answered by geoline within a second of Knot's NOTIFY (Knot
# 3.2 itself sends its NOTIFY up to a second after it applied an update: end to end, 3 s).
source "$(dirname "$0")/lib.sh"
interop_install knot bind9-dnsutils
interop_build

gport=$(free_port)
aport=$(free_port)
kport=$(free_port)

mkdir -p "$WORK/knot/zones"
cp "$INTEROP_ROOT/zones/example.com.zone" "$WORK/knot/zones/example.com.zone"
start_knot "$kport" "$gport" "$(cat <<ACL
  - id: transfer
    key: default-xfr
    action: transfer
  - id: update
    key: upd
    action: update
ACL
)" "$(cat <<ZONE
    file: example.com.zone
    notify: geoline
    acl: [transfer, update]
    journal-content: changes
ZONE
)"

cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$gport"]

[admin]
listen = "127.0.0.1:$aport"

[[zone]]
origin = "example.com"
primaries = ["127.0.0.1:$kport"]
primary_keys = { default = "default-xfr" }
store = "store"

[[key]]
name = "default-xfr"
secret = "$XFR_SECRET"
TOML
start_geoline "$WORK/geoline.toml" "$gport"

answers() {
    local port="$1" name="$2" type="$3"
    dig @127.0.0.1 -p "$port" +norec +time=2 +tries=2 +noall +answer "$name" "$type" | sort
}
serial() { dig @127.0.0.1 -p "$1" +norec +time=1 +tries=1 +short example.com SOA | awk '{ print $3 }'; }

want=$(serial "$kport")
[[ -n $want ]] || fail "Knot serves no SOA"
for ((i = 0; i < 100; i++)); do
    [[ $(serial "$gport") == "$want" ]] && break
    sleep 0.1
done
[[ $(serial "$gport") == "$want" ]] || fail "geoline did not load serial $want"
[[ -s "$WORK/store/example.com.default.zone" ]] || fail "no stored copy"

dig @127.0.0.1 -p "$kport" +tcp +noall +answer -y "hmac-sha256:default-xfr:$XFR_SECRET" example.com AXFR \
    >"$WORK/knot.axfr" || fail "AXFR from Knot"
checked=0
while read -r name type; do
    ours=$(answers "$gport" "$name" "$type")
    theirs=$(answers "$kport" "$name" "$type")
    [[ "$ours" == "$theirs" ]] || fail "$name $type: geoline [$ours] Knot [$theirs]"
    checked=$((checked + 1))
done < <(awk '$4 != "TSIG" { print $1, $4 }' "$WORK/knot.axfr" | sort -u)
[[ $checked -gt 5 ]] || fail "only $checked RRsets compared"

# Updates on Knot, each answered by geoline within a second.
latencies=()
for n in 1 2 3 4 5; do
    printf 'server 127.0.0.1 %s\nzone example.com\nupdate add u%s.example.com 60 TXT "v%s"\nsend\n' \
        "$kport" "$n" "$n" | nsupdate -y "hmac-sha256:upd:$XFR_SECRET" || fail "nsupdate $n"
    start=$(date +%s%N)
    for ((i = 0; i < 1000; i++)); do
        [[ -n $(dig @127.0.0.1 -p "$gport" +norec +time=1 +tries=1 +short "u$n.example.com" TXT) ]] && break
        sleep 0.005
    done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    [[ -n $(dig @127.0.0.1 -p "$gport" +norec +short "u$n.example.com" TXT) ]] \
        || fail "update $n never reached geoline"
    [[ $ms -le 3000 ]] || fail "update $n reached geoline after $ms ms"
    latencies+=("$ms")
done
# geoline's own share, from its log: Knot's NOTIFY taken -> the new serial transferred.
own=()
for ((s = want + 1; s <= want + 5; s++)); do
    t0=$(grep "NOTIFY: checking the primaries.*serial=$s" "$WORK/geoline.log" | head -1 | cut -d' ' -f1)
    t1=$(grep "transferred.*serial=$s kind=\"ixfr\"" "$WORK/geoline.log" | head -1 | cut -d' ' -f1)
    [[ -n $t0 && -n $t1 ]] || fail "serial $s: no NOTIFY taken or no IXFR in geoline's log"
    ms=$(( ($(date -d "$t1" +%s%N) - $(date -d "$t0" +%s%N)) / 1000000 ))
    [[ $ms -le 1000 ]] || fail "serial $s transferred $ms ms after Knot's NOTIFY"
    own+=("$ms")
done
metrics=$(curl -sf "http://127.0.0.1:$aport/metrics") || fail "metrics"
grep -q 'geoline_secondary_checks_total{zone="example.com.",line="default",result="ixfr"}' <<<"$metrics" \
    || fail "geoline took no IXFR: $(grep geoline_secondary <<<"$metrics")"
axfrs=$(grep -o 'geoline_secondary_checks_total{zone="example.com.",line="default",result="axfr"} [0-9]*' <<<"$metrics" | awk '{ print $2 }')
[[ $axfrs == 1 ]] || fail "geoline transferred the whole zone ${axfrs:-0} times (only the first should)"
grep -q 'geoline_notify_received_total{zone="example.com.",result="noerror_newer"}' <<<"$metrics" \
    || fail "geoline took no NOTIFY from Knot"
# Knot's NOTIFY at its start, before geoline listens, fails; geoline took every later one.
grep -v "notify" "$WORK/knot.log" | grep -qi "failed\|denied\|BADSIG\|BADKEY" && fail "Knot logged a failure"
# Knot has no digest of line definitions: it answers lines.geoline CH TXT REFUSED (as it
# answers any CH name but id.server and version.server), and geoline shows "unknown",
# without a warning.
dig @127.0.0.1 -p "$kport" +norec -y "hmac-sha256:default-xfr:$XFR_SECRET" lines.geoline TXT CH \
    | grep -q "status: REFUSED" || fail "Knot did not refuse lines.geoline CH TXT"
status=$(curl -sf "http://127.0.0.1:$aport/status") || fail "status"
grep -q '"primary_digest":"unknown"' <<<"$status" || fail "lines digest: $status"
grep -q '"primary_answer":"REFUSED"' <<<"$status" || fail "lines digest answer: $status"
grep -q '"state":"unknown"' <<<"$status" || fail "lines state: $status"
grep -q 'geoline_secondary_lines_digest{zone="example.com.",state="unknown"} 1' <<<"$metrics" \
    || fail "lines digest metric: $(grep lines_digest <<<"$metrics")"
grep -q "line definitions differ" "$WORK/geoline.log" && fail "a lines warning with a Knot primary"
pass "geoline secondary of Knot: $checked RRsets equal; 5 updates by NOTIFY+IXFR, NOTIFY -> transferred ${own[*]} ms (nsupdate -> answered ${latencies[*]} ms)"
