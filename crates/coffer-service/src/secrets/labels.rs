//! Staging labels: which version is AWSCURRENT, AWSPREVIOUS, AWSPENDING (or a custom label), and how
//! labels move when versions are added or relabelled. Pure: works on a [`LabelBoard`] built from the
//! stored versions and reports what changed, so the store receives only the decided diff.

use coffer_store::{EpochMillis, VersionRecord};

use crate::error::{ServiceError, ServiceResult};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";

/// A version can carry at most this many labels.
pub const MAX_LABELS_PER_VERSION: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    version_id: String,
    stages: Vec<String>,
    created: EpochMillis,
}

/// The label assignment of one secret's versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelBoard {
    entries: Vec<Entry>,
    original: Vec<Entry>,
}

impl LabelBoard {
    pub fn from_versions(versions: &[VersionRecord]) -> Self {
        let entries: Vec<Entry> = versions
            .iter()
            .map(|v| Entry { version_id: v.version_id.clone(), stages: v.stages.clone(), created: v.created })
            .collect();
        LabelBoard { original: entries.clone(), entries }
    }

    /// The version currently holding `stage`.
    pub fn holder_of(&self, stage: &str) -> Option<&str> {
        self.entries.iter().find(|e| e.stages.iter().any(|s| s == stage)).map(|e| e.version_id.as_str())
    }

    pub fn contains(&self, version_id: &str) -> bool {
        self.entries.iter().any(|e| e.version_id == version_id)
    }

    pub fn stages_of(&self, version_id: &str) -> Option<&[String]> {
        self.entries.iter().find(|e| e.version_id == version_id).map(|e| e.stages.as_slice())
    }

    /// Adds a new version (no labels yet).
    pub fn add_version(&mut self, version_id: &str, created: EpochMillis) {
        self.entries.push(Entry { version_id: version_id.to_string(), stages: Vec::new(), created });
    }

    fn remove_label_everywhere(&mut self, stage: &str) {
        for e in &mut self.entries {
            e.stages.retain(|s| s != stage);
        }
    }

    fn attach(&mut self, version_id: &str, stage: &str) -> ServiceResult<()> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.version_id == version_id)
            .ok_or_else(|| ServiceError::internal("label target version missing"))?;
        if !entry.stages.iter().any(|s| s == stage) {
            if entry.stages.len() >= MAX_LABELS_PER_VERSION {
                return Err(ServiceError::new(
                    crate::error::ErrorKind::LimitExceeded,
                    format!("A version can have at most {MAX_LABELS_PER_VERSION} staging labels."),
                ));
            }
            entry.stages.push(stage.to_string());
        }
        Ok(())
    }

    /// Attaches `stage` to `version_id`, taking it from whichever version held it. Moving AWSCURRENT
    /// also moves AWSPREVIOUS to the version that lost AWSCURRENT, as Secrets Manager does.
    pub fn move_label(&mut self, stage: &str, version_id: &str) -> ServiceResult<()> {
        let previous_holder = self.holder_of(stage).map(str::to_string);
        if previous_holder.as_deref() == Some(version_id) {
            return Ok(());
        }
        self.remove_label_everywhere(stage);
        self.attach(version_id, stage)?;
        if stage == AWSCURRENT {
            if let Some(old) = previous_holder {
                self.remove_label_everywhere(AWSPREVIOUS);
                self.attach(&old, AWSPREVIOUS)?;
            }
        }
        Ok(())
    }

    /// Detaches `stage` from `version_id` (no AWSPREVIOUS bookkeeping: nothing became current).
    pub fn remove_label(&mut self, stage: &str, version_id: &str) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.version_id == version_id) {
            e.stages.retain(|s| s != stage);
        }
    }

    /// Removes versions without labels, oldest first, while there are more than `max_versions` and the
    /// candidate is older than `min_age_millis` — Secrets Manager's rule (100 versions, 24 hours).
    /// Returns the ids removed.
    pub fn prune(&mut self, now: EpochMillis, max_versions: usize, min_age_millis: i64) -> Vec<String> {
        let mut removed = Vec::new();
        while self.entries.len() > max_versions {
            let candidate = self.entries.iter().position(|e| e.stages.is_empty() && now - e.created >= min_age_millis);
            match candidate {
                Some(i) => removed.push(self.entries.remove(i).version_id),
                None => break,
            }
        }
        removed
    }

    /// (version id, new complete label set) for every pre-existing version whose labels changed.
    pub fn changed_stages(&self) -> Vec<(String, Vec<String>)> {
        self.entries
            .iter()
            .filter_map(|e| {
                let before = self.original.iter().find(|o| o.version_id == e.version_id)?;
                (before.stages != e.stages).then(|| (e.version_id.clone(), e.stages.clone()))
            })
            .collect()
    }

    /// The final labels of a version (for versions added on this board).
    pub fn final_stages(&self, version_id: &str) -> Vec<String> {
        self.stages_of(version_id).map(<[String]>::to_vec).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_store::ValueKind;

    fn v(id: &str, stages: &[&str], created: i64) -> VersionRecord {
        VersionRecord {
            version_id: id.into(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created,
            kind: ValueKind::String,
            envelope: vec![],
        }
    }

    #[test]
    fn new_current_demotes_old_current_to_previous() {
        let mut b = LabelBoard::from_versions(&[v("a", &["AWSPREVIOUS"], 1), v("b", &["AWSCURRENT"], 2)]);
        b.add_version("c", 3);
        b.move_label(AWSCURRENT, "c").unwrap();
        assert_eq!(b.holder_of(AWSCURRENT), Some("c"));
        assert_eq!(b.holder_of(AWSPREVIOUS), Some("b"));
        assert_eq!(b.stages_of("a").unwrap(), &[] as &[String]);
        let mut changed = b.changed_stages();
        changed.sort();
        assert_eq!(changed, vec![("a".into(), vec![]), ("b".into(), vec!["AWSPREVIOUS".to_string()])]);
        assert_eq!(b.final_stages("c"), vec!["AWSCURRENT".to_string()]);
    }

    #[test]
    fn pending_does_not_touch_current() {
        let mut b = LabelBoard::from_versions(&[v("a", &["AWSCURRENT"], 1)]);
        b.add_version("p", 2);
        b.move_label(AWSPENDING, "p").unwrap();
        assert_eq!(b.holder_of(AWSCURRENT), Some("a"));
        assert_eq!(b.holder_of(AWSPREVIOUS), None);
        assert!(b.changed_stages().is_empty());
    }

    #[test]
    fn moving_current_onto_its_holder_is_a_no_op() {
        let mut b = LabelBoard::from_versions(&[v("a", &["AWSPREVIOUS"], 1), v("b", &["AWSCURRENT"], 2)]);
        b.move_label(AWSCURRENT, "b").unwrap();
        assert!(b.changed_stages().is_empty());
    }

    #[test]
    fn moving_current_back_swaps_current_and_previous() {
        let mut b = LabelBoard::from_versions(&[v("a", &["AWSPREVIOUS"], 1), v("b", &["AWSCURRENT"], 2)]);
        b.move_label(AWSCURRENT, "a").unwrap();
        assert_eq!(b.holder_of(AWSCURRENT), Some("a"));
        assert_eq!(b.holder_of(AWSPREVIOUS), Some("b"));
    }

    #[test]
    fn custom_labels_move_alone_and_are_limited() {
        let mut b = LabelBoard::from_versions(&[v("a", &["AWSCURRENT", "blue"], 1), v("b", &[], 2)]);
        b.move_label("blue", "b").unwrap();
        assert_eq!(b.holder_of("blue"), Some("b"));
        assert_eq!(b.holder_of(AWSCURRENT), Some("a"));
        for i in 0..19 {
            b.move_label(&format!("l{i}"), "b").unwrap();
        }
        assert!(b.move_label("one-too-many", "b").is_err());
    }

    #[test]
    fn prune_removes_only_old_unlabelled_versions_beyond_the_limit() {
        let day = 86_400_000;
        let mut versions: Vec<VersionRecord> = (0..5).map(|i| v(&format!("v{i}"), &[], i)).collect();
        versions.push(v("cur", &["AWSCURRENT"], 10));
        let mut b = LabelBoard::from_versions(&versions);
        // Too young: nothing goes even above the limit.
        assert!(b.prune(day - 1, 3, day).is_empty());
        let removed = b.prune(day + 100, 3, day);
        assert_eq!(removed, vec!["v0", "v1", "v2"]);
        assert!(b.contains("cur"));
        // Never removes labelled versions.
        let mut only_labelled = LabelBoard::from_versions(&[v("a", &["x"], 0), v("b", &["AWSCURRENT"], 0)]);
        assert!(only_labelled.prune(10 * day, 1, day).is_empty());
    }
}
