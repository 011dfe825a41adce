//! An application's start with Coffer, as seed 002 describes it: load the manifest of required and
//! optional secrets into a one-hour cache, refuse to start (exit 1, naming every missing required
//! secret) when any is missing, then print the health report an application would serve on its
//! `/healthz` — names, counts and ages, never a value.
//!
//! ```sh
//! # against a server (endpoint and credentials as for every Coffer and AWS tool)
//! AWS_ENDPOINT_URL=http://127.0.0.1:8200 AWS_SHARED_CREDENTIALS_FILE=coffer-data/root-credentials \
//!   cargo run -p coffer-client --example app_startup -- secrets.toml
//! # offline, from a dotenv file
//! COFFER_SOURCE=dotenv:.env cargo run -p coffer-client --example app_startup -- secrets.toml
//! ```
//!
//! Without an argument it uses a built-in manifest shaped like seed 002's `SECRET_CONFIG`.

use std::process::ExitCode;
use std::time::Duration;

use coffer_client::{CacheSettings, Manifest, ManifestItem, SecretCache};

/// Seed 002's secrets, as an application could declare them in code instead of a TOML file.
fn built_in_manifest() -> Manifest {
    let prefix = "whatsapp-saas/mvp";
    let required = |name: &str, description: &str| {
        ManifestItem::required(format!("{prefix}/{name}")).with_description(description)
    };
    let optional = |name: &str, description: &str| {
        ManifestItem::optional(format!("{prefix}/{name}")).with_description(description)
    };
    Manifest::new()
        .secret(required("admin-token", "Admin API authentication token"))
        .secret(required("meta-verify-token", "Meta webhook verification token"))
        .secret(required("meta-app-secret", "Meta app secret for HMAC validation"))
        .secret(required("database-url", "PostgreSQL connection string"))
        .secret(required("redis-url", "Redis connection string"))
        .secret(required("openai-api-key", "OpenAI API key"))
        .secret(optional("whatsapp-phone-number-id", "Default WhatsApp phone number ID"))
        .secret(optional("whatsapp-access-token", "Default WhatsApp access token"))
        .secret(optional("openai-model", "OpenAI model to use").with_default("gpt-4"))
        .secret(optional("openai-max-tokens", "Max tokens per request").with_default("1000"))
        .secret(optional("openai-temperature", "Temperature setting").with_default("0.7"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let manifest = match std::env::args_os().nth(1) {
        Some(path) => match Manifest::load(&path) {
            Ok(manifest) => manifest,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => built_in_manifest(),
    };

    // Seed 002's hour, the longest TTL: values in use are refreshed in the background before it ends,
    // and served stale for up to a day if the server cannot be reached.
    let settings = CacheSettings {
        ttl: Duration::from_secs(3600),
        max_stale: Duration::from_secs(24 * 3600),
        ..CacheSettings::default()
    };
    let cache = match SecretCache::from_env(settings) {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };

    match cache.load_manifest(&manifest).await {
        Ok(report) => {
            eprintln!(
                "secrets loaded: {} from {} ({}), {} optional on their defaults, {} optional absent",
                report.loaded,
                cache.source().kind(),
                cache.source().location(),
                report.defaults.len(),
                report.absent.len()
            );
        }
        Err(e) => {
            // The error names every missing required item (never a value); the application must not start.
            eprintln!("refusing to start: {e}");
            println!("{}", serde_json::to_string_pretty(&cache.health()).unwrap_or_default());
            return ExitCode::from(1);
        }
    }

    // An application uses the values; this example only shows their sizes.
    for (_, item) in manifest.items() {
        let key = item.key();
        match cache.value(&key).await {
            Ok(Some(value)) => eprintln!("{key}: {} bytes", value.len()),
            Ok(None) => eprintln!("{key}: absent"),
            Err(e) => eprintln!("{key}: {e}"),
        }
    }

    println!("{}", serde_json::to_string_pretty(&cache.health()).unwrap_or_default());
    ExitCode::SUCCESS
}
