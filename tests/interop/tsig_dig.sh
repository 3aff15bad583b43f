#!/usr/bin/env bash
# BIND's dig signing queries with TSIG (`dig -y ALG:NAME:SECRET`) against geoline, for
# each of the six algorithms over UDP and TCP: NOERROR, the answer, and a signed response
# that dig verifies (dig reports any TSIG failure). Then the refusals dig must see: a wrong
# secret gets NOTAUTH with BADSIG, an unknown key NOTAUTH with BADKEY, both unsigned, and
# a key included from a `tsig-keygen` file works like one written in geoline.toml.
source "$(dirname "$0")/lib.sh"
# tsig-keygen comes with the server package (its daemon is kept stopped).
interop_install bind9-dnsutils bind9

port=$(free_port)
secret=$(head -c 32 /dev/urandom | base64)
wrong=$(head -c 32 /dev/urandom | base64)
algorithms=(hmac-md5 hmac-sha1 hmac-sha224 hmac-sha256 hmac-sha384 hmac-sha512)

/usr/sbin/tsig-keygen -a hmac-sha256 from-bind >"$WORK/from-bind.key" || fail "tsig-keygen"
bind_secret=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$WORK/from-bind.key")

{
    cat <<TOML
[dns]
listen = ["127.0.0.1:$port"]

[[zone]]
file = "$INTEROP_ROOT/zones/example.com.zone"

[[key]]
bind_file = "$WORK/from-bind.key"
TOML
    for alg in "${algorithms[@]}"; do
        printf '\n[[key]]\nname = "k-%s"\nalgorithm = "%s"\nsecret = "%s"\n' "$alg" "$alg" "$secret"
    done
} >"$WORK/geoline.toml"
start_geoline "$WORK/geoline.toml" "$port"

ask() { dig @127.0.0.1 -p "$port" +norec +time=2 +tries=1 "$@" 2>&1; }

# A signed answer dig accepted: NOERROR, the record, a TSIG pseudosection with NOERROR, and
# none of the messages dig prints when a signature does not verify.
signed_ok() {
    local what="$1" out="$2"
    grep -q 'status: NOERROR' <<<"$out" || fail "$what: $out"
    grep -qE '^www\.example\.com\.\s+[0-9]+\s+IN\s+A\s+' <<<"$out" || fail "$what answer: $out"
    grep -q 'TSIG PSEUDOSECTION' <<<"$out" || fail "$what: response not signed: $out"
    grep -qE '\sTSIG\s.*\sNOERROR\s' <<<"$out" || fail "$what: TSIG error: $out"
    if grep -qiE "couldn't verify|could not be validated|tsig verify failure|expected a TSIG|bad signature|BADSIG|BADKEY|BADTIME" <<<"$out"; then
        fail "$what: dig reports a TSIG failure: $out"
    fi
}

for alg in "${algorithms[@]}"; do
    for transport in +notcp +tcp; do
        out=$(ask www.example.com A "$transport" -y "$alg:k-$alg:$secret")
        signed_ok "$alg $transport" "$out"
    done
done

out=$(ask www.example.com A -y "hmac-sha256:from-bind:$bind_secret")
signed_ok "key from a tsig-keygen file" "$out"

out=$(ask www.example.com A -y "hmac-sha256:k-hmac-sha256:$wrong")
grep -q 'status: NOTAUTH' <<<"$out" || fail "wrong secret: $out"
grep -qE '\sTSIG\s.*\sBADSIG\s' <<<"$out" || fail "wrong secret, TSIG error: $out"

out=$(ask www.example.com A -y "hmac-sha256:nobody:$secret")
grep -q 'status: NOTAUTH' <<<"$out" || fail "unknown key: $out"
grep -qE '\sTSIG\s.*\sBADKEY\s' <<<"$out" || fail "unknown key, TSIG error: $out"

pass "dig -y verifies geoline's signed answers with all six algorithms over UDP and TCP; a wrong secret gets BADSIG, an unknown key BADKEY"
