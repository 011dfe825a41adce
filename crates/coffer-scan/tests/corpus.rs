//! A generated source tree with planted secrets and planted look-alikes, scanned the way `coffer scan`
//! scans a directory; precision and recall are reported per rule and checked overall.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use base64::Engine;
use rand::Rng;
use support::Gen;

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Python,
    Js,
    Go,
    Java,
    Env,
    Yaml,
    Json,
    Properties,
    Terraform,
}

impl Style {
    fn ext(self) -> &'static str {
        match self {
            Style::Python => "py",
            Style::Js => "js",
            Style::Go => "go",
            Style::Java => "java",
            Style::Env => "env",
            Style::Yaml => "yaml",
            Style::Json => "json",
            Style::Properties => "properties",
            Style::Terraform => "tf",
        }
    }

    /// `name` assigned the string `value`, as this language writes it.
    fn assign(self, name: &str, value: &str) -> String {
        match self {
            Style::Python => format!("{name} = \"{value}\""),
            Style::Js => format!("const {name} = '{value}';"),
            Style::Go => format!("\t{name} := \"{value}\""),
            Style::Java => format!("    private static final String {name} = \"{value}\";"),
            Style::Env => format!("{}={value}", name.to_uppercase()),
            Style::Yaml => format!("  {}: {value}", name.to_lowercase()),
            Style::Json => format!("  \"{name}\": \"{value}\","),
            Style::Properties => format!("app.{}={value}", name.to_lowercase()),
            Style::Terraform => format!("  {} = \"{value}\"", name.to_lowercase()),
        }
    }

    fn filler(self, g: &mut Gen) -> String {
        let lines: &[&str] = match self {
            Style::Python => &[
                "import os",
                "def get_token(self):",
                "    return self._token",
                "for key, value in settings.items():",
                "password = request.form[\"password\"]",
                "api_key = os.environ.get(\"API_KEY\")",
                "    headers[\"Authorization\"] = f\"Bearer {token}\"",
                "# Rotate the secret key every 90 days.",
                "cache_key = f\"user:{user_id}:profile\"",
                "if not verify_password(password, user.password_hash):",
                "    raise ValueError(\"invalid token\")",
                "logger.info(\"loaded %d keys\", len(keys))",
            ],
            Style::Js => &[
                "import { createHash } from 'crypto';",
                "const token = req.headers.authorization;",
                "export function apiKey() { return process.env.API_KEY; }",
                "const keys = Object.keys(config);",
                "// the secret is read from the vault at startup",
                "if (password !== confirmPassword) throw new Error('mismatch');",
                "const cacheKey = `${userId}:${page}`;",
                "fetch(url, { headers: { Authorization: `Bearer ${token}` } });",
            ],
            Style::Go => &[
                "\tkey := []byte(os.Getenv(\"SIGNING_KEY\"))",
                "\ttoken, err := auth.Token(ctx)",
                "\tif err != nil { return err }",
                "\tfor key, val := range m {",
                "\t// Password hashing uses bcrypt with cost 12.",
                "\tsecret := cfg.Secret",
            ],
            Style::Java => &[
                "    private final String apiKey;",
                "    public String getPassword() { return password; }",
                "    String token = request.getHeader(\"X-Auth-Token\");",
                "    // keys are rotated by the key service",
                "    Map<String, String> keys = new HashMap<>();",
            ],
            Style::Env => &[
                "LOG_LEVEL=info",
                "PORT=8080",
                "API_KEY_HEADER=X-Api-Key",
                "TOKEN_TTL=3600",
                "PASSWORD_MIN_LENGTH=12",
                "SECRET_NAME=prod/api",
            ],
            Style::Yaml => &[
                "  replicas: 3",
                "  image: registry.local/app:1.4.2",
                "  token_ttl: 3600",
                "  password_policy: strict",
                "  secretName: app-tls",
                "  keyRef: signing",
                "  cache_key_prefix: app",
            ],
            Style::Json => &[
                "  \"name\": \"app\",",
                "  \"version\": \"1.2.3\",",
                "  \"tokenUrl\": \"https://auth.local/token\",",
                "  \"keyId\": \"signing-2024\",",
            ],
            Style::Properties => &[
                "server.port=8080",
                "spring.datasource.username=app",
                "auth.token.ttl=3600",
                "security.password.min-length=12",
            ],
            Style::Terraform => &[
                "  name = \"app\"",
                "  key_name = \"deploy\"",
                "  secret_arn = aws_secretsmanager_secret.db.arn",
                "  password = var.db_password",
            ],
        };
        g.pick(lines).to_string()
    }
}

const STYLES: &[Style] = &[
    Style::Python,
    Style::Js,
    Style::Go,
    Style::Java,
    Style::Env,
    Style::Yaml,
    Style::Json,
    Style::Properties,
    Style::Terraform,
];

/// A planted snippet: its lines and, for a secret, the rule and the line (within the snippet) it is on.
struct Plant {
    lines: Vec<String>,
    expect: Option<(&'static str, usize)>,
}

fn single(line: String, rule: &'static str) -> Plant {
    Plant { lines: vec![line], expect: Some((rule, 0)) }
}

fn negative(line: String) -> Plant {
    Plant { lines: line.lines().map(str::to_string).collect(), expect: None }
}

fn positive(g: &mut Gen, style: Style) -> Plant {
    let kind = g.rng.gen_range(0..27);
    let s = style;
    match kind {
        0 => single(s.assign("aws_access_key_id", &g.aws_key_id()), "aws-access-key-id"),
        1 => single(s.assign("aws_secret_access_key", &g.aws_secret()), "aws-secret-access-key"),
        2 => single(s.assign("stripe_key", &g.stripe_secret()), "stripe-secret-key"),
        3 => single(s.assign("webhook_signing", &g.stripe_webhook()), "stripe-webhook-secret"),
        4 => single(s.assign("session", &g.jwt()), "jwt"),
        5 => single(s.assign("database_url", &g.db_url().0), "database-url"),
        6 => {
            let pem = match g.rng.gen_range(0..4) {
                0 => g.pem_pkcs8(),
                1 => g.pem_rsa(),
                2 => g.pem_ec(),
                _ => g.openssh_key(),
            };
            if matches!(s, Style::Yaml) {
                let mut lines = vec!["  tls_key: |".to_string()];
                lines.extend(pem.lines().map(|l| format!("    {l}")));
                Plant { lines, expect: Some(("private-key", 1)) }
            } else if matches!(s, Style::Json | Style::Js | Style::Python | Style::Go | Style::Java) {
                single(s.assign("pem", &pem.trim_end().replace('\n', "\\n")), "private-key")
            } else {
                let mut lines = vec!["# deploy key".to_string()];
                lines.extend(pem.lines().map(str::to_string));
                Plant { lines, expect: Some(("private-key", 1)) }
            }
        }
        7 => single(s.assign("slack", &g.slack_token()), "slack-token"),
        8 => single(s.assign("alerts_url", &g.slack_webhook()), "slack-webhook"),
        9 => single(s.assign("gh", &g.github_classic()), "github-token"),
        10 => single(s.assign("gh_pat", &g.github_fine_grained()), "github-fine-grained-pat"),
        11 => single(s.assign("gitlab", &g.gitlab()), "gitlab-pat"),
        12 => single(s.assign("openai", &g.openai()), "openai-api-key"),
        13 => single(s.assign("anthropic", &g.anthropic()), "anthropic-api-key"),
        14 => {
            let (sid, key, tok) = (g.twilio_sid(), g.twilio_api_key(), g.hex32());
            Plant {
                lines: vec![
                    "# twilio client settings".into(),
                    s.assign("twilio_sid", &sid),
                    s.assign("twilio_key_sid", &key),
                    s.assign("twilio_auth_token", &tok),
                ],
                expect: Some(("twilio-account-sid", 1)),
            }
        }
        15 => single(s.assign("sendgrid", &g.sendgrid()), "sendgrid-api-key"),
        16 => single(s.assign("maps", &g.gcp_api_key()), "gcp-api-key"),
        17 => single(s.assign("npm", &g.npm()), "npm-token"),
        18 => single(s.assign("pypi", &g.pypi()), "pypi-token"),
        19 => single(
            s.assign(
                "storage",
                &format!(
                    "DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={};EndpointSuffix=core.windows.net",
                    g.digits(3),
                    g.azure_key()
                ),
            ),
            "azure-storage-key",
        ),
        20 => single(s.assign("bot", &g.telegram()), "telegram-bot-token"),
        21 | 22 => {
            let name = *g.pick(&[
                "api_key",
                "apiKey",
                "client_secret",
                "auth_token",
                "secret_key",
                "access_token",
                "signing_key",
            ]);
            single(s.assign(name, &g.generic_key()), "generic-api-key")
        }
        23 | 24 => {
            let name = *g.pick(&["password", "db_password", "dbPassword", "admin_pass", "smtp_password", "passwd"]);
            single(s.assign(name, &g.password()), "hardcoded-password")
        }
        25 => {
            // A split token in code, or a block scalar in YAML.
            let t = g.github_classic();
            let (a, b) = t.split_at(12);
            match s {
                Style::Python => single(format!("TOKEN = \"{a}\" \"{b}\""), "github-token"),
                Style::Js | Style::Java => single(format!("    var token = \"{a}\" + \"{b}\";"), "github-token"),
                Style::Yaml => Plant {
                    lines: vec!["  api_token: |-".into(), format!("    {}", g.generic_key())],
                    expect: Some(("generic-api-key", 1)),
                },
                _ => single(s.assign("gh", &t), "github-token"),
            }
        }
        _ => single(s.assign("value", &g.jwt()), "jwt"),
    }
}

fn hard_negative(g: &mut Gen, style: Style) -> Plant {
    let s = style;
    let kind = g.rng.gen_range(0..24);
    negative(match kind {
        0 => s.assign("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE"),
        1 => s.assign("aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        2 => s.assign("api_key", &g.uuid()),
        3 => s.assign("cache_key", &g.chars(support::HEX, 40)),
        4 => s.assign("checksum", &g.chars(support::HEX, 64)),
        5 => s.assign("api_key", "YOUR_API_KEY"),
        6 => s.assign("password", "changeme"),
        7 => s.assign("token", "${GITHUB_TOKEN}"),
        8 => s.assign("secret", "{{ secrets.DEPLOY_SECRET }}"),
        9 => s.assign("db_password", "op://prod/db/password"),
        10 => s.assign("publishable_key", &format!("pk_live_{}", g.mixed(support::BASE62, 24))),
        11 => s.assign("session", &g.jwt_io_sample()),
        12 => s.assign("alerts_url", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
        13 => s.assign("gh", &g.github_bad_checksum()),
        14 => s.assign("database_url", "postgres://app:${DB_PASSWORD}@db:5432/app"),
        15 => s.assign("token_env", "GITHUB_TOKEN"),
        16 => s.assign("integrity", &format!("sha512-{}==", g.chars(support::B64, 86))),
        17 => s.assign("public_key", &g.pem_public().trim_end().replace('\n', "\\n")),
        18 => s.assign("password", "<password>"),
        19 => s.assign("secret", "xxxxxxxxxxxxxxxxxxxxxxxx"),
        20 => s.assign("api_key", &format!("vault:secret/data/{}#key", g.chars(b"abcdefgh", 6))),
        21 => s.assign("password_hash", &format!("$2b$12${}", g.chars(support::B64, 53).replace('+', "."))),
        22 => s.assign("storage", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"),
        _ => s.assign("commit", &g.chars(support::HEX, 40)),
    })
}

fn notebook(g: &mut Gen, expect: &mut Vec<(String, usize, &'static str)>, name: &str) -> String {
    let k = g.generic_key();
    let t = g.github_classic();
    let mut lines = vec![
        "{".to_string(),
        " \"cells\": [".into(),
        "  {".into(),
        "   \"cell_type\": \"code\",".into(),
        "   \"source\": [".into(),
        "    \"import pandas as pd\\n\",".into(),
    ];
    lines.push(format!("    \"api_key = \\\"{k}\\\"\\n\","));
    expect.push((name.into(), lines.len(), "generic-api-key"));
    lines.push(format!("    \"client = Github(\\\"{t}\\\")\\n\","));
    expect.push((name.into(), lines.len(), "github-token"));
    lines.push("    \"df = pd.read_csv(path)\\n\"".into());
    lines.extend(["   ]".into(), "  }".into(), " ],".into(), " \"nbformat\": 4".into(), "}".into()]);
    lines.join("\n") + "\n"
}

fn k8s_secret(g: &mut Gen, expect: &mut Vec<(String, usize, &'static str)>, name: &str) -> String {
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let pw = g.password();
    let (url, _) = g.db_url();
    let lines = [
        "apiVersion: v1".to_string(),
        "kind: Secret".into(),
        "metadata:".into(),
        "  name: app-secrets".into(),
        "type: Opaque".into(),
        "data:".into(),
        format!("  username: {}", enc("app")),
        format!("  password: {}", enc(&pw)),
        format!("  DATABASE_URL: {}", enc(&url)),
        format!("  checksum: {}", enc(&g.chars(support::HEX, 64))),
    ];
    expect.push((name.into(), 8, "hardcoded-password"));
    expect.push((name.into(), 9, "database-url"));
    lines.join("\n") + "\n"
}

#[test]
fn planted_tree_precision_and_recall() {
    let mut g = Gen::new(2024);
    let dir = tempfile::tempdir().unwrap();
    let mut expect: Vec<(String, usize, &'static str)> = Vec::new();
    let mut negatives = 0usize;
    for i in 0..600 {
        let style = *g.pick(STYLES);
        let name = format!("svc{}/mod{i}.{}", i % 17, style.ext());
        let mut lines: Vec<String> = Vec::new();
        let n_lines = g.rng.gen_range(20..80);
        let n_pos = g.rng.gen_range(0..3);
        let n_neg = g.rng.gen_range(1..4);
        let mut plants: Vec<Plant> = (0..n_pos).map(|_| positive(&mut g, style)).collect();
        plants.extend((0..n_neg).map(|_| hard_negative(&mut g, style)));
        negatives += n_neg;
        let mut at: Vec<usize> = (0..plants.len()).map(|_| g.rng.gen_range(0..n_lines)).collect();
        at.sort_unstable();
        let mut p = 0;
        for l in 0..n_lines {
            while p < plants.len() && at[p] == l {
                let plant = &plants[p];
                if let Some((rule, off)) = plant.expect {
                    expect.push((name.clone(), lines.len() + off + 1, rule));
                    if rule == "twilio-account-sid" {
                        expect.push((name.clone(), lines.len() + off + 2, "twilio-api-key"));
                        expect.push((name.clone(), lines.len() + off + 3, "twilio-auth-token"));
                    }
                }
                lines.extend(plant.lines.iter().cloned());
                p += 1;
            }
            lines.push(style.filler(&mut g));
        }
        let path = dir.path().join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    for i in 0..30 {
        let name = format!("notebooks/analysis{i}.ipynb");
        let text = notebook(&mut g, &mut expect, &name);
        std::fs::create_dir_all(dir.path().join("notebooks")).unwrap();
        std::fs::write(dir.path().join(&name), text).unwrap();
        let name = format!("k8s/secret{i}.yaml");
        let text = k8s_secret(&mut g, &mut expect, &name);
        std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    // Files that are never scanned, full of random-looking values.
    std::fs::write(
        dir.path().join("package-lock.json"),
        format!("{{\"integrity\": \"sha512-{}\", \"token\": \"{}\"}}", g.chars(support::B64, 86), g.generic_key()),
    )
    .unwrap();
    std::fs::write(dir.path().join("logo.png"), [0x89u8, b'P', b'N', b'G', 0, 0, 1, 2]).unwrap();

    let scanner = coffer_scan::Scanner::new().unwrap();
    let report = coffer_scan::walk::scan_paths(&scanner, &[PathBuf::from(dir.path())], &Default::default()).unwrap();
    let found: HashSet<(String, usize, String)> =
        report.findings.iter().map(|f| (f.file.clone(), f.line, f.rule.clone())).collect();
    let expected: HashSet<(String, usize, String)> =
        expect.iter().map(|(f, l, r)| (f.clone(), *l, r.to_string())).collect();

    #[derive(Default)]
    struct Counts {
        tp: usize,
        fp: usize,
        fn_: usize,
    }
    let mut per_rule: BTreeMap<String, Counts> = BTreeMap::new();
    for f in &found {
        let c = per_rule.entry(f.2.clone()).or_default();
        if expected.contains(f) {
            c.tp += 1;
        } else {
            c.fp += 1;
            eprintln!("false positive: {f:?}");
        }
    }
    for e in &expected {
        if !found.contains(e) {
            per_rule.entry(e.2.clone()).or_default().fn_ += 1;
            eprintln!("missed: {e:?}");
        }
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    println!("{:<26} {:>5} {:>4} {:>4} {:>9} {:>7}", "rule", "tp", "fp", "fn", "precision", "recall");
    for (rule, c) in &per_rule {
        let p = c.tp as f64 / (c.tp + c.fp).max(1) as f64;
        let r = c.tp as f64 / (c.tp + c.fn_).max(1) as f64;
        println!("{rule:<26} {:>5} {:>4} {:>4} {:>8.1}% {:>6.1}%", c.tp, c.fp, c.fn_, p * 100.0, r * 100.0);
        tp += c.tp;
        fp += c.fp;
        fn_ += c.fn_;
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!("{:<26} {tp:>5} {fp:>4} {fn_:>4} {:>8.1}% {:>6.1}%", "overall", precision * 100.0, recall * 100.0);
    println!(
        "planted: {} secrets, {negatives} look-alikes, {} files, {} bytes",
        expected.len(),
        report.files,
        report.bytes
    );
    assert!(precision >= 0.97, "precision {precision}");
    assert!(recall >= 0.95, "recall {recall}");
    assert!(report.files >= 660);
}
