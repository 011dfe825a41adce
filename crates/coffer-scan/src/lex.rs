//! Context-aware views of a file: text as a program would see it once escapes are undone, split strings
//! are joined, or Kubernetes Secret data is decoded. Each view keeps, for every byte, the offset in the
//! original file it came from, so findings point at real lines and columns.

/// Derived text plus, for each of its bytes, the offset in the scanned file it stands for.
#[derive(Debug, Default)]
pub struct View {
    pub text: Vec<u8>,
    pub origin: Vec<usize>,
}

impl View {
    fn push(&mut self, b: u8, at: usize) {
        self.text.push(b);
        self.origin.push(at);
    }
    fn extend(&mut self, bytes: &[u8], at: usize) {
        for (i, &b) in bytes.iter().enumerate() {
            self.push(b, at + i);
        }
    }
}

/// The line with JSON/C-style escapes undone (`\"` → `"`, `\n` → a line break, `\\` → `\`): secrets inside
/// JSON strings such as notebook cells, or escaped JSON inside a string. `None` when nothing is escaped.
pub fn unescape_line(buf: &[u8], start: usize, end: usize) -> Option<View> {
    let line = &buf[start..end];
    memchr::memchr(b'\\', line)?;
    let mut view = View::default();
    let mut changed = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == b'\\' && i + 1 < line.len() {
            let next = line[i + 1];
            let out = match next {
                b'"' | b'\'' | b'\\' | b'/' => Some(next),
                b'n' | b'r' => Some(b'\n'),
                b't' => Some(b'\t'),
                _ => None,
            };
            if let Some(o) = out {
                view.push(o, start + i + 1);
                i += 2;
                changed = true;
                continue;
            }
        }
        view.push(b, start + i);
        i += 1;
    }
    changed.then_some(view)
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\'' || b == b'`'
}

/// The end of a string literal opening at `at` (the offset after its closing quote), if it closes on
/// the same line.
fn literal_end(buf: &[u8], at: usize, limit: usize) -> Option<usize> {
    let q = buf[at];
    let mut i = at + 1;
    while i < limit {
        match buf[i] {
            b'\\' => i += 2,
            b'\n' => return None,
            c if c == q => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// After a literal ending at `at`: skips what may separate two parts of one concatenated string
/// (whitespace, line breaks, `+`, `.`, `..`, `&`, `\` continuations, `(`), returning where the next
/// literal opens.
fn next_part(buf: &[u8], at: usize, limit: usize) -> Option<usize> {
    let mut i = at;
    let mut lines = 0;
    while i < limit {
        match buf[i] {
            b' ' | b'\t' | b'\r' | b'+' | b'&' | b'\\' | b'(' => i += 1,
            b'.' => {
                // `..` (Lua) or `.` (PHP, Perl) but not a method call such as `.format(`.
                i += 1;
            }
            b'\n' => {
                lines += 1;
                if lines > 2 {
                    return None;
                }
                i += 1;
            }
            c if is_quote(c) => return (i > at).then_some(i),
            _ => return None,
        }
    }
    None
}

/// The logical line starting at `start`, with adjacent string literals joined (`"ghp_ab" + "cd"` →
/// `"ghp_abcd"`, Python's implicit `"ab" "cd"`, across continuation lines). `None` when nothing joins.
pub fn join_concatenation(buf: &[u8], start: usize, line_end: usize) -> Option<View> {
    let line = &buf[start..line_end];
    if !line.iter().any(|&b| is_quote(b)) && !line.trim_ascii_end().ends_with(b"(") {
        return None;
    }
    // Up to a few following lines take part (a literal continued on the next line).
    let mut limit = line_end;
    for _ in 0..8 {
        if limit >= buf.len() {
            break;
        }
        limit = memchr::memchr(b'\n', &buf[limit + 1..]).map_or(buf.len(), |p| limit + 1 + p);
    }
    let limit = limit.min(start + 8192).min(buf.len());
    let mut view = View::default();
    let mut joined = false;
    let mut i = start;
    while i < limit {
        let b = buf[i];
        if b == b'\n' && i >= line_end && !joined {
            break;
        }
        if b == b'\n' && i >= line_end {
            // Keep the line the literal sits on, drop the rest.
            break;
        }
        // `= (` before a literal on the next line (Python's parenthesized implicit concatenation).
        if b == b'(' {
            let mut j = i + 1;
            while j < limit && buf[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < limit && is_quote(buf[j]) && buf[i + 1..j].contains(&b'\n') {
                i = j;
                continue;
            }
        }
        if is_quote(b) {
            if let Some(end) = literal_end(buf, i, limit) {
                let q = b;
                view.push(q, i);
                view.extend(&buf[i + 1..end - 1], i + 1);
                let mut cur = end;
                while let Some(n) = next_part(buf, cur, limit) {
                    if buf[n] != q {
                        break;
                    }
                    let Some(e) = literal_end(buf, n, limit) else { break };
                    view.extend(&buf[n + 1..e - 1], n + 1);
                    joined = true;
                    cur = e;
                }
                view.push(q, cur - 1);
                i = cur;
                continue;
            }
        }
        view.push(b, i);
        i += 1;
    }
    joined.then_some(view)
}

/// Kubernetes Secret manifests: each `data:` value decoded from base64, as `name: value` lines, and the
/// byte ranges of the encoded values (whose raw base64 is not itself reported).
pub fn kubernetes_secret_data(buf: &[u8]) -> Option<(View, Vec<(usize, usize)>)> {
    if memchr::memmem::find(buf, b"kind: Secret").is_none() && memchr::memmem::find(buf, b"kind: \"Secret\"").is_none()
    {
        return None;
    }
    let mut view = View::default();
    let mut ranges = Vec::new();
    let mut data_indent: Option<usize> = None;
    let mut pos = 0;
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |p| pos + p);
        let line = &buf[pos..end];
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let content = line[indent..].trim_ascii_end();
        if let Some(di) = data_indent {
            if content.is_empty() || content.starts_with(b"#") {
                pos = end + 1;
                continue;
            }
            if indent <= di {
                data_indent = None;
            } else if let Some(colon) = memchr::memchr(b':', content) {
                let name = &content[..colon];
                let raw = content[colon + 1..].trim_ascii();
                let value = raw.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(raw);
                if let Some(decoded) = crate::validate::decode_base64(value) {
                    let value_at = pos + indent + colon + 1;
                    ranges.push((pos, end));
                    let name_at = pos + indent;
                    view.extend(name, name_at);
                    view.extend(b": ", value_at);
                    for &b in &decoded {
                        view.push(b, value_at);
                    }
                    view.push(b'\n', end);
                }
            }
        }
        if data_indent.is_none() && content == b"data:" {
            data_indent = Some(indent);
        }
        pos = end + 1;
    }
    (!view.text.is_empty()).then_some((view, ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let end = memchr::memchr(b'\n', b).unwrap_or(b.len());
        join_concatenation(b, 0, end).map(|v| String::from_utf8_lossy(&v.text).into_owned())
    }

    #[test]
    fn joins_split_literals() {
        assert_eq!(join(r#"t = "ab" + "cd";"#).as_deref(), Some(r#"t = "abcd";"#));
        assert_eq!(join(r#"t = 'ab' 'cd'"#).as_deref(), Some(r#"t = 'abcd'"#));
        assert_eq!(join("t = \"ab\" +\n    \"cd\"\nnext").as_deref(), Some("t = \"abcd\""));
        assert_eq!(join("T = (\n    \"ab\"\n    \"cd\"\n)").as_deref(), Some("T = \"abcd\""));
        assert_eq!(join(r#"x = "a".format(b)"#), None);
        assert_eq!(join(r#"f("a", "b")"#), None);
    }

    #[test]
    fn unescapes() {
        let s = br#""x = \"ab\"\n","#;
        let v = unescape_line(s, 0, s.len()).unwrap();
        assert_eq!(v.text, b"\"x = \"ab\"\n\",");
        assert_eq!(v.origin.len(), v.text.len());
    }
}
