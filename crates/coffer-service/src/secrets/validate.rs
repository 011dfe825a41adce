//! Input rules of the Secrets Manager API, with AWS's error kinds and messages.

use coffer_store::Tag;

use crate::error::{ServiceError, ServiceResult};

pub const MAX_SECRET_VALUE_BYTES: usize = 65_536;
pub const MAX_DESCRIPTION_CHARS: usize = 2_048;
pub const MAX_TAGS: usize = 50;
pub const MAX_RESOURCE_POLICY_CHARS: usize = 20_480;

/// Names: 1..512 characters of ASCII letters, digits and `/_+=.@-`.
pub fn secret_name(name: &str) -> ServiceResult<()> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if name.is_empty() || name.len() > 512 || !valid_chars {
        return Err(ServiceError::validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    Ok(())
}

/// ClientRequestToken: 32..64 characters (it becomes the version id).
pub fn client_request_token(token: &str) -> ServiceResult<()> {
    if !(32..=64).contains(&token.chars().count()) {
        return Err(ServiceError::invalid_parameter("ClientRequestToken must be 32-64 characters long."));
    }
    if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ServiceError::invalid_parameter(
            "ClientRequestToken can contain only letters, digits, hyphens and underscores.",
        ));
    }
    Ok(())
}

/// A version id given by the caller (VersionId, MoveToVersionId, ...): the same shape as a token.
pub fn version_id(id: &str, field: &str) -> ServiceResult<()> {
    if !(32..=64).contains(&id.chars().count()) {
        return Err(ServiceError::invalid_parameter(format!("Invalid {field}. It must be 32-64 characters long.")));
    }
    Ok(())
}

pub fn staging_label(label: &str) -> ServiceResult<()> {
    if label.is_empty() || label.chars().count() > 256 {
        return Err(ServiceError::invalid_parameter("Staging labels must be 1-256 characters long."));
    }
    Ok(())
}

pub fn description(d: &str) -> ServiceResult<()> {
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::invalid_parameter(format!(
            "Description must be at most {MAX_DESCRIPTION_CHARS} characters long."
        )));
    }
    Ok(())
}

/// The secret value limit. The message names the limit, never the value.
pub fn secret_value_size(len: usize) -> ServiceResult<()> {
    if len == 0 {
        return Err(ServiceError::invalid_parameter("The secret value must not be empty."));
    }
    if len > MAX_SECRET_VALUE_BYTES {
        return Err(ServiceError::invalid_parameter(format!(
            "The secret value exceeds the maximum size of {MAX_SECRET_VALUE_BYTES} bytes."
        )));
    }
    Ok(())
}

fn tag_key(key: &str) -> ServiceResult<()> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(ServiceError::invalid_parameter("Tag keys must be 1-128 characters long."));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ServiceError::invalid_parameter("Tag keys can't start with the reserved prefix aws:."));
    }
    Ok(())
}

/// Tags of a request, and the limit on the secret's total after merging.
pub fn tags(tags: &[Tag]) -> ServiceResult<()> {
    for t in tags {
        tag_key(&t.key)?;
        if t.value.chars().count() > 256 {
            return Err(ServiceError::invalid_parameter("Tag values must be at most 256 characters long."));
        }
    }
    Ok(())
}

pub fn tag_keys(keys: &[String]) -> ServiceResult<()> {
    keys.iter().try_for_each(|k| tag_key(k))
}

pub fn tag_count(n: usize) -> ServiceResult<()> {
    if n > MAX_TAGS {
        return Err(ServiceError::new(
            crate::error::ErrorKind::LimitExceeded,
            format!("A secret can have at most {MAX_TAGS} tags."),
        ));
    }
    Ok(())
}

/// Merges `new` into `existing`: a key already present gets the new value, other keys are appended.
pub fn merge_tags(existing: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value.clone(),
            None => existing.push(t.clone()),
        }
    }
}

pub fn max_results(n: Option<i64>, max: i64) -> ServiceResult<Option<usize>> {
    match n {
        None => Ok(None),
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        Some(_) => Err(ServiceError::invalid_parameter(format!("MaxResults must be between 1 and {max}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(secret_name("/prod/backend/database_password").is_ok());
        assert!(secret_name("a+b=c.d@e-f_g").is_ok());
        assert!(secret_name(&"x".repeat(512)).is_ok());
        for bad in ["", "has space", "semi;colon", "ünï", &"x".repeat(513)] {
            let e = secret_name(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Validation, "{bad}");
        }
    }

    #[test]
    fn tokens() {
        assert!(client_request_token("0123456789abcdef0123456789abcdef").is_ok());
        assert!(client_request_token(&uuid_like()).is_ok());
        assert!(client_request_token("short").is_err());
        assert!(client_request_token(&"a".repeat(65)).is_err());
        assert!(client_request_token(&format!("{}!", "a".repeat(40))).is_err());
    }

    fn uuid_like() -> String {
        "6f1d3a4e-0c6b-4e8b-9d2a-1b2c3d4e5f60".into()
    }

    #[test]
    fn tag_rules_and_merge() {
        assert!(tags(&[Tag { key: "aws:x".into(), value: "v".into() }]).is_err());
        assert!(tags(&[Tag { key: "".into(), value: "v".into() }]).is_err());
        let mut existing = vec![Tag { key: "a".into(), value: "1".into() }];
        merge_tags(
            &mut existing,
            &[Tag { key: "b".into(), value: "2".into() }, Tag { key: "a".into(), value: "3".into() }],
        );
        assert_eq!(
            existing,
            vec![Tag { key: "a".into(), value: "3".into() }, Tag { key: "b".into(), value: "2".into() }]
        );
        assert!(tag_count(50).is_ok());
        assert!(tag_count(51).is_err());
    }

    #[test]
    fn value_sizes() {
        assert!(secret_value_size(65_536).is_ok());
        assert!(secret_value_size(65_537).is_err());
        assert!(secret_value_size(0).is_err());
    }
}
