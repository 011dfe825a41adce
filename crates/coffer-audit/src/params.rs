//! What of a request and its answer goes into the audit event: identifiers only. Both directions
//! copy a fixed list of keys and drop everything else, so a field AWS adds tomorrow (or a value
//! someone puts where it does not belong) stays out of the log until it is listed here. Keys are
//! renamed the way CloudTrail renames them: the first character lowercased (`SecretId` becomes
//! `secretId`, `ARN` becomes `aRN`).

use serde_json::{Map, Value};

/// Request keys copied at any depth.
const REQUEST_KEYS: &[&str] = &[
    "SecretId",
    "Name",
    "Names",
    "VersionId",
    "VersionStage",
    "VersionStages",
    "MoveToVersionId",
    "RemoveFromVersionId",
    "ClientRequestToken",
    "KmsKeyId",
    "KeyId",
    "Path",
    "Recursive",
    "WithDecryption",
    "MaxResults",
    "Filters",
    "ParameterFilters",
    "Type",
    "Overwrite",
    "Tier",
    "DataType",
    "Labels",
    "ParameterVersion",
    "Label",
    "RecoveryWindowInDays",
    "ForceDeleteWithoutRecovery",
    "RotationLambdaARN",
    "RotationRules",
    "RotateImmediately",
    "AliasName",
    "TargetKeyId",
    "KeySpec",
    "KeyUsage",
    "NumberOfBytes",
    "EncryptionContext",
    "PendingWindowInDays",
    "RotationPeriodInDays",
    "TagKeys",
    "Tags",
    "IncludeDeprecated",
    "IncludePlannedDeletion",
    "SortOrder",
    "SecretIdList",
    "UserName",
    "GroupName",
    "RoleName",
    "PolicyName",
    "PolicyArn",
    "PolicySourceArn",
    "RoleArn",
    "RoleSessionName",
    "DurationSeconds",
    "SerialNumber",
    "VirtualMFADeviceName",
    "AccessKeyId",
    "Status",
    "ActionNames",
    "ResourceArns",
];

/// Further request keys copied only inside nested objects (filters, rotation rules).
const NESTED_REQUEST_KEYS: &[&str] =
    &["Key", "Values", "Option", "AutomaticallyAfterDays", "ScheduleExpression", "Duration"];

/// Keys that hold values, credentials, policy documents or paging state: never copied, at any depth,
/// whatever the lists above say.
const NEVER: &[&str] = &[
    "SecretString",
    "SecretBinary",
    "Value",
    "Plaintext",
    "CiphertextBlob",
    "Password",
    "SecretAccessKey",
    "SessionToken",
    "TokenCode",
    "AuthenticationCode1",
    "AuthenticationCode2",
    "PolicyDocument",
    "ResourcePolicy",
    "AssumeRolePolicyDocument",
    "Policy",
    "NextToken",
];

/// Response keys copied as plain values (strings, numbers, booleans, lists of them).
const RESPONSE_KEYS: &[&str] = &[
    "ARN",
    "Arn",
    "Name",
    "VersionId",
    "VersionStages",
    "Version",
    "Tier",
    "KeyId",
    "KeyState",
    "DeletionDate",
    "CreationDate",
    "CreatedDate",
    "AccessKeyId",
    "UserName",
    "UserId",
    "RoleId",
    "RoleName",
    "PolicyId",
    "GroupName",
    "AliasName",
];

/// Response objects copied with only their identifying fields.
const RESPONSE_RECORDS: &[(&str, &[&str])] = &[
    ("AssumedRoleUser", &["Arn", "AssumedRoleId"]),
    ("Credentials", &["AccessKeyId", "Expiration"]),
    ("KeyMetadata", &["KeyId", "Arn", "KeyState"]),
    ("AccessKey", &["AccessKeyId", "UserName", "Status"]),
    ("User", &["UserName", "Arn", "UserId"]),
    ("Role", &["RoleName", "Arn", "RoleId"]),
    ("Group", &["GroupName", "Arn", "GroupId"]),
    // IAM's policy record (CreatePolicy, GetPolicy). A `Policy` that is a document (a string, as
    // KMS's GetKeyPolicy answers) is not an object and is dropped like every `NEVER` key.
    ("Policy", &["PolicyName", "Arn", "PolicyId"]),
];

/// Deeper than any AWS request goes; anything below is dropped rather than walked.
const MAX_DEPTH: usize = 8;

/// The request's identifiers as CloudTrail's `requestParameters`; `Null` when none are left.
pub fn request_parameters(input: &Value) -> Value {
    match input {
        Value::Object(map) => non_empty(request_object(map, 0)),
        _ => Value::Null,
    }
}

/// Whether a top-level request member is one [`request_parameters`] may keep (some of it), so a
/// front-end can skip parsing the others (a secret value among them) at all.
pub fn keeps_request_key(key: &str) -> bool {
    request_key_allowed(key, 0)
}

/// The answer's identifiers as CloudTrail's `responseElements`; `Null` when none are left.
pub fn response_elements(output: &Value) -> Value {
    let Value::Object(map) = output else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (key, value) in map {
        let key = key.as_str();
        if RESPONSE_KEYS.contains(&key) {
            if let Some(kept) = plain(value) {
                out.insert(cloudtrail_key(key), kept);
            }
        } else if let Some((_, fields)) = RESPONSE_RECORDS.iter().find(|(name, _)| *name == key) {
            if let Value::Object(record) = value {
                let mut kept = Map::new();
                for (field, field_value) in record {
                    if fields.contains(&field.as_str()) && !NEVER.contains(&field.as_str()) {
                        if let Some(v) = plain(field_value) {
                            kept.insert(cloudtrail_key(field), v);
                        }
                    }
                }
                if !kept.is_empty() {
                    out.insert(cloudtrail_key(key), Value::Object(kept));
                }
            }
        }
    }
    non_empty(out)
}

fn non_empty(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// CloudTrail's spelling of an AWS key: the first character lowercased, the rest as sent.
fn cloudtrail_key(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn request_key_allowed(key: &str, depth: usize) -> bool {
    !NEVER.contains(&key) && (REQUEST_KEYS.contains(&key) || (depth > 0 && NESTED_REQUEST_KEYS.contains(&key)))
}

fn request_object(map: &Map<String, Value>, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    if depth > MAX_DEPTH {
        return out;
    }
    for (key, value) in map {
        if !request_key_allowed(key, depth) {
            continue;
        }
        let kept = match key.as_str() {
            "Tags" => tag_keys(value),
            "EncryptionContext" => encryption_context(value),
            _ => request_value(value, depth + 1),
        };
        if let Some(kept) = kept {
            out.insert(cloudtrail_key(key), kept);
        }
    }
    out
}

/// A value under a whitelisted key: scalars as they are, objects filtered by the same lists, arrays
/// element by element. `None` when filtering left nothing of a non-empty container.
fn request_value(value: &Value, depth: usize) -> Option<Value> {
    match value {
        Value::Object(map) => {
            let kept = request_object(map, depth);
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            if depth > MAX_DEPTH {
                return None;
            }
            let kept: Vec<Value> = items.iter().filter_map(|item| request_value(item, depth + 1)).collect();
            (!kept.is_empty() || items.is_empty()).then_some(Value::Array(kept))
        }
        scalar => Some(scalar.clone()),
    }
}

/// `Tags`: each tag's key only (a tag's value is the caller's free text).
fn tag_keys(value: &Value) -> Option<Value> {
    let Value::Array(tags) = value else {
        return None;
    };
    let keys: Vec<Value> = tags
        .iter()
        .filter_map(|tag| match tag.get("Key") {
            Some(key @ Value::String(_)) => Some(serde_json::json!({ "key": key })),
            _ => None,
        })
        .collect();
    (!keys.is_empty() || tags.is_empty()).then_some(Value::Array(keys))
}

/// KMS's encryption context is by design not secret (AWS logs it whole) and its keys are the
/// caller's own, so they keep their spelling; only string values are kept, and never a key from
/// the `NEVER` list.
fn encryption_context(value: &Value) -> Option<Value> {
    let Value::Object(map) = value else {
        return None;
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(key, v)| v.is_string() && !NEVER.contains(&key.as_str()))
        .map(|(key, v)| (key.clone(), v.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// A response value that is a scalar or a list of scalars; objects are never copied this way.
fn plain(value: &Value) -> Option<Value> {
    match value {
        Value::Object(_) => None,
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => None,
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CANARY: &str = "CANARY-7f3e-do-not-log";

    /// Every forbidden key, holding the canary as a string, a number-free object and a list.
    fn forbidden_fields() -> Map<String, Value> {
        let mut map = Map::new();
        for (i, key) in NEVER.iter().enumerate() {
            let value = match i % 3 {
                0 => json!(CANARY),
                1 => json!({ "Name": CANARY, "Key": CANARY, "Values": [CANARY] }),
                _ => json!([CANARY, { "Name": CANARY }]),
            };
            map.insert((*key).to_string(), value);
        }
        // Free text and unlisted keys are out too.
        map.insert("Description".into(), json!(CANARY));
        map.insert("SomethingNew".into(), json!({ "SecretId": CANARY }));
        map
    }

    /// `forbidden_fields` planted at the top and inside every nested whitelisted container, several
    /// levels down.
    fn planted_request() -> Value {
        let forbidden = forbidden_fields();
        let mut level3 = forbidden.clone();
        level3.insert("Key".into(), json!("deep-key"));
        let mut level2 = forbidden.clone();
        level2.insert("Filters".into(), json!([Value::Object(level3.clone())]));
        let mut filter = forbidden.clone();
        filter.insert("Key".into(), json!("name"));
        filter.insert("Values".into(), json!(["prod", Value::Object(level2.clone())]));
        let mut rotation = forbidden.clone();
        rotation.insert("AutomaticallyAfterDays".into(), json!(30));
        rotation.insert("RotationRules".into(), Value::Object(level2));
        // An encryption context's keys are the caller's own (KMS logs them whole), so only the
        // forbidden keys are planted there.
        let mut context = forbidden.clone();
        context.remove("Description");
        context.remove("SomethingNew");
        context.insert("purpose".into(), json!("backup"));

        let mut top = forbidden;
        top.insert("SecretId".into(), json!("prod/db"));
        top.insert("Filters".into(), json!([Value::Object(filter)]));
        top.insert("ParameterFilters".into(), json!([Value::Object(level3)]));
        top.insert("RotationRules".into(), Value::Object(rotation));
        top.insert("Names".into(), json!(["a", Value::Object(forbidden_fields())]));
        top.insert(
            "Tags".into(),
            json!([{ "Key": "team", "Value": CANARY }, { "Key": "env", "Value": CANARY, "SecretString": CANARY }]),
        );
        top.insert("EncryptionContext".into(), Value::Object(context));
        Value::Object(top)
    }

    #[test]
    fn no_forbidden_request_field_is_ever_copied() {
        let out = request_parameters(&planted_request());
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains(CANARY), "canary leaked: {text}");
        // What is left are the identifiers.
        assert_eq!(out["secretId"], json!("prod/db"));
        assert_eq!(out["filters"][0]["key"], json!("name"));
        assert_eq!(out["filters"][0]["values"][0], json!("prod"));
        assert_eq!(out["filters"][0]["values"][1]["filters"][0]["key"], json!("deep-key"));
        assert_eq!(out["rotationRules"]["automaticallyAfterDays"], json!(30));
        assert_eq!(out["tags"], json!([{ "key": "team" }, { "key": "env" }]));
        assert_eq!(out["encryptionContext"], json!({ "purpose": "backup" }));
    }

    #[test]
    fn a_canary_in_each_forbidden_field_alone_leaves_nothing() {
        for key in NEVER {
            let wrappers: [fn(Value) -> Value; 4] = [
                |v: Value| v,
                |v: Value| json!({ "Filters": [v] }),
                |v: Value| json!({ "RotationRules": { "RotationRules": v } }),
                |v: Value| json!({ "Names": [[v]] }),
            ];
            for depth_wrapper in wrappers {
                let input = depth_wrapper(json!({ *key: CANARY }));
                let out = request_parameters(&input);
                let text = serde_json::to_string(&out).unwrap();
                assert!(!text.contains(CANARY), "{key} leaked: {text}");
            }
        }
    }

    #[test]
    fn request_keys_are_renamed_like_cloudtrail() {
        let out = request_parameters(&json!({
            "SecretId": "arn:aws:secretsmanager:r:a:secret:x-AbCdEf",
            "VersionStage": "AWSCURRENT",
            "RotationLambdaARN": "arn:aws:lambda:r:a:function:f",
            "WithDecryption": true,
            "MaxResults": 10,
            "TagKeys": ["a", "b"],
            "Description": "free text",
            "NextToken": "token",
        }));
        assert_eq!(
            out,
            json!({
                "secretId": "arn:aws:secretsmanager:r:a:secret:x-AbCdEf",
                "versionStage": "AWSCURRENT",
                "rotationLambdaARN": "arn:aws:lambda:r:a:function:f",
                "withDecryption": true,
                "maxResults": 10,
                "tagKeys": ["a", "b"],
            })
        );
    }

    #[test]
    fn keeps_request_key_matches_the_top_level_list() {
        for key in ["SecretId", "Tags", "EncryptionContext", "Filters", "RoleArn"] {
            assert!(keeps_request_key(key), "{key}");
        }
        for key in ["SecretString", "Value", "Description", "NextToken", "Key", "Values", "Policy"] {
            assert!(!keeps_request_key(key), "{key}");
        }
    }

    #[test]
    fn nested_keys_only_count_inside_objects() {
        // `Key` and `Values` mean something inside a filter, not at the top of a request.
        assert_eq!(request_parameters(&json!({ "Key": "k", "Values": ["v"] })), Value::Null);
        assert_eq!(
            request_parameters(&json!({ "Filters": [{ "Key": "name", "Values": ["p"], "Extra": 1 }] })),
            json!({ "filters": [{ "key": "name", "values": ["p"] }] })
        );
    }

    #[test]
    fn nothing_left_is_null() {
        assert_eq!(request_parameters(&json!({})), Value::Null);
        assert_eq!(request_parameters(&json!({ "SecretString": "s", "Description": "d" })), Value::Null);
        assert_eq!(request_parameters(&Value::Null), Value::Null);
        assert_eq!(request_parameters(&json!("SecretId")), Value::Null);
        assert_eq!(request_parameters(&json!([{ "SecretId": "x" }])), Value::Null);
        assert_eq!(response_elements(&json!({ "SecretString": "s" })), Value::Null);
        assert_eq!(response_elements(&Value::Null), Value::Null);
        // A filter that had only forbidden content is dropped rather than kept empty.
        assert_eq!(request_parameters(&json!({ "Filters": [{ "Value": "v" }] })), Value::Null);
        // An empty list stays what the caller sent.
        assert_eq!(request_parameters(&json!({ "TagKeys": [] })), json!({ "tagKeys": [] }));
    }

    #[test]
    fn very_deep_input_is_cut_off() {
        let mut value = json!({ "SecretId": "bottom" });
        for _ in 0..50 {
            value = json!({ "RotationRules": value });
        }
        let out = request_parameters(&value);
        assert!(!serde_json::to_string(&out).unwrap().contains("bottom"));
    }

    fn planted_response() -> Value {
        let forbidden = forbidden_fields();
        let mut credentials = forbidden.clone();
        credentials.insert("AccessKeyId".into(), json!("ASIAEXAMPLE"));
        credentials.insert("Expiration".into(), json!("2026-11-23T12:00:00Z"));
        let mut key_metadata = forbidden.clone();
        key_metadata.insert("KeyId".into(), json!("1234"));
        key_metadata.insert("Description".into(), json!(CANARY));
        let mut user = forbidden.clone();
        user.insert("UserName".into(), json!("alice"));
        user.insert("Tags".into(), json!([{ "Key": "k", "Value": CANARY }]));
        let mut policy = forbidden.clone();
        policy.insert("PolicyName".into(), json!("ReadOnly"));
        policy.insert("Description".into(), json!(CANARY));
        let mut top = forbidden;
        top.insert("ARN".into(), json!("arn:aws:secretsmanager:r:a:secret:x-AbCdEf"));
        top.insert("Name".into(), json!("x"));
        top.insert("VersionStages".into(), json!(["AWSCURRENT"]));
        top.insert("VersionId".into(), json!({ "SecretString": CANARY }));
        top.insert("Credentials".into(), Value::Object(credentials));
        top.insert("KeyMetadata".into(), Value::Object(key_metadata));
        top.insert("User".into(), Value::Object(user));
        top.insert("Policy".into(), Value::Object(policy));
        top.insert("Parameter".into(), json!({ "Name": "p", "Value": CANARY }));
        top.insert("SecretList".into(), json!([{ "Name": "p", "SecretString": CANARY }]));
        Value::Object(top)
    }

    #[test]
    fn no_forbidden_response_field_is_ever_copied() {
        let out = response_elements(&planted_response());
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains(CANARY), "canary leaked: {text}");
        assert_eq!(
            out,
            json!({
                "aRN": "arn:aws:secretsmanager:r:a:secret:x-AbCdEf",
                "name": "x",
                "versionStages": ["AWSCURRENT"],
                "credentials": { "accessKeyId": "ASIAEXAMPLE", "expiration": "2026-11-23T12:00:00Z" },
                "keyMetadata": { "keyId": "1234" },
                "user": { "userName": "alice" },
                "policy": { "policyName": "ReadOnly" },
            })
        );
    }

    #[test]
    fn a_policy_document_is_never_copied() {
        let out = response_elements(&json!({ "Policy": "{\"Statement\":[]}", "KeyId": "k" }));
        assert_eq!(out, json!({ "keyId": "k" }));
        let out = response_elements(&json!({ "ResourcePolicy": CANARY, "Name": "n" }));
        assert_eq!(out, json!({ "name": "n" }));
    }

    #[test]
    fn sts_and_iam_answers_keep_their_identifiers() {
        let out = response_elements(&json!({
            "AssumedRoleUser": { "Arn": "arn:aws:sts::a:assumed-role/ci/s", "AssumedRoleId": "AROA:s" },
            "Credentials": {
                "AccessKeyId": "ASIA", "SecretAccessKey": CANARY, "SessionToken": CANARY, "Expiration": "t"
            },
            "AccessKey": { "AccessKeyId": "AKIA", "SecretAccessKey": CANARY, "UserName": "bob", "Status": "Active" },
            "Role": { "RoleName": "ci", "Arn": "arn:aws:iam::a:role/ci", "RoleId": "AROA",
                      "AssumeRolePolicyDocument": CANARY },
            "Group": { "GroupName": "g", "GroupId": "AGPA", "Arn": "arn:aws:iam::a:group/g" },
        }));
        assert!(!serde_json::to_string(&out).unwrap().contains(CANARY));
        assert_eq!(out["assumedRoleUser"]["assumedRoleId"], json!("AROA:s"));
        assert_eq!(out["credentials"], json!({ "accessKeyId": "ASIA", "expiration": "t" }));
        assert_eq!(out["accessKey"], json!({ "accessKeyId": "AKIA", "userName": "bob", "status": "Active" }));
        assert_eq!(out["role"]["roleId"], json!("AROA"));
        assert_eq!(out["group"]["groupId"], json!("AGPA"));
    }

    #[test]
    fn cloudtrail_keys_lowercase_the_first_character_only() {
        assert_eq!(cloudtrail_key("SecretId"), "secretId");
        assert_eq!(cloudtrail_key("ARN"), "aRN");
        assert_eq!(cloudtrail_key("KmsKeyId"), "kmsKeyId");
        assert_eq!(cloudtrail_key(""), "");
    }
}
