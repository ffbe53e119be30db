//! Alert Classification (Security): classifies each new security alert with the offline
//! model `alert-category` and tells the on-call analyst the category, the severity (raised
//! to critical for critical categories) and the confidence. It writes nothing: its grant
//! reads alerts only. It reports the prediction's confidence, so below the review
//! threshold the notification waits for the SOC, whose approval or correction (editing the
//! category in the message) teaches the model.

use roster_sdk::notify::{self, Channel};
use roster_sdk::{Event, Outcome, Worker, WorkerError, inference, memory};

const MODEL: &str = "alert-category";
const SEED_KEY: &str = "seeded/v1";

const SEED: &[(&str, &str)] = &[
    (
        "User reported suspicious email with link to fake login page",
        "phishing",
    ),
    (
        "Email gateway flagged spoofed sender asking for invoice payment",
        "phishing",
    ),
    (
        "Endpoint detected trojan executable in downloads folder",
        "malware",
    ),
    (
        "Ransomware behaviour: mass file encryption on file server",
        "malware",
    ),
    (
        "Impossible travel sign-in from two countries within an hour",
        "credential-compromise",
    ),
    (
        "Password spray against many accounts followed by successful login",
        "credential-compromise",
    ),
    (
        "USB storage device used on restricted workstation",
        "policy-violation",
    ),
    (
        "Unapproved cloud storage upload of customer data",
        "policy-violation",
    ),
    (
        "Vulnerability scanner from the IT team triggered port scan alert",
        "benign",
    ),
    (
        "Scheduled backup job caused unusual outbound traffic",
        "benign",
    ),
];

struct AlertClassification;

impl Worker for AlertClassification {
    fn handle(event: Event) -> Result<Outcome, WorkerError> {
        let categories = event.setting_list("categories");
        if categories.len() < 2 {
            return Err(WorkerError::InvalidInput(
                "the `categories` setting needs at least two categories".into(),
            ));
        }
        if memory::get_text(SEED_KEY)?.is_none() {
            for (text, label) in SEED {
                if categories.iter().any(|c| c == label) {
                    match inference::learn(MODEL, text, label) {
                        Ok(()) => {}
                        // A provider that does not learn examples needs no seed.
                        Err(WorkerError::Unavailable(_)) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            memory::set_text(SEED_KEY, "done")?;
        }
        let alert = event.require_record()?;
        if alert.text("status").is_some_and(|s| s == "closed") {
            return Ok(Outcome::skipped(format!("alert {} is closed", alert.id)));
        }
        let title = alert.text("title").unwrap_or_default();
        let text = format!("{title} {}", alert.text("details").unwrap_or_default());
        let labels: Vec<&str> = categories.iter().map(String::as_str).collect();
        let p = inference::classify(MODEL, &text, &labels)?;
        let severity = if event.setting_list("critical-categories").contains(&p.label) {
            "critical".to_string()
        } else {
            alert.text("severity").unwrap_or("medium").to_string()
        };
        let analyst = event.setting_text("analyst").unwrap_or_default();
        let body = format!(
            "Alert {}: {title}\nCategory: {}\nSeverity: {severity}\nConfidence: {:.0}%\nHost: {}, user: {}, source: {}",
            alert.id,
            p.label,
            p.confidence * 100.0,
            alert.text("host").unwrap_or("-"),
            alert.text("user").unwrap_or("-"),
            alert.text("source").unwrap_or("-"),
        );
        notify::send(&notify::message(
            Channel::InApp,
            &[analyst.as_str()],
            Some(&format!("[{severity}] {} alert", p.label)),
            &body,
        ))?;
        Ok(Outcome::success(format!(
            "alert {} is {} ({severity}, {:.0}% confident)",
            alert.id,
            p.label,
            p.confidence * 100.0
        ))
        .with_confidence(p.confidence))
    }
}

roster_sdk::export!(AlertClassification);
