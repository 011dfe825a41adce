//! Reading and writing dotenv (`.env`) files, with the semantics the common implementations share
//! (python-dotenv, Node's `dotenv`):
//!
//! - `KEY=value`, optionally `export KEY=value`; spaces and tabs around `=` are ignored.
//! - Keys are ASCII letters, digits, `_`, `.` and `-`.
//! - Unquoted values run to the end of the line, trimmed; a `#` preceded by whitespace starts a
//!   comment (`KEY=a#b` is `a#b`, `KEY=a #b` is `a`, `KEY= # note` is empty), as in python-dotenv.
//! - `'single'` and `` `backtick` `` quoted values are literal: no escapes, and they may span lines.
//! - `"double"` quoted values may span lines and understand `\n`, `\r`, `\t`, `\"` and `\\`; any other
//!   backslash is kept as it is (`"\$"` is `\$`).
//! - After a closing quote only whitespace and a `# comment` may follow.
//! - `#` comment lines and blank lines are skipped; CRLF and lone CR line endings and a leading UTF-8
//!   byte order mark are accepted.
//! - A key given twice keeps the last value ([`last_wins`]).
//! - No `${VAR}` interpolation: `$` is an ordinary character.
//!
//! Where the implementations differ, this parser is the stricter one: a line that is not a comment,
//! blank, or `KEY=VALUE` is an error with its line number (python-dotenv warns and skips it, Node's
//! `dotenv` skips it silently), because a secrets file that half-parses is worse than one that fails.
//! Errors never quote the offending line: it may hold a value.
//!
//! [`write`] quotes each value so that [`parse`] gives back exactly the same value, whatever it holds.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// One `KEY=value` assignment of a dotenv file.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Zeroizing<String>,
    /// The line (from 1) the assignment starts on.
    pub line: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("key", &self.key).field("value", &"<redacted>").field("line", &self.line).finish()
    }
}

/// Why a dotenv file could not be parsed: the line, and what is wrong with it (never its text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: Problem,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Neither blank, a comment, nor `KEY=VALUE` with a valid key.
    NotAnAssignment,
    /// A quoted value whose closing quote never comes.
    UnterminatedQuote { key: String, quote: char },
    /// Something other than whitespace or a comment after a closing quote.
    TextAfterQuote { key: String },
    /// The bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAnAssignment => f.write_str(
                "expected KEY=VALUE, a `#` comment or a blank line (keys are ASCII letters, digits, `_`, `.` and `-`)",
            ),
            Problem::UnterminatedQuote { key, quote } => {
                write!(f, "the value of {key} opens a {quote} quote that is never closed")
            }
            Problem::TextAfterQuote { key } => write!(
                f,
                "unexpected text after the closing quote of {key}'s value (quote the whole value, or start a comment with ` #`)"
            ),
            Problem::NotUtf8 => f.write_str("the file is not valid UTF-8"),
        }
    }
}

/// Why a dotenv file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}, {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },
}

/// Why entries could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0:?} cannot be a dotenv key (keys are ASCII letters, digits, `_`, `.` and `-`)")]
    InvalidKey(String),
}

/// Whether `c` may appear in a key.
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// Whether `key` can be written to and read back from a dotenv file.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_key_char)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Reads and parses a dotenv file. The file's bytes are zeroized once parsed.
pub fn read_file(path: &Path) -> Result<Vec<Entry>, ReadError> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?);
    parse_bytes(&bytes).map_err(|source| ReadError::Parse { path: path.to_path_buf(), source })
}

/// Parses dotenv bytes; invalid UTF-8 is reported on the line where it occurs.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<Entry>, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            Err(ParseError { line, problem: Problem::NotUtf8 })
        }
    }
}

/// Parses dotenv text into its assignments, in file order (a repeated key appears twice; see
/// [`last_wins`]).
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Every line ending becomes `\n`, as both reference implementations do, so a quoted value never
    // keeps a `\r` that only the file's line endings put there.
    let normalized = Zeroizing::new(text.replace("\r\n", "\n").replace('\r', "\n"));
    Parser { text: &normalized, bytes: normalized.as_bytes(), pos: 0, line: 1 }.entries()
}

/// The entries with each key once, at its last value, in the order keys first appear.
pub fn last_wins(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match out.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => *existing = entry,
            None => out.push(entry),
        }
    }
    out
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    /// Moves past the rest of the line and its `\n`.
    fn skip_line(&mut self) {
        match self.bytes[self.pos..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.bytes.len(),
        }
    }

    fn error(&self, line: usize, problem: Problem) -> ParseError {
        ParseError { line, problem }
    }

    fn entries(mut self) -> Result<Vec<Entry>, ParseError> {
        let mut out = Vec::new();
        while self.pos < self.bytes.len() {
            self.skip_blanks();
            match self.peek() {
                None => break,
                Some(b'\n') | Some(b'#') => self.skip_line(),
                Some(_) => out.push(self.assignment()?),
            }
        }
        Ok(out)
    }

    /// One `[export ]KEY = VALUE [# comment]`, from its first non-blank character through its line end.
    fn assignment(&mut self) -> Result<Entry, ParseError> {
        let line = self.line;
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(b"export") && rest.get(6).copied().is_some_and(is_blank) {
            self.pos += 6;
            self.skip_blanks();
        }
        let key_start = self.pos;
        while self.peek().is_some_and(is_key_char) {
            self.pos += 1;
        }
        let key = self.text[key_start..self.pos].to_string();
        self.skip_blanks();
        if key.is_empty() || self.peek() != Some(b'=') {
            return Err(self.error(line, Problem::NotAnAssignment));
        }
        self.pos += 1;
        let blanks_before_value = self.peek().is_some_and(is_blank);
        self.skip_blanks();
        let value = match self.peek() {
            Some(q @ (b'\'' | b'`')) => self.literal_quoted(q, &key, line)?,
            Some(b'"') => self.double_quoted(&key, line)?,
            _ => self.unquoted(blanks_before_value),
        };
        Ok(Entry { key, value, line })
    }

    /// A `'…'` or `` `…` `` value: everything up to the next identical quote, as it is.
    fn literal_quoted(&mut self, quote: u8, key: &str, line: usize) -> Result<Zeroizing<String>, ParseError> {
        let start = self.pos + 1;
        let Some(len) = self.bytes[start..].iter().position(|&b| b == quote) else {
            return Err(self.error(line, Problem::UnterminatedQuote { key: key.to_string(), quote: quote as char }));
        };
        let value = Zeroizing::new(self.text[start..start + len].to_string());
        self.line += value.bytes().filter(|&b| b == b'\n').count();
        self.pos = start + len + 1;
        self.after_quote(key)?;
        Ok(value)
    }

    /// A `"…"` value, with its escapes decoded.
    fn double_quoted(&mut self, key: &str, line: usize) -> Result<Zeroizing<String>, ParseError> {
        let mut value = Zeroizing::new(String::new());
        let mut chars = self.text[self.pos + 1..].char_indices();
        let unterminated =
            || ParseError { line, problem: Problem::UnterminatedQuote { key: key.to_string(), quote: '"' } };
        loop {
            let Some((i, c)) = chars.next() else { return Err(unterminated()) };
            match c {
                '"' => {
                    self.pos += 1 + i + 1;
                    break;
                }
                '\\' => {
                    let Some((_, escaped)) = chars.next() else { return Err(unterminated()) };
                    match escaped {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        '"' => value.push('"'),
                        '\\' => value.push('\\'),
                        other => {
                            if other == '\n' {
                                self.line += 1;
                            }
                            value.push('\\');
                            value.push(other);
                        }
                    }
                }
                '\n' => {
                    self.line += 1;
                    value.push('\n');
                }
                other => value.push(other),
            }
        }
        self.after_quote(key)?;
        Ok(value)
    }

    /// After a closing quote: blanks, perhaps a comment, then the line's end.
    fn after_quote(&mut self, key: &str) -> Result<(), ParseError> {
        self.skip_blanks();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') | Some(b'#') => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err(self.error(self.line, Problem::TextAfterQuote { key: key.to_string() })),
        }
    }

    /// An unquoted value: the rest of the line up to a comment, trimmed. `blanks_before` says whether
    /// blanks separated it from the `=`, which makes a `#` right at its start a comment.
    fn unquoted(&mut self, blanks_before: bool) -> Zeroizing<String> {
        let end = self.bytes[self.pos..].iter().position(|&b| b == b'\n').map_or(self.bytes.len(), |i| self.pos + i);
        let raw = &self.bytes[self.pos..end];
        let comment = raw
            .iter()
            .enumerate()
            .position(|(i, &b)| b == b'#' && if i == 0 { blanks_before } else { is_blank(raw[i - 1]) });
        let value_end = self.pos + comment.unwrap_or(raw.len());
        let value = Zeroizing::new(self.text[self.pos..value_end].trim_end_matches([' ', '\t']).to_string());
        self.pos = end;
        self.skip_line();
        value
    }
}

/// Characters that never need quoting: nothing a parser could take for a quote, comment or blank.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | ',' | '=')
}

/// The value as it should appear after `KEY=`, quoted as little as possible but always so that
/// [`parse`] gives it back unchanged.
///
/// Plain values stay bare; otherwise single quotes, which every implementation takes literally (and
/// which keep `$` from python-dotenv's interpolation), unless the value holds a `'`, a backslash
/// (python-dotenv unescapes `\\` and `\'` even there) or a carriage return (line-ending normalization
/// would turn it into `\n`): then double quotes with escapes.
pub fn quote(value: &str) -> Zeroizing<String> {
    if value.chars().all(is_plain) {
        return Zeroizing::new(value.to_string());
    }
    if !value.contains(['\'', '\\', '\r']) {
        let mut out = Zeroizing::new(String::with_capacity(value.len() + 2));
        out.push('\'');
        out.push_str(value);
        out.push('\'');
        return out;
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 8));
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A dotenv file with one `KEY=value` line per entry, in the order given.
pub fn write<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Zeroizing<String>, WriteError> {
    let mut out = Zeroizing::new(String::new());
    for (key, value) in entries {
        if !is_valid_key(key) {
            return Err(WriteError::InvalidKey(key.to_string()));
        }
        out.push_str(key);
        out.push('=');
        out.push_str(&quote(value));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        match parse(text) {
            Ok(entries) => entries.into_iter().map(|e| (e.key, e.value.to_string())).collect(),
            Err(e) => panic!("{text:?} failed to parse: {e}"),
        }
    }

    fn one(text: &str) -> String {
        let all = pairs(text);
        assert_eq!(all.len(), 1, "{text:?} gave {} entries", all.len());
        all[0].1.clone()
    }

    #[test]
    fn unquoted_values_and_comments() {
        assert_eq!(one("A=b"), "b");
        assert_eq!(one("A = b "), "b");
        assert_eq!(one("A=a#b"), "a#b");
        assert_eq!(one("A=a #b"), "a");
        assert_eq!(one("A=a\t# b"), "a");
        assert_eq!(one("A=#b"), "#b");
        assert_eq!(one("A= #b"), "");
        assert_eq!(one("A="), "");
        assert_eq!(one("export A=1"), "1");
        assert_eq!(one("export=1"), "1");
        assert_eq!(pairs("export=1")[0].0, "export");
        assert_eq!(one("A=x=y"), "x=y");
    }

    #[test]
    fn quoted_values() {
        assert_eq!(one("A='a \\n # b'"), "a \\n # b");
        assert_eq!(one("A=\"a\\nb\\t\\\"c\\\\\\$\""), "a\nb\t\"c\\\\$");
        assert_eq!(one("A=`it's \"x\"`"), "it's \"x\"");
        assert_eq!(one("A=\"x\" # comment"), "x");
        assert_eq!(one("A=\"line1\nline2\""), "line1\nline2");
        assert_eq!(one("A='line1\r\nline2'"), "line1\nline2");
    }

    #[test]
    fn line_numbers_count_multi_line_values() {
        let entries = parse("A=\"1\n2\n3\"\nB='x\ny'\n\nC=z").unwrap();
        assert_eq!(entries.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 4, 7]);
    }

    #[test]
    fn errors_name_the_line_but_not_the_text() {
        let err = parse("A=1\nhunter2-password\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.problem, Problem::NotAnAssignment);
        assert!(!err.to_string().contains("hunter2"));

        let err = parse("A=1\nB=\"unclosed hunter2\nC=3\n").unwrap_err();
        assert_eq!(err, ParseError { line: 2, problem: Problem::UnterminatedQuote { key: "B".into(), quote: '"' } });
        assert!(!err.to_string().contains("hunter2"));

        let err = parse("\n\nB='x' hunter2").unwrap_err();
        assert_eq!(err, ParseError { line: 3, problem: Problem::TextAfterQuote { key: "B".into() } });

        assert_eq!(parse_bytes(b"A=1\nB=\xff\n").unwrap_err(), ParseError { line: 2, problem: Problem::NotUtf8 });
        assert_eq!(parse("KÉY=1").unwrap_err().problem, Problem::NotAnAssignment);
        assert_eq!(parse("=1").unwrap_err().problem, Problem::NotAnAssignment);
        assert_eq!(parse("export KEY").unwrap_err().problem, Problem::NotAnAssignment);
    }

    #[test]
    fn quoting_picks_the_lightest_form() {
        assert_eq!(quote("abc-1.2/x:y@z").as_str(), "abc-1.2/x:y@z");
        assert_eq!(quote("").as_str(), "");
        assert_eq!(quote("a b").as_str(), "'a b'");
        assert_eq!(quote("$HOME").as_str(), "'$HOME'");
        assert_eq!(quote("it's").as_str(), "\"it's\"");
        assert_eq!(quote("a\\b").as_str(), "\"a\\\\b\"");
        assert_eq!(quote("a\r\nb").as_str(), "\"a\\r\\nb\"");
    }

    #[test]
    fn write_refuses_keys_it_cannot_read_back() {
        assert_eq!(write([("A B", "1")]).unwrap_err(), WriteError::InvalidKey("A B".into()));
        assert_eq!(write([("A", "x y"), ("B", "")]).unwrap().as_str(), "A='x y'\nB=\n");
    }

    #[test]
    fn debug_output_hides_values() {
        let entries = parse("A=hunter2").unwrap();
        assert!(!format!("{entries:?}").contains("hunter2"));
    }

    #[test]
    fn last_wins_keeps_first_position() {
        let entries = last_wins(parse("A=1\nB=2\nA=3").unwrap());
        let got: Vec<(&str, &str)> = entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(got, [("A", "3"), ("B", "2")]);
    }
}
