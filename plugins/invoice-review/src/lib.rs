//! Invoice Review (Finance): a new vendor invoice is checked against its purchase order —
//! present and open, same vendor, amount within `tolerance-percent` — and against earlier
//! invoices from the vendor (same number, or same amount: a duplicate). A clean invoice is
//! marked `matched`; one with discrepancies is marked `discrepancy` with the reasons and
//! routed to the named reviewer (a task and an in-app note). Invoice changes are financial,
//! so each is held for a person at the supervised stage.
//!
//! On its daily schedule it also finds customer invoices that are overdue for accounts
//! renewing within `renewal-days` and signals `finance.overdue-near-renewal` once per invoice
//! for the account owner (an escalation path to Revenue).

use roster_sdk::json::{self, Json};
use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::time::DAY_MS;
use roster_sdk::{Event, Outcome, Trigger, Value, Worker, WorkerError, field, memory, signals};

struct InvoiceReview;

fn review(event: &Event) -> Result<Outcome, WorkerError> {
    let invoice = event.require_record()?;
    let Some(vendor) = invoice.text("vendor").filter(|v| !v.is_empty()) else {
        return Ok(Outcome::skipped("a customer invoice, not a vendor invoice"));
    };
    if invoice.text("review_status").is_some_and(|s| !s.is_empty()) {
        return Ok(Outcome::skipped("already reviewed"));
    }
    let number = invoice.text("number").unwrap_or(&invoice.id);
    let amount = invoice.number("amount").unwrap_or_default();
    let mut problems = Vec::new();
    match invoice.text("po_number").filter(|p| !p.is_empty()) {
        None => problems.push("no purchase order number".to_string()),
        Some(po_number) => {
            let pos = records::find(&records::query(
                "purchase_order",
                vec![records::filter("number", Comparison::Equals, po_number)],
                2,
            ))?;
            match pos.first() {
                None => problems.push(format!("purchase order {po_number} does not exist")),
                Some(po) => {
                    if po.text("status").is_some_and(|s| s != "open") {
                        problems.push(format!(
                            "purchase order {po_number} is {}",
                            po.text("status").unwrap_or_default()
                        ));
                    }
                    if po
                        .text("vendor")
                        .is_some_and(|v| !v.eq_ignore_ascii_case(vendor))
                    {
                        problems.push(format!(
                            "purchase order {po_number} is for {}, not {vendor}",
                            po.text("vendor").unwrap_or_default()
                        ));
                    }
                    let ordered = po.number("amount").unwrap_or_default();
                    let tolerance =
                        event.setting_number("tolerance-percent").unwrap_or(2.0) / 100.0;
                    if (amount - ordered).abs() > ordered.abs() * tolerance {
                        problems.push(format!(
                            "amount {amount:.2} differs from the ordered {ordered:.2}"
                        ));
                    }
                }
            }
        }
    }
    let earlier = records::find(&records::query(
        "invoice",
        vec![records::filter("vendor", Comparison::Equals, vendor)],
        500,
    ))?;
    if let Some(dup) = earlier.iter().find(|other| {
        other.id != invoice.id
            && (other.text("number") == Some(number)
                || other
                    .number("amount")
                    .is_some_and(|a| (a - amount).abs() < 0.005))
    }) {
        problems.push(format!(
            "possible duplicate of {} ({})",
            dup.text("number").unwrap_or(&dup.id),
            dup.number("amount").unwrap_or_default()
        ));
    }
    if problems.is_empty() {
        records::update("invoice", &invoice.id, &[field("review_status", "matched")])?;
        return Ok(Outcome::success(format!(
            "{number} from {vendor} matches its purchase order"
        )));
    }
    let summary = problems.join("; ");
    let reviewer = event.setting_text("reviewer").unwrap_or_default();
    records::update(
        "invoice",
        &invoice.id,
        &[
            field("review_status", "discrepancy"),
            field("discrepancy", summary.as_str()),
        ],
    )?;
    records::create(
        "task",
        &[
            field(
                "subject",
                format!("Review invoice {number} from {vendor}: {summary}"),
            ),
            field("status", "open"),
            field("due_date", Value::Timestamp(event.occurred_at + 2 * DAY_MS)),
            field("priority", "high"),
            field("related_to", format!("invoice/{}", invoice.id)),
            field("assignee", reviewer.as_str()),
        ],
    )?;
    notify::send(&notify::message(
        Channel::InApp,
        &[reviewer.as_str()],
        Some("Invoice discrepancy"),
        &format!("Invoice {number} from {vendor} ({amount:.2}): {summary}"),
    ))?;
    Ok(Outcome::partial(format!(
        "{number} from {vendor}: {summary}; routed to {reviewer}"
    )))
}

fn overdue_near_renewal(event: &Event) -> Result<Outcome, WorkerError> {
    let now = event.occurred_at;
    let window = event.setting_number("renewal-days").unwrap_or(90.0) as i64 * DAY_MS;
    let overdue = records::find(&records::query(
        "invoice",
        vec![
            records::filter("status", Comparison::Equals, "open"),
            records::filter("due_date", Comparison::LessThan, Value::Timestamp(now)),
            records::filter("account_id", Comparison::IsNotEmpty, ""),
        ],
        1000,
    ))?;
    let mut signalled = 0;
    for inv in &overdue {
        let key = format!("overdue-signalled/{}", inv.id);
        if memory::get_text(&key)?.is_some() {
            continue;
        }
        let account_id = inv.text("account_id").unwrap_or_default();
        let Ok(account) = records::get("account", account_id) else {
            continue;
        };
        let Some(renewal) = account.timestamp("renewal_date") else {
            continue;
        };
        if renewal < now || renewal - now > window {
            continue;
        }
        let payload = json::object(&[
            ("account_id", Json::from(account_id)),
            ("account_name", Json::from(account.text("name"))),
            ("owner", Json::from(account.owner.as_deref())),
            ("invoice", Json::from(inv.text("number").unwrap_or(&inv.id))),
            ("amount", Json::from(inv.number("amount"))),
            (
                "days_overdue",
                Json::from((now - inv.timestamp("due_date").unwrap_or(now)) / DAY_MS),
            ),
            ("renewal_date", Json::from(renewal)),
        ]);
        signals::emit("finance.overdue-near-renewal", &payload)?;
        memory::set_text(&key, account_id)?;
        signalled += 1;
    }
    if signalled == 0 {
        return Ok(Outcome::skipped(
            "no overdue invoice of an account about to renew",
        ));
    }
    Ok(Outcome::success(format!(
        "signalled {signalled} overdue invoice(s) near renewal"
    )))
}

impl Worker for InvoiceReview {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        match event.trigger {
            Trigger::Schedule(_) => overdue_near_renewal(&event),
            _ => review(&event),
        }
    }
}

roster_sdk::export!(InvoiceReview);
