//! BIND key files (`tsig-keygen` and `ddns-confgen` output, `rndc.key`): the `key` clauses
//! of named.conf syntax, read so that one file serves BIND, nsupdate and geoline.
//!
//! ```text
//! key "acme-update" {
//!         algorithm hmac-sha256;
//!         secret "kXb3...=";
//! };
//! ```
//!
//! This module owns that grammar: `key NAME { algorithm ALG; secret "BASE64"; };` as many
//! times as the file holds, names quoted or not, comments `#`, `//` and `/* */`. Anything
//! else is refused with `file:line: reason`. It returns the clauses as text; turning them
//! into keys is [`super::config`]'s.

use std::path::Path;

use crate::diag::{ConfigError, Location};

/// One `key` clause: its values and the line each was on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyClause {
    pub(crate) name: (String, usize),
    pub(crate) algorithm: (String, usize),
    pub(crate) secret: (String, usize),
}

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

/// Reads every `key` clause of the file at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<KeyClause>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Reads every `key` clause of `text`, read from `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<KeyClause>, ConfigError> {
    let error = |line: usize, reason: String| ConfigError::Invalid {
        at: Location {
            path: path.to_path_buf(),
            line: Some(line),
        },
        reason,
    };
    let tokens = tokenize(text).map_err(|(line, reason)| error(line, reason.to_string()))?;
    let mut tokens = tokens.into_iter().peekable();
    let last_line = text.lines().count().max(1);
    let mut clauses = Vec::new();
    let mut next = |what: &str| {
        tokens.next().ok_or_else(|| {
            error(
                last_line,
                format!("the file ends where {what} was expected"),
            )
        })
    };
    while let Ok((token, line)) = next("") {
        match token {
            Token::Word(w) if w.eq_ignore_ascii_case("key") => {}
            other => {
                return Err(error(
                    line,
                    format!(
                        "expected a `key` clause, found {}: only key clauses are read from a BIND key file",
                        describe(&other)
                    ),
                ));
            }
        }
        let name = match next("the key's name")? {
            (Token::Word(n) | Token::Quoted(n), l) => (n, l),
            (other, l) => {
                return Err(error(
                    l,
                    format!("expected the key's name, found {}", describe(&other)),
                ));
            }
        };
        match next("`{`")? {
            (Token::Open, _) => {}
            (other, l) => {
                return Err(error(
                    l,
                    format!(
                        "expected `{{` after the key's name, found {}",
                        describe(&other)
                    ),
                ));
            }
        }
        let mut algorithm = None;
        let mut secret = None;
        loop {
            let (token, l) = next("`}`")?;
            let field = match token {
                Token::Close => break,
                Token::Word(w) => w.to_ascii_lowercase(),
                other => {
                    return Err(error(
                        l,
                        format!(
                            "expected `algorithm`, `secret` or `}}`, found {}",
                            describe(&other)
                        ),
                    ));
                }
            };
            let value = match next("a value")? {
                (Token::Word(v) | Token::Quoted(v), _) => v,
                (other, vl) => {
                    return Err(error(
                        vl,
                        format!("expected a value for `{field}`, found {}", describe(&other)),
                    ));
                }
            };
            match next("`;`")? {
                (Token::Semicolon, _) => {}
                (other, sl) => {
                    return Err(error(
                        sl,
                        format!("expected `;` after `{field}`, found {}", describe(&other)),
                    ));
                }
            }
            let slot = match field.as_str() {
                "algorithm" => &mut algorithm,
                "secret" => &mut secret,
                _ => {
                    return Err(error(
                        l,
                        format!("unknown key field `{field}` (a key has `algorithm` and `secret`)"),
                    ));
                }
            };
            if slot.is_some() {
                return Err(error(l, format!("`{field}` is given twice")));
            }
            *slot = Some((value, l));
        }
        match next("`;` after the key clause")? {
            (Token::Semicolon, _) => {}
            (other, l) => {
                return Err(error(
                    l,
                    format!("expected `;` after `}}`, found {}", describe(&other)),
                ));
            }
        }
        let missing = |what: &str| error(name.1, format!("key `{}` has no `{what}`", name.0));
        clauses.push(KeyClause {
            algorithm: algorithm.ok_or_else(|| missing("algorithm"))?,
            secret: secret.ok_or_else(|| missing("secret"))?,
            name,
        });
    }
    if clauses.is_empty() {
        return Err(ConfigError::Invalid {
            at: Location::file(path),
            reason: "no `key` clause in the file".into(),
        });
    }
    Ok(clauses)
}

/// How a token is named in a message; never the text of a quoted string (it may be a
/// secret).
fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("`{w}`"),
        Token::Quoted(_) => "a quoted string".into(),
        Token::Open => "`{`".into(),
        Token::Close => "`}`".into(),
        Token::Semicolon => "`;`".into(),
    }
}

/// The tokens of `text` with their lines; an unterminated string or comment is an error
/// at the line it starts on.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, (usize, &'static str)> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        None => return Err((start, "a `/*` comment is not closed")),
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                    }
                }
            }
            '{' => tokens.push((Token::Open, line)),
            '}' => tokens.push((Token::Close, line)),
            ';' => tokens.push((Token::Semicolon, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err((start, "a quoted string is not closed")),
                        Some('"') => break,
                        Some('\n') => {
                            return Err((start, "a quoted string runs past the end of its line"));
                        }
                        Some(c) => s.push(c),
                    }
                }
                tokens.push((Token::Quoted(s), start));
            }
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"' | '#') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                tokens.push((Token::Word(w), line));
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<KeyClause>, String> {
        parse(Path::new("ddns.key"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn tsig_keygen_output_reads() {
        // The shape `tsig-keygen -a hmac-sha256 acme-update` prints.
        let text = "key \"acme-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\";\n};\n";
        let keys = parse_text(text).expect("reads");
        assert_eq!(
            keys,
            [KeyClause {
                name: ("acme-update".into(), 1),
                algorithm: ("hmac-sha256".into(), 2),
                secret: ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=".into(), 3),
            }]
        );
    }

    #[test]
    fn several_clauses_comments_and_unquoted_names() {
        let text = "# made by hand\n// two keys\n/* one\n   two */ key a.example. { algorithm HMAC-MD5; secret \"YWJj\"; };\nkey \"b\" { secret \"ZGVm\"; algorithm hmac-sha1; };";
        let keys = parse_text(text).expect("reads");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, ("a.example.".into(), 4));
        assert_eq!(keys[1].algorithm, ("hmac-sha1".into(), 5));
    }

    #[test]
    fn errors_name_file_and_line_and_never_the_secret() {
        let cases = [
            (
                "options { };",
                "ddns.key:1: expected a `key` clause, found `options`",
            ),
            (
                "key k {\n algorithm hmac-sha256;\n};",
                "ddns.key:1: key `k` has no `secret`",
            ),
            (
                "key k {\n algorithm hmac-sha256;\n secret \"c2VjcmV0\"\n};",
                "ddns.key:4: expected `;` after `secret`, found `}`",
            ),
            (
                "key k {\n color blue;\n};",
                "ddns.key:2: unknown key field `color`",
            ),
            (
                "key k {\n secret \"c2Vj\n",
                "ddns.key:2: a quoted string runs past the end of its line",
            ),
            (
                "key k { algorithm hmac-sha256; secret \"x\"; }",
                "ddns.key:1: the file ends where `;` after the key clause was expected",
            ),
            ("/* nothing", "ddns.key:1: a `/*` comment is not closed"),
            (
                "# only a comment\n",
                "ddns.key: no `key` clause in the file",
            ),
            (
                "key k {\n secret \"c2VjcmV0\";\n secret \"c2VjcmV0\";\n algorithm x; };",
                "ddns.key:3: `secret` is given twice",
            ),
        ];
        for (text, expect) in cases {
            let e = parse_text(text).expect_err(text);
            assert!(e.starts_with(expect), "{text:?}: {e}");
            assert!(!e.contains("c2Vj"), "{e}");
        }
    }
}
