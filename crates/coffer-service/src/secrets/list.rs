//! ListSecrets (and BatchGetSecretValue's Filters): filter matching, ordering and pagination tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use coffer_store::SecretRecord;

use crate::error::{ErrorKind, ServiceError, ServiceResult};

/// One `{Key, Values}` filter of ListSecrets.
#[derive(Debug, Clone)]
pub struct SecretFilter {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    CreatedDate,
    LastAccessedDate,
    LastChangedDate,
    Name,
}

impl SortBy {
    pub fn parse(s: &str) -> ServiceResult<Self> {
        match s {
            "created-date" => Ok(SortBy::CreatedDate),
            "last-accessed-date" => Ok(SortBy::LastAccessedDate),
            "last-changed-date" => Ok(SortBy::LastChangedDate),
            "name" => Ok(SortBy::Name),
            other => Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{other}' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilterKey {
    Description,
    Name,
    TagKey,
    TagValue,
    PrimaryRegion,
    OwningService,
    All,
}

/// Filters validated and ready to match.
#[derive(Debug, Clone, Default)]
pub struct CompiledFilters(Vec<(FilterKey, Vec<(bool, String)>)>);

impl CompiledFilters {
    pub fn compile(filters: &[SecretFilter]) -> ServiceResult<Self> {
        if filters.len() > 10 {
            return Err(ServiceError::invalid_parameter("You can specify at most 10 filters."));
        }
        let mut out = Vec::with_capacity(filters.len());
        for f in filters {
            let key = match f.key.as_str() {
                "description" => FilterKey::Description,
                "name" => FilterKey::Name,
                "tag-key" => FilterKey::TagKey,
                "tag-value" => FilterKey::TagValue,
                "primary-region" => FilterKey::PrimaryRegion,
                "owning-service" => FilterKey::OwningService,
                "all" => FilterKey::All,
                other => {
                    return Err(ServiceError::validation(format!(
                        "1 validation error detected: Value '{other}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]"
                    )))
                }
            };
            if f.values.is_empty() || f.values.len() > 10 {
                return Err(ServiceError::invalid_parameter("A filter must have between 1 and 10 values."));
            }
            let mut values = Vec::with_capacity(f.values.len());
            for v in &f.values {
                let valid =
                    v.len() <= 512 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b" :_@/+=.-!".contains(&b));
                if !valid {
                    return Err(ServiceError::invalid_parameter(format!(
                        "Invalid filter value. Filter values can contain only letters, digits, spaces and :_@/+=.-!: {v}"
                    )));
                }
                match v.strip_prefix('!') {
                    Some(rest) => values.push((true, rest.to_string())),
                    None => values.push((false, v.clone())),
                }
            }
            out.push((key, values));
        }
        Ok(CompiledFilters(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All filters must match (AND); within one filter, any plain value may match (OR) and no negated
    /// value may match.
    pub fn matches(&self, s: &SecretRecord) -> bool {
        self.0.iter().all(|(key, values)| {
            let positives: Vec<&str> = values.iter().filter(|(neg, _)| !neg).map(|(_, v)| v.as_str()).collect();
            let any_positive = positives.is_empty() || positives.iter().any(|v| matches_one(*key, v, s));
            let no_negative = values.iter().filter(|(neg, _)| *neg).all(|(_, v)| !matches_one(*key, v, s));
            any_positive && no_negative
        })
    }
}

fn starts_with_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len() && hay.is_char_boundary(needle.len()) && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

fn matches_one(key: FilterKey, value: &str, s: &SecretRecord) -> bool {
    match key {
        FilterKey::Description => s.description.as_deref().is_some_and(|d| starts_with_ci(d, value)),
        FilterKey::Name => s.name.starts_with(value),
        FilterKey::TagKey => s.tags.iter().any(|t| t.key.starts_with(value)),
        FilterKey::TagValue => s.tags.iter().any(|t| t.value.starts_with(value)),
        FilterKey::PrimaryRegion => s.region.starts_with(value),
        // Coffer secrets are never owned by another service.
        FilterKey::OwningService => false,
        FilterKey::All => value.split_whitespace().any(|word| {
            starts_with_ci(&s.name, word)
                || s.description.as_deref().is_some_and(|d| starts_with_ci(d, word))
                || s.tags.iter().any(|t| starts_with_ci(&t.key, word) || starts_with_ci(&t.value, word))
                || starts_with_ci(&s.region, word)
        }),
    }
}

/// Sorts in place. Ties are broken by ARN so pages are stable.
pub fn sort(records: &mut [SecretRecord], by: SortBy, descending: bool) {
    records.sort_by(|a, b| {
        let primary = match by {
            SortBy::CreatedDate => a.created.cmp(&b.created),
            SortBy::LastAccessedDate => a.last_accessed.cmp(&b.last_accessed),
            SortBy::LastChangedDate => a.last_changed.cmp(&b.last_changed),
            SortBy::Name => a.name.cmp(&b.name),
        };
        let ordered = primary.then_with(|| a.arn.cmp(&b.arn));
        if descending {
            ordered.reverse()
        } else {
            ordered
        }
    });
}

/// Pagination tokens are opaque to clients: a versioned offset, base64url-encoded.
pub fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("coffer-v1:{offset}"))
}

pub fn decode_token(token: Option<&str>) -> ServiceResult<usize> {
    let Some(token) = token else { return Ok(0) };
    let invalid = || ServiceError::new(ErrorKind::InvalidNextToken, "The NextToken value is invalid.");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&raw).map_err(|_| invalid())?;
    text.strip_prefix("coffer-v1:").and_then(|n| n.parse().ok()).ok_or_else(invalid)
}

/// Cuts one page out of `items`, returning the page and the token for the next one (if any).
pub fn page<T>(items: Vec<T>, offset: usize, page_size: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(page_size).collect();
    let next = (offset + page.len() < total).then(|| encode_token(offset + page.len()));
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_store::{RotationSettings, Tag};

    fn rec(name: &str, desc: Option<&str>, tags: &[(&str, &str)], created: i64) -> SecretRecord {
        SecretRecord {
            arn: format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}-abcdef"),
            region: "us-east-1".into(),
            name: name.into(),
            description: desc.map(Into::into),
            kms_key_id: None,
            tags: tags.iter().map(|(k, v)| Tag { key: k.to_string(), value: v.to_string() }).collect(),
            created,
            last_changed: created,
            last_accessed: None,
            deletion_date: None,
            resource_policy: None,
            rotation: RotationSettings::default(),
            revision: 1,
        }
    }

    fn f(key: &str, values: &[&str]) -> SecretFilter {
        SecretFilter { key: key.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn name_prefix_tag_and_negation() {
        let a = rec("/prod/backend/db", Some("Postgres password"), &[("team", "backend")], 1);
        let b = rec("/non-prod/backend/db", None, &[("team", "web")], 2);
        let only_prod = CompiledFilters::compile(&[f("name", &["/prod/"])]).unwrap();
        assert!(only_prod.matches(&a) && !only_prod.matches(&b));
        let not_prod = CompiledFilters::compile(&[f("name", &["!/prod/"])]).unwrap();
        assert!(!not_prod.matches(&a) && not_prod.matches(&b));
        let desc = CompiledFilters::compile(&[f("description", &["postgres"])]).unwrap();
        assert!(desc.matches(&a) && !desc.matches(&b));
        let both = CompiledFilters::compile(&[f("tag-key", &["team"]), f("tag-value", &["web"])]).unwrap();
        assert!(!both.matches(&a) && both.matches(&b));
        let any = CompiledFilters::compile(&[f("name", &["/prod/", "/non-prod/"])]).unwrap();
        assert!(any.matches(&a) && any.matches(&b));
        let all = CompiledFilters::compile(&[f("all", &["POSTGRES nothing"])]).unwrap();
        assert!(all.matches(&a) && !all.matches(&b));
    }

    #[test]
    fn bad_filters_are_rejected() {
        assert!(CompiledFilters::compile(&[f("colour", &["x"])]).is_err());
        assert!(CompiledFilters::compile(&[f("name", &[])]).is_err());
        assert!(CompiledFilters::compile(&[f("name", &["semi;colon"])]).is_err());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_token(Some(&encode_token(42))).unwrap(), 42);
        assert_eq!(decode_token(None).unwrap(), 0);
        assert_eq!(decode_token(Some("garbage!")).unwrap_err().kind, ErrorKind::InvalidNextToken);
        assert_eq!(decode_token(Some(&URL_SAFE_NO_PAD.encode("v0:1"))).unwrap_err().kind, ErrorKind::InvalidNextToken);
    }

    #[test]
    fn paging_walks_everything_once() {
        let items: Vec<i32> = (0..25).collect();
        let (p1, t1) = page(items.clone(), 0, 10);
        assert_eq!(p1, (0..10).collect::<Vec<_>>());
        let (p3, t3) = page(items.clone(), decode_token(t1.as_deref()).unwrap() + 10, 10);
        assert_eq!(p3, (20..25).collect::<Vec<_>>());
        assert!(t3.is_none());
    }

    #[test]
    fn sorting_is_stable_and_reversible() {
        let mut v = vec![rec("b", None, &[], 2), rec("a", None, &[], 2), rec("c", None, &[], 1)];
        sort(&mut v, SortBy::CreatedDate, false);
        assert_eq!(v.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["c", "a", "b"]);
        sort(&mut v, SortBy::Name, true);
        assert_eq!(v.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["c", "b", "a"]);
    }
}
