//! The Parameter Store domain (SSM): parameter names and hierarchies, selectors, version labels and the
//! version history limit. These are the rules every Parameter Store operation applies; the operations
//! themselves build on them.

mod access;
pub(crate) mod cache;
pub mod labels;
pub mod names;
pub mod ops;
pub mod policies;

pub use labels::{check_label, LabelCheck, MAX_LABELS_PER_VERSION};
pub use names::{parameter_arn, parse_selector, validate_name, validate_path, ParameterName, Selector};

/// Parameter Store keeps this many versions of a parameter.
pub const MAX_VERSIONS: usize = 100;

/// Which version must go to make room for a new one, if any. The oldest goes, unless it carries a
/// label: then the write is refused (`ParameterMaxVersionLimitExceeded`) so that no labelled version is
/// lost silently. `versions` are (version number, label count), oldest first.
pub fn version_to_drop(name: &str, versions: &[(i64, usize)]) -> Result<Option<i64>, crate::ServiceError> {
    if versions.len() < MAX_VERSIONS {
        return Ok(None);
    }
    match versions.first() {
        Some((oldest, labels)) if *labels > 0 => Err(crate::ServiceError::new(
            crate::ErrorKind::TooManyVersions,
            format!(
                "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. \
                 Version {oldest}, the oldest version, can't be deleted because it has a label associated with it. \
                 Move the label to another version of the parameter, and try again."
            ),
        )),
        Some((oldest, _)) => Ok(Some(*oldest)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_one_hundred_versions() {
        let mut versions: Vec<(i64, usize)> = (1..=99).map(|v| (v, 0)).collect();
        assert_eq!(version_to_drop("/p", &versions).unwrap(), None);
        versions.push((100, 0));
        assert_eq!(version_to_drop("/p", &versions).unwrap(), Some(1));
        versions[0].1 = 1;
        let err = version_to_drop("/p", &versions).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::TooManyVersions);
        assert!(err.message.contains("Version 1, the oldest version, can't be deleted"));
    }
}
