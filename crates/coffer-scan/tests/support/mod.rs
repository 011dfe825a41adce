//! Synthetic credentials in their real formats (checksums, lengths, parsable key material), generated
//! from a seeded RNG so no realistic token is ever committed, and the look-alikes that are not secrets.

#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const HEX: &[u8] = b"0123456789abcdef";
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub struct Gen {
    pub rng: StdRng,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen { rng: StdRng::seed_from_u64(seed) }
    }

    pub fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| alphabet[self.rng.gen_range(0..alphabet.len())] as char).collect()
    }

    /// Random characters with at least one lower, upper and digit (as generated keys have).
    pub fn mixed(&mut self, alphabet: &[u8], n: usize) -> String {
        loop {
            let s = self.chars(alphabet, n);
            if s.bytes().any(|b| b.is_ascii_lowercase())
                && s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_digit())
            {
                return s;
            }
        }
    }

    pub fn digits(&mut self, n: usize) -> String {
        let mut s = String::new();
        s.push(char::from(b'1' + self.rng.gen_range(0..9u8)));
        s.push_str(&self.chars(b"0123456789", n - 1));
        s
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.rng.gen()).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    pub fn aws_key_id(&mut self) -> String {
        format!("AKIA{}", self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
    }

    pub fn aws_secret(&mut self) -> String {
        self.mixed(B64, 40)
    }

    pub fn stripe_secret(&mut self) -> String {
        let prefix = *self.pick(&["sk_live_", "sk_test_", "rk_live_", "rk_test_"]);
        let n = self.rng.gen_range(24..=99);
        format!("{prefix}{}", self.mixed(BASE62, n))
    }

    pub fn stripe_webhook(&mut self) -> String {
        format!("whsec_{}", self.mixed(BASE62, 32))
    }

    fn jwt_with(&mut self, header: &str, payload: &str) -> String {
        let sig = self.chars(URLSAFE, 43);
        format!("{}.{}.{sig}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload))
    }

    pub fn jwt(&mut self) -> String {
        let alg = *self.pick(&["HS256", "RS256", "ES256"]);
        let sub = self.chars(HEX, 12);
        let iat = self.rng.gen_range(1_600_000_000u64..1_800_000_000);
        self.jwt_with(
            &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
            &format!(r#"{{"sub":"user-{sub}","iat":{iat},"scope":"api"}}"#),
        )
    }

    /// The token shown on jwt.io (built here, not pasted): header, its sample payload, any signature.
    pub fn jwt_io_sample(&mut self) -> String {
        self.jwt_with(r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#)
    }

    pub fn jwt_alg_none(&mut self) -> String {
        self.jwt_with(r#"{"alg":"none"}"#, r#"{"sub":"x","admin":true}"#)
    }

    pub fn password(&mut self) -> String {
        let word = *self.pick(&[
            "Summer", "Kettle", "Orchid", "Falcon", "Harbor", "Velvet", "Copper", "Meadow", "Quartz", "Tundra",
        ]);
        let sym = *self.pick(&["!", "#", "$", "%", "@", "&", "*", "?"]);
        let word2 = *self.pick(&["blue", "river", "stone", "cloud", "lemon", "pixel", "tiger", "maple"]);
        format!("{word}{sym}{word2}{}", self.rng.gen_range(10..9999))
    }

    pub fn db_url(&mut self) -> (String, String) {
        let pw = self.mixed(BASE62, 18);
        let scheme = *self.pick(&["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "amqps"]);
        let host =
            *self.pick(&["db.internal", "10.0.3.7:5432", "cluster0.ab12c.mongodb.net", "cache-1:6379", "mq.corp:5672"]);
        (format!("{scheme}://app_user:{pw}@{host}/main"), pw)
    }

    pub fn github_classic(&mut self) -> String {
        let prefix = *self.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]);
        let random = self.chars(BASE62, 30);
        let check = coffer_scan::validate::base62_checksum(crc32fast::hash(random.as_bytes()));
        format!("{prefix}{random}{check}")
    }

    /// Right shape, wrong checksum.
    pub fn github_bad_checksum(&mut self) -> String {
        loop {
            let t = format!("ghp_{}", self.chars(BASE62, 36));
            if !coffer_scan::validate::github_checksum_ok(t.as_bytes()) {
                return t;
            }
        }
    }

    pub fn github_fine_grained(&mut self) -> String {
        format!("github_pat_{}_{}", self.mixed(BASE62, 22), self.mixed(BASE62, 59))
    }

    pub fn gitlab(&mut self) -> String {
        format!("glpat-{}", self.mixed(BASE62, 20))
    }

    pub fn openai(&mut self) -> String {
        let prefix = *self.pick(&["sk-", "sk-proj-", "sk-svcacct-"]);
        format!("{prefix}{}T3BlbkFJ{}", self.mixed(BASE62, 20), self.mixed(BASE62, 20))
    }

    pub fn anthropic(&mut self) -> String {
        format!("sk-ant-api03-{}AA", self.mixed(URLSAFE, 93))
    }

    pub fn twilio_sid(&mut self) -> String {
        format!("AC{}", self.chars(HEX, 32))
    }

    pub fn twilio_api_key(&mut self) -> String {
        format!("SK{}", self.chars(HEX, 32))
    }

    pub fn hex32(&mut self) -> String {
        self.chars(HEX, 32)
    }

    pub fn sendgrid(&mut self) -> String {
        format!("SG.{}.{}", self.mixed(URLSAFE, 22), self.mixed(URLSAFE, 43))
    }

    pub fn gcp_api_key(&mut self) -> String {
        format!("AIza{}", self.mixed(URLSAFE, 35))
    }

    pub fn npm(&mut self) -> String {
        let random = self.chars(BASE62, 30);
        let check = coffer_scan::validate::base62_checksum(crc32fast::hash(random.as_bytes()));
        format!("npm_{random}{check}")
    }

    pub fn pypi(&mut self) -> String {
        format!("pypi-AgEIcHlwaS5vcmc{}", self.mixed(URLSAFE, 70))
    }

    pub fn azure_key(&mut self) -> String {
        format!("{}==", self.mixed(B64, 86))
    }

    pub fn telegram(&mut self) -> String {
        format!("{}:AA{}", self.digits(10), self.mixed(URLSAFE, 33))
    }

    pub fn slack_token(&mut self) -> String {
        let p = *self.pick(&["xoxb", "xoxp"]);
        format!("{p}-{}-{}-{}", self.digits(11), self.digits(12), self.mixed(BASE62, 24))
    }

    pub fn slack_webhook(&mut self) -> String {
        format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
            self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
            self.mixed(BASE62, 24)
        )
    }

    pub fn generic_key(&mut self) -> String {
        let n = self.rng.gen_range(24..48);
        self.mixed(BASE62, n)
    }

    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.chars(HEX, 8),
            self.chars(HEX, 4),
            self.chars(HEX, 3),
            self.chars(HEX, 3),
            self.chars(HEX, 12)
        )
    }

    /// PEM of a real Ed25519 PKCS#8 private key.
    pub fn pem_pkcs8(&mut self) -> String {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let seed: [u8; 32] = self.rng.gen();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()).unwrap_or_default()
    }

    /// PEM of a public key (not a secret).
    pub fn pem_public(&mut self) -> String {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let seed: [u8; 32] = self.rng.gen();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// A PKCS#1 RSA private key structure with random numbers (parses as DER; not a usable key).
    pub fn pem_rsa(&mut self) -> String {
        fn int(bytes: &[u8]) -> Vec<u8> {
            let mut v = vec![0x02];
            let mut body = vec![0u8];
            body.extend_from_slice(bytes);
            push_len(&mut v, body.len());
            v.extend(body);
            v
        }
        let mut content = vec![0x02, 0x01, 0x00];
        for n in [256usize, 3, 256, 128, 128, 128, 128, 128] {
            let b = self.bytes(n);
            content.extend(int(&b));
        }
        let mut der = vec![0x30];
        push_len(&mut der, content.len());
        der.extend(content);
        pem("RSA PRIVATE KEY", &der)
    }

    pub fn pem_ec(&mut self) -> String {
        let mut content = vec![0x02, 0x01, 0x01, 0x04, 0x20];
        content.extend(self.bytes(32));
        let mut der = vec![0x30];
        push_len(&mut der, content.len());
        der.extend(content);
        pem("EC PRIVATE KEY", &der)
    }

    pub fn openssh_key(&mut self) -> String {
        fn string(out: &mut Vec<u8>, s: &[u8]) {
            out.extend((s.len() as u32).to_be_bytes());
            out.extend_from_slice(s);
        }
        let mut data = b"openssh-key-v1\0".to_vec();
        string(&mut data, b"none");
        string(&mut data, b"none");
        string(&mut data, b"");
        data.extend(1u32.to_be_bytes());
        let mut public = Vec::new();
        string(&mut public, b"ssh-ed25519");
        string(&mut public, &self.bytes(32));
        string(&mut data, &public);
        let private = self.bytes(136);
        string(&mut data, &private);
        let b64 = STANDARD.encode(&data);
        let body: Vec<String> = b64.as_bytes().chunks(70).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n", body.join("\n"))
    }
}

fn push_len(v: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        v.push(len as u8);
    } else if len < 0x100 {
        v.extend([0x81, len as u8]);
    } else {
        v.extend([0x82, (len >> 8) as u8, len as u8]);
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let body: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", body.join("\n"))
}

/// Rule ids of findings in `text` scanned as `path`.
pub fn rules_in(path: &str, text: &str) -> Vec<String> {
    let scanner = coffer_scan::Scanner::new().expect("built-in rules");
    scanner.scan_bytes(path, text.as_bytes()).into_iter().map(|f| f.rule).collect()
}
