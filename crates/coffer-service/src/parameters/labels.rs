//! Parameter version labels: which label texts are allowed, and how many a version may carry.

/// A version carries at most this many labels.
pub const MAX_LABELS_PER_VERSION: usize = 10;

/// Whether a label can be attached. Invalid labels are reported back (InvalidLabels), not raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelCheck {
    Valid,
    Invalid,
}

/// 1..100 characters of letters, digits, `.`, `-`, `_`; not starting with a digit, `aws` or `ssm`
/// (case-insensitive).
pub fn check_label(label: &str) -> LabelCheck {
    let lower = label.to_ascii_lowercase();
    let valid = !label.is_empty()
        && label.len() <= 100
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !label.as_bytes()[0].is_ascii_digit()
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm");
    if valid {
        LabelCheck::Valid
    } else {
        LabelCheck::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        for ok in ["prod", "Release-1.2_b", "x", &"l".repeat(100)] {
            assert_eq!(check_label(ok), LabelCheck::Valid, "{ok}");
        }
        for bad in ["", "1prod", "aws-x", "SSMlabel", "has space", "sla/sh", &"l".repeat(101)] {
            assert_eq!(check_label(bad), LabelCheck::Invalid, "{bad}");
        }
    }
}
