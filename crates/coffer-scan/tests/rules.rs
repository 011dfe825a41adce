//! Per rule: true examples in their real formats, and the look-alikes that must not be reported.

mod support;

use support::{rules_in, Gen};

fn assert_found(rule: &str, path: &str, text: &str) {
    let got = rules_in(path, text);
    assert!(got.iter().any(|r| r == rule), "{rule} not found in {path}:\n{text}\ngot {got:?}");
}

fn assert_clean(path: &str, text: &str) {
    let got = rules_in(path, text);
    assert!(got.is_empty(), "expected nothing in {path}:\n{text}\ngot {got:?}");
}

#[test]
fn aws() {
    let mut g = Gen::new(1);
    for _ in 0..20 {
        let id = g.aws_key_id();
        let secret = g.aws_secret();
        let text = format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
        let got = rules_in("credentials", &text);
        assert_eq!(got, ["aws-access-key-id", "aws-secret-access-key"], "{text}");
        assert_found("aws-secret-access-key", "app.py", &format!("AWS_SECRET_ACCESS_KEY = \"{secret}\""));
    }
    // AWS's documentation pair.
    assert_clean(
        "credentials",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    );
    assert_clean("app.py", "aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]\n");
    assert_clean("deploy.yml", "aws_secret_access_key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n");
}

#[test]
fn stripe() {
    let mut g = Gen::new(2);
    for _ in 0..20 {
        assert_found(
            "stripe-secret-key",
            "pay.js",
            &format!("const stripe = require('stripe')('{}');", g.stripe_secret()),
        );
        assert_found("stripe-webhook-secret", ".env", &format!("STRIPE_WEBHOOK_SECRET={}", g.stripe_webhook()));
    }
    let pk = format!("pk_live_{}", g.mixed(support::BASE62, 24));
    assert_clean("pay.js", &format!("const publishableKey = '{pk}';\nconst stripeKey = '{pk}';"));
    assert_clean("pay.js", "const key = 'sk_live_xxxxxxxxxxxxxxxxxxxxxxxx';");
    assert_clean("pay.js", "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'");
}

#[test]
fn jwt() {
    let mut g = Gen::new(3);
    for _ in 0..20 {
        assert_found("jwt", "test.http", &format!("Authorization: Bearer {}", g.jwt()));
    }
    let sample = g.jwt_io_sample();
    assert_clean("README.md", &format!("curl -H 'Authorization: Bearer {sample}'"));
    let none = g.jwt_alg_none();
    assert_clean("README.md", &format!("token: {none}"));
    // eyJ followed by something that is not JSON.
    assert_clean(
        "a.txt",
        &format!(
            "eyJ{}.eyJ{}.{}",
            g.chars(support::BASE62, 20),
            g.chars(support::BASE62, 20),
            g.chars(support::BASE62, 30)
        ),
    );
}

#[test]
fn database_urls() {
    let mut g = Gen::new(4);
    for _ in 0..20 {
        let (url, pw) = g.db_url();
        let text = format!("DATABASE_URL={url}\n");
        let f = coffer_scan::Scanner::new().unwrap().scan_bytes(".env", text.as_bytes());
        assert_eq!(f.len(), 1, "{text} {f:?}");
        assert_eq!(f[0].rule, "database-url");
        assert!(!f[0].preview.contains(&pw[2..pw.len() - 4]));
        assert_eq!(f[0].column, text.find(&pw).unwrap() + 1);
    }
    assert_clean(".env", "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app\n");
    assert_clean("docker-compose.yml", "  url: postgres://postgres:postgres@localhost:5432/dev\n");
    assert_clean(".env", "REDIS_URL=redis://localhost:6379/0\n");
    assert_clean("README.md", "mysql://user:<password>@host/db and mongodb+srv://user:password@cluster.example.net\n");
}

#[test]
fn private_keys() {
    let mut g = Gen::new(5);
    for pem in [g.pem_pkcs8(), g.pem_rsa(), g.pem_ec(), g.openssh_key()] {
        assert_found("private-key", "id_key", &pem);
        // Embedded with \n escapes in one string (JSON, JS).
        let escaped = pem.replace('\n', "\\n");
        assert_found("private-key", "config.json", &format!("{{\"key\": \"{escaped}\"}}"));
        // Indented in a YAML block scalar.
        let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
        assert_found("private-key", "values.yaml", &format!("tls:\n  key: |\n{indented}"));
        let f = coffer_scan::Scanner::new().unwrap().scan_bytes("id_key", pem.as_bytes());
        assert!(f[0].preview.starts_with("-----BEGIN "), "{}", f[0].preview);
        assert!(f[0].preview.len() < 50);
    }
    // Public keys and certificates; a header with a placeholder or truncated body.
    assert_clean("key.pub", &g.pem_public());
    assert_clean("README.md", "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n");
    assert_clean("README.md", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n");
    assert_clean("README.md", "-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----\n");
}

#[test]
fn slack() {
    let mut g = Gen::new(6);
    for _ in 0..20 {
        assert_found("slack-token", "bot.py", &format!("client = WebClient(token=\"{}\")", g.slack_token()));
        assert_found("slack-webhook", "notify.sh", &format!("curl -X POST {} -d @msg.json", g.slack_webhook()));
    }
    assert_clean(
        "README.md",
        "SLACK_WEBHOOK=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
    );
    assert_clean("README.md", "SLACK_TOKEN=xoxb-your-token-here\n");
}

#[test]
fn github() {
    let mut g = Gen::new(7);
    for _ in 0..20 {
        assert_found("github-token", "ci.sh", &format!("export GH_TOKEN={}", g.github_classic()));
        assert_found("github-fine-grained-pat", "ci.sh", &format!("export GH_TOKEN={}", g.github_fine_grained()));
    }
    for _ in 0..20 {
        let bad = g.github_bad_checksum();
        let got = rules_in("ci.sh", &format!("echo {bad}"));
        assert!(!got.contains(&"github-token".to_string()), "{bad}");
    }
    assert_clean("README.md", "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
}

#[test]
fn vendors() {
    let mut g = Gen::new(8);
    for _ in 0..10 {
        assert_found("gitlab-pat", ".gitlab-ci.yml", &format!("  GITLAB_TOKEN: {}", g.gitlab()));
        assert_found("openai-api-key", "chat.py", &format!("client = OpenAI(api_key=\"{}\")", g.openai()));
        assert_found(
            "anthropic-api-key",
            "chat.ts",
            &format!("const client = new Anthropic({{ apiKey: '{}' }});", g.anthropic()),
        );
        assert_found("sendgrid-api-key", "mail.rb", &format!("sg = SendGrid::API.new(api_key: '{}')", g.sendgrid()));
        assert_found(
            "gcp-api-key",
            "maps.html",
            &format!("<script src=\"https://maps.googleapis.com/maps/api/js?key={}\"></script>", g.gcp_api_key()),
        );
        assert_found("npm-token", ".npmrc", &format!("//registry.npmjs.org/:_authToken={}", g.npm()));
        assert_found("pypi-token", ".pypirc", &format!("[pypi]\nusername = __token__\npassword = {}\n", g.pypi()));
        assert_found(
            "azure-storage-key",
            "appsettings.json",
            &format!("{{\"Storage\": \"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={};EndpointSuffix=core.windows.net\"}}", g.azure_key()),
        );
        assert_found("telegram-bot-token", "bot.py", &format!("bot = telebot.TeleBot(\"{}\")", g.telegram()));
    }
    // Azurite's published development key.
    assert_clean(
        "local.settings.json",
        "{\"AzureWebJobsStorage\": \"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;\"}",
    );
    assert_clean("chat.py", "client = OpenAI(api_key=\"sk-proj-YOUR_API_KEY_HERE\")");
    assert_clean("maps.html", "key=AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
}

#[test]
fn twilio() {
    let mut g = Gen::new(9);
    for _ in 0..10 {
        let text = format!(
            "from twilio.rest import Client\naccount_sid = \"{}\"\napi_key = \"{}\"\nauth_token = \"{}\"\n",
            g.twilio_sid(),
            g.twilio_api_key(),
            g.hex32()
        );
        let got = rules_in("sms.py", &text);
        assert_eq!(got, ["twilio-account-sid", "twilio-api-key", "twilio-auth-token"], "{text}");
    }
    // A hex string after "AC" in a file that has nothing to do with Twilio.
    assert_clean("colors.py", &format!("x = \"AC{}\"\n", g.hex32()));
}

#[test]
fn gcp_service_account() {
    let mut g = Gen::new(10);
    let pem = g.pem_pkcs8().replace('\n', "\\n");
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo-1\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"{pem}\",\n  \"client_email\": \"svc@demo-1.iam.gserviceaccount.com\"\n}}\n",
        g.chars(support::HEX, 40)
    );
    assert_eq!(rules_in("sa.json", &json), ["gcp-service-account"]);
}

#[test]
fn generic_assignments() {
    let mut g = Gen::new(11);
    for _ in 0..20 {
        let k = g.generic_key();
        assert_found("generic-api-key", "client.py", &format!("API_KEY = \"{k}\""));
        assert_found("generic-api-key", "config.yaml", &format!("  client_secret: {k}"));
        assert_found("generic-api-key", "app.go", &format!("\tauthToken := \"{k}\""));
        assert_found("generic-api-key", "web.config", &format!("<add key=\"ApiKey\" value=\"{k}\" />"));
        let pw = g.password();
        assert_found("hardcoded-password", "db.py", &format!("conn = connect(host=h, password=\"{pw}\")"));
        assert_found("hardcoded-password", ".env", &format!("DB_PASSWORD={pw}"));
        assert_found("hardcoded-password", "settings.xml", &format!("<password>{pw}</password>"));
        assert_found("hardcoded-password", "App.java", &format!("String dbPassword = \"{pw}\";"));
    }
}

#[test]
fn generic_hard_negatives() {
    let mut g = Gen::new(12);
    let uuid = g.uuid();
    let sha1 = g.chars(support::HEX, 40);
    let sha256 = g.chars(support::HEX, 64);
    let k = g.generic_key();
    let cases = [
        ("a.py", format!("api_key = \"{uuid}\"")),
        ("a.py", format!("cache_key = \"{sha1}\"")),
        ("a.py", format!("commit_sha = \"{sha1}\"")),
        ("a.js", format!("const key = \"{sha256}\";")),
        ("a.py", "API_KEY = os.environ[\"API_KEY\"]".into()),
        ("a.py", "token = os.getenv('GITHUB_TOKEN')".into()),
        ("a.js", "const apiKey = process.env.API_KEY;".into()),
        ("a.yml", "token: ${{ secrets.GITHUB_TOKEN }}".into()),
        ("a.yml", "password: \"{{ vault_db_password }}\"".into()),
        ("a.env", "API_KEY=${API_KEY}".into()),
        ("a.env", "DB_PASSWORD=op://prod/db/password".into()),
        ("a.yml", "password: vault:secret/data/db#password".into()),
        ("a.py", "token_env = \"GITHUB_TOKEN\"".into()),
        ("a.py", "secret_name = \"prod/db/password\"".into()),
        ("a.py", "PASSWORD_FIELD = \"password\"".into()),
        ("a.py", "password_label = \"Enter your password\"".into()),
        ("a.py", "password = \"changeme\"".into()),
        ("a.py", "password = \"<password>\"".into()),
        ("a.py", "password = \"\"".into()),
        ("a.yml", "password: true".into()),
        ("a.py", "api_key = \"YOUR_API_KEY\"".into()),
        ("a.py", "secret = \"xxxxxxxxxxxxxxxxxxxx\"".into()),
        ("a.py", format!("public_key = \"ssh-ed25519 {}\"", g.chars(support::B64, 68))),
        ("a.py", format!("stripe_publishable_key = \"pk_live_{}\"", g.mixed(support::BASE62, 24))),
        ("a.html", format!("<script integrity=\"sha384-{}\"></script>", g.chars(support::B64, 64))),
        ("a.json", format!("{{\"integrity\": \"sha512-{}==\"}}", g.chars(support::B64, 86))),
        ("a.css", format!(".logo {{ background: url(data:image/png;base64,{}) }}", g.chars(support::B64, 300))),
        ("a.py", "if password == user_input:".into()),
        ("a.py", "password = get_password()".into()),
        ("a.py", "password_hash = \"$2b$12$abcdefghijklmnopqrstuv0123456789ABCDEFGHIJKLMNOPQRSTU\"".into()),
        (
            "a.yml",
            format!(
                "db_password: ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
                g.chars(support::B64, 16),
                g.chars(support::B64, 44),
                g.chars(support::B64, 24)
            ),
        ),
        ("a.yml", format!("db_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  {}\n", g.chars(support::HEX, 80))),
        ("a.ts", "type Props = { apiKey: string; token?: string }".into()),
        ("a.py", "def login(username, password):".into()),
        ("a.rs", "let key = Key::from_slice(&bytes);".into()),
        ("a.md", "Set `API_KEY` in your environment.".into()),
        ("a.py", "i18n = {'auth.password.invalid': 'Wrong password'}".into()),
        ("a.rs", "let mut key = Zeroizing::new([0u8; KEY_LEN]);".into()),
        ("a.rs", "let other = AuditSigningKey::from_seed(&[7u8; 32]).public_key();".into()),
        ("a.rs", "use coffer_service::password::PasswordRules;".into()),
        ("a.rs", "let body = format!(\"{{\\\"password\\\":\\\"{:016x}{:016x}\\\"}}\", a, b);".into()),
        ("a.rs", "let key_a = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"; // bytes 0..32".into()),
        ("a.xml", "<PasswordLastUsed>2014-09-08T21:47:36Z</PasswordLastUsed>".into()),
        ("a.py", "json.dumps({\"key\": \"jwt-signing-key-1\"})".into()),
        ("a.rs", "let cred = \"Credential=AKID/20150830/us-east-1/kms/aws4_request\";".into()),
        ("a.rs", "let f = Form::parse(b\"Tags.member.1.Key=a&TagsX.member.1=b&Tags.member.1.Value=1\");".into()),
        ("a.py", "url = f\"postgres://app:{password}@db:5432/app\"".into()),
        (
            "a.txt",
            "Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request".into(),
        ),
    ];
    for (path, text) in &cases {
        assert_clean(path, text);
    }
    // Lockfiles, source maps and minified bundles are not scanned; ansible-vault files neither.
    let scanner = coffer_scan::Scanner::new().unwrap();
    assert!(scanner.is_path_excluded("package-lock.json"));
    assert!(scanner.is_path_excluded("web/dist/app.min.js"));
    assert!(scanner.is_path_excluded("web/dist/app.js.map"));
    assert_clean("group_vars/all/vault.yml", &format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", g.chars(support::HEX, 80)));
    let minified = format!("var a=1;{}var apiKey=\"{k}\";{}", "x".repeat(5000), "y".repeat(100));
    assert_clean("bundle.js", &minified);
}

#[test]
fn notebooks_escaped_json() {
    let mut g = Gen::new(13);
    let k = g.generic_key();
    let pw = g.password();
    let pem = g.pem_rsa();
    let pem_lines: Vec<String> = pem.lines().map(|l| format!("    \"{l}\\n\",")).collect();
    let nb = format!(
        "{{\n \"cells\": [\n  {{\n   \"cell_type\": \"code\",\n   \"source\": [\n    \"import requests\\n\",\n    \"api_key = \\\"{k}\\\"\\n\",\n    \"db_password = \\\"{pw}\\\"\\n\",\n    \"KEY = \\\"\\\"\\\"\\n\",\n{}\n    \"\\\"\\\"\\\"\"\n   ]\n  }}\n ]\n}}\n",
        pem_lines.join("\n")
    );
    let got = rules_in("analysis.ipynb", &nb);
    assert_eq!(got, ["generic-api-key", "hardcoded-password", "private-key"], "{nb}");
    let f = coffer_scan::Scanner::new().unwrap().scan_bytes("analysis.ipynb", nb.as_bytes());
    assert_eq!(f[0].line, 7);
    assert_eq!(f[2].line, 10);
}

#[test]
fn yaml_block_scalars() {
    let mut g = Gen::new(14);
    let pw = g.password();
    let k = g.generic_key();
    let text = format!("db:\n  password: |\n    {pw}\n  api_token: >-\n    {k}\n");
    let f = coffer_scan::Scanner::new().unwrap().scan_bytes("values.yaml", text.as_bytes());
    let got: Vec<(&str, usize)> = f.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(got, [("hardcoded-password", 3), ("generic-api-key", 5)]);
}

#[test]
fn concatenated_strings() {
    let mut g = Gen::new(15);
    let t = g.github_classic();
    let (a, b) = t.split_at(14);
    assert_found("github-token", "a.js", &format!("const token = \"{a}\" + \"{b}\";"));
    assert_found("github-token", "a.py", &format!("TOKEN = (\n    \"{a}\"\n    \"{b}\"\n)\n"));
    let k = g.generic_key();
    let (a, b) = k.split_at(10);
    let f = coffer_scan::Scanner::new()
        .unwrap()
        .scan_bytes("a.java", format!("String apiKey = \"{a}\" +\n    \"{b}\";\n").as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "generic-api-key");
    assert_eq!(f[0].fingerprint, coffer_scan::fingerprint("generic-api-key", k.as_bytes()));
}

#[test]
fn kubernetes_secret_data() {
    use base64::Engine;
    let mut g = Gen::new(16);
    let pw = g.password();
    let token = g.github_classic();
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ntype: Opaque\ndata:\n  username: {}\n  password: {}\n  gh-token: {}\n",
        enc("admin-user"),
        enc(&pw),
        enc(&token)
    );
    let f = coffer_scan::Scanner::new().unwrap().scan_bytes("secret.yaml", text.as_bytes());
    let got: Vec<(&str, usize)> = f.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(got, [("hardcoded-password", 8), ("github-token", 9)], "{text}");
}

#[test]
fn allow_comments() {
    let mut g = Gen::new(17);
    let t = g.github_classic();
    assert_clean("a.py", &format!("TOKEN = \"{t}\"  # coffer:allow test fixture"));
    assert_clean("a.py", &format!("# coffer:allow-next-line\nTOKEN = \"{t}\""));
    assert_found("github-token", "a.py", &format!("# coffer:allow-next-line\n\nTOKEN = \"{t}\""));
}

#[test]
fn findings_never_hold_the_secret() {
    let mut g = Gen::new(18);
    let secrets = [g.github_classic(), g.stripe_secret(), g.aws_secret(), g.generic_key(), g.password(), g.anthropic()];
    let text = format!(
        "t = \"{}\"\ns = \"{}\"\naws_secret_access_key = \"{}\"\napi_key = \"{}\"\npassword = \"{}\"\nk = \"{}\"\n",
        secrets[0], secrets[1], secrets[2], secrets[3], secrets[4], secrets[5]
    );
    let f = coffer_scan::Scanner::new().unwrap().scan_bytes("a.py", text.as_bytes());
    assert_eq!(f.len(), 6, "{f:?}");
    let json = serde_json::to_string(&f).unwrap();
    for s in &secrets {
        // No run of 8 characters from the middle of a secret appears in the output.
        let middle = &s[s.len() / 2 - 4..s.len() / 2 + 4];
        assert!(!json.contains(middle), "{middle} leaked in {json}");
    }
    for finding in &f {
        assert_eq!(finding.fingerprint.len(), 32);
    }
}

#[test]
fn known_secrets_extension_point() {
    use std::collections::HashSet;
    let key = b"per-scan salt".to_vec();
    let value = "prod-db-7f3a-Kq92";
    let known = coffer_scan::KnownSecret {
        name: "prod/db".into(),
        fingerprints: HashSet::from([coffer_scan::KnownSecret::fingerprint(&key, value.as_bytes())]),
        hmac_key: key,
        lengths: HashSet::new(),
    };
    let scanner = coffer_scan::Scanner::new().unwrap().with_known(vec![known]);
    let f = scanner.scan_bytes("a.yml", format!("db_secret: {value}\n").as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, coffer_scan::KNOWN_SECRET_RULE);
    assert!(f[0].description.contains("prod/db"));
}

/// Known values are found wherever they sit, in any format, including human-chosen passwords that no
/// pattern rule could recognize; only values of the known lengths are fingerprinted; other values are not
/// reported as known.
#[test]
fn known_values_are_found_in_any_format() {
    use std::collections::HashSet;
    let key = b"a per-scan key of thirty-two bytes".to_vec();
    let values = ["Summer 2024 rocks!", "Tr0ub4dor&3", "hunter2hunter2"];
    let known: Vec<coffer_scan::KnownSecret> = values
        .iter()
        .map(|v| coffer_scan::KnownSecret {
            name: format!("app/{}", v.len()),
            hmac_key: key.clone(),
            fingerprints: HashSet::from([coffer_scan::KnownSecret::fingerprint(&key, v.as_bytes())]),
            lengths: HashSet::from([v.len()]),
        })
        .collect();
    let scanner = coffer_scan::Scanner::new().unwrap().with_known(known);
    let cases = [
        ("a.env", "DB_PASSWORD=Summer 2024 rocks!\n", 0),
        ("b.json", "{\"db\": {\"pw\": \"Tr0ub4dor&3\"}}\n", 1),
        ("c.yml", "database:\n  password: hunter2hunter2\n", 2),
        ("d.txt", "connect to postgres://app:Tr0ub4dor&3@db.internal:5432/app please\n", 1),
        ("e.sh", "export X='Summer 2024 rocks!'\n", 0),
        ("f.py", "pw = os.environ.get(\"PW\", \"hunter2hunter2\")\n", 2),
        ("g.md", "the old one (hunter2hunter2) still works\n", 2),
    ];
    for (path, text, which) in cases {
        let found = scanner.scan_bytes(path, text.as_bytes());
        let known: Vec<_> = found.iter().filter(|f| f.rule == coffer_scan::KNOWN_SECRET_RULE).collect();
        assert_eq!(known.len(), 1, "{path}: {found:?}");
        assert!(known[0].description.contains(&format!("app/{}", values[which].len())), "{path}: {known:?}");
        assert!(!known[0].preview.contains(values[which]), "{path}: the preview holds the value");
        assert_eq!(known[0].line, text.lines().position(|l| l.contains(values[which])).unwrap() + 1, "{path}");
    }
    let near_misses = "DB_PASSWORD=Summer 2024 rocks\npw: hunter2hunter3\nurl: postgres://app:Tr0ub4dor@db/app\n";
    let found = scanner.scan_bytes("h.env", near_misses.as_bytes());
    assert!(found.iter().all(|f| f.rule != coffer_scan::KNOWN_SECRET_RULE), "{found:?}");
}

#[test]
fn user_rules_extend_the_builtin_set() {
    let mut set = coffer_scan::RuleSet::builtin().unwrap();
    set.extend(
        coffer_scan::RuleSet::parse(
            r#"
[allow]
values = ["acme_live_0000111122223333"]
[[rules]]
id = "acme-key"
description = "ACME API key"
keywords = ["acme_live_"]
regex = '\b(acme_live_[0-9a-f]{16})\b'
"#,
        )
        .unwrap(),
    );
    let scanner = coffer_scan::Scanner::from_rules(&set).unwrap();
    let f = scanner.scan_bytes("a.txt", b"k acme_live_5f1c9e07a2b4d863\n");
    assert_eq!(f[0].rule, "acme-key");
    assert!(scanner.scan_bytes("a.txt", b"k acme_live_0000111122223333\n").is_empty());
    assert!(coffer_scan::RuleSet::parse("[[rules]]\nid = \"x\"\nkeywords = [\"x\"]\nregex = \"(\"\n")
        .map(|s| coffer_scan::Scanner::from_rules(&s))
        .map_or(true, |r| r.is_err()));
}
