//! `coffer rotation ...` and `coffer incident ...`: rotate a secret with a built-in or external rotator,
//! see what is overdue or due soon, roll back a bad rotation, and run an emergency rotation after a
//! leak with its approval and timeline. Built on RotateSecret / UpdateSecretVersionStage and Coffer's
//! `CofferRotation` operations.

use std::process::ExitCode;

use anyhow::{bail, Context};
use coffer_client::Client;
use coffer_wire::rotation::*;
use coffer_wire::secretsmanager::{
    RotateSecretRequest, RotationMetadataItem, RotationRules, SecretDescription, SecretIdRequest,
    SecretIdentityResponse, UpdateSecretVersionStageRequest,
};
use coffer_wire::Tag;

use crate::output::{self, Format};
use crate::secret::{client_for, explain, parse_tag};
use crate::Connection;

const DAY_SECONDS: f64 = 86_400.0;

#[derive(clap::Subcommand, Debug)]
pub enum RotationCommand {
    /// Rotate a secret now with a rotator, and set its schedule
    Rotate {
        /// Name or ARN
        secret_id: String,
        /// generated, signing-key, postgres-single-user, postgres-alternating-users, or a Lambda ARN
        /// configured as an external rotator [default: the secret's current rotator]
        #[arg(long)]
        rotator: Option<String>,
        /// Rotate every N days
        #[arg(long, conflicts_with = "schedule")]
        days: Option<i64>,
        /// rate(N hours|days) or cron(...) (UTC)
        #[arg(long)]
        schedule: Option<String>,
        /// The window a scheduled rotation may start in (e.g. 2h)
        #[arg(long)]
        duration: Option<String>,
        /// A rotator setting KEY=VALUE (repeatable): field, length, exclude_characters, grace_period_hours...
        #[arg(long = "set", value_parser = parse_tag)]
        settings: Vec<Tag>,
        /// Only set the rotator and schedule; do not rotate now
        #[arg(long)]
        schedule_only: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Turn automatic rotation off
    Cancel {
        secret_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Move AWSCURRENT back to the AWSPREVIOUS version (after a bad rotation)
    Rollback {
        secret_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// What is overdue, what is due soon, and how the last rotations went (exit 1 when something is overdue or failing)
    Status {
        /// "Due soon" means within this many days
        #[arg(long, default_value_t = 7)]
        within_days: i64,
        /// Every secret, not only those overdue, due soon or failing
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum IncidentCommand {
    /// Open an incident: select the secrets, show the plan, and rotate them (after a second approval unless --urgent-bypass)
    Open {
        /// confirmed-breach, suspected-breach, employee-departure, vendor-compromise, accidental-exposure
        #[arg(long = "type")]
        incident_type: String,
        /// critical, high, medium, low
        #[arg(long)]
        level: String,
        #[arg(long)]
        reason: String,
        /// A secret to include (repeatable)
        #[arg(long = "secret")]
        secrets: Vec<String>,
        /// Include the secrets with this tag KEY=VALUE (repeatable; a vendor's secrets)
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<Tag>,
        /// Rotate now without a second approval; the justification is recorded
        #[arg(long, value_name = "JUSTIFICATION")]
        urgent_bypass: Option<String>,
        /// Only show the plan
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
    /// Approve an incident opened by someone else, which rotates its secrets
    Approve {
        incident_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show an incident and its results
    Show {
        incident_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
    /// List incidents, newest first
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
    /// The incident's report: who, what was rotated, what failed, how long it took
    Report {
        incident_id: String,
        /// md or json
        #[arg(long, default_value = "md")]
        format: String,
        #[command(flatten)]
        conn: Connection,
    },
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    client_for(conn, "SECRETS_MANAGER")
}

async fn sm<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &Client,
    op: &str,
    req: &Req,
) -> anyhow::Result<Resp> {
    client.call(coffer_wire::secretsmanager::SERVICE, &format!("secretsmanager.{op}"), req).await.map_err(explain)
}

async fn coffer<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &Client,
    op: &str,
    req: &Req,
) -> anyhow::Result<Resp> {
    client.call(SERVICE, &format!("{TARGET_PREFIX}.{op}"), req).await.map_err(explain)
}

/// A rotator's Lambda ARN: built-in names become `...:function:coffer-<name>` in the caller's region.
fn rotator_arn(rotator: &str, region: &str) -> String {
    if rotator.starts_with("arn:") {
        return rotator.to_string();
    }
    let name = rotator.strip_prefix("coffer-").unwrap_or(rotator);
    // The account part is not checked by Coffer for built-in rotators.
    format!("arn:aws:lambda:{region}:000000000000:function:coffer-{name}")
}

fn date(seconds: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{seconds}"))
}

pub async fn run_rotation(cmd: RotationCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RotationCommand::Rotate { secret_id, rotator, days, schedule, duration, settings, schedule_only, conn } => {
            let client = client(&conn)?;
            let rules = (days.is_some() || schedule.is_some()).then_some(RotationRules {
                automatically_after_days: days,
                schedule_expression: schedule,
                duration,
            });
            let req = RotateSecretRequest {
                secret_id: secret_id.clone(),
                client_request_token: Some(uuid::Uuid::new_v4().to_string()),
                rotation_lambda_arn: rotator.map(|r| rotator_arn(&r, &client.config().region)),
                rotation_rules: rules,
                rotate_immediately: Some(!schedule_only),
                external_secret_rotation_metadata: (!settings.is_empty()).then(|| {
                    settings.into_iter().map(|t| RotationMetadataItem { key: t.key, value: t.value }).collect()
                }),
                ..Default::default()
            };
            let _: SecretIdentityResponse = sm(&client, "RotateSecret", &req).await?;
            let d: SecretDescription = sm(&client, "DescribeSecret", &SecretIdRequest { secret_id }).await?;
            report_rotation(&client, &d).await
        }
        RotationCommand::Cancel { secret_id, conn } => {
            let _: SecretIdentityResponse =
                sm(&client(&conn)?, "CancelRotateSecret", &SecretIdRequest { secret_id: secret_id.clone() }).await?;
            println!("automatic rotation of {secret_id} is off");
            Ok(ExitCode::SUCCESS)
        }
        RotationCommand::Rollback { secret_id, conn } => rollback(&client(&conn)?, &secret_id).await,
        RotationCommand::Status { within_days, all, output, conn } => {
            status(&client(&conn)?, within_days, all, output).await
        }
    }
}

/// After RotateSecret: says whether the rotation went through (its failure is in the status).
async fn report_rotation(client: &Client, d: &SecretDescription) -> anyhow::Result<ExitCode> {
    let status: GetRotationStatusResponse = coffer(client, "GetRotationStatus", &GetRotationStatusRequest {}).await?;
    let entry = status.secrets.into_iter().find(|s| s.arn == d.arn);
    let next = d.next_rotation_date.map(date).unwrap_or_else(|| "not scheduled".into());
    match entry.and_then(|e| e.last_result) {
        Some(result) if !result.succeeded => {
            eprintln!(
                "rotation of {} failed at {}: {} (AWSCURRENT is unchanged; it will be retried)",
                d.name,
                result.failed_step.as_deref().unwrap_or("?"),
                result.message.as_deref().unwrap_or("no reason given")
            );
            Ok(ExitCode::from(1))
        }
        Some(result) => {
            println!("rotated {}: AWSCURRENT is now version {}; next rotation {next}", d.name, result.version_id);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("rotation of {} is set up; next rotation {next}", d.name);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Moves AWSCURRENT back to the version holding AWSPREVIOUS.
pub(crate) async fn rollback(client: &Client, secret_id: &str) -> anyhow::Result<ExitCode> {
    let d: SecretDescription =
        sm(client, "DescribeSecret", &SecretIdRequest { secret_id: secret_id.to_string() }).await?;
    let stages = d.version_ids_to_stages.unwrap_or_default();
    let holder = |label: &str| stages.iter().find(|(_, s)| s.iter().any(|x| x == label)).map(|(v, _)| v.clone());
    let (Some(current), Some(previous)) = (holder("AWSCURRENT"), holder("AWSPREVIOUS")) else {
        bail!("{secret_id} has no AWSPREVIOUS version to roll back to");
    };
    let req = UpdateSecretVersionStageRequest {
        secret_id: d.arn.clone(),
        version_stage: "AWSCURRENT".into(),
        move_to_version_id: Some(previous.clone()),
        remove_from_version_id: Some(current.clone()),
    };
    let _: SecretIdentityResponse = sm(client, "UpdateSecretVersionStage", &req).await?;
    println!("rolled back {}: AWSCURRENT is version {previous} again (version {current} is now AWSPREVIOUS)", d.name);
    Ok(ExitCode::SUCCESS)
}

async fn status(client: &Client, within_days: i64, all: bool, format: Format) -> anyhow::Result<ExitCode> {
    let resp: GetRotationStatusResponse = coffer(client, "GetRotationStatus", &GetRotationStatusRequest {}).await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let horizon = now + within_days as f64 * DAY_SECONDS;
    let state = |s: &RotationStatusEntry| -> &'static str {
        let failing = s.last_result.as_ref().is_some_and(|r| !r.succeeded);
        match s.due_date {
            _ if failing => "FAILING",
            _ if s.in_progress => "in progress",
            Some(due) if due <= now => "OVERDUE",
            Some(due) if due <= horizon => "due soon",
            Some(_) => "ok",
            None => "no schedule",
        }
    };
    let mut shown: Vec<&RotationStatusEntry> = resp
        .secrets
        .iter()
        .filter(|s| all || matches!(state(s), "FAILING" | "OVERDUE" | "due soon" | "in progress"))
        .collect();
    shown.sort_by(|a, b| a.due_date.unwrap_or(f64::MAX).total_cmp(&b.due_date.unwrap_or(f64::MAX)));
    let attention = resp.secrets.iter().any(|s| matches!(state(s), "FAILING" | "OVERDUE"));
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    state(s).to_string(),
                    s.due_date.map(date).unwrap_or_else(|| "-".into()),
                    s.sensitivity.clone().unwrap_or_else(|| "-".into()),
                    s.last_rotated_date.map(date).unwrap_or_else(|| "never".into()),
                    match &s.last_result {
                        Some(r) if r.succeeded => "ok".into(),
                        Some(r) => format!(
                            "failed at {}: {}",
                            r.failed_step.as_deref().unwrap_or("?"),
                            r.message.as_deref().unwrap_or("")
                        ),
                        None => "-".into(),
                    },
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("nothing overdue, failing or due in the next {within_days} days");
        } else {
            output::print_columns(&["NAME", "STATE", "DUE", "SENSITIVITY", "LAST ROTATED", "LAST RESULT"], &rows);
        }
    }
    Ok(if attention { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub async fn run_incident(cmd: IncidentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IncidentCommand::Open { incident_type, level, reason, secrets, tags, urgent_bypass, dry_run, output, conn } => {
            let req = OpenIncidentRequest {
                incident_type,
                level,
                reason,
                secret_ids: secrets,
                tags,
                urgent_bypass_reason: urgent_bypass,
                dry_run,
            };
            let resp: IncidentResponse = coffer(&client(&conn)?, "OpenIncident", &req).await?;
            show_incident(&resp.incident, output)?;
            if resp.incident.status == "awaiting-approval" {
                eprintln!(
                    "incident {} awaits approval: another principal runs `coffer incident approve {}`",
                    resp.incident.incident_id, resp.incident.incident_id
                );
            }
            Ok(incident_exit(&resp.incident))
        }
        IncidentCommand::Approve { incident_id, output, conn } => {
            let resp: IncidentResponse =
                coffer(&client(&conn)?, "ApproveIncident", &IncidentIdRequest { incident_id }).await?;
            show_incident(&resp.incident, output)?;
            Ok(incident_exit(&resp.incident))
        }
        IncidentCommand::Show { incident_id, output, conn } => {
            let resp: IncidentResponse =
                coffer(&client(&conn)?, "GetIncident", &IncidentIdRequest { incident_id }).await?;
            show_incident(&resp.incident, output)?;
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::List { output, conn } => {
            let resp: ListIncidentsResponse =
                coffer(&client(&conn)?, "ListIncidents", &ListIncidentsRequest {}).await?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&resp.incidents)?);
            } else {
                let rows: Vec<Vec<String>> = resp
                    .incidents
                    .iter()
                    .map(|i| {
                        vec![
                            i.incident_id.clone(),
                            i.incident_type.clone(),
                            i.level.clone(),
                            i.status.clone(),
                            date(i.opened_date),
                            i.plan.len().to_string(),
                        ]
                    })
                    .collect();
                output::print_columns(&["ID", "TYPE", "LEVEL", "STATUS", "OPENED", "SECRETS"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Report { incident_id, format, conn } => {
            let resp: IncidentResponse =
                coffer(&client(&conn)?, "GetIncident", &IncidentIdRequest { incident_id }).await?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&resp.incident)?),
                "md" | "markdown" => print!("{}", markdown_report(&resp.incident)),
                other => bail!("unknown report format {other:?}: use md or json"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn incident_exit(incident: &Incident) -> ExitCode {
    if incident.status == "completed-with-failures" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn show_incident(incident: &Incident, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(incident).context("encoding the incident")?);
        return Ok(());
    }
    println!("incident {} ({}, {}): {}", incident.incident_id, incident.incident_type, incident.level, incident.status);
    let rows: Vec<Vec<String>> = incident
        .plan
        .iter()
        .map(|p| {
            let result = incident.results.iter().find(|r| r.arn == p.arn);
            let outcome = match (result, &p.skipped_because) {
                (Some(r), _) if r.outcome == "failed" => format!(
                    "FAILED at {}: {}",
                    r.failed_step.as_deref().unwrap_or("?"),
                    r.message.as_deref().unwrap_or("")
                ),
                (Some(r), _) => r.outcome.clone(),
                (None, Some(skip)) => format!("will skip: {skip}"),
                (None, None) => "planned".into(),
            };
            vec![p.name.clone(), p.selected_because.clone(), outcome]
        })
        .collect();
    if rows.is_empty() {
        println!("no secret matches this incident");
    } else {
        output::print_columns(&["SECRET", "SELECTED BECAUSE", "OUTCOME"], &rows);
    }
    Ok(())
}

/// The incident's timeline as Markdown, for the post-incident record.
fn markdown_report(i: &Incident) -> String {
    let mut md = format!("# Incident {}\n\n", i.incident_id);
    md +=
        &format!("- Type: {}\n- Level: {}\n- Reason: {}\n- Status: {}\n", i.incident_type, i.level, i.reason, i.status);
    md += &format!("- Opened by {} at {}\n", i.opened_by, date(i.opened_date));
    match (&i.approved_by, i.approved_date, &i.urgent_bypass_reason) {
        (Some(by), Some(at), _) => md += &format!("- Approved by {by} at {}\n", date(at)),
        (_, _, Some(reason)) => md += &format!("- Urgent bypass (no second approval): {reason}\n"),
        _ => md += "- Not approved yet\n",
    }
    if let (Some(start), Some(end)) = (i.started_date, i.finished_date) {
        md += &format!("- Rotation took {:.2} s ({} to {})\n", end - start, date(start), date(end));
    }
    let count = |o: &str| i.results.iter().filter(|r| r.outcome == o).count();
    md += &format!(
        "\n## Secrets\n\n{} selected: {} rotated, {} failed, {} skipped.\n\n| Secret | Selected because | Outcome | New version |\n|---|---|---|---|\n",
        i.plan.len(),
        count("rotated"),
        count("failed"),
        count("skipped")
    );
    for p in &i.plan {
        let r = i.results.iter().find(|r| r.arn == p.arn);
        let outcome = match r {
            Some(r) if r.outcome == "failed" => {
                format!("failed at {}: {}", r.failed_step.as_deref().unwrap_or("?"), r.message.as_deref().unwrap_or(""))
            }
            Some(r) => r.outcome.clone(),
            None => "not started".into(),
        };
        let version = r.and_then(|r| r.version_id.clone()).unwrap_or_else(|| "-".into());
        md += &format!("| {} | {} | {} | {} |\n", p.name, p.selected_because, outcome, version);
    }
    md
}
