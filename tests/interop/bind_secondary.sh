#!/usr/bin/env bash
# BIND 9 as a secondary of geoline with two views, the convention for split zones: each
# view matches one TSIG key, pulls the zone with that key (so geoline sends that line's
# view) and takes the NOTIFYs signed with it. The china view also matches the client
# 127.0.0.2, which geoline puts in its china line: for every name and type of each line's
# transfer, BIND's answer to that line's client must equal geoline's. Then an update on
# geoline must reach both views through NOTIFY and IXFR, and every message BIND received
# was signed (BIND refuses an unsigned or badly signed one).
source "$(dirname "$0")/lib.sh"
interop_install bind9 bind9-dnsutils
interop_build

gport=$(free_port)
bport=$(free_port)
start_xfr_primary "$gport" "$(cat <<TOML
transfer.keys = { "china-xfr" = "china", "default-xfr" = "default" }
transfer.notify = [
  { address = "127.0.0.1:$bport", key = "china-xfr" },
  { address = "127.0.0.1:$bport", key = "default-xfr" },
]
TOML
)"

mkdir -p "$WORK/bind"
cat >"$WORK/named.conf" <<CONF
options {
    directory "$WORK/bind";
    pid-file "$WORK/bind/named.pid";
    session-keyfile "$WORK/bind/session.key";
    listen-on port $bport { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
key "china-xfr" { algorithm hmac-sha256; secret "$XFR_SECRET"; };
key "default-xfr" { algorithm hmac-sha256; secret "$XFR_SECRET"; };
view "china" {
    match-clients { !key default-xfr; key china-xfr; 127.0.0.2; };
    zone "example.com" {
        type secondary;
        file "china.example.com.db";
        primaries { 127.0.0.1 port $gport key china-xfr; };
    };
};
view "default" {
    match-clients { key default-xfr; any; };
    zone "example.com" {
        type secondary;
        file "default.example.com.db";
        primaries { 127.0.0.1 port $gport key default-xfr; };
    };
};
CONF
named-checkconf "$WORK/named.conf" || fail "named-checkconf"
run_bg named named -g -c "$WORK/named.conf"
wait_tcp "$bport" || fail "named did not start"

# dig from `source` to `port`: the answer section, sorted, TTLs included.
answers() {
    local port="$1" source="$2" name="$3" type="$4"
    dig @127.0.0.1 -p "$port" -b "$source" +norec +time=2 +tries=2 +noall +answer "$name" "$type" \
        | awk '{ $3 = ""; print }' | sort
}
serial() { dig @127.0.0.1 -p "$1" -b "$2" +norec +time=1 +tries=1 +short example.com SOA | awk '{ print $3 }'; }

# Both views loaded (the transfers start at once; NOTIFYs are not needed for the first).
want=$(serial "$gport" 127.0.0.1)
[[ -n $want ]] || fail "geoline does not answer its SOA"
for source in 127.0.0.1 127.0.0.2; do
    for ((i = 0; i < 100; i++)); do
        [[ $(serial "$bport" "$source") == "$want" ]] && break
        sleep 0.1
    done
    [[ $(serial "$bport" "$source") == "$want" ]] || fail "BIND's view for $source did not load serial $want"
done

# Every (name, type) of each line's transfer: BIND's view answers as geoline's line does.
compare_line() {
    local line="$1" key="$2" source="$3" checked=0 name type
    dig @127.0.0.1 -p "$gport" +tcp +noall +answer -y "hmac-sha256:$key:$XFR_SECRET" example.com AXFR \
        >"$WORK/$line.axfr" || fail "AXFR of the $line line"
    grep -q "^;; .*TSIG" "$WORK/$line.axfr" && fail "dig reported a TSIG problem on the $line AXFR"
    while read -r name type; do
        local ours theirs
        ours=$(answers "$gport" "$source" "$name" "$type")
        theirs=$(answers "$bport" "$source" "$name" "$type")
        [[ "$ours" == "$theirs" ]] || fail "$line: $name $type: geoline [$ours] BIND [$theirs]"
        checked=$((checked + 1))
    done < <(awk '$4 != "SOA" && $4 != "TSIG" { print $1, $4 }' "$WORK/$line.axfr" | sort -u)
    [[ $checked -gt 5 ]] || fail "$line: only $checked RRsets compared"
    echo "$checked"
}
n_china=$(compare_line china china-xfr 127.0.0.2)
n_default=$(compare_line default default-xfr 127.0.0.1)
# The lines differ where the overlay says, and BIND keeps the difference.
[[ $(answers "$bport" 127.0.0.2 www.example.com A) != $(answers "$bport" 127.0.0.1 www.example.com A) ]] \
    || fail "BIND's two views answer www the same"

# An update on geoline reaches both views: NOTIFY signed per view, then IXFR.
start=$(date +%s%N)
printf 'server 127.0.0.1 %s\nzone example.com\nupdate add fresh.example.com 60 TXT "v1"\nsend\n' "$gport" \
    | nsupdate -y "hmac-sha256:upd:$XFR_SECRET" || fail "nsupdate"
for source in 127.0.0.2 127.0.0.1; do
    for ((i = 0; i < 300; i++)); do
        [[ -n $(answers "$bport" "$source" fresh.example.com TXT) ]] && break
        sleep 0.01
    done
    [[ -n $(answers "$bport" "$source" fresh.example.com TXT) ]] || fail "the update did not reach BIND's view for $source"
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "transfer of 'example.com/IN/china' from 127.0.0.1#$gport: Transfer status: success" "$WORK/named.log" \
    || fail "no successful transfer into the china view"
grep -q "transfer of 'example.com/IN/default' from 127.0.0.1#$gport: Transfer status: success" "$WORK/named.log" \
    || fail "no successful transfer into the default view"
grep -q "received notify for zone 'example.com'" "$WORK/named.log" || fail "BIND logged no NOTIFY"
for view in china default; do
    grep -q "view $view: received notify for zone 'example.com': TSIG '$view-xfr'" "$WORK/named.log" \
        || fail "BIND's $view view got no NOTIFY signed with $view-xfr"
    grep -Eq "zone example.com/IN/$view: notify from 127.0.0.1#[0-9]+: serial [0-9]+" "$WORK/named.log" \
        || fail "geoline's NOTIFY to the $view view carried no serial"
    # IXFR: the update's difference alone (three SOAs, the record, the closing SOA).
    grep -Eq "transfer of 'example.com/IN/$view' from .*Transfer completed: 1 messages, 5 records" "$WORK/named.log" \
        || fail "the update did not reach the $view view by IXFR"
    grep -Eq "line=\"$view\" client=127.0.0.1 qtype=IXFR" "$WORK/geoline.log" \
        || fail "geoline logged no IXFR for the $view line"
done
if grep -Eq "TSIG|tsig" "$WORK/named.log" && grep -Ei "tsig.*(fail|error|bad)" "$WORK/named.log"; then
    fail "BIND logged a TSIG failure"
fi
pass "BIND views: china $n_china and default $n_default RRsets equal to geoline's lines; an update reached both views by NOTIFY+IXFR in ${elapsed} ms"
