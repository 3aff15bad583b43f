//! `geoline keygen` as an operator uses it: the key it prints, pasted into geoline.toml or
//! saved as a BIND key file, verifies requests signed with the secret it printed for
//! certbot and lego.

mod common;

use std::process::Command;

use base64::Engine;
use common::dns::{A, Query, Reply};
use common::site::Config;
use common::tsig::{self, ALGORITHMS, TestKey};
use common::{TempDir, TestServer};

fn keygen(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_geoline"))
        .arg("keygen")
        .args(args)
        .output()
        .expect("run geoline keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The value after `prefix` on the line that starts with it.
fn value<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
}

/// The block of lines that starts with `header` (up to the next blank line).
fn section(text: &str, header: &str) -> String {
    text.split("\n\n")
        .find(|block| block.starts_with(header))
        .unwrap_or_else(|| panic!("no {header} in\n{text}"))
        .to_string()
}

#[tokio::test]
async fn a_generated_key_works_pasted_as_toml_or_as_a_bind_file() {
    let dir = TempDir::new("keygen");
    dir.write("example.com.zone", "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n  NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.10\n");
    let mut config = Config::dns().zone("example.com.zone", &[]).to_string();
    let mut clients = Vec::new();
    for (i, (name, wire, len)) in ALGORITHMS.iter().enumerate() {
        let key_name = format!("acme-{name}");
        let out = keygen(&[
            &key_name,
            "--algorithm",
            name,
            "--server",
            "192.0.2.53:5353",
        ]);
        let secret = value(&out, "dns_rfc2136_secret = ");
        assert_eq!(value(&out, "RFC2136_TSIG_SECRET="), secret);
        assert_eq!(value(&out, "RFC2136_NAMESERVER="), "192.0.2.53:5353");
        assert_eq!(value(&out, "dns_rfc2136_name = "), key_name);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .expect("base64 secret");
        assert_eq!(bytes.len(), *len, "{name}: as long as the hash");
        // Even keys in TOML, odd ones as a BIND key file.
        if i % 2 == 0 {
            let toml = section(&out, "# geoline.toml");
            config.push_str(&toml);
            config.push_str("\n\n");
        } else {
            let bind = section(&out, "# BIND key file");
            dir.write(&format!("{key_name}.key"), &bind);
            config.push_str(&format!("[[key]]\nbind_file = \"{key_name}.key\"\n\n"));
        }
        clients.push(TestKey::new(&key_name, wire, &bytes));
    }
    let again = keygen(&["acme"]);
    let first = keygen(&["acme"]);
    assert_ne!(
        value(&again, "secret = "),
        value(&first, "secret = "),
        "fresh each time"
    );
    assert_eq!(
        value(&first, "algorithm = "),
        "\"hmac-sha256\"",
        "the default"
    );

    let server = TestServer::start(&dir, config).await;
    for key in clients {
        let q = Query::new("www.example.com", A);
        let (signed, mac) = tsig::sign(&q.bytes(), &key, tsig::now());
        let raw = common::dns::udp_raw_from("127.0.0.1:0", server.udp4, &signed)
            .await
            .expect("a reply");
        let reply = Reply::parse(raw);
        assert_eq!(reply.rcode(), 0, "{}", key.name);
        tsig::verify_reply(&reply.raw, &key, &mac);
    }
}

#[test]
fn a_bad_algorithm_or_name_is_refused() {
    for args in [&["k", "--algorithm", "hmac-sha3"][..], &["bad..name"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_geoline"))
            .arg("keygen")
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "nothing printed for {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("geoline: "), "{err}");
    }
}

#[test]
fn check_lists_the_keys_and_never_their_secrets() {
    let dir = TempDir::new("keygen-check");
    let out = keygen(&["acme-update", "--algorithm", "hmac-sha1"]);
    let secret = value(&out, "dns_rfc2136_secret = ").to_string();
    dir.write("ddns.key", &section(&out, "# BIND key file"));
    let config = format!(
        // A DNS listener: a configuration with nothing to serve is refused.
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n\n[[key]]\nname = \"short\"\nalgorithm = \"hmac-sha256-128\"\nsecret = \"{secret}\"\n\n[[key]]\nbind_file = \"ddns.key\"\n"
    );
    let path = dir.write("geoline.toml", &config);
    let run = Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(["check", "--config", path.to_str().expect("utf-8 path")])
        .output()
        .expect("run geoline check");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "tsig keys: acme-update. (hmac-sha1), short. (hmac-sha256, MACs down to 128 bits)\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    // A broken secret: the error names the file and line, not the secret.
    let path = dir.write(
        "geoline.toml",
        "[[key]]\nname = \"k\"\n\nsecret = \"not*base64\"\n",
    );
    let run = Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(["check", "--config", path.to_str().expect("utf-8 path")])
        .output()
        .expect("run geoline check");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("geoline.toml:4: key `k.`: the secret is not valid base64"),
        "{stderr}"
    );
    assert!(!stderr.contains("not*base64"), "{stderr}");
}
