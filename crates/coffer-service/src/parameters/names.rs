//! Parameter names, hierarchies and selectors, with the rules and messages of SSM.

use crate::arn::partition_for_region;
use crate::error::{ErrorKind, ServiceError, ServiceResult};

/// Hierarchies are at most this deep.
pub const MAX_DEPTH: usize = 15;
/// The name plus `arn:aws:ssm:<region>:<account>:parameter/` must fit in this many characters.
pub const MAX_ARN_LENGTH: usize = 1011;

/// A validated parameter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterName(String);

impl ParameterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hierarchy levels: `/a/b/c` has three, `name` one.
    pub fn depth(&self) -> usize {
        self.0.trim_start_matches('/').split('/').count()
    }

    /// The path a parameter lives under: `/a/b` for `/a/b/c`, `/` for `/a` and for `name`.
    pub fn parent_path(&self) -> &str {
        match self.0.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.0[..i],
        }
    }
}

fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::validation(message)
}

/// `arn:<partition>:ssm:<region>:<account>:parameter/<name without its leading slash>`.
pub fn parameter_arn(region: &str, account_id: &str, name: &str) -> String {
    format!(
        "arn:{}:ssm:{region}:{account_id}:parameter/{}",
        partition_for_region(region),
        name.strip_prefix('/').unwrap_or(name)
    )
}

/// Accepts a name or a parameter ARN (Get* take both) and returns the name.
pub fn name_from_id(id: &str) -> &str {
    let Some(rest) = id.strip_prefix("arn:") else { return id };
    match rest.split_once(":parameter/") {
        Some((_, name)) if name.contains('/') => &id[id.len() - name.len() - 1..],
        Some((_, name)) => name,
        None => id,
    }
}

/// Validates a name for PutParameter.
pub fn validate_name(name: &str, region: &str, account_id: &str) -> ServiceResult<ParameterName> {
    let name = name.trim();
    if name.is_empty() {
        return Err(validation("Parameter name must not be empty."));
    }
    let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b));
    if !valid_chars {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.",
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation(
            "Parameter name must be a fully qualified name: a name with a hierarchy starts with a forward slash (/).",
        ));
    }
    if name.contains("//") || (name.len() > 1 && name.ends_with('/')) || name == "/" {
        return Err(validation(format!("Parameter name {name} is not valid: empty hierarchy levels are not allowed.")));
    }
    let first_segment = name.trim_start_matches('/').split('/').next().unwrap_or_default().to_ascii_lowercase();
    if first_segment.starts_with("aws") || first_segment.starts_with("ssm") {
        return Err(validation(format!("No access to reserved parameter name: {name}.")));
    }
    let parsed = ParameterName(name.to_string());
    if parsed.depth() > MAX_DEPTH {
        return Err(ServiceError::new(
            ErrorKind::HierarchyTooDeep,
            "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the AWS Systems Manager User Guide.",
        ));
    }
    if parameter_arn(region, account_id, name).len() > MAX_ARN_LENGTH {
        return Err(validation(format!(
            "Parameter name is too long: with its ARN prefix it must be at most {MAX_ARN_LENGTH} characters."
        )));
    }
    Ok(parsed)
}

/// Validates the `Path` of GetParametersByPath: `/` or a hierarchy starting with `/`.
pub fn validate_path(path: &str) -> ServiceResult<String> {
    if path.is_empty() || path.len() > 2048 || !path.starts_with('/') {
        return Err(validation(format!(
            "The parameter path {path} is not valid: a path must start with a forward slash (/)."
        )));
    }
    if !path.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b)) || path.contains("//") {
        return Err(validation(format!("The parameter path {path} is not valid.")));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.split('/').count().saturating_sub(1) > MAX_DEPTH {
        return Err(ServiceError::new(ErrorKind::HierarchyTooDeep, "A hierarchy can have a maximum of 15 levels."));
    }
    Ok(if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

/// What a GetParameter name asks for: the latest version, a version number, or a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

impl Selector {
    /// The `Selector` member of the response (`:3`, `:prod`), absent for the latest version.
    pub fn as_response(&self) -> Option<String> {
        match self {
            Selector::Latest => None,
            Selector::Version(v) => Some(format!(":{v}")),
            Selector::Label(l) => Some(format!(":{l}")),
        }
    }
}

/// Splits `name:version` / `name:label`. More than one `:` after the name is not found, as in SSM.
pub fn parse_selector(id: &str) -> ServiceResult<(String, Selector)> {
    let name = name_from_id(id);
    let not_found = || ServiceError::not_found(format!("Parameter {id} not found."));
    let Some((base, selector)) = name.split_once(':') else { return Ok((name.to_string(), Selector::Latest)) };
    if selector.is_empty() || selector.contains(':') || base.is_empty() {
        return Err(not_found());
    }
    if selector.bytes().all(|b| b.is_ascii_digit()) {
        let version: i64 = selector.parse().map_err(|_| not_found())?;
        return Ok((base.to_string(), Selector::Version(version)));
    }
    Ok((base.to_string(), Selector::Label(selector.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> ParameterName {
        validate_name(name, "us-east-1", "123456789012").unwrap()
    }

    fn err(name: &str) -> ErrorKind {
        validate_name(name, "us-east-1", "123456789012").unwrap_err().kind
    }

    #[test]
    fn valid_names() {
        for n in ["/amplify/app1/dev/API_URL", "plain_name", "/a", "/a.b-c_d/e", "/dev/supabase/url"] {
            ok(n);
        }
        assert_eq!(ok("  /trimmed  ").as_str(), "/trimmed");
    }

    #[test]
    fn invalid_names() {
        for n in ["a/b", "/a//b", "/a/", "/", "has space", "/semi;colon", "", "   "] {
            assert_eq!(err(n), ErrorKind::Validation, "{n}");
        }
        for n in ["aws", "/aws/reference/x", "AWS-thing", "/SSM/x", "ssm"] {
            let e = validate_name(n, "us-east-1", "1").unwrap_err();
            assert!(e.message.starts_with("No access to reserved parameter name"), "{n}: {}", e.message);
        }
    }

    #[test]
    fn depth_limit_is_fifteen_levels() {
        let fifteen = format!("/{}", vec!["l"; 15].join("/"));
        assert_eq!(ok(&fifteen).depth(), 15);
        let sixteen = format!("/{}", vec!["l"; 16].join("/"));
        assert_eq!(err(&sixteen), ErrorKind::HierarchyTooDeep);
    }

    #[test]
    fn length_counts_the_arn_prefix() {
        let prefix = parameter_arn("us-east-1", "123456789012", "/").len() - 1;
        let fits = format!("/{}", "x".repeat(MAX_ARN_LENGTH - prefix - 1));
        ok(&fits);
        let too_long = format!("/{}", "x".repeat(MAX_ARN_LENGTH - prefix));
        assert_eq!(err(&too_long), ErrorKind::Validation);
    }

    #[test]
    fn arns_and_ids() {
        assert_eq!(parameter_arn("us-east-1", "1", "/a/b"), "arn:aws:ssm:us-east-1:1:parameter/a/b");
        assert_eq!(parameter_arn("us-east-1", "1", "name"), "arn:aws:ssm:us-east-1:1:parameter/name");
        assert_eq!(name_from_id("arn:aws:ssm:us-east-1:1:parameter/a/b"), "/a/b");
        assert_eq!(name_from_id("arn:aws:ssm:us-east-1:1:parameter/name"), "name");
        assert_eq!(name_from_id("/a/b"), "/a/b");
        assert_eq!(ok("/a/b/c").parent_path(), "/a/b");
        assert_eq!(ok("/a").parent_path(), "/");
        assert_eq!(ok("name").parent_path(), "/");
    }

    #[test]
    fn selectors() {
        assert_eq!(parse_selector("/a/b").unwrap(), ("/a/b".into(), Selector::Latest));
        assert_eq!(parse_selector("/a/b:3").unwrap(), ("/a/b".into(), Selector::Version(3)));
        assert_eq!(parse_selector("/a/b:prod").unwrap(), ("/a/b".into(), Selector::Label("prod".into())));
        assert_eq!(parse_selector("a:b:c").unwrap_err().message, "Parameter a:b:c not found.");
        assert_eq!(parse_selector("/a:").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(Selector::Version(3).as_response().as_deref(), Some(":3"));
        assert_eq!(Selector::Latest.as_response(), None);
        assert_eq!(
            parse_selector("arn:aws:ssm:us-east-1:1:parameter/a/b:2").unwrap(),
            ("/a/b".into(), Selector::Version(2))
        );
    }

    #[test]
    fn paths() {
        assert_eq!(validate_path("/").unwrap(), "/");
        assert_eq!(validate_path("/amplify/").unwrap(), "/amplify");
        assert!(validate_path("amplify").is_err());
        assert!(validate_path("/a//b").is_err());
        assert!(validate_path(&format!("/{}", vec!["l"; 16].join("/"))).is_err());
    }
}
