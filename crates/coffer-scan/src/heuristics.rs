//! What is not a secret: placeholders, references, identifiers, hashes and other look-alikes; and what
//! a secret-bearing name looks like.

/// Shannon entropy of `s` in bits per byte.
pub fn shannon_entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn distinct_bytes(s: &[u8]) -> usize {
    let mut seen = [false; 256];
    let mut n = 0;
    for &b in s {
        if !seen[b as usize] {
            seen[b as usize] = true;
            n += 1;
        }
    }
    n
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whole values that stand for "put the real secret here", or are words rather than secrets.
const STOP_VALUES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "changeme",
    "change_me",
    "admin",
    "root",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "empty",
    "test",
    "testing",
    "example",
    "sample",
    "required",
    "optional",
    "string",
    "hidden",
    "masked",
    "redacted",
    "default",
    "value",
    "token",
    "key",
    "apikey",
    "api_key",
    "foo",
    "bar",
    "baz",
    "foobar",
    "pass",
    "123456",
    "12345678",
    "123456789",
    "qwerty",
    "letmein",
    "guest",
    "user",
    "username",
    "postgres",
    "mysql",
    "redis",
    "mongo",
    "rabbitmq",
    "secret123",
    "password123",
    "password1",
    "pa55word",
    "p@ssw0rd",
    "p@ssword",
    "s3cr3t",
    "notasecret",
    "not-a-secret",
    "invalid",
    "incorrect",
    "confirm",
    "unknown",
    "unset",
    "disabled",
    "enabled",
    "off",
    "on",
    "yes",
    "no",
    "text",
    "plain",
    "bearer",
    "basic",
    "private",
    "public",
    "secure",
    "insecure",
    "local",
    "localhost",
    "dev",
    "development",
    "staging",
    "production",
    "prod",
    "demo",
    "temp",
    "tmp",
    "abc123",
    "abcdef",
    "xyz",
];

/// Substrings that mark placeholders and documentation values.
const PLACEHOLDER_PARTS: &[&str] = &[
    "example",
    "your_",
    "your-",
    "yourapi",
    "yourkey",
    "yoursecret",
    "yourtoken",
    "yourpass",
    "xxxx",
    "****",
    "....",
    "\u{2026}",
    "changeme",
    "change_me",
    "change-me",
    "changethis",
    "replace_me",
    "replaceme",
    "replace-me",
    "replace_with",
    "placeholder",
    "dummy",
    "redacted",
    "insert_",
    "insert-",
    "fixme",
    "todo",
    "notreal",
    "not_real",
    "not-real",
    "not-a-real",
    "not_a_real",
    "fake",
    "_here",
    "-here",
    "mock",
    "sample",
    "lorem",
    "12345678",
    "abcdefgh",
    "qwerty",
    "0000000",
    "1111111",
];

/// Is `v` a placeholder, a documentation value, or too regular to be a secret?
pub fn is_placeholder(v: &[u8]) -> bool {
    if v.len() < 4 {
        return true;
    }
    if STOP_VALUES.iter().any(|s| v.eq_ignore_ascii_case(s.as_bytes())) {
        return true;
    }
    if PLACEHOLDER_PARTS.iter().any(|p| contains_ci(v, p)) {
        return true;
    }
    if v.first() == Some(&b'<') || v.last() == Some(&b'>') || (v.first() == Some(&b'[') && v.last() == Some(&b']')) {
        return true;
    }
    let distinct = distinct_bytes(v);
    distinct <= 2 || (v.len() >= 12 && distinct <= 4)
}

/// Is `v` a reference to a secret kept elsewhere (environment, template, secret manager)?
pub fn is_reference(v: &[u8]) -> bool {
    const PREFIXES: &[&str] = &[
        "$",
        "%",
        "{{",
        "#{",
        "@{",
        "<%",
        "!",
        "&",
        "*",
        "ENC[",
        "op://",
        "vault:",
        "vault://",
        "sm://",
        "ssm:",
        "secretsmanager:",
        "arn:",
        "gcp:",
        "gsm:",
        "azurekeyvault:",
        "akv:",
        "awssm:",
        "env:",
        "file:",
        "keyring:",
        "secret://",
        "secrets://",
        "ref+",
        "from_secret",
        "sops:",
    ];
    const PARTS: &[&str] = &[
        "${",
        "{{",
        "}}",
        "process.env",
        "os.environ",
        "getenv",
        "env[",
        "env(",
        "env.",
        "secrets.",
        "system.getenv",
        "environment.",
        "import.meta.env",
        "config(",
        "settings.",
        "vault(",
        "lookup(",
        "$ansible_vault",
        "enc[aes256",
    ];
    PREFIXES.iter().any(|p| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        || PARTS.iter().any(|p| contains_ci(v, p))
        || (v.contains(&b'{') && v.contains(&b'}'))
}

/// A canonical UUID, any version.
pub fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Only hexadecimal digits.
pub fn is_hex(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(u8::is_ascii_hexdigit)
}

/// A digest or password hash in one of its usual spellings: bare hex of a digest's length, SRI
/// (`sha512-…`), `sha256:…`, crypt/bcrypt/argon2.
pub fn is_hash_like(v: &[u8]) -> bool {
    if is_hex(v) && matches!(v.len(), 32 | 40 | 56 | 64 | 96 | 128) {
        return true;
    }
    const PREFIXES: &[&str] = &[
        "sha1-", "sha256-", "sha384-", "sha512-", "sha1:", "sha256:", "sha384:", "sha512:", "md5:", "md5-", "$2a$",
        "$2b$", "$2y$", "$argon2", "$6$", "$5$", "$1$", "{ssha}", "{sha}", "pbkdf2", "scrypt:",
    ];
    PREFIXES.iter().any(|p| v.len() > p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// An environment variable name (`DB_PASSWORD`), a code identifier (`user_password`, `resetPassword`),
/// a dotted path (`auth.password.invalid`), a kebab-case name (`x-api-key`) or a domain: names, not values.
pub fn is_identifier_like(v: &[u8]) -> bool {
    let alpha_sep = |seps: &[u8]| {
        v.iter().all(|b| b.is_ascii_alphabetic() || seps.contains(b)) && v.first().is_some_and(u8::is_ascii_alphabetic)
    };
    // Letters with separators only.
    if alpha_sep(b"_.-") && v.iter().any(|b| b"_.-".contains(b)) {
        return true;
    }
    // UPPER_SNAKE with digits: an environment variable name.
    if v.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        && v.contains(&b'_')
        && v.first().is_some_and(u8::is_ascii_uppercase)
    {
        return true;
    }
    // Words and numbers joined by separators, each part all letters (one case) or all digits:
    // `jwt-signing-key-1`, `bench-0`, `AWS4-HMAC-SHA256`.
    let parts: Vec<&[u8]> = v.split(|b| b"_.-".contains(b)).collect();
    if parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && (p.iter().all(u8::is_ascii_digit)
                    || p.iter().all(u8::is_ascii_lowercase)
                    || p.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) && p.len() <= 8)
        })
        && parts.iter().any(|p| p.len() >= 3 && p.iter().all(u8::is_ascii_alphabetic))
    {
        return true;
    }
    // lower_snake or dotted.path with digits, whose parts are mostly words.
    if v.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.".contains(b))
        && v.iter().any(|b| b"_.".contains(b))
    {
        let parts: Vec<&[u8]> = v.split(|b| b"_.".contains(b)).collect();
        if parts.iter().all(|p| p.iter().filter(|b| b.is_ascii_digit()).count() <= 2) {
            return true;
        }
    }
    false
}

/// A date or timestamp (`2014-09-08T21:47:36Z`, `2024/01/31`).
pub fn is_date_like(v: &[u8]) -> bool {
    v.len() >= 10
        && v[..4].iter().all(u8::is_ascii_digit)
        && matches!(v[4], b'-' | b'/')
        && v[5..7].iter().all(u8::is_ascii_digit)
        && v[7] == v[4]
        && v[8..10].iter().all(u8::is_ascii_digit)
}

/// Base64 or hex of test data rather than a key: bytes counting up or down, or one byte repeated
/// (`AAECAwQF…` is 0, 1, 2, 3…).
pub fn is_sequential_data(v: &[u8]) -> bool {
    let bytes = if is_hex(v) && v.len() & 1 == 0 { hex::decode(v).ok() } else { crate::validate::decode_base64(v) };
    let Some(bytes) = bytes.filter(|b| b.len() >= 12) else { return false };
    let steps: Vec<u8> = bytes.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let mut counts = [0usize; 256];
    for s in &steps {
        counts[*s as usize] += 1;
    }
    counts.iter().max().is_some_and(|&m| m * 10 >= steps.len() * 8)
}

/// A file-system path or a file name.
pub fn is_path_like(v: &[u8]) -> bool {
    const EXT: &[&str] = &[
        ".pem",
        ".key",
        ".json",
        ".txt",
        ".crt",
        ".cer",
        ".p12",
        ".pfx",
        ".jks",
        ".env",
        ".yaml",
        ".yml",
        ".cfg",
        ".conf",
        ".ini",
        ".toml",
        ".xml",
        ".gpg",
        ".asc",
        ".pub",
        ".der",
        ".keystore",
        ".html",
        ".js",
        ".py",
    ];
    // Several `/`-separated parts that are mostly words or numbers: a path or a URL path, not base64.
    let parts: Vec<&[u8]> = v.split(|&b| b == b'/').collect();
    if parts.len() >= 3 {
        let wordy = parts
            .iter()
            .filter(|p| {
                p.iter().all(|b| b.is_ascii_digit())
                    || p.iter().all(|b| b.is_ascii_lowercase() || b"_-.".contains(b))
                    || (p.len() <= 5 && p.iter().all(u8::is_ascii_alphanumeric))
            })
            .count();
        if wordy * 2 > parts.len() {
            return true;
        }
    }
    let starts = |p: &str| v.starts_with(p.as_bytes());
    ((starts("/") || starts("./") || starts("../") || starts("~/")) && !v.contains(&b'+') && !v.contains(&b'='))
        || EXT.iter().any(|e| v.len() > e.len() && v[v.len() - e.len()..].eq_ignore_ascii_case(e.as_bytes()))
        || (v.len() > 3 && v[1] == b':' && (v[2] == b'\\' || v[2] == b'/'))
}

/// A version string such as `1.2.3` or `v2.0.0-rc1`.
pub fn is_version_like(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"v").unwrap_or(v);
    v.first().is_some_and(u8::is_ascii_digit) && v.iter().filter(|&&b| b == b'.').count() >= 2 && v.len() <= 40
}

/// Counts the character classes present: lower, upper, digit, other.
pub fn char_classes(v: &[u8]) -> usize {
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let digit = v.iter().any(u8::is_ascii_digit);
    let other = v.iter().any(|b| !b.is_ascii_alphanumeric());
    [lower, upper, digit, other].iter().filter(|x| **x).count()
}

/// The kind of secret a name suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Not a secret-bearing name.
    None,
    /// A password.
    Password,
    /// An explicit secret: secret, token, API key, credential, private key.
    Strong,
    /// Just "key": a secret or not.
    Weak,
}

/// Splits an identifier into lower-case words: `dbPassword` → db, password; `AWS_SECRET` → aws, secret.
pub fn name_segments(name: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for &b in name {
        if b.is_ascii_alphanumeric() {
            if b.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
            cur.push(b.to_ascii_lowercase() as char);
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Words that make a whole name not secret-bearing, wherever they stand.
const EXCLUDE_ANYWHERE: &[&str] = &[
    "public",
    "pub",
    "publishable",
    "cache",
    "sort",
    "partition",
    "primary",
    "foreign",
    "idempotency",
    "hot",
    "keyboard",
    "monkey",
    "turkey",
    "keyword",
    "keywords",
    "keymap",
    "keycode",
    "keystroke",
    "keyframe",
    "keyframes",
    "donkey",
    "hockey",
    "whiskey",
    "jockey",
    "passenger",
    "passive",
    "passport",
    "bypass",
    "compass",
    "passthrough",
    "keys",
    "tokens",
    "tokenizer",
    "tokenize",
    "csrf",
    "xsrf",
    "author",
    "authors",
    "authored",
    "oauth2",
    "authority",
    "sort",
    "lookup",
    "dedup",
    "dedupe",
    "react",
    "i18n",
    "translation",
    "registry",
    "apiversion",
    "api_version",
    "apis",
    "apiserver",
    "gateway",
    "passes",
    "passed",
    "passing",
];

/// Words that, after the secret word, make the name about something else (`api_key_id`, `token_url`).
const EXCLUDE_AFTER: &[&str] = &[
    "id",
    "ids",
    "name",
    "names",
    "path",
    "file",
    "filename",
    "dir",
    "url",
    "uri",
    "endpoint",
    "host",
    "type",
    "size",
    "length",
    "len",
    "count",
    "prefix",
    "suffix",
    "format",
    "version",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "expire",
    "timeout",
    "label",
    "hint",
    "field",
    "input",
    "placeholder",
    "prompt",
    "message",
    "msg",
    "text",
    "description",
    "desc",
    "title",
    "regex",
    "pattern",
    "policy",
    "rule",
    "rules",
    "min",
    "max",
    "required",
    "enabled",
    "enable",
    "mode",
    "env",
    "var",
    "ref",
    "hash",
    "hashed",
    "digest",
    "checksum",
    "fingerprint",
    "alg",
    "algorithm",
    "index",
    "column",
    "param",
    "class",
    "selector",
    "header",
    "location",
    "region",
    "arn",
    "limit",
    "strength",
    "validator",
    "validation",
    "error",
    "errors",
    "lifetime",
    "schema",
    "provider",
    "service",
    "helper",
    "util",
    "handler",
    "callback",
    "bits",
    "kind",
    "style",
    "icon",
    "usage",
    "store",
    "storage",
    "manager",
    "source",
    "location",
    "created",
    "updated",
    "changed",
    "at",
    "date",
    "time",
    "timestamp",
    "exists",
    "set",
    "reset",
    "rotation",
    "question",
    "confirmation",
    "policy",
    "pair",
    "ring",
    "chain",
    "spec",
    "command",
    "cmd",
    "generator",
    "gen",
    "length",
    "hint",
    "reminder",
    "recovery",
    "view",
    "button",
    "btn",
    "link",
    "page",
    "screen",
    "form",
    "modal",
    "dialog",
    "visible",
    "visibility",
    "toggle",
    "mask",
    "masked",
    "encoding",
    "encoded",
    "algorithm",
    "attr",
    "attribute",
    "property",
    "prop",
    "option",
    "options",
    "flag",
    "status",
    "state",
    "event",
    "metric",
    "log",
    "logger",
    "test",
    "spec",
    "mock",
    "fixture",
    "used",
    "last",
    "age",
];

/// Words that, first in a name, make it a flag or an action rather than the value (`show_password`).
const EXCLUDE_LEADING: &[&str] = &[
    "forgot", "reset", "show", "hide", "toggle", "validate", "verify", "is", "has", "use", "enable", "disable",
    "require", "allow", "no", "with", "without", "min", "max", "check", "get", "fetch", "load", "read", "parse",
    "generate", "create", "update", "delete", "remove", "rotate", "invalid", "missing", "wrong", "bad", "empty", "num",
    "count", "last", "on", "should", "can", "must", "change",
];

fn is_password_word(s: &str) -> bool {
    s.contains("passw")
        || s.contains("pwd")
        || s.contains("passphrase")
        || s == "pass"
        || s == "pw"
        || (s.ends_with("pass") && s.len() <= 10 && !EXCLUDE_ANYWHERE.contains(&s))
}

fn is_strong_word(s: &str) -> bool {
    s.contains("secret")
        || s.contains("token")
        || s.contains("apikey")
        || s.contains("accesskey")
        || s.contains("privatekey")
        || s.contains("credential")
        || s == "creds"
        || s == "cred"
        || s == "auth"
        || s == "authorization"
        || s == "bearer"
        || s.ends_with("authkey")
        || s == "pat"
        || s == "jwt"
        || s.contains("signingkey")
        || s.contains("encryptionkey")
        || s.contains("masterkey")
}

/// Words that, before "key", make it an explicit secret (`api_key`, `signing_key`).
const STRONG_BEFORE_KEY: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "client",
    "app",
    "license",
    "auth",
    "session",
    "hmac",
    "aes",
    "shared",
    "account",
    "service",
    "admin",
    "write",
    "read",
    "deploy",
    "ingest",
    "integration",
    "webhook",
    "consumer",
    "subscription",
    "storage",
    "sas",
    "crypt",
    "cipher",
];

/// Classifies an assignment's name.
pub fn classify_name(name: &[u8]) -> NameKind {
    let segs = name_segments(name);
    if segs.is_empty() {
        return NameKind::None;
    }
    if segs.iter().any(|s| EXCLUDE_ANYWHERE.contains(&s.as_str())) {
        return NameKind::None;
    }
    if EXCLUDE_LEADING.contains(&segs[0].as_str()) && segs.len() > 1 {
        return NameKind::None;
    }
    let mut kind = NameKind::None;
    let mut last_secret = None;
    for (i, s) in segs.iter().enumerate() {
        let k = if is_password_word(s) {
            NameKind::Password
        } else if is_strong_word(s) {
            NameKind::Strong
        } else if s == "key" || s.ends_with("key") {
            if s != "key" || (i > 0 && STRONG_BEFORE_KEY.contains(&segs[i - 1].as_str())) {
                if s == "key" {
                    NameKind::Strong
                } else {
                    NameKind::Weak
                }
            } else {
                NameKind::Weak
            }
        } else {
            continue;
        };
        last_secret = Some(i);
        kind = match (kind, k) {
            (NameKind::Password, _) | (_, NameKind::Password) => NameKind::Password,
            (NameKind::Strong, _) | (_, NameKind::Strong) => NameKind::Strong,
            _ => NameKind::Weak,
        };
    }
    let Some(last) = last_secret else { return NameKind::None };
    if segs[last + 1..].iter().any(|s| EXCLUDE_AFTER.contains(&s.as_str())) {
        return NameKind::None;
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify_name(b"DB_PASSWORD"), NameKind::Password);
        assert_eq!(classify_name(b"dbPassword"), NameKind::Password);
        assert_eq!(classify_name(b"api_key"), NameKind::Strong);
        assert_eq!(classify_name(b"apiKey"), NameKind::Strong);
        assert_eq!(classify_name(b"APIKEY"), NameKind::Strong);
        assert_eq!(classify_name(b"cache_key"), NameKind::None);
        assert_eq!(classify_name(b"public_key"), NameKind::None);
        assert_eq!(classify_name(b"api_key_id"), NameKind::None);
        assert_eq!(classify_name(b"token_url"), NameKind::None);
        assert_eq!(classify_name(b"id_token"), NameKind::Strong);
        assert_eq!(classify_name(b"show_password"), NameKind::None);
        assert_eq!(classify_name(b"key"), NameKind::Weak);
        assert_eq!(classify_name(b"passenger"), NameKind::None);
        assert_eq!(classify_name(b"AWS_SECRET_ACCESS_KEY"), NameKind::Strong);
    }

    #[test]
    fn look_alikes() {
        assert!(is_uuid(b"123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_placeholder(b"YOUR_API_KEY"));
        assert!(is_placeholder(b"xxxxxxxxxxxxxxxx"));
        assert!(is_placeholder(b"<secret>"));
        assert!(is_reference(b"${DB_PASSWORD}"));
        assert!(is_reference(b"op://vault/item/field"));
        assert!(is_identifier_like(b"DB_PASSWORD"));
        assert!(is_identifier_like(b"reset-password"));
        assert!(!is_identifier_like(b"hunter2"));
        assert!(is_hash_like(b"sha512-abcdefABCDEF0123456789+/=="));
        assert!(shannon_entropy(b"aaaa") < 0.01);
    }
}
