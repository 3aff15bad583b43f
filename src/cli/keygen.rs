//! `geoline keygen NAME [--algorithm ALG] [--server ADDR]`: a fresh TSIG key, printed in
//! the four forms an operator pastes it in: geoline's `[[key]]`, a BIND `key` clause (for
//! named, `nsupdate -k`, or `bind_file`), a certbot-dns-rfc2136 credentials file, and
//! lego's RFC2136_* environment variables.
//!
//! This module owns that output. The secret comes from the operating system's random
//! source, as long as the algorithm's output (RFC 8945 6: a key shorter than the hash
//! weakens it; BIND's `tsig-keygen` does the same); it is printed on standard output only.

use std::fmt::Write as _;
use std::net::SocketAddr;

use anyhow::Context;
use base64::Engine;
use hickory_proto::rr::Name;

use geoline::internal::tsig::Algorithm;

/// Generates the key and prints it.
pub(crate) fn run(name: &str, algorithm: &str, server: SocketAddr) -> anyhow::Result<()> {
    let algorithm: Algorithm = algorithm.parse()?;
    let name =
        Name::from_ascii(name).with_context(|| format!("`{name}` is not a valid key name"))?;
    if name.is_root() {
        anyhow::bail!("a key name cannot be the root");
    }
    let mut secret = vec![0u8; algorithm.output_len()];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("cannot read the operating system's random source: {e}"))?;
    let secret = base64::engine::general_purpose::STANDARD.encode(&secret);
    print!("{}", render(&name, algorithm, &secret, server));
    Ok(())
}

/// The four forms of the key `name` with `secret` (base64), for a server at `server`.
fn render(name: &Name, algorithm: Algorithm, secret: &str, server: SocketAddr) -> String {
    // Without the final dot, as operators write key names in each of these files.
    let short = name.to_ascii();
    let short = short.trim_end_matches('.');
    let alg = algorithm.name();
    let bind_alg = match algorithm {
        Algorithm::HmacMd5 => "hmac-md5",
        other => other.name(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "# geoline keygen: TSIG key `{short}` ({alg}).");
    let _ = writeln!(
        out,
        "# The same secret in four forms; keep every copy private."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "# geoline.toml");
    let _ = writeln!(out, "[[key]]");
    let _ = writeln!(out, "name = \"{short}\"");
    let _ = writeln!(out, "algorithm = \"{bind_alg}\"");
    let _ = writeln!(out, "secret = \"{secret}\"");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# BIND key file (named.conf include, nsupdate -k, or [[key]] bind_file)"
    );
    let _ = writeln!(out, "key \"{short}\" {{");
    let _ = writeln!(out, "\talgorithm {bind_alg};");
    let _ = writeln!(out, "\tsecret \"{secret}\";");
    let _ = writeln!(out, "}};");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# certbot-dns-rfc2136 credentials (an .ini file, chmod 600)"
    );
    let _ = writeln!(out, "dns_rfc2136_server = {}", server.ip());
    let _ = writeln!(out, "dns_rfc2136_port = {}", server.port());
    let _ = writeln!(out, "dns_rfc2136_name = {short}");
    let _ = writeln!(out, "dns_rfc2136_secret = {secret}");
    let _ = writeln!(out, "dns_rfc2136_algorithm = {}", algorithm.certbot_name());
    let _ = writeln!(out);
    let _ = writeln!(out, "# lego --dns rfc2136 environment");
    if algorithm == Algorithm::HmacMd5 {
        let _ = writeln!(
            out,
            "# (lego does not support HMAC-MD5: make an hmac-sha256 key for lego)"
        );
    }
    let _ = writeln!(out, "RFC2136_NAMESERVER={server}");
    let _ = writeln!(out, "RFC2136_TSIG_KEY={short}.");
    let _ = writeln!(out, "RFC2136_TSIG_SECRET={secret}");
    let _ = writeln!(out, "RFC2136_TSIG_ALGORITHM={alg}.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_forms_hold_the_same_key() {
        let name = Name::from_ascii("acme-update.example.").expect("name");
        let server: SocketAddr = "192.0.2.53:53".parse().expect("address");
        let out = render(&name, Algorithm::HmacMd5, "c2VjcmV0", server);
        for line in [
            "name = \"acme-update.example\"",
            "algorithm = \"hmac-md5\"",
            "secret = \"c2VjcmV0\"",
            "key \"acme-update.example\" {",
            "\talgorithm hmac-md5;",
            "\tsecret \"c2VjcmV0\";",
            "};",
            "dns_rfc2136_server = 192.0.2.53",
            "dns_rfc2136_port = 53",
            "dns_rfc2136_name = acme-update.example",
            "dns_rfc2136_secret = c2VjcmV0",
            "dns_rfc2136_algorithm = HMAC-MD5",
            "RFC2136_NAMESERVER=192.0.2.53:53",
            "RFC2136_TSIG_KEY=acme-update.example.",
            "RFC2136_TSIG_SECRET=c2VjcmV0",
            "RFC2136_TSIG_ALGORITHM=hmac-md5.sig-alg.reg.int.",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{line:?} missing from\n{out}"
            );
        }
        let sha = render(&name, Algorithm::HmacSha256, "c2VjcmV0", server);
        assert!(
            sha.contains("RFC2136_TSIG_ALGORITHM=hmac-sha256.\n"),
            "{sha}"
        );
        assert!(
            sha.contains("dns_rfc2136_algorithm = HMAC-SHA256\n"),
            "{sha}"
        );
        assert!(!sha.contains("does not support"), "{sha}");
    }
}
