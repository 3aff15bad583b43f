#!/usr/bin/env bash
# Differential: Knot DNS and geoline serve the same zone; dig asks both the same questions
# and the responses (header flags and rcode, every section, the OPT record) must be the
# same. The questions are the protocol points where geoline once differed from Knot
# (issue 14): a CNAME into a delegated child, ANY/RRSIG/NSEC at a CNAME, glue and wildcard
# addresses for MX and SRV targets, additional records packed when they do not all fit,
# DS at the parent side of a cut, DNAME. Where the two servers legitimately differ (the
# README's "DNS behaviour" says where), the question is not asked here.
source "$(dirname "$0")/lib.sh"
interop_install knot bind9-dnsutils

cat >"$WORK/example.com.zone" <<'ZONE'
$ORIGIN example.com.
$TTL 300
@        3600 SOA ns1 hostmaster 2026120701 7200 900 1209600 60
         NS   ns1
         MX   10 mail
ns1      A    192.0.2.53
mail     A    192.0.2.25
www      A    192.0.2.10
         AAAA 2001:db8::10
a        CNAME b
b   120  CNAME c
c   60   A    192.0.2.3
dangling CNAME nowhere
sub      NS   ns.sub
sub      NS   ns1
sub      DS   12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   A    192.0.2.99
ns.sub   AAAA 2001:db8::99
mx.sub   A    192.0.2.98
nods     NS   ns1
intosub  CNAME host.sub
tosub    CNAME sub
*.wild   A    192.0.2.30
*.wild   AAAA 2001:db8::30
glued    MX   10 mx.sub
wmx      MX   10 host.wild
wsrv     SRV  0 5 5060 host.wild
dn  120  DNAME target
host.target A 192.0.2.77
dnsub    DNAME sub
dnout    DNAME example.net.
ZONE
for i in $(seq 1 12); do
    echo "twelve MX 10 m$i" >>"$WORK/example.com.zone"
    echo "m$i A 192.0.2.$((100 + i))" >>"$WORK/example.com.zone"
    echo "m$i AAAA 2001:db8::$((100 + i))" >>"$WORK/example.com.zone"
done

knot_port=$(free_port)
port=$(free_port)
start_knot "$knot_port" "$port" "" "$(cat <<ZONE
    file: $WORK/example.com.zone
    journal-content: none
ZONE
)"

cat >"$WORK/geoline.toml" <<TOML
[dns]
listen = ["127.0.0.1:$port"]

[[zone]]
file = "$WORK/example.com.zone"
TOML
start_geoline "$WORK/geoline.toml" "$port"

# The response as dig prints it, without what differs by nature: the ID, timings, the
# server's address and the message size line.
ask() {
    local at="$1"
    shift
    dig @127.0.0.1 -p "$at" +norec +nocookie +time=2 +tries=1 +nocmd +nostats "$@" \
        | sed -E 's/, id: [0-9]+//'
}

questions=(
    "intosub.example.com A"
    "intosub.example.com MX"
    "tosub.example.com NS"
    "tosub.example.com DS"
    "a.example.com ANY"
    "dangling.example.com ANY"
    "a.example.com RRSIG"
    "dangling.example.com NSEC"
    "dangling.example.com TXT"
    "glued.example.com MX"
    "wmx.example.com MX"
    "wsrv.example.com SRV"
    "twelve.example.com MX +noedns +ignore"
    "twelve.example.com MX +bufsize=600 +ignore"
    "twelve.example.com MX +tcp"
    "sub.example.com DS"
    "nods.example.com DS"
    "x.sub.example.com DS"
    "host.sub.example.com A"
    "host.dn.example.com A"
    "a.b.dn.example.com A"
    "dn.example.com DNAME"
    "dn.example.com A"
    "host.dnsub.example.com A"
    "www.dnout.example.com A"
    "www.example.com A"
    "nowhere.example.com A"
    "example.com NS"
)
differ=0
for q in "${questions[@]}"; do
    # shellcheck disable=SC2086 # the question is words on purpose
    knot=$(ask "$knot_port" $q)
    # shellcheck disable=SC2086
    ours=$(ask "$port" $q)
    grep -q 'Got answer' <<<"$knot" || fail "knot did not answer $q: $knot"
    if [[ $knot != "$ours" ]]; then
        echo "----- $q: knot, then geoline" >&2
        diff <(echo "$knot") <(echo "$ours") >&2 || true
        differ=$((differ + 1))
    fi
done
[[ $differ -eq 0 ]] || fail "$differ of ${#questions[@]} responses differ from Knot's"
pass "${#questions[@]} responses the same as Knot DNS's"
