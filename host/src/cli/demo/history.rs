//! The demo business's history: accounts and everything around them, as they stand at
//! the time the demo is generated.

use super::*;

/// The demo business as it stands at `now`, with its history. Loading it triggers nothing:
/// `roster up` moves the trigger cursor past it.
pub fn history(seed: u64, now: i64) -> Vec<Record> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    for i in 0..ACCOUNTS {
        let (name, domain) = company(i);
        let owner = SELLERS[i % SELLERS.len()];
        let employees = [12, 40, 120, 300, 800, 2500, 9000][rng.usize(..7)] + rng.i64(0..50);
        out.push(record(
            "account",
            format!("A-{i:03}"),
            Some(owner),
            vec![
                ("name", text(&name)),
                ("domain", text(&domain)),
                ("industry", text(*pick(&mut rng, &INDUSTRIES))),
                ("employees", FieldValue::Integer(employees)),
                (
                    "annual_revenue",
                    FieldValue::Number((employees * 95_000) as f64),
                ),
                (
                    "tier",
                    text(if employees >= 1000 {
                        "enterprise"
                    } else {
                        "growth"
                    }),
                ),
                ("renewal_date", at(now + rng.i64(-20..365) * DAY)),
                ("health_score", FieldValue::Number(rng.i64(42..98) as f64)),
                (
                    "country",
                    text(*pick(&mut rng, &["GB", "DE", "US", "FR", "NL"])),
                ),
            ],
        ));
        // Two or three contacts per account.
        for c in 0..(2 + rng.usize(..2)) {
            let (full, local) = person(&mut rng);
            out.push(record(
                "contact",
                format!("C-{i:03}-{c}"),
                Some(owner),
                vec![
                    ("name", text(&full)),
                    ("email", text(format!("{local}@{domain}"))),
                    (
                        "title",
                        text(*pick(
                            &mut rng,
                            &["CTO", "VP Sales", "Head of Support", "CFO", "Ops lead"],
                        )),
                    ),
                    ("account_id", text(format!("A-{i:03}"))),
                    ("status", text("active")),
                ],
            ));
        }
    }
    // Duplicate contacts a careless import left behind.
    for d in 0..25 {
        let i = rng.usize(..ACCOUNTS);
        let (_, domain) = company(i);
        let original = out
            .iter()
            .find(|r| r.object == "contact" && r.id.starts_with(&format!("C-{i:03}-")))
            .cloned();
        if let Some(mut dup) = original {
            dup.id = format!("C-dup-{d:02}");
            if let Some(FieldValue::Text(email)) = dup.fields.get("email").cloned() {
                dup.fields
                    .insert("email".into(), text(email.to_uppercase()));
            }
            dup.fields.remove("title");
            dup.fields.insert(
                "phone".into(),
                text(format!("+44 20 7946 {:04}", rng.u32(..10_000))),
            );
            dup.fields
                .insert("account_id".into(), text(format!("A-{i:03}")));
            let _ = domain;
            out.push(dup);
        }
    }
    for l in 0..300 {
        let (full, local) = person(&mut rng);
        let owner = SELLERS[l % SELLERS.len()];
        let company_index = ACCOUNTS + rng.usize(..400);
        let (company_name, domain) = company(company_index);
        let free = rng.u8(..5) == 0;
        let email = if free {
            format!("{local}@{}", pick(&mut rng, &FREE_MAIL))
        } else {
            format!("{local}@{domain}")
        };
        let status = *pick(
            &mut rng,
            &["new", "working", "working", "qualified", "disqualified"],
        );
        let mut fields = vec![
            ("name", text(&full)),
            ("email", text(email)),
            ("company", text(company_name)),
            (
                "source",
                text(*pick(&mut rng, &["web", "event", "referral", "outbound"])),
            ),
            (
                "status",
                text(if status == "new" { "open" } else { status }),
            ),
            ("last_activity_at", at(now - rng.i64(0..60) * DAY)),
        ];
        if !free && rng.bool() {
            fields.push(("rating", text(*pick(&mut rng, &["hot", "warm", "cold"]))));
        }
        out.push(record("lead", format!("L-{l:03}"), Some(owner), fields));
    }
    for o in 0..250 {
        let account = rng.usize(..ACCOUNTS);
        let (name, _) = company(account);
        let owner = SELLERS[account % SELLERS.len()];
        let stage = match rng.u8(..10) {
            0..=1 => "closed-lost",
            2..=3 => "closed-won",
            n => STAGES[(n as usize - 4) % 4],
        };
        let closed = stage.starts_with("closed");
        let mut fields = vec![
            (
                "name",
                text(format!(
                    "{name} {}",
                    pick(&mut rng, &["platform", "expansion", "renewal", "pilot"])
                )),
            ),
            ("account_id", text(format!("A-{account:03}"))),
            ("stage", text(stage)),
            (
                "amount",
                FieldValue::Number((rng.u32(5..120) * 1000) as f64),
            ),
            (
                "close_date",
                at(now + rng.i64(if closed { -120..-1 } else { -10..120 }) * DAY),
            ),
            ("last_activity_at", at(now - rng.i64(0..45) * DAY)),
        ];
        if rng.u8(..4) != 0 {
            fields.push((
                "next_step",
                text(*pick(
                    &mut rng,
                    &[
                        "Send proposal",
                        "Security review",
                        "Pricing call",
                        "Sign order form",
                    ],
                )),
            ));
        }
        if stage == "closed-lost" {
            fields.push((
                "loss_reason",
                text(*pick(
                    &mut rng,
                    &["price", "timing", "competitor", "no budget"],
                )),
            ));
        }
        out.push(record(
            "opportunity",
            format!("O-{o:03}"),
            Some(owner),
            fields,
        ));
    }
    for t in 0..400 {
        let (category, subject) = *pick(&mut rng, &TICKETS);
        let account = rng.usize(..ACCOUNTS);
        let closed = t < 340;
        out.push(record(
            "ticket",
            format!("T-{t:04}"),
            Some("svc-cx"),
            vec![
                ("subject", text(subject)),
                ("status", text(if closed { "closed" } else { "open" })),
                (
                    "priority",
                    text(if category == "cancellation" {
                        "high"
                    } else {
                        "normal"
                    }),
                ),
                ("account_id", text(format!("A-{account:03}"))),
                ("opened_at", at(now - rng.i64(1..120) * DAY)),
                ("category", text(category)),
                ("queue", text(category)),
            ],
        ));
    }
    // Customer invoices: most paid, some overdue.
    for n in 0..160 {
        let account = rng.usize(..ACCOUNTS);
        let due = now + rng.i64(-90..45) * DAY;
        let paid = due < now && rng.u8(..5) != 0;
        let mut fields = vec![
            ("number", text(format!("INV-{:05}", 10_000 + n))),
            ("account_id", text(format!("A-{account:03}"))),
            ("amount", FieldValue::Number((rng.u32(2..60) * 500) as f64)),
            ("status", text(if paid { "paid" } else { "open" })),
            ("due_date", at(due)),
        ];
        if paid {
            fields.push(("paid_at", at(due - rng.i64(0..10) * DAY)));
        }
        out.push(record(
            "invoice",
            format!("I-{n:03}"),
            Some("svc-finance"),
            fields,
        ));
    }
    // Vendors' purchase orders, and their invoices already reviewed.
    for p in 0..80 {
        let vendor = *pick(
            &mut rng,
            &[
                "Paper Co",
                "Cloud Hosting Ltd",
                "Office Supplies Inc",
                "Travel Partners",
                "Legal LLP",
            ],
        );
        let amount = (rng.u32(4..200) * 100) as f64;
        out.push(record(
            "purchase_order",
            format!("PO-{p:03}"),
            Some("svc-finance"),
            vec![
                ("number", text(format!("PO-{}", 4000 + p))),
                ("vendor", text(vendor)),
                ("amount", FieldValue::Number(amount)),
                ("status", text(if p < 60 { "open" } else { "closed" })),
                ("approved_by", text("controller")),
            ],
        ));
        if p < 50 {
            out.push(record(
                "invoice",
                format!("VI-{p:03}"),
                Some("svc-finance"),
                vec![
                    (
                        "number",
                        text(format!(
                            "{}-{}",
                            vendor.split(' ').next().unwrap_or("V").to_uppercase(),
                            700 + p
                        )),
                    ),
                    ("vendor", text(vendor)),
                    ("amount", FieldValue::Number(amount)),
                    ("po_number", text(format!("PO-{}", 4000 + p))),
                    ("status", text("paid")),
                    ("review_status", text("matched")),
                    ("due_date", at(now - rng.i64(5..60) * DAY)),
                ],
            ));
        }
    }
    for a in 0..60 {
        let (category, title, details) = *pick(&mut rng, &ALERTS);
        out.push(record(
            "security_alert",
            format!("SA-{a:03}"),
            Some("svc-security"),
            vec![
                ("title", text(title)),
                ("details", text(details)),
                ("category", text(category)),
                (
                    "severity",
                    text(*pick(&mut rng, &["low", "medium", "high"])),
                ),
                (
                    "source",
                    text(*pick(
                        &mut rng,
                        &["email-gateway", "edr", "identity", "dlp"],
                    )),
                ),
                ("status", text("closed")),
            ],
        ));
    }
    for e in 0..40 {
        let (full, local) = person(&mut rng);
        out.push(record(
            "employee",
            format!("E-{e:03}"),
            Some("svc-hr"),
            vec![
                ("name", text(&full)),
                ("email", text(format!("{local}@roster-demo.example"))),
                (
                    "department",
                    text(*pick(
                        &mut rng,
                        &["sales", "support", "engineering", "finance"],
                    )),
                ),
                ("start_date", at(now - rng.i64(30..2000) * DAY)),
                ("status", text("active")),
            ],
        ));
    }
    for c in 0..30 {
        let (full, local) = person(&mut rng);
        let skills: Vec<String> = (0..rng.usize(1..5))
            .map(|_| pick(&mut rng, &SKILLS).to_string())
            .collect();
        out.push(record(
            "candidate",
            format!("CA-{c:03}"),
            Some("svc-hr"),
            vec![
                ("name", text(&full)),
                ("email", text(format!("{local}@mail.example"))),
                ("position", text("Support engineer")),
                ("skills", FieldValue::TextList(skills)),
                ("years_experience", FieldValue::Integer(rng.i64(0..12))),
                (
                    "stage",
                    text(*pick(&mut rng, &["screen", "interview", "rejected"])),
                ),
                ("score", FieldValue::Number(rng.i64(20..95) as f64)),
            ],
        ));
    }
    for m in 0..80 {
        let (full, local) = person(&mut rng);
        let account = rng.usize(..ACCOUNTS);
        let (_, domain) = company(account);
        let owner = SELLERS[account % SELLERS.len()];
        out.push(record(
            "meeting",
            format!("M-{m:03}"),
            Some(owner),
            vec![
                ("subject", text(format!("Call with {full}"))),
                ("related_to", text(format!("account/A-{account:03}"))),
                ("starts_at", at(now + rng.i64(-30..14) * DAY)),
                (
                    "status",
                    text(if m % 3 == 0 { "completed" } else { "scheduled" }),
                ),
                (
                    "attendees",
                    FieldValue::TextList(vec![owner.to_string(), format!("{local}@{domain}")]),
                ),
            ],
        ));
    }
    for a in 0..300 {
        let o = rng.usize(..250);
        out.push(record(
            "activity",
            format!("ACT-{a:04}"),
            Some(SELLERS[o % SELLERS.len()]),
            vec![
                ("type", text(*pick(&mut rng, &["call", "email", "meeting"]))),
                (
                    "subject",
                    text(*pick(
                        &mut rng,
                        &["Discovery call", "Sent pricing", "Follow-up", "Demo"],
                    )),
                ),
                ("related_to", text(format!("opportunity/O-{o:03}"))),
                ("occurred_at", at(now - rng.i64(0..90) * DAY)),
                (
                    "outcome",
                    text(*pick(&mut rng, &["positive", "neutral", "no answer"])),
                ),
            ],
        ));
    }
    out
}
