//! ARNs as AWS forms them.

use rand::Rng;

/// The partition a region belongs to (`aws-cn` for China, `aws-us-gov` for GovCloud).
pub fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

const SUFFIX_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 random chars>`: the suffix is new
/// for every secret, so a re-created secret never shares an ARN with its predecessor.
pub fn new_secret_arn(region: &str, account_id: &str, name: &str, rng: &mut impl Rng) -> String {
    let suffix: String = (0..6).map(|_| SUFFIX_ALPHABET[rng.gen_range(0..SUFFIX_ALPHABET.len())] as char).collect();
    format!("arn:{}:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}", partition_for_region(region))
}

/// The parts of a Secrets Manager secret ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArn<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    /// Everything after `secret:`: the name, possibly followed by `-XXXXXX`.
    pub resource: &'a str,
}

/// Parses `arn:<partition>:secretsmanager:<region>:<account>:secret:<rest>`; `None` for anything else.
pub fn parse_secret_arn(s: &str) -> Option<SecretArn<'_>> {
    let mut parts = s.splitn(7, ':');
    let (arn, _partition, service, region, account, kind, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if arn != "arn" || service != "secretsmanager" || kind != "secret" || resource.is_empty() {
        return None;
    }
    Some(SecretArn { region, account_id: account, resource })
}

/// Whether `resource` ends in `-` and six letters or digits, the shape of the random ARN suffix.
pub fn has_random_suffix(resource: &str) -> bool {
    let b = resource.as_bytes();
    b.len() > 7 && b[b.len() - 7] == b'-' && b[b.len() - 6..].iter().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_arn_has_six_char_suffix_and_partition() {
        let mut rng = rand::thread_rng();
        let arn = new_secret_arn("us-east-1", "123456789012", "/prod/db", &mut rng);
        assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:/prod/db-"));
        assert!(has_random_suffix(parse_secret_arn(&arn).unwrap().resource));
        let cn = new_secret_arn("cn-north-1", "1", "x", &mut rng);
        assert!(cn.starts_with("arn:aws-cn:"));
    }

    #[test]
    fn parses_full_and_partial_arns() {
        let p = parse_secret_arn("arn:aws:secretsmanager:eu-west-1:111:secret:a/b:c-AbC123").unwrap();
        assert_eq!(p.region, "eu-west-1");
        assert_eq!(p.account_id, "111");
        assert_eq!(p.resource, "a/b:c-AbC123");
        assert!(parse_secret_arn("arn:aws:ssm:eu-west-1:111:parameter/x").is_none());
        assert!(parse_secret_arn("my-secret").is_none());
        assert!(parse_secret_arn("arn:aws:secretsmanager:r:a:secret:").is_none());
    }

    #[test]
    fn suffix_shape() {
        assert!(has_random_suffix("name-AbC123"));
        assert!(!has_random_suffix("name-AbC12"));
        assert!(!has_random_suffix("-AbC123"));
        assert!(!has_random_suffix("name_AbC123"));
    }
}
