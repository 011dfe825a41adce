//! Export formats: one CSV row per event for spreadsheets, JSON Lines for everything else.

use crate::event::{friendly_resource_name, Event};

/// The CSV header line, CRLF-terminated as RFC 4180 has it (write it, then each [`csv_row`]).
pub const CSV_HEADER: &str = "event_id,event_time,actor_source,event_source,event_name,resource,user,user_type,\
                              source_ip,user_agent,error_code,read_only,request_id\r\n";

/// One event as a CSV line (RFC 4180 quoting, CRLF-terminated), in [`CSV_HEADER`]'s columns.
pub fn csv_row(event: &Event) -> String {
    let identity = &event.user_identity;
    let user = identity.user_name.as_deref().or(identity.invoked_by.as_deref()).or(identity.principal_id.as_deref());
    let resource = primary_resource(event);
    let cells: [&str; 13] = [
        &event.event_id,
        &event.event_time,
        event.actor_source().unwrap_or_default(),
        &event.event_source,
        &event.event_name,
        resource.as_deref().unwrap_or_default(),
        user.unwrap_or_default(),
        &identity.identity_type,
        event.source_ip_address.as_deref().unwrap_or_default(),
        event.user_agent.as_deref().unwrap_or_default(),
        event.error_code.as_deref().unwrap_or_default(),
        if event.read_only { "true" } else { "false" },
        event.request_id.as_deref().unwrap_or_default(),
    ];
    let mut row = String::with_capacity(256);
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        push_cell(&mut row, cell);
    }
    row.push_str("\r\n");
    row
}

/// The first resource by the name people know it by, else what the request named.
fn primary_resource(event: &Event) -> Option<String> {
    if let Some(first) = event.resources.first() {
        return Some(friendly_resource_name(&first.arn).unwrap_or_else(|| first.arn.clone()));
    }
    let parameters = &event.request_parameters;
    ["secretId", "name"].iter().find_map(|key| parameters.get(key)?.as_str().map(str::to_string))
}

/// A cell, neutralised against spreadsheet formulas and quoted when it must be.
fn push_cell(row: &mut String, cell: &str) {
    // A spreadsheet runs a cell starting with one of these as a formula; the apostrophe makes it text.
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = cell.contains([',', '"', '\r', '\n']);
    if quoted {
        row.push('"');
    }
    if formula {
        row.push('\'');
    }
    if quoted {
        row.push_str(&cell.replace('"', "\"\""));
        row.push('"');
    } else {
        row.push_str(cell);
    }
}

/// One event as a JSON Lines line: its canonical JSON (which has no raw newline) and `\n`.
pub fn jsonl_line(body: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(body.len() + 1);
    line.extend_from_slice(body);
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventResource, UserIdentity};
    use serde_json::json;

    fn event() -> Event {
        Event {
            user_identity: UserIdentity {
                identity_type: "IAMUser".into(),
                user_name: Some("alice".into()),
                ..UserIdentity::default()
            },
            event_time: "2026-11-23T11:53:58Z".into(),
            event_source: "secretsmanager.amazonaws.com".into(),
            event_name: "GetSecretValue".into(),
            source_ip_address: Some("192.0.2.1".into()),
            user_agent: Some("aws-cli/2, botocore".into()),
            additional_event_data: Some(json!({"actorSource": "cli"})),
            request_id: Some("req".into()),
            event_id: "id-1".into(),
            read_only: true,
            resources: vec![EventResource {
                arn: "arn:aws:secretsmanager:r:a:secret:prod/db-AbCdEf".into(),
                account_id: None,
                resource_type: "AWS::SecretsManager::Secret".into(),
            }],
            ..Event::default()
        }
    }

    #[test]
    fn header_and_row_have_the_same_columns() {
        let row = csv_row(&event());
        assert_eq!(
            row,
            "id-1,2026-11-23T11:53:58Z,cli,secretsmanager.amazonaws.com,GetSecretValue,prod/db,alice,IAMUser,\
             192.0.2.1,\"aws-cli/2, botocore\",,true,req\r\n"
        );
        assert_eq!(CSV_HEADER.split(',').count(), 13);
        assert!(CSV_HEADER.ends_with("\r\n"));
    }

    #[test]
    fn resource_falls_back_to_the_request() {
        let mut e = event();
        e.resources.clear();
        e.request_parameters = json!({"name": "/app/db"});
        assert!(csv_row(&e).contains(",/app/db,"));
        e.request_parameters = json!({"secretId": "s", "name": "n"});
        assert!(csv_row(&e).contains(",s,"));
        e.request_parameters = serde_json::Value::Null;
        assert!(csv_row(&e).contains("GetSecretValue,,alice"));
        e.resources.push(EventResource { arn: "arn:aws:s3:::b".into(), ..EventResource::default() });
        assert!(csv_row(&e).contains(",arn:aws:s3:::b,"));
    }

    #[test]
    fn user_falls_back_to_the_service_or_principal() {
        let mut e = event();
        e.user_identity = UserIdentity {
            identity_type: "AWSService".into(),
            invoked_by: Some("coffer.internal".into()),
            ..UserIdentity::default()
        };
        assert!(csv_row(&e).contains(",coffer.internal,AWSService,"));
        e.user_identity = UserIdentity {
            identity_type: "Root".into(),
            principal_id: Some("111122223333".into()),
            ..UserIdentity::default()
        };
        assert!(csv_row(&e).contains(",111122223333,Root,"));
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        let mut row = String::new();
        push_cell(&mut row, "say \"hi\", then\r\nleave");
        assert_eq!(row, "\"say \"\"hi\"\", then\r\nleave\"");
        let mut row = String::new();
        push_cell(&mut row, "plain");
        assert_eq!(row, "plain");
        let mut row = String::new();
        push_cell(&mut row, "");
        assert_eq!(row, "");
    }

    #[test]
    fn formulas_are_neutralised() {
        for (cell, expected) in [
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("a=b", "a=b"),
        ] {
            let mut row = String::new();
            push_cell(&mut row, cell);
            assert_eq!(row, expected, "{cell:?}");
        }
        let mut e = event();
        e.user_agent = Some("=cmd|' /C calc'!A0".into());
        assert!(csv_row(&e).contains(",'=cmd|' /C calc'!A0,"));
    }

    #[test]
    fn jsonl_is_the_body_and_a_newline() {
        let body = event().to_canonical_json();
        let line = jsonl_line(&body);
        assert_eq!(&line[..body.len()], &body[..]);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
