//! Access Request (IT Operations): a new `access_request` for a standard system is approved
//! for provisioning (a task for the IT queue); any other system is privileged and is routed
//! to the approver (`awaiting-approval`, told in-app). Every decision is held for a person
//! at the supervised stage. It is also the receiving end of the new-hire escalation path:
//! `hr.new-hire` opens approved requests for the baseline systems (each held for a person)
//! and one provisioning task.

use roster_sdk::notify::{self, Channel};
use roster_sdk::time::{DAY_MS, date};
use roster_sdk::{Event, Outcome, Trigger, Value, Worker, WorkerError, field, records};

struct AccessRequest;

fn new_hire(event: &Event) -> Result<Outcome, WorkerError> {
    let (Some(employee), Some(name)) = (
        event.payload_text("employee_id"),
        event.payload_text("name"),
    ) else {
        return Err(WorkerError::InvalidInput(
            "a new hire needs employee_id and name".into(),
        ));
    };
    let start = event
        .payload_number("start_date")
        .map(|d| date(d as i64))
        .unwrap_or_else(|| "their start date".into());
    let role = event
        .payload_text("position")
        .unwrap_or_else(|| "employee".into());
    let systems = event.setting_list("baseline-systems");
    // Baseline systems are approved by the path itself; each approval is still held for a
    // person at the supervised stage.
    for system in &systems {
        records::create(
            "access_request",
            &[
                field("employee_id", employee.as_str()),
                field("system", system.as_str()),
                field("role", role.as_str()),
                field("status", "approved"),
                field("justification", format!("New hire {name} starting {start}")),
            ],
        )?;
    }
    let queue = event.setting_text("it-queue").unwrap_or_default();
    records::create(
        "task",
        &[
            field(
                "subject",
                format!(
                    "Provision {} for new hire {name} by {start}",
                    systems.join(", ")
                ),
            ),
            field("status", "open"),
            field("due_date", Value::Timestamp(event.occurred_at + DAY_MS)),
            field("priority", "normal"),
            field("related_to", format!("employee/{employee}")),
            field("assignee", queue.as_str()),
        ],
    )?;
    Ok(Outcome::success(format!(
        "requested {} for new hire {name}",
        systems.join(", ")
    )))
}

impl Worker for AccessRequest {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        if let Trigger::Signal(_) = &event.trigger {
            return new_hire(&event);
        }
        let request = event.require_record()?;
        if request.text("status").is_some_and(|s| s != "requested") {
            return Ok(Outcome::skipped(format!(
                "request {} is already handled",
                request.id
            )));
        }
        let system = request
            .text("system")
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let employee = request.text("employee_id").unwrap_or("someone");
        if system.is_empty() {
            return Err(WorkerError::InvalidInput(format!(
                "request {} names no system",
                request.id
            )));
        }
        if event.setting_list("standard-systems").contains(&system) {
            let queue = event.setting_text("it-queue").unwrap_or_default();
            records::update(
                "access_request",
                &request.id,
                &[field("status", "approved")],
            )?;
            records::create(
                "task",
                &[
                    field("subject", format!("Provision {system} for {employee}")),
                    field("status", "open"),
                    field("due_date", Value::Timestamp(event.occurred_at + DAY_MS)),
                    field("priority", "normal"),
                    field("related_to", format!("access_request/{}", request.id)),
                    field("assignee", queue.as_str()),
                ],
            )?;
            return Ok(Outcome::success(format!(
                "{system} for {employee}: standard, approved"
            )));
        }
        let approver = event.setting_text("approver").unwrap_or_default();
        records::update(
            "access_request",
            &request.id,
            &[
                field("status", "awaiting-approval"),
                field("approver", approver.as_str()),
            ],
        )?;
        notify::send(&notify::message(
            Channel::InApp,
            &[approver.as_str()],
            Some("Privileged access to approve"),
            &format!(
                "{employee} asks for {system} ({}): {}",
                request.text("role").unwrap_or("no role given"),
                request
                    .text("justification")
                    .unwrap_or("no justification given")
            ),
        ))?;
        Ok(Outcome::success(format!(
            "{system} for {employee}: privileged, routed to {approver}"
        )))
    }
}

roster_sdk::export!(AccessRequest);
