//! Every condition operator with present and missing keys, IfExists, set qualifiers, IP ranges,
//! dates and variables in condition values.

mod common;
use coffer_policy::RequestContext;
use common::*;

type Ctx = fn(RequestContext) -> RequestContext;

fn none(c: RequestContext) -> RequestContext {
    c
}

fn run(cases: &[(&str, Ctx, bool)]) {
    for (i, (cond, add, want)) in cases.iter().enumerate() {
        let p = allow_with_condition(cond);
        let c = add(ctx("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:x"));
        assert_eq!(allowed(&[p], None, &c), *want, "case {i}: {cond}");
    }
}

#[test]
fn string_operators() {
    run(&[
        (r#"{"StringEquals":{"k":"abc"}}"#, |c| c.with_value("k", "abc"), true),
        (r#"{"StringEquals":{"k":"abc"}}"#, |c| c.with_value("k", "ABC"), false),
        (r#"{"StringEquals":{"k":"abc"}}"#, |c| c.with_value("k", "ab*"), false),
        (r#"{"StringEquals":{"k":"ab*"}}"#, |c| c.with_value("k", "abc"), false),
        (r#"{"StringEquals":{"k":"ab*"}}"#, |c| c.with_value("k", "ab*"), true),
        (r#"{"StringEquals":{"k":["x","abc"]}}"#, |c| c.with_value("k", "abc"), true),
        (r#"{"StringEquals":{"k":"abc"}}"#, none, false),
        (r#"{"StringEquals":{"K":"abc"}}"#, |c| c.with_value("k", "abc"), true),
        (r#"{"StringEquals":{"k":"abc"}}"#, |c| c.with_value("K", "abc"), true),
        (r#"{"StringNotEquals":{"k":"abc"}}"#, |c| c.with_value("k", "abd"), true),
        (r#"{"StringNotEquals":{"k":"abc"}}"#, |c| c.with_value("k", "abc"), false),
        (r#"{"StringNotEquals":{"k":["a","b"]}}"#, |c| c.with_value("k", "b"), false),
        (r#"{"StringNotEquals":{"k":["a","b"]}}"#, |c| c.with_value("k", "c"), true),
        (r#"{"StringNotEquals":{"k":"abc"}}"#, none, true),
        (r#"{"StringEqualsIgnoreCase":{"k":"AbC"}}"#, |c| c.with_value("k", "aBc"), true),
        (r#"{"StringEqualsIgnoreCase":{"k":"AbC"}}"#, |c| c.with_value("k", "abd"), false),
        (r#"{"StringEqualsIgnoreCase":{"k":"AbC"}}"#, none, false),
        (r#"{"StringNotEqualsIgnoreCase":{"k":"AbC"}}"#, |c| c.with_value("k", "ABC"), false),
        (r#"{"StringNotEqualsIgnoreCase":{"k":"AbC"}}"#, |c| c.with_value("k", "xyz"), true),
        (r#"{"StringNotEqualsIgnoreCase":{"k":"AbC"}}"#, none, true),
        (r#"{"StringLike":{"k":"prod/*"}}"#, |c| c.with_value("k", "prod/db"), true),
        (r#"{"StringLike":{"k":"prod/*"}}"#, |c| c.with_value("k", "Prod/db"), false),
        (r#"{"StringLike":{"k":"prod/??"}}"#, |c| c.with_value("k", "prod/db"), true),
        (r#"{"StringLike":{"k":"prod/??"}}"#, |c| c.with_value("k", "prod/dbx"), false),
        (r#"{"StringLike":{"k":["dev/*","prod/*"]}}"#, |c| c.with_value("k", "dev/x"), true),
        (r#"{"StringLike":{"k":"prod/*"}}"#, none, false),
        (r#"{"StringNotLike":{"k":"prod/*"}}"#, |c| c.with_value("k", "dev/db"), true),
        (r#"{"StringNotLike":{"k":"prod/*"}}"#, |c| c.with_value("k", "prod/db"), false),
        (r#"{"StringNotLike":{"k":"prod/*"}}"#, none, true),
        (r#"{"StringLike":{"k":"a${*}b"}}"#, |c| c.with_value("k", "a*b"), true),
        (r#"{"StringLike":{"k":"a${*}b"}}"#, |c| c.with_value("k", "axb"), false),
        (r#"{"StringEquals":{"k":""}}"#, |c| c.with_value("k", ""), true),
    ]);
}

#[test]
fn numeric_operators() {
    run(&[
        (r#"{"NumericEquals":{"n":"10"}}"#, |c| c.with_value("n", "10"), true),
        (r#"{"NumericEquals":{"n":10}}"#, |c| c.with_value("n", "10.0"), true),
        (r#"{"NumericEquals":{"n":"10"}}"#, |c| c.with_value("n", "11"), false),
        (r#"{"NumericEquals":{"n":"10"}}"#, |c| c.with_value("n", "ten"), false),
        (r#"{"NumericEquals":{"n":"10"}}"#, none, false),
        (r#"{"NumericNotEquals":{"n":"10"}}"#, |c| c.with_value("n", "11"), true),
        (r#"{"NumericNotEquals":{"n":"10"}}"#, |c| c.with_value("n", "10"), false),
        (r#"{"NumericNotEquals":{"n":"10"}}"#, none, true),
        (r#"{"NumericLessThan":{"n":"10"}}"#, |c| c.with_value("n", "9"), true),
        (r#"{"NumericLessThan":{"n":"10"}}"#, |c| c.with_value("n", "10"), false),
        (r#"{"NumericLessThan":{"n":"10"}}"#, |c| c.with_value("n", "-3.5"), true),
        (r#"{"NumericLessThan":{"n":"10"}}"#, none, false),
        (r#"{"NumericLessThanEquals":{"n":"10"}}"#, |c| c.with_value("n", "10"), true),
        (r#"{"NumericLessThanEquals":{"n":"10"}}"#, |c| c.with_value("n", "10.01"), false),
        (r#"{"NumericGreaterThan":{"n":"10"}}"#, |c| c.with_value("n", "11"), true),
        (r#"{"NumericGreaterThan":{"n":"10"}}"#, |c| c.with_value("n", "10"), false),
        (r#"{"NumericGreaterThanEquals":{"n":"10"}}"#, |c| c.with_value("n", "10"), true),
        (r#"{"NumericGreaterThanEquals":{"n":"10"}}"#, |c| c.with_value("n", "9"), false),
        (r#"{"NumericGreaterThanEquals":{"n":"10"}}"#, none, false),
        (r#"{"NumericLessThan":{"n":["5","20"]}}"#, |c| c.with_value("n", "15"), true),
    ]);
}

#[test]
fn date_operators() {
    // 2024-06-01T00:00:00Z = 1717200000 s.
    const JUNE: i64 = 1_717_200_000_000;
    run(&[
        (r#"{"DateLessThan":{"aws:CurrentTime":"2024-07-01T00:00:00Z"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateLessThan":{"aws:CurrentTime":"2024-05-01T00:00:00Z"}}"#, |c| c.with_current_time_millis(JUNE), false),
        (r#"{"DateLessThan":{"aws:CurrentTime":"2024-06-01T00:00:00Z"}}"#, |c| c.with_current_time_millis(JUNE), false),
        (
            r#"{"DateLessThanEquals":{"aws:CurrentTime":"2024-06-01T00:00:00Z"}}"#,
            |c| c.with_current_time_millis(JUNE),
            true,
        ),
        (r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateGreaterThan":{"aws:CurrentTime":"2025-01-01"}}"#, |c| c.with_current_time_millis(JUNE), false),
        (
            r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-06-01T02:00:00+02:00"}}"#,
            |c| c.with_current_time_millis(JUNE),
            true,
        ),
        (r#"{"DateEquals":{"aws:CurrentTime":"2024-06-01T00:00:00Z"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateEquals":{"aws:CurrentTime":"1717200000"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateEquals":{"aws:EpochTime":"2024-06-01T00:00:00Z"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateNotEquals":{"aws:CurrentTime":"2024-06-01T00:00:01Z"}}"#, |c| c.with_current_time_millis(JUNE), true),
        (
            r#"{"DateNotEquals":{"aws:CurrentTime":"2024-06-01T00:00:00Z"}}"#,
            |c| c.with_current_time_millis(JUNE),
            false,
        ),
        (r#"{"DateLessThan":{"aws:EpochTime":1717200001}}"#, |c| c.with_current_time_millis(JUNE), true),
        (r#"{"DateLessThan":{"aws:CurrentTime":"2024-07-01T00:00:00Z"}}"#, none, false),
        (r#"{"DateNotEquals":{"aws:CurrentTime":"2024-07-01T00:00:00Z"}}"#, none, true),
        (
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-05-31T23:59:59.999Z"}}"#,
            |c| c.with_current_time_millis(JUNE),
            true,
        ),
        (r#"{"DateLessThan":{"k":"2024-01-01T00:00:00Z"}}"#, |c| c.with_value("k", "not a date"), false),
        (r#"{"DateLessThan":{"aws:CurrentTime":"1970-01-02"}}"#, |c| c.with_current_time_millis(0), true),
    ]);
}

#[test]
fn bool_binary_and_null() {
    run(&[
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, |c| c.with_secure_transport(true), true),
        (r#"{"Bool":{"aws:SecureTransport":true}}"#, |c| c.with_secure_transport(true), true),
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, |c| c.with_secure_transport(false), false),
        (r#"{"Bool":{"aws:SecureTransport":"false"}}"#, |c| c.with_secure_transport(false), true),
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, none, false),
        (r#"{"Bool":{"aws:MultiFactorAuthPresent":"TRUE"}}"#, |c| c.with_mfa(true), true),
        (
            r#"{"Bool":{"aws:MultiFactorAuthPresent":"true"}}"#,
            |c| c.with_value("aws:MultiFactorAuthPresent", "garbage"),
            false,
        ),
        (r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}"#, none, true),
        (r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}"#, |c| c.with_mfa(true), false),
        (r#"{"BinaryEquals":{"k":"QmluYXJ5"}}"#, |c| c.with_value("k", "QmluYXJ5"), true),
        (r#"{"BinaryEquals":{"k":"QmluYXJ5"}}"#, |c| c.with_value("k", "other"), false),
        (r#"{"Null":{"k":"true"}}"#, none, true),
        (r#"{"Null":{"k":"true"}}"#, |c| c.with_value("k", "v"), false),
        (r#"{"Null":{"k":"false"}}"#, |c| c.with_value("k", "v"), true),
        (r#"{"Null":{"k":"false"}}"#, none, false),
        (r#"{"Null":{"k":true}}"#, |c| c.with_values("k", Vec::<String>::new()), true),
        (r#"{"Null":{"aws:MultiFactorAuthPresent":"false"}}"#, |c| c.with_mfa(false), true),
    ]);
}

#[test]
fn ip_addresses() {
    run(&[
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, |c| c.with_source_ip("203.0.113.7"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, |c| c.with_source_ip("203.0.114.7"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}"#, |c| c.with_source_ip("203.0.113.5"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}"#, |c| c.with_source_ip("203.0.113.6"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("10.255.255.255"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("11.0.0.0"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, |c| c.with_source_ip("8.8.8.8"), true),
        (r#"{"IpAddress":{"aws:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}}"#, |c| c.with_source_ip("10.1.1.1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, none, false),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("not-an-ip"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, |c| c.with_source_ip("2001:db8:1234::1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, |c| c.with_source_ip("2001:db9::1"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, |c| c.with_source_ip("10.0.0.1"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("2001:db8::1"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("::ffff:10.2.3.4"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"::/0"}}"#, |c| c.with_source_ip("fe80::1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::1/128"}}"#, |c| c.with_source_ip("2001:db8::1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:db8::1/128"}}"#, |c| c.with_source_ip("2001:db8::2"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/31"}}"#, |c| c.with_source_ip("10.0.0.1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/31"}}"#, |c| c.with_source_ip("10.0.0.2"), false),
        (r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("192.0.2.1"), true),
        (r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("10.0.0.1"), false),
        (r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, none, true),
        (
            r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#,
            |c| c.with_source_ip("2001:db8::5"),
            false,
        ),
    ]);
}

#[test]
fn arn_operators() {
    const ROLE: &str = "arn:aws:iam::111122223333:role/app";
    run(&[
        (
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:role/app"}}"#,
            |c| c.with_value("aws:SourceArn", ROLE),
            true,
        ),
        (
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:role/other"}}"#,
            |c| c.with_value("aws:SourceArn", ROLE),
            false,
        ),
        (r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:iam::*:role/app"}}"#, |c| c.with_value("aws:SourceArn", ROLE), true),
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:role/*"}}"#, |c| c.with_value("aws:SourceArn", ROLE), true),
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:user/*"}}"#, |c| c.with_value("aws:SourceArn", ROLE), false),
        (
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::1111222233?3:role/app"}}"#,
            |c| c.with_value("aws:SourceArn", ROLE),
            true,
        ),
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:*:role/app"}}"#, |c| c.with_value("aws:SourceArn", ROLE), false),
        (r#"{"ArnLike":{"aws:SourceArn":"*"}}"#, |c| c.with_value("aws:SourceArn", ROLE), true),
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam:*:role/app"}}"#, |c| c.with_value("aws:SourceArn", ROLE), false),
        (
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:ssm:*:*:parameter/a:b*"}}"#,
            |c| c.with_value("aws:SourceArn", "arn:aws:ssm:us-east-1:1:parameter/a:bc"),
            true,
        ),
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:role/app"}}"#, none, false),
        (
            r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:role/app"}}"#,
            |c| c.with_value("aws:SourceArn", ROLE),
            false,
        ),
        (
            r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:role/x"}}"#,
            |c| c.with_value("aws:SourceArn", ROLE),
            true,
        ),
        (r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:iam::*:role/*"}}"#, |c| c.with_value("aws:SourceArn", ROLE), false),
        (r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:iam::*:role/*"}}"#, none, true),
        (r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:user/*"}}"#, none, true),
    ]);
}

#[test]
fn if_exists_and_combinations() {
    run(&[
        (r#"{"StringEqualsIfExists":{"k":"a"}}"#, none, true),
        (r#"{"StringEqualsIfExists":{"k":"a"}}"#, |c| c.with_value("k", "a"), true),
        (r#"{"StringEqualsIfExists":{"k":"a"}}"#, |c| c.with_value("k", "b"), false),
        (r#"{"StringNotEqualsIfExists":{"k":"a"}}"#, none, true),
        (r#"{"StringNotEqualsIfExists":{"k":"a"}}"#, |c| c.with_value("k", "a"), false),
        (r#"{"StringLikeIfExists":{"k":"a*"}}"#, |c| c.with_value("k", "abc"), true),
        (r#"{"NumericLessThanIfExists":{"n":"5"}}"#, none, true),
        (r#"{"NumericLessThanIfExists":{"n":"5"}}"#, |c| c.with_value("n", "6"), false),
        (r#"{"DateLessThanIfExists":{"aws:CurrentTime":"2020-01-01"}}"#, none, true),
        (r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, none, true),
        (r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, |c| c.with_source_ip("192.0.2.1"), false),
        (r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:s3:::*"}}"#, none, true),
        (r#"{"stringequalsifexists":{"k":"a"}}"#, |c| c.with_value("k", "a"), true),
        // Keys in one operator block are ANDed.
        (r#"{"StringEquals":{"a":"1","b":"2"}}"#, |c| c.with_value("a", "1").with_value("b", "2"), true),
        (r#"{"StringEquals":{"a":"1","b":"2"}}"#, |c| c.with_value("a", "1").with_value("b", "3"), false),
        (r#"{"StringEquals":{"a":"1","b":"2"}}"#, |c| c.with_value("a", "1"), false),
        // Operators are ANDed.
        (
            r#"{"StringEquals":{"a":"1"},"Bool":{"aws:SecureTransport":"true"}}"#,
            |c| c.with_value("a", "1").with_secure_transport(true),
            true,
        ),
        (
            r#"{"StringEquals":{"a":"1"},"Bool":{"aws:SecureTransport":"true"}}"#,
            |c| c.with_value("a", "1").with_secure_transport(false),
            false,
        ),
        (
            r#"{"StringEquals":{"a":"1"},"NumericLessThan":{"n":"3"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            |c| c.with_value("a", "1").with_value("n", "2").with_source_ip("10.9.9.9"),
            true,
        ),
        (
            r#"{"StringEquals":{"a":"1"},"NumericLessThan":{"n":"3"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            |c| c.with_value("a", "1").with_value("n", "4").with_source_ip("10.9.9.9"),
            false,
        ),
        // Empty condition block: no constraint.
        (r#"{}"#, none, true),
    ]);
}

#[test]
fn set_qualifiers() {
    run(&[
        (
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env", "owner"]),
            true,
        ),
        (
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            |c| c.with_values("aws:TagKeys", ["owner"]),
            false,
        ),
        (
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#,
            |c| c.with_values("aws:TagKeys", Vec::<String>::new()),
            false,
        ),
        (r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#, none, false),
        (
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env", "team"]),
            true,
        ),
        (
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env"]),
            true,
        ),
        (
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env", "owner"]),
            false,
        ),
        (
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#,
            |c| c.with_values("aws:TagKeys", Vec::<String>::new()),
            true,
        ),
        (r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#, none, true),
        (
            r#"{"ForAllValues:StringLike":{"aws:TagKeys":["app-*"]}}"#,
            |c| c.with_values("aws:TagKeys", ["app-a", "app-b"]),
            true,
        ),
        (
            r#"{"ForAllValues:StringLike":{"aws:TagKeys":["app-*"]}}"#,
            |c| c.with_values("aws:TagKeys", ["app-a", "db"]),
            false,
        ),
        (
            r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["app-*"]}}"#,
            |c| c.with_values("aws:TagKeys", ["db", "app-x"]),
            true,
        ),
        (
            r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env", "x"]),
            true,
        ),
        (
            r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env"]),
            false,
        ),
        (
            r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
            |c| c.with_values("aws:TagKeys", ["a", "b"]),
            true,
        ),
        (
            r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
            |c| c.with_values("aws:TagKeys", ["a", "secret"]),
            false,
        ),
        (
            r#"{"ForAllValues:StringEqualsIgnoreCase":{"aws:TagKeys":["ENV"]}}"#,
            |c| c.with_values("aws:TagKeys", ["env", "Env"]),
            true,
        ),
        (r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["env"]}}"#, none, true),
        (r#"{"forallvalues:StringEquals":{"aws:TagKeys":["env"]}}"#, |c| c.with_values("aws:TagKeys", ["env"]), true),
        // A multivalued key without qualifier: any request value matching any policy value.
        (r#"{"StringEquals":{"aws:TagKeys":"env"}}"#, |c| c.with_values("aws:TagKeys", ["x", "env"]), true),
        (r#"{"StringNotEquals":{"aws:TagKeys":"env"}}"#, |c| c.with_values("aws:TagKeys", ["x", "env"]), false),
        (r#"{"StringEquals":{"aws:TagKeys":"env"}}"#, |c| c.with_values("aws:TagKeys", Vec::<String>::new()), false),
        (r#"{"ForAnyValue:NumericGreaterThan":{"n":"10"}}"#, |c| c.with_values("n", ["1", "20"]), true),
        (r#"{"ForAllValues:NumericGreaterThan":{"n":"10"}}"#, |c| c.with_values("n", ["1", "20"]), false),
    ]);
}

#[test]
fn variables_in_condition_values() {
    run(&[
        (
            r#"{"StringEquals":{"secretsmanager:ResourceTag/Owner":"${aws:username}"}}"#,
            |c| c.with_username("alice").with_value("secretsmanager:ResourceTag/Owner", "alice"),
            true,
        ),
        (
            r#"{"StringEquals":{"secretsmanager:ResourceTag/Owner":"${aws:username}"}}"#,
            |c| c.with_username("alice").with_value("secretsmanager:ResourceTag/Owner", "bob"),
            false,
        ),
        (
            r#"{"StringEquals":{"secretsmanager:ResourceTag/Owner":"${aws:username}"}}"#,
            |c| c.with_value("secretsmanager:ResourceTag/Owner", "${aws:username}"),
            false,
        ),
        (
            r#"{"StringNotEquals":{"secretsmanager:ResourceTag/Owner":"${aws:username}"}}"#,
            |c| c.with_value("secretsmanager:ResourceTag/Owner", "bob"),
            true,
        ),
        (
            r#"{"StringEquals":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team}"}}"#,
            |c| c.with_principal_tag("Team", "blue").with_value("aws:ResourceTag/Team", "blue"),
            true,
        ),
        (
            r#"{"StringEquals":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team}"}}"#,
            |c| c.with_value("aws:ResourceTag/Team", "blue"),
            false,
        ),
        (
            r#"{"StringLike":{"ssm:name":"/home/${aws:username}/*"}}"#,
            |c| c.with_username("alice").with_value("ssm:name", "/home/alice/key"),
            true,
        ),
        (
            r#"{"StringLike":{"ssm:name":"/home/${aws:username}/*"}}"#,
            |c| c.with_username("al*").with_value("ssm:name", "/home/alice/key"),
            false,
        ),
        (r#"{"StringEquals":{"k":"${aws:username, 'nobody'}"}}"#, |c| c.with_value("k", "nobody"), true),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:tenant":"${aws:PrincipalTag/tenant}"}}"#,
            |c| c.with_principal_tag("tenant", "t1").with_value("kms:EncryptionContext:tenant", "t1"),
            true,
        ),
    ]);
}

#[test]
fn context_helpers() {
    let c = RequestContext::new(
        "arn:aws:iam::111122223333:user/alice",
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:111122223333:key/k",
    )
    .with_current_time_millis(1_717_200_000_123)
    .with_principal_tag("Env", "prod");
    assert_eq!(c.account(), "111122223333");
    assert_eq!(c.get("aws:PrincipalAccount"), Some(&["111122223333".to_owned()][..]));
    assert_eq!(c.get("AWS:PRINCIPALARN"), Some(&["arn:aws:iam::111122223333:user/alice".to_owned()][..]));
    assert_eq!(c.get("aws:EpochTime"), Some(&["1717200000".to_owned()][..]));
    assert_eq!(c.get("aws:CurrentTime"), Some(&["2024-06-01T00:00:00.123Z".to_owned()][..]));
    assert_eq!(c.get("aws:PrincipalTag/env"), Some(&["prod".to_owned()][..]));
    assert_eq!(c.get("aws:username"), None);
    assert_eq!(c.action(), "kms:Decrypt");
}
