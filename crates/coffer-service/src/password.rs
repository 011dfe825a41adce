//! GetRandomPassword: random passwords from the character classes AWS uses.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{ServiceError, ServiceResult};

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The options of GetRandomPassword; `Default` gives AWS's defaults.
#[derive(Debug, Clone)]
pub struct PasswordRules {
    pub length: i64,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// Generates a password. Uses rejection-free uniform sampling (`gen_range`) so no class is biased.
pub fn generate_password(rules: &PasswordRules, rng: &mut impl Rng) -> ServiceResult<String> {
    if !(1..=4096).contains(&rules.length) {
        return Err(ServiceError::invalid_parameter("Password length must be between 1 and 4096 characters."));
    }
    let mut classes: Vec<Vec<char>> = Vec::new();
    let keep = |set: &str| -> Vec<char> { set.chars().filter(|c| !rules.exclude_characters.contains(*c)).collect() };
    for (set, excluded) in [
        (UPPER, rules.exclude_uppercase),
        (LOWER, rules.exclude_lowercase),
        (DIGITS, rules.exclude_numbers),
        (PUNCTUATION, rules.exclude_punctuation),
        (" ", !rules.include_space),
    ] {
        if excluded {
            continue;
        }
        let chars = keep(set);
        if !chars.is_empty() {
            classes.push(chars);
        }
    }
    if classes.is_empty() {
        return Err(ServiceError::invalid_parameter(
            "You must include at least one type of character in the password.",
        ));
    }
    let length = rules.length as usize;
    if rules.require_each_included_type && length < classes.len() {
        return Err(ServiceError::invalid_parameter(format!(
            "The password length must be at least {} to include at least one character of each included type.",
            classes.len()
        )));
    }
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    let mut out: Vec<char> = Vec::with_capacity(length);
    if rules.require_each_included_type {
        for class in &classes {
            out.push(class[rng.gen_range(0..class.len())]);
        }
    }
    while out.len() < length {
        out.push(all[rng.gen_range(0..all.len())]);
    }
    // The guaranteed characters were placed first; shuffle so their positions are random too.
    out.shuffle(rng);
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(rules: PasswordRules) -> ServiceResult<String> {
        generate_password(&rules, &mut rand::thread_rng())
    }

    #[test]
    fn default_is_32_chars_with_every_class() {
        for _ in 0..50 {
            let p = gen(PasswordRules::default()).unwrap();
            assert_eq!(p.chars().count(), 32);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn exclusions_are_honoured() {
        let p = gen(PasswordRules {
            length: 200,
            exclude_punctuation: true,
            exclude_characters: "abcXYZ0".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!p.chars().any(|c| "abcXYZ0".contains(c)));
        let digits = gen(PasswordRules {
            length: 20,
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_punctuation: true,
            ..Default::default()
        })
        .unwrap();
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        let spaced = gen(PasswordRules { length: 4, include_space: true, ..Default::default() });
        assert!(spaced.is_err(), "5 classes cannot fit in 4 characters");
        let spaced = gen(PasswordRules { length: 50, include_space: true, ..Default::default() }).unwrap();
        assert!(spaced.contains(' '));
    }

    #[test]
    fn bad_lengths_and_empty_sets_are_rejected() {
        assert!(gen(PasswordRules { length: 0, ..Default::default() }).is_err());
        assert!(gen(PasswordRules { length: 4097, ..Default::default() }).is_err());
        assert_eq!(gen(PasswordRules { length: 4096, ..Default::default() }).unwrap().len(), 4096);
        let none = gen(PasswordRules {
            exclude_numbers: true,
            exclude_punctuation: true,
            exclude_uppercase: true,
            exclude_lowercase: true,
            ..Default::default()
        });
        assert_eq!(none.unwrap_err().kind, crate::error::ErrorKind::InvalidParameter);
        let no_req = gen(PasswordRules { length: 1, require_each_included_type: false, ..Default::default() });
        assert_eq!(no_req.unwrap().len(), 1);
    }
}
