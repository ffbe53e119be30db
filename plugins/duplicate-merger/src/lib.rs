//! Duplicate Merger (template): weekly, groups active contacts by email address
//! (trimmed, case ignored) and, for each group of two or more, proposes a merge plan: the
//! most complete contact survives (oldest id on a tie) and gains the details it lacks from
//! the others (phone, title, account); the others are marked `merged` into it. Each step
//! is an update held for review; the plan is summarised to the survivor's owner. A
//! duplicate is proposed once.

use std::collections::BTreeMap;

use roster_sdk::notify::{self, Channel};
use roster_sdk::records::{self, Comparison};
use roster_sdk::{CrmRecord, Event, Field, Outcome, Worker, WorkerError, field, memory};

struct DuplicateMerger;

const DETAILS: [&str; 3] = ["phone", "title", "account_id"];

fn filled(c: &CrmRecord) -> usize {
    ["name", "email", "phone", "title", "account_id"]
        .iter()
        .filter(|f| c.get(f).is_some_and(|v| !v.is_empty()))
        .count()
}

impl Worker for DuplicateMerger {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let limit = event.setting_number("limit").unwrap_or(2000.0) as u32;
        let contacts = records::find(&records::query(
            "contact",
            vec![records::filter("email", Comparison::IsNotEmpty, "")],
            limit,
        ))?;
        let mut groups: BTreeMap<String, Vec<&CrmRecord>> = BTreeMap::new();
        for c in &contacts {
            if c.text("status") == Some("merged") {
                continue;
            }
            let email = c.text("email").unwrap_or_default().trim().to_lowercase();
            groups.entry(email).or_default().push(c);
        }
        let mut plans = 0;
        let mut steps = 0;
        for (email, mut group) in groups.into_iter().filter(|(_, g)| g.len() > 1) {
            group.sort_by(|a, b| filled(b).cmp(&filled(a)).then_with(|| a.id.cmp(&b.id)));
            let survivor = group[0];
            let duplicates: Vec<&CrmRecord> = group[1..]
                .iter()
                .copied()
                .filter(|d| {
                    memory::get_text(&format!("proposed/{}", d.id))
                        .ok()
                        .flatten()
                        .is_none()
                })
                .collect();
            if duplicates.is_empty() {
                continue;
            }
            let mut gained: Vec<Field> = Vec::new();
            for name in DETAILS {
                if survivor.get(name).is_some_and(|v| !v.is_empty()) {
                    continue;
                }
                if let Some(v) = duplicates
                    .iter()
                    .find_map(|d| d.get(name).filter(|v| !v.is_empty()))
                {
                    gained.push(field(name, v.clone()));
                }
            }
            let mut plan = vec![format!(
                "Keep {} ({}) for {email}",
                survivor.text("name").unwrap_or_default(),
                survivor.id
            )];
            if !gained.is_empty() {
                let names: Vec<&str> = gained.iter().map(|f| f.name.as_str()).collect();
                plan.push(format!("copy {} into {}", names.join(", "), survivor.id));
                records::update("contact", &survivor.id, &gained)?;
                steps += 1;
            }
            for d in &duplicates {
                records::update(
                    "contact",
                    &d.id,
                    &[
                        field("status", "merged"),
                        field("merged_into", survivor.id.as_str()),
                    ],
                )?;
                memory::set_text(&format!("proposed/{}", d.id), &survivor.id)?;
                plan.push(format!("mark {} merged into {}", d.id, survivor.id));
                steps += 1;
            }
            if let Some(owner) = &survivor.owner {
                notify::send(&notify::message(
                    Channel::InApp,
                    &[owner.as_str()],
                    Some("Merge plan to review"),
                    &plan.join("; "),
                ))?;
            }
            plans += 1;
        }
        if plans == 0 {
            return Ok(Outcome::skipped(format!(
                "no new duplicates among {} contacts",
                contacts.len()
            )));
        }
        Ok(Outcome::success(format!(
            "proposed {plans} merge plan(s), {steps} step(s) for review"
        )))
    }
}

roster_sdk::export!(DuplicateMerger);
