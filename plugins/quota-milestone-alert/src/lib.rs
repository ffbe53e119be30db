//! Quota Milestone Alert (template): an aggregate threshold trigger (the sum of each owner's
//! closed-won opportunities crossing a milestone) delivers `{"group": owner, "value": sum}`;
//! the worker congratulates the owner in-app and announces the milestone on Slack. The
//! milestones are shares of `quota` (`milestones`, 80% and 100% by default); each owner's
//! milestone is announced once, however many triggers the same total crossed.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{Event, Outcome, Worker, WorkerError, memory};

struct QuotaMilestoneAlert;

impl Worker for QuotaMilestoneAlert {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let (Some(owner), Some(total)) =
            (event.payload_text("group"), event.payload_number("value"))
        else {
            return Ok(Outcome::skipped(
                "no milestone in the event (expects the threshold's group and value)",
            ));
        };
        if owner == "*" || owner.is_empty() {
            return Ok(Outcome::skipped("the total is not grouped by owner"));
        }
        let quota = event.setting_number("quota").unwrap_or(100_000.0);
        let share = total / quota * 100.0;
        let reached = event
            .setting_list("milestones")
            .iter()
            .filter_map(|m| m.trim_end_matches('%').trim().parse::<f64>().ok())
            .filter(|m| *m <= share)
            .fold(None, |best: Option<f64>, m| {
                Some(best.map_or(m, |b| b.max(m)))
            });
        let Some(milestone) = reached else {
            return Ok(Outcome::skipped(format!(
                "{owner} is at {share:.0}% of quota: no milestone reached"
            )));
        };
        let key = format!("announced/{owner}");
        let announced: f64 = memory::get_text(&key)?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        if milestone <= announced {
            return Ok(Outcome::skipped(format!(
                "{owner}'s {announced:.0}% milestone is already announced"
            )));
        }
        let text = format!(
            "{owner} has closed {total:.0} of business: {share:.0}% of quota, past the {milestone:.0}% milestone."
        );
        notify::send(&notify::message(
            Channel::InApp,
            &[owner.as_str()],
            Some("Quota milestone"),
            &format!("Congratulations! {text}"),
        ))?;
        let channel = event.setting_text("slack-channel").unwrap_or_default();
        if !channel.is_empty() {
            notify::send(&notify::message(
                Channel::Slack,
                &[channel.as_str()],
                None,
                &text,
            ))?;
        }
        memory::set_text(&key, &milestone.to_string())?;
        Ok(Outcome::success(text))
    }
}

roster_sdk::export!(QuotaMilestoneAlert);
