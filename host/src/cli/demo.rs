//! The demo business `roster up` runs on: a realistic dataset with history (accounts,
//! contacts, leads, opportunities, tickets, invoices and purchase orders, security
//! alerts, people and candidates, meetings and activities), and a stream of the day's
//! business activity (new leads and tickets, deals moving, alerts, invoices, candidates)
//! that keeps the workers busy.
//!
//! Both are generated from a seed, relative to the time they are generated at, so every
//! run of a fresh demo is the same business and a resumed one picks up the stream where it
//! stopped. Names and domains use the reserved `example` top-level domain.

use std::collections::BTreeMap;

use crate::store::{Store, StoreError};
use crate::value::{FieldValue, Record};

mod history;

pub use history::history;

const DAY: i64 = 24 * 60 * 60 * 1000;

/// The account executives who own accounts, leads and opportunities.
pub const SELLERS: [&str; 4] = ["ann", "bob", "cat", "dan"];

const PREFIXES: [&str; 20] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied",
    "Massive",
    "Oscorp",
    "Aperture",
    "Gringotts",
    "Monarch",
    "Nakatomi",
    "Virtucon",
];
const SUFFIXES: [&str; 10] = [
    "Labs",
    "Systems",
    "Foods",
    "Logistics",
    "Health",
    "Energy",
    "Retail",
    "Media",
    "Bank",
    "Works",
];
const INDUSTRIES: [&str; 8] = [
    "software",
    "manufacturing",
    "retail",
    "healthcare",
    "finance",
    "logistics",
    "media",
    "energy",
];
const FIRST: [&str; 16] = [
    "Jo", "Kim", "Sam", "Alex", "Dana", "Lee", "Ray", "Amy", "Noor", "Ivan", "Mia", "Omar", "Lena",
    "Theo", "Priya", "Chen",
];
const LAST: [&str; 12] = [
    "Park", "Lee", "Smith", "Garcia", "Novak", "Khan", "Rossi", "Berg", "Okafor", "Tanaka",
    "Silva", "Dubois",
];
const STAGES: [&str; 5] = [
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "closed-won",
];
const FREE_MAIL: [&str; 3] = ["gmail.com", "outlook.com", "proton.me"];

/// Ticket texts by category (the Ticket Triage categories).
const TICKETS: [(&str, &str); 24] = [
    ("billing", "We were charged twice for the same invoice"),
    ("billing", "Please refund the extra seats on our last bill"),
    ("billing", "The invoice is missing our VAT number"),
    ("billing", "Our card payment failed but the card is fine"),
    ("billing", "Why did the price go up on this month's invoice"),
    ("billing", "Can we pay the invoice by bank transfer"),
    (
        "technical",
        "The dashboard shows an error 500 since this morning",
    ),
    ("technical", "CRM sync stopped working after the update"),
    ("technical", "Export to CSV times out for large reports"),
    ("technical", "The mobile app crashes when opening a deal"),
    ("technical", "Webhook deliveries fail with a 404"),
    ("technical", "Login page is blank in Safari"),
    ("account", "Please add two new users to our workspace"),
    ("account", "Reset the password for our new admin"),
    ("account", "Change the billing contact email on our account"),
    ("account", "Remove access for an employee who left"),
    ("account", "Transfer workspace ownership to our new CTO"),
    ("account", "Enable single sign-on for all our users"),
    ("cancellation", "We want to cancel at the end of the term"),
    ("cancellation", "Please do not renew our contract"),
    (
        "cancellation",
        "We are moving to another vendor next quarter",
    ),
    ("cancellation", "Budget cuts: how do we close the account"),
    ("cancellation", "Stop the renewal and delete our data"),
    ("cancellation", "Downgrade us and then end the agreement"),
];

/// Security alert texts by category (the Alert Classification categories).
const ALERTS: [(&str, &str, &str); 10] = [
    (
        "phishing",
        "Reported phishing email",
        "User reported an email with a link to a fake Microsoft login page",
    ),
    (
        "phishing",
        "Spoofed invoice email",
        "Gateway flagged a spoofed sender asking finance to pay an invoice",
    ),
    (
        "malware",
        "Trojan detected",
        "Endpoint protection found a trojan executable in the downloads folder",
    ),
    (
        "malware",
        "Ransomware behaviour",
        "Mass file encryption detected on a file server share",
    ),
    (
        "credential-compromise",
        "Impossible travel",
        "Sign-ins from two countries within an hour, then an MFA reset",
    ),
    (
        "credential-compromise",
        "Password spray",
        "Password spray against many accounts followed by a successful login",
    ),
    (
        "policy-violation",
        "USB storage used",
        "USB storage device connected to a restricted workstation",
    ),
    (
        "policy-violation",
        "Unapproved upload",
        "Customer data uploaded to an unapproved cloud storage service",
    ),
    (
        "benign",
        "Internal port scan",
        "The IT vulnerability scanner triggered a port scan alert",
    ),
    (
        "benign",
        "Backup traffic",
        "Scheduled backup job caused unusual outbound traffic",
    ),
];

const SKILLS: [&str; 8] = [
    "customer support",
    "crm",
    "english",
    "sql",
    "sales",
    "german",
    "python",
    "negotiation",
];

fn text(s: impl Into<String>) -> FieldValue {
    FieldValue::Text(s.into())
}

fn at(t: i64) -> FieldValue {
    FieldValue::Timestamp { timestamp: t }
}

fn record(
    object: &str,
    id: String,
    owner: Option<&str>,
    fields: Vec<(&str, FieldValue)>,
) -> Record {
    Record {
        object: object.to_string(),
        id,
        owner: owner.map(str::to_string),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn company(i: usize) -> (String, String) {
    let name = format!(
        "{} {}",
        PREFIXES[i % PREFIXES.len()],
        SUFFIXES[(i / PREFIXES.len()) % SUFFIXES.len()]
    );
    let domain = format!("{}.example", name.to_lowercase().replace(' ', "-"));
    (name, domain)
}

fn person(rng: &mut fastrand::Rng) -> (String, String) {
    let (first, last) = (*pick(rng, &FIRST), *pick(rng, &LAST));
    (
        format!("{first} {last}"),
        format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
    )
}

/// The number of accounts in the demo business.
pub const ACCOUNTS: usize = 200;

/// One step of the day's business activity.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A record is created.
    Create(Record),
    /// An open opportunity moves to its next stage (from negotiation it is won or lost).
    Advance {
        /// The opportunity.
        id: String,
        /// Whether a deal in negotiation is won.
        won: bool,
    },
    /// Fields of a record change.
    Update {
        /// The object type.
        object: String,
        /// The record.
        id: String,
        /// The new values.
        fields: BTreeMap<String, FieldValue>,
    },
}

impl Step {
    /// Applies the step to the store as `actor`; a record that is gone or already there
    /// is skipped (`Ok(false)`).
    pub fn apply(&self, store: &Store, actor: &str) -> Result<bool, StoreError> {
        match self {
            Step::Create(r) => {
                if store.get_record(&r.object, &r.id)?.is_some() {
                    return Ok(false);
                }
                store.create_record(
                    &r.object,
                    Some(r.id.clone()),
                    r.owner.clone(),
                    r.fields.clone(),
                    actor,
                )?;
                Ok(true)
            }
            Step::Update { object, id, fields } => {
                Ok(store.update_record(object, id, fields, actor)?.is_some())
            }
            Step::Advance { .. } => match self.resolve(store)? {
                Some(step) => step.apply(store, actor),
                None => Ok(false),
            },
        }
    }

    /// For [`Step::Advance`], the update it makes given the opportunity's current stage;
    /// `None` when it is closed or gone.
    pub fn resolve(&self, store: &Store) -> Result<Option<Step>, StoreError> {
        let Step::Advance { id, won } = self else {
            return Ok(Some(self.clone()));
        };
        let Some(opp) = store.get_record("opportunity", id)? else {
            return Ok(None);
        };
        let stage = match opp.fields.get("stage") {
            Some(FieldValue::Text(s)) => s.as_str(),
            _ => "prospecting",
        };
        let next = match stage {
            "prospecting" => "qualification",
            "qualification" => "proposal",
            "proposal" => "negotiation",
            "negotiation" if *won => "closed-won",
            "negotiation" => "closed-lost",
            _ => return Ok(None),
        };
        let mut fields = vec![("stage", text(next))];
        match next {
            "closed-won" => fields.push(("win_reason", text("security review passed first"))),
            "closed-lost" => fields.push(("loss_reason", text("price"))),
            _ => {}
        }
        Ok(Some(update("opportunity", id.clone(), fields)))
    }

    /// A one-line description for the console.
    pub fn describe(&self) -> String {
        let field = |r: &BTreeMap<String, FieldValue>, k: &str| match r.get(k) {
            Some(FieldValue::Text(t)) => t.clone(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        match self {
            Step::Create(r) => {
                let what = ["subject", "name", "title", "number", "system"]
                    .iter()
                    .map(|k| field(&r.fields, k))
                    .find(|s| !s.is_empty())
                    .unwrap_or_default();
                format!("new {} {}: {what}", r.object, r.id)
            }
            Step::Advance { id, .. } => format!("opportunity {id} moves on"),
            Step::Update { object, id, fields } => {
                let changes: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| match v {
                        FieldValue::Text(t) => format!("{k} → {t}"),
                        other => format!("{k} → {other:?}"),
                    })
                    .collect();
                format!("{object} {id}: {}", changes.join(", "))
            }
        }
    }
}

fn update(object: &str, id: String, fields: Vec<(&str, FieldValue)>) -> Step {
    Step::Update {
        object: object.to_string(),
        id,
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// The `n`th step of the day's activity (from 0), at `now`. Deterministic for a seed and
/// `n`, so a resumed demo goes on where it stopped.
pub fn activity(seed: u64, n: u64, now: i64) -> Step {
    let mut rng = fastrand::Rng::with_seed(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let owner = SELLERS[(n % 4) as usize];
    match n % 10 {
        0 | 5 => {
            let (full, local) = person(&mut rng);
            let (company_name, domain) = company(ACCOUNTS + 400 + rng.usize(..300));
            Step::Create(record(
                "lead",
                format!("L-live-{n:05}"),
                Some(owner),
                vec![
                    ("name", text(full)),
                    ("email", text(format!("{local}@{domain}"))),
                    ("company", text(company_name)),
                    (
                        "employees",
                        FieldValue::Integer([25, 150, 600, 1500, 4000][rng.usize(..5)]),
                    ),
                    ("source", text("web")),
                    ("status", text("open")),
                    ("last_activity_at", at(now)),
                ],
            ))
        }
        1 | 6 => {
            let (_, subject) = *pick(&mut rng, &TICKETS);
            Step::Create(record(
                "ticket",
                format!("T-live-{n:05}"),
                Some("svc-cx"),
                vec![
                    ("subject", text(subject)),
                    ("status", text("open")),
                    ("priority", text("normal")),
                    (
                        "account_id",
                        text(format!("A-{:03}", rng.usize(..ACCOUNTS))),
                    ),
                    ("opened_at", at(now)),
                ],
            ))
        }
        2 => Step::Advance {
            // A deal moves a stage on; most deals in negotiation are won.
            id: format!("O-{:03}", rng.usize(..250)),
            won: rng.u8(..4) != 0,
        },
        3 => {
            let (_, title, details) = *pick(&mut rng, &ALERTS);
            Step::Create(record(
                "security_alert",
                format!("SA-live-{n:05}"),
                Some("svc-security"),
                vec![
                    ("title", text(title)),
                    ("details", text(details)),
                    ("severity", text(*pick(&mut rng, &["medium", "high"]))),
                    (
                        "source",
                        text(*pick(&mut rng, &["email-gateway", "edr", "identity"])),
                    ),
                    ("status", text("open")),
                ],
            ))
        }
        4 => {
            // A vendor invoice against an open purchase order; now and then off by more
            // than the tolerance.
            let p = rng.usize(..60);
            let off = if rng.u8(..3) == 0 { 1.3 } else { 1.0 };
            Step::Create(record(
                "invoice",
                format!("VI-live-{n:05}"),
                Some("svc-finance"),
                vec![
                    ("number", text(format!("V-{}", 9000 + n))),
                    ("vendor", text("Paper Co")),
                    ("amount", FieldValue::Number((100 + p * 37) as f64 * off)),
                    ("po_number", text(format!("PO-{}", 4000 + p))),
                    ("status", text("open")),
                    ("due_date", at(now + 30 * DAY)),
                ],
            ))
        }
        7 => {
            let (full, local) = person(&mut rng);
            let skills: Vec<String> = (0..rng.usize(1..5))
                .map(|_| pick(&mut rng, &SKILLS).to_string())
                .collect();
            Step::Create(record(
                "candidate",
                format!("CA-live-{n:05}"),
                Some("svc-hr"),
                vec![
                    ("name", text(full)),
                    ("email", text(format!("{local}@mail.example"))),
                    ("position", text("Support engineer")),
                    ("skills", FieldValue::TextList(skills)),
                    ("years_experience", FieldValue::Integer(rng.i64(0..10))),
                    ("stage", text("applied")),
                ],
            ))
        }
        8 => {
            if rng.bool() {
                update(
                    "meeting",
                    format!("M-{:03}", rng.usize(..80)),
                    vec![("status", text("no-show"))],
                )
            } else {
                update(
                    "candidate",
                    format!("CA-{:03}", rng.usize(..30)),
                    vec![("stage", text("hired"))],
                )
            }
        }
        _ => {
            // An account's health drops.
            update(
                "account",
                format!("A-{:03}", rng.usize(..ACCOUNTS)),
                vec![("health_score", FieldValue::Number(rng.i64(18..39) as f64))],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_business_is_realistic_and_the_same_for_a_seed() {
        let now = 1_800_000_000_000;
        let data = history(7, now);
        let count = |o: &str| data.iter().filter(|r| r.object == o).count();
        for (object, at_least) in [
            ("account", 200),
            ("contact", 400),
            ("lead", 300),
            ("opportunity", 250),
            ("ticket", 400),
            ("invoice", 200),
            ("purchase_order", 80),
            ("security_alert", 60),
            ("candidate", 30),
            ("meeting", 80),
            ("activity", 300),
        ] {
            assert!(count(object) >= at_least, "{object}: {}", count(object));
        }
        assert_eq!(data, history(7, now));
        let schema = crate::schema::Schema::standard();
        for r in &data {
            let checked = schema
                .coerce_all(&r.object, r.fields.clone())
                .unwrap_or_else(|e| panic!("{}/{}: {e}", r.object, r.id));
            assert_eq!(
                checked, r.fields,
                "{}/{} has the schema's types",
                r.object, r.id
            );
        }
        assert_eq!(activity(7, 12, now), activity(7, 12, now));
        assert_ne!(activity(7, 12, now), activity(7, 13, now));
    }
}
