//! Parsing and validation: valid shapes, and every malformed shape with its error location.

use coffer_policy::{check_size, Effect, Policy, PolicyError, PolicyKind, PrincipalEntry, SizeLimit, Version};

const ID: PolicyKind = PolicyKind::Identity;
const RES: PolicyKind = PolicyKind::Resource;

#[test]
fn valid_documents() {
    // (name, kind, document, statements)
    let cases: &[(&str, PolicyKind, &str, usize)] = &[
        ("single statement object", ID, r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#, 1),
        ("statement list", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:Delete*","Resource":"*"}]}"#, 2),
        ("old version", ID, r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#, 1),
        ("no version", ID, r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#, 1),
        ("id element", ID, r#"{"Version":"2012-10-17","Id":"my-policy","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#, 1),
        ("sid", ID, r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly1","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#, 1),
        ("action list", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParameters"],"Resource":"*"}]}"#, 1),
        ("not action", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#, 1),
        ("not resource", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","NotResource":["arn:aws:s3:::a","arn:aws:s3:::b"]}]}"#, 1),
        ("action star", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#, 1),
        ("condition", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"n":5}}}]}"#, 1),
        ("variable in resource", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}"#, 1),
        ("variable with default", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username, 'anon'}/*"}]}"#, 1),
        ("resource principal star", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#, 1),
        ("resource principal AWS string", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"secretsmanager:*","Resource":"*"}]}"#, 1),
        ("resource principal AWS list", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/app","111122223333"]},"Action":"secretsmanager:*","Resource":"*"}]}"#, 1),
        ("resource principal service", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"secretsmanager:*","Resource":"*"}]}"#, 1),
        ("resource not principal", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/admin"},"Action":"*","Resource":"*"}]}"#, 1),
        ("resource sid with spaces", RES, r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#, 1),
        ("resource without Resource", RES, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}"#, 1),
        ("whitespace and newlines", ID, "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"kms:Decrypt\", \"Resource\": \"*\"}\n  ]\n}", 1),
        ("ifexists and qualifier", ID, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["env*"]}}}]}"#, 1),
    ];
    for (name, kind, doc, n) in cases {
        let p = Policy::parse(*name, doc, *kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.statements().len(), *n, "{name}");
        assert_eq!(p.id(), *name);
        assert_eq!(p.kind(), *kind);
    }
}

#[test]
fn parsed_details() {
    let p = Policy::parse(
        "p",
        r#"{"Version":"2012-10-17","Id":"doc","Statement":[{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ID,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.version(), Version::V2012_10_17);
    assert_eq!(p.document_id(), Some("doc"));
    assert_eq!(p.statements()[0].sid(), Some("A"));
    assert_eq!(p.statements()[0].effect(), Effect::Deny);
    assert_eq!(p.statements()[0].principals().0, &[] as &[PrincipalEntry]);

    let none = Policy::parse("p", r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, ID)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.version(), Version::V2008_10_17);

    let r = Policy::parse(
        "r",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666","*","arn:aws:iam::111122223333:user/bob"],"Service":"ssm.amazonaws.com"},"Action":"*","Resource":"*"}]}"#,
        RES,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (entries, not) = r.statements()[0].principals();
    assert!(!not);
    assert!(entries.contains(&PrincipalEntry::Account("111122223333".into())));
    assert!(entries.contains(&PrincipalEntry::Account("444455556666".into())));
    assert!(entries.contains(&PrincipalEntry::Any));
    assert!(entries.contains(&PrincipalEntry::Arn("arn:aws:iam::111122223333:user/bob".into())));
    assert!(entries.contains(&PrincipalEntry::Service("ssm.amazonaws.com".into())));
}

#[test]
fn malformed_documents() {
    // (name, kind, document, expected error text)
    let s = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
    let ok = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;
    let cases: Vec<(&str, PolicyKind, String, &str)> = vec![
        ("not an object", ID, "[]".into(), "(document): must be a JSON object"),
        (
            "unknown top element",
            ID,
            r#"{"Version":"2012-10-17","Statment":[]}"#.into(),
            "Statment: unknown policy element",
        ),
        (
            "bad version",
            ID,
            r#"{"Version":"2020-01-01","Statement":[]}"#.into(),
            "Version: must be 2012-10-17 or 2008-10-17",
        ),
        (
            "version not string",
            ID,
            r#"{"Version":2012,"Statement":[]}"#.into(),
            "Version: must be 2012-10-17 or 2008-10-17",
        ),
        ("id not string", ID, r#"{"Version":"2012-10-17","Id":1,"Statement":[]}"#.into(), "Id: must be a string"),
        ("missing statement", ID, r#"{"Version":"2012-10-17"}"#.into(), "Statement: is missing"),
        (
            "empty statement list",
            ID,
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            "Statement: must contain at least one statement",
        ),
        (
            "statement string",
            ID,
            r#"{"Version":"2012-10-17","Statement":"x"}"#.into(),
            "Statement: must be an object or a list of objects",
        ),
        ("statement item not object", ID, s(&format!("{ok},5")), "Statement[1]: must be an object"),
        (
            "bad effect",
            ID,
            s(&format!(r#"{ok},{{"Effect":"Permit","Action":"*","Resource":"*"}}"#)),
            "Statement[1].Effect: must be Allow or Deny",
        ),
        (
            "lowercase effect",
            ID,
            s(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#),
            "Statement[0].Effect: must be Allow or Deny",
        ),
        (
            "effect not string",
            ID,
            s(r#"{"Effect":true,"Action":"*","Resource":"*"}"#),
            "Statement[0].Effect: must be Allow or Deny",
        ),
        ("missing effect", ID, s(r#"{"Action":"*","Resource":"*"}"#), "Statement[0]: is missing Effect"),
        (
            "both action and notaction",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}"#),
            "Statement[0]: has both Action and NotAction",
        ),
        (
            "both resource and notresource",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}"#),
            "Statement[0]: has both Resource and NotResource",
        ),
        (
            "both principal and notprincipal",
            RES,
            s(r#"{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"*"}"#),
            "Statement[0]: has both Principal and NotPrincipal",
        ),
        (
            "missing action",
            ID,
            s(r#"{"Effect":"Allow","Resource":"*"}"#),
            "Statement[0]: must contain Action or NotAction",
        ),
        (
            "missing resource",
            ID,
            s(r#"{"Effect":"Allow","Action":"*"}"#),
            "Statement[0]: must contain Resource or NotResource",
        ),
        (
            "empty action list",
            ID,
            s(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
            "Statement[0].Action: must not be empty",
        ),
        (
            "action number",
            ID,
            s(r#"{"Effect":"Allow","Action":5,"Resource":"*"}"#),
            "Statement[0].Action: must be a string or a list of strings",
        ),
        (
            "action list item number",
            ID,
            s(r#"{"Effect":"Allow","Action":["s3:Get",5],"Resource":"*"}"#),
            "Statement[0].Action[1]: must be a string",
        ),
        (
            "action without vendor",
            ID,
            s(r#"{"Effect":"Allow","Action":"GetSecretValue","Resource":"*"}"#),
            "Statement[0].Action: invalid action 'GetSecretValue'",
        ),
        (
            "action bad chars",
            ID,
            s(r#"{"Effect":"Allow","Action":["s3:Get","s3:Get Object"],"Resource":"*"}"#),
            "Statement[0].Action[1]: invalid action 's3:Get Object'",
        ),
        (
            "notaction without vendor",
            ID,
            s(r#"{"Effect":"Allow","NotAction":"iam","Resource":"*"}"#),
            "Statement[0].NotAction: invalid action 'iam'",
        ),
        (
            "resource not arn",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"my-secret"}"#),
            "Statement[0].Resource: resource 'my-secret' must be an ARN or *",
        ),
        (
            "resource list item not arn",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":["*","x"]}"#),
            "Statement[0].Resource[1]: resource 'x' must be an ARN or *",
        ),
        (
            "notresource not arn",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","NotResource":"x"}"#),
            "Statement[0].NotResource: resource 'x' must be an ARN or *",
        ),
        (
            "empty resource list",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":[]}"#),
            "Statement[0].Resource: must not be empty",
        ),
        (
            "unknown statement element",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Actions":"*"}"#),
            "Statement[0]: unknown element Actions",
        ),
        (
            "sid not string",
            ID,
            s(r#"{"Sid":1,"Effect":"Allow","Action":"*","Resource":"*"}"#),
            "Statement[0].Sid: must be a string",
        ),
        (
            "identity sid with space",
            ID,
            s(r#"{"Sid":"a b","Effect":"Allow","Action":"*","Resource":"*"}"#),
            "Statement[0].Sid: must be alphanumeric",
        ),
        (
            "duplicate sid",
            ID,
            s(
                r#"{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}"#,
            ),
            "Statement[1].Sid: duplicate Sid A",
        ),
        (
            "principal in identity",
            ID,
            s(r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}"#),
            "Statement[0].Principal: an identity-based policy must not specify a principal",
        ),
        (
            "notprincipal in identity",
            ID,
            s(r#"{"Effect":"Allow","NotPrincipal":"*","Action":"*","Resource":"*"}"#),
            "Statement[0].NotPrincipal: an identity-based policy must not specify a principal",
        ),
        (
            "resource policy without principal",
            RES,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#),
            "Statement[0]: must contain Principal or NotPrincipal",
        ),
        (
            "principal string not star",
            RES,
            s(r#"{"Effect":"Allow","Principal":"bob","Action":"*"}"#),
            "Statement[0].Principal: must be \"*\" or an object",
        ),
        (
            "principal empty object",
            RES,
            s(r#"{"Effect":"Allow","Principal":{},"Action":"*"}"#),
            "Statement[0].Principal: must be \"*\" or an object",
        ),
        (
            "principal unknown type",
            RES,
            s(r#"{"Effect":"Allow","Principal":{"Users":"x"},"Action":"*"}"#),
            "Statement[0].Principal.Users: unknown principal type",
        ),
        (
            "principal bad aws",
            RES,
            s(r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"*"}"#),
            "Statement[0].Principal.AWS: invalid principal 'bob'",
        ),
        (
            "principal wildcard arn",
            RES,
            s(
                r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/a","arn:aws:iam::111122223333:user/*"]},"Action":"*"}"#,
            ),
            "Statement[0].Principal.AWS[1]: invalid principal",
        ),
        (
            "principal short account",
            RES,
            s(r#"{"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"*"}"#),
            "Statement[0].Principal.AWS: invalid principal '12345'",
        ),
        (
            "principal aws number",
            RES,
            s(r#"{"Effect":"Allow","Principal":{"AWS":123},"Action":"*"}"#),
            "Statement[0].Principal.AWS: must be a string or a list of strings",
        ),
        (
            "condition not object",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":[]}"#),
            "Statement[0].Condition: must be an object of condition operators",
        ),
        (
            "unknown operator",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqual":{"a":"b"}}}"#),
            "Statement[0].Condition.StringEqual: unknown condition operator StringEqual",
        ),
        (
            "unknown qualifier",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"a":"b"}}}"#),
            "unknown condition operator ForSomeValues:StringEquals",
        ),
        (
            "null ifexists",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"a":"true"}}}"#),
            "unknown condition operator NullIfExists",
        ),
        (
            "operator block not object",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}"#),
            "Statement[0].Condition.StringEquals: must be an object of condition keys",
        ),
        (
            "operator block empty",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}"#),
            "Statement[0].Condition.StringEquals: must name at least one condition key",
        ),
        (
            "condition value object",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}"#),
            "Statement[0].Condition.StringEquals.k: condition values must be strings",
        ),
        (
            "condition value list item null",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":["a",null]}}}"#),
            "Statement[0].Condition.StringEquals.k[1]: condition values must be strings",
        ),
        (
            "bad number",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"k":"ten"}}}"#),
            "Statement[0].Condition.NumericLessThan.k: invalid number 'ten'",
        ),
        (
            "bad date",
            ID,
            s(
                r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}"#,
            ),
            "Statement[0].Condition.DateLessThan.aws:CurrentTime: invalid date 'tomorrow'",
        ),
        (
            "bad bool",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}"#),
            "Statement[0].Condition.Bool.aws:SecureTransport: 'yes' is not true or false",
        ),
        (
            "bad null",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"k":"maybe"}}}"#),
            "'maybe' is not true or false",
        ),
        (
            "bad cidr",
            ID,
            s(
                r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","10.0.0.0/33"]}}}"#,
            ),
            "Statement[0].Condition.IpAddress.aws:SourceIp[1]: invalid IP address or CIDR '10.0.0.0/33'",
        ),
        (
            "bad ip",
            ID,
            s(
                r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"300.1.1.1"}}}"#,
            ),
            "invalid IP address or CIDR '300.1.1.1'",
        ),
        (
            "bad variable default",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${aws:username, anon}"}"#),
            "Statement[0].Resource: policy variable ${aws:username, anon}: the default value must be in single quotes",
        ),
        (
            "empty variable",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/${}"}"#),
            "Statement[0].Resource: invalid policy variable ${}",
        ),
        (
            "bad variable in condition",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":"${a b}"}}}"#),
            "Statement[0].Condition.StringEquals.k: invalid policy variable",
        ),
        (
            "condition key with space",
            ID,
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a b":"x"}}}"#),
            "Statement[0].Condition.StringEquals.a b: invalid condition key",
        ),
        (
            "second statement location",
            ID,
            s(&format!(
                r#"{ok},{ok},{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"Bogus":{{"a":"b"}}}}}}"#
            )),
            "Statement[2].Condition.Bogus: unknown condition operator Bogus",
        ),
        (
            "single statement object location",
            ID,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#.into(),
            "Statement.Effect: must be Allow or Deny",
        ),
    ];
    for (name, kind, doc, want) in &cases {
        match Policy::parse("p", doc, *kind) {
            Ok(_) => panic!("{name}: accepted {doc}"),
            Err(e) => {
                let got = e.to_string();
                assert!(got.contains(want), "{name}: got {got:?}, want it to contain {want:?}");
                assert!(e.location().is_some(), "{name}: no location");
            }
        }
    }
}

#[test]
fn bad_json_reports_line_and_column() {
    let cases: &[(&str, &str, usize, usize)] = &[
        ("trailing comma", "{\n  \"Version\": \"2012-10-17\",\n}", 3, 1),
        ("unterminated string", "{\"Version\": \"2012", 1, 17),
        ("garbage", "not json", 1, 2),
        ("empty", "", 1, 0),
        ("missing colon on line 2", "{\n \"Statement\" []}", 2, 14),
    ];
    for (name, doc, line, column) in cases {
        match Policy::parse("p", doc, PolicyKind::Identity) {
            Err(PolicyError::Json { line: l, column: c, message }) => {
                assert_eq!((l, c), (*line, *column), "{name}: {message}");
                assert!(!message.contains(" at line "), "{name}: position repeated in {message}");
                let shown = PolicyError::Json { line: l, column: c, message }.to_string();
                assert!(shown.starts_with(&format!("invalid JSON at line {line}, column {column}")), "{name}: {shown}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn size_limits() {
    let big_identity = format!(r#"{{"Version":"2012-10-17","Statement":{{"Sid":"{}"}}}}"#, "a".repeat(6_200));
    let cases: Vec<(&str, String, SizeLimit, bool)> = vec![
        ("small identity", "{}".into(), SizeLimit::IDENTITY, true),
        ("identity at limit", "a".repeat(6_144), SizeLimit::IDENTITY, true),
        ("identity over limit", "a".repeat(6_145), SizeLimit::IDENTITY, false),
        (
            "identity whitespace not counted",
            format!("{}{}", "a".repeat(6_000), " ".repeat(1_000)),
            SizeLimit::IDENTITY,
            true,
        ),
        ("big identity document", big_identity, SizeLimit::IDENTITY, false),
        ("resource at limit", "a".repeat(20_480), SizeLimit::SECRETS_MANAGER_RESOURCE, true),
        ("resource over limit", "a".repeat(20_481), SizeLimit::SECRETS_MANAGER_RESOURCE, false),
        (
            "resource whitespace counted",
            format!("{}{}", "a".repeat(20_000), " ".repeat(1_000)),
            SizeLimit::SECRETS_MANAGER_RESOURCE,
            false,
        ),
        ("multibyte counted as characters", "é".repeat(6_144), SizeLimit::IDENTITY, true),
    ];
    for (name, doc, limit, ok) in &cases {
        let r = check_size(doc, *limit);
        assert_eq!(r.is_ok(), *ok, "{name}: {r:?}");
        if let Err(e) = r {
            assert!(matches!(e, PolicyError::TooLarge { limit: l, .. } if l == limit.max_chars), "{name}");
            assert!(e.to_string().contains("the limit is"), "{name}");
        }
    }
}

#[test]
fn truncated_and_mutated_documents_never_panic() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["ssm:Get*"],"Resource":"arn:aws:ssm:*:*:parameter/${aws:username}/*","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["${aws:PrincipalTag/x, 'd'}*"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"ArnLike":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:role/*"}}}]}"#;
    let mut cuts = 0;
    for (i, _) in doc.char_indices() {
        for kind in [PolicyKind::Identity, PolicyKind::Resource] {
            let _ = Policy::parse("p", &doc[..i], kind);
            let mut mutated = doc.to_owned();
            mutated.replace_range(i..i + 1, "}");
            let _ = Policy::parse("p", &mutated, kind);
            mutated.replace_range(i..i + 1, "$");
            let _ = Policy::parse("p", &mutated, kind);
        }
        cuts += 1;
    }
    assert!(cuts > 100);
    assert!(Policy::parse("p", doc, PolicyKind::Identity).is_ok());
}
