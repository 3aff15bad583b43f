//! The `[[key]]` section: the TSIG keys geoline verifies requests with.
//!
//! ```toml
//! [[key]]
//! name = "acme-update"
//! algorithm = "hmac-sha256"        # the default; hmac-md5, hmac-sha1, -sha224/384/512
//! secret = "kXb3...="              # base64, or:
//! # secret_file = "keys/acme.secret"  (a file holding the base64 secret)
//!
//! [[key]]
//! bind_file = "/etc/bind/ddns.key" # every `key` clause of a BIND key file
//! ```
//!
//! This module owns the section's format and checks (one of `secret`, `secret_file`,
//! `bind_file`; names and algorithms valid; no name twice), reading the secret files and
//! BIND key files it names ([`super::bind_file`]) so that `geoline check` reports them
//! with `file:line: reason`. No message ever holds a secret or a piece of one.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

use super::algorithm::Algorithm;
use super::bind_file;
use super::key::{Key, KeyRing, Secret};
use crate::diag::{ConfigError, Location, Source};

/// A `[[key]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKey {
    name: Option<Spanned<String>>,
    algorithm: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<PathBuf>>,
    bind_file: Option<Spanned<PathBuf>>,
}

/// Where a key was declared: for the message about a second key of the same name.
#[derive(Debug, Clone)]
struct Declared {
    key: Key,
    at: Location,
}

/// Checks the `[[key]]` tables (each `Spanned` over its table) and reads the files they
/// name; the keys as one ring.
pub(crate) fn check(raw: Vec<Spanned<RawKey>>, src: &Source<'_>) -> Result<KeyRing, ConfigError> {
    let mut declared: Vec<Declared> = Vec::new();
    for table in raw {
        let span = table.span();
        for key in keys_of(table.into_inner(), span, src)? {
            if let Some(first) = declared.iter().find(|d| d.key.name() == key.key.name()) {
                return Err(ConfigError::Invalid {
                    at: key.at,
                    reason: format!(
                        "key `{}` is already declared at {}",
                        key.key.name(),
                        first.at
                    ),
                });
            }
            declared.push(key);
        }
    }
    KeyRing::new(declared.into_iter().map(|d| d.key)).map_err(|e| src.invalid_file(e.to_string()))
}

/// The keys of one `[[key]]` table.
fn keys_of(
    raw: RawKey,
    span: std::ops::Range<usize>,
    src: &Source<'_>,
) -> Result<Vec<Declared>, ConfigError> {
    if let Some(file) = raw.bind_file {
        if raw.name.is_some()
            || raw.secret.is_some()
            || raw.secret_file.is_some()
            || raw.algorithm.is_some()
        {
            return Err(src.invalid(
                file.span(),
                "a [[key]] with `bind_file` takes its keys from the file: give no `name`, `algorithm`, `secret` or `secret_file` beside it".into(),
            ));
        }
        let path = src.resolve(file.get_ref());
        return bind_file::read(&path)?
            .into_iter()
            .map(|clause| {
                let at = |line| Location {
                    path: path.clone(),
                    line: Some(line),
                };
                let name = key_name(&clause.name.0).map_err(|reason| ConfigError::Invalid {
                    at: at(clause.name.1),
                    reason,
                })?;
                let (algorithm, bits) =
                    algorithm(&clause.algorithm.0).map_err(|reason| ConfigError::Invalid {
                        at: at(clause.algorithm.1),
                        reason,
                    })?;
                let secret = decode(&clause.secret.0).map_err(|reason| ConfigError::Invalid {
                    at: at(clause.secret.1),
                    reason: format!("key `{name}`: {reason}"),
                })?;
                let key = build(name, algorithm, bits, secret).map_err(|reason| {
                    ConfigError::Invalid {
                        at: at(clause.name.1),
                        reason,
                    }
                })?;
                Ok(Declared {
                    key,
                    at: at(clause.name.1),
                })
            })
            .collect();
    }
    let Some(name) = raw.name else {
        return Err(src.invalid(
            span,
            "a [[key]] needs a `name` (with `secret` or `secret_file`), or a `bind_file`".into(),
        ));
    };
    let at = src.location(Some(name.span()));
    let key_name = key_name(name.get_ref()).map_err(|reason| src.invalid(name.span(), reason))?;
    let (algorithm, bits) = match &raw.algorithm {
        Some(a) => algorithm(a.get_ref()).map_err(|reason| src.invalid(a.span(), reason))?,
        None => (Algorithm::HmacSha256, None),
    };
    let secret = match (raw.secret, raw.secret_file) {
        (Some(secret), None) => decode(secret.get_ref())
            .map_err(|reason| src.invalid(secret.span(), format!("key `{key_name}`: {reason}")))?,
        (None, Some(file)) => read_secret_file(&src.resolve(file.get_ref()))?,
        (Some(secret), Some(_)) => {
            return Err(src.invalid(
                secret.span(),
                format!("key `{key_name}` has both `secret` and `secret_file`: give one"),
            ));
        }
        (None, None) => {
            return Err(src.invalid(
                name.span(),
                format!("key `{key_name}` has no `secret` or `secret_file`"),
            ));
        }
    };
    let key = build(key_name, algorithm, bits, secret)
        .map_err(|reason| src.invalid(name.span(), reason))?;
    Ok(vec![Declared { key, at }])
}

fn build(
    name: Name,
    algorithm: Algorithm,
    bits: Option<usize>,
    secret: Secret,
) -> Result<Key, String> {
    let key = match bits {
        Some(bits) => Key::truncated(name.clone(), algorithm, secret, bits),
        None => Key::new(name.clone(), algorithm, secret),
    };
    key.map_err(|e| format!("key `{name}`: {e}"))
}

/// A key name: a domain name, made fully qualified.
fn key_name(text: &str) -> Result<Name, String> {
    let name =
        Name::from_str(text).map_err(|e| format!("`{text}` is not a valid key name: {e}"))?;
    if name.is_root() {
        return Err("a key name cannot be the root".into());
    }
    let mut name = name;
    name.set_fqdn(true);
    Ok(name)
}

/// An algorithm, optionally with BIND's truncation suffix (`hmac-sha256-128`: accept MACs
/// truncated to 128 bits).
pub(crate) fn algorithm(text: &str) -> Result<(Algorithm, Option<usize>), String> {
    if let Ok(a) = text.parse::<Algorithm>() {
        return Ok((a, None));
    }
    if let Some((base, bits)) = text.rsplit_once('-')
        && let Ok(bits) = bits.parse::<usize>()
        && let Ok(a) = base.parse::<Algorithm>()
    {
        return Ok((a, Some(bits)));
    }
    Err(text
        .parse::<Algorithm>()
        .err()
        .map_or_else(String::new, |e| e.to_string()))
}

/// A secret written in base64; the message never quotes it.
fn decode(text: &str) -> Result<Secret, String> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(Secret::new)
        .map_err(|_| "the secret is not valid base64".to_string())
}

/// The secret in a file of its own: base64, surrounding whitespace ignored.
fn read_secret_file(path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(text.trim()).map_err(|reason| ConfigError::Invalid {
        at: Location::file(path),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(rename = "key")]
        keys: Vec<Spanned<RawKey>>,
    }

    fn load(dir: &Path, text: &str) -> Result<KeyRing, String> {
        let path = dir.join("geoline.toml");
        let src = Source::new(&path, text);
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        check(doc.keys, &src).map_err(|e| e.to_string())
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("geoline-keys-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn inline_secret_file_and_bind_file() {
        let dir = temp_dir("ok");
        std::fs::write(dir.join("acme.secret"), "  c2VjcmV0LWZpbGU=\n").expect("write");
        std::fs::write(
            dir.join("ddns.key"),
            "key \"bind-key\" {\n\talgorithm hmac-md5;\n\tsecret \"YmluZA==\";\n};\n",
        )
        .expect("write");
        let ring = load(
            &dir,
            r#"
[[key]]
name = "inline"
secret = "aW5saW5l"

[[key]]
name = "filed.example."
algorithm = "HMAC-SHA1"
secret_file = "acme.secret"

[[key]]
bind_file = "ddns.key"
"#,
        )
        .expect("loads");
        let get = |n: &str| {
            ring.get(&Name::from_ascii(n).expect("name"))
                .expect(n)
                .clone()
        };
        assert_eq!(get("inline.").algorithm(), Algorithm::HmacSha256);
        assert_eq!(get("inline.").secret().bytes(), b"inline");
        assert_eq!(get("filed.example.").algorithm(), Algorithm::HmacSha1);
        assert_eq!(get("filed.example.").secret().bytes(), b"secret-file");
        assert_eq!(get("bind-key.").algorithm(), Algorithm::HmacMd5);
        assert_eq!(get("bind-key.").secret().bytes(), b"bind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn errors_name_where_and_never_the_secret() {
        let dir = temp_dir("bad");
        std::fs::write(
            dir.join("ddns.key"),
            "key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"not base64!\";\n};\n",
        )
        .expect("write");
        let toml_path = dir.join("geoline.toml").display().to_string();
        let key_path = dir.join("ddns.key").display().to_string();
        let cases = [
            (
                "[[key]]\nname = \"k\"\nsecret = \"%%%secretbits\"\n",
                format!("{toml_path}:3: key `k.`: the secret is not valid base64"),
            ),
            (
                "[[key]]\nname = \"k\"\nalgorithm = \"hmac-sha3\"\nsecret = \"YQ==\"\n",
                format!("{toml_path}:3: unknown TSIG algorithm `hmac-sha3`"),
            ),
            (
                "[[key]]\nname = \"k\"\n",
                format!("{toml_path}:2: key `k.` has no `secret` or `secret_file`"),
            ),
            (
                "[[key]]\nname = \"k\"\nsecret = \"YQ==\"\n[[key]]\nname = \"k.\"\nsecret = \"Yg==\"\n",
                format!("{toml_path}:5: key `k.` is already declared at {toml_path}:2"),
            ),
            (
                "[[key]]\nbind_file = \"ddns.key\"\n",
                format!("{key_path}:3: key `k.`: the secret is not valid base64"),
            ),
            (
                "[[key]]\nname = \"k\"\nalgorithm = \"hmac-sha256-64\"\nsecret = \"YQ==\"\n",
                format!("{toml_path}:2: key `k.`: a MAC truncated to 64 bits is not allowed"),
            ),
            (
                "[[key]]\nsecret = \"YQ==\"\n",
                format!("{toml_path}:1: a [[key]] needs a `name`"),
            ),
        ];
        for (text, expect) in cases {
            let e = load(&dir, text).expect_err(text);
            assert!(e.starts_with(&expect), "{text:?}:\n{e}\nexpected {expect}");
            assert!(
                !e.contains("secretbits") && !e.contains("not base64!"),
                "{e}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
