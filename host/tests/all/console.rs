//! The web console in a real browser (Debian's chromium, headless, driven by
//! playwright-core from `tests/console`) against `roster up` with the demo business: a
//! reviewer approves, edits and rejects held actions and the store shows exactly those
//! effects, once; a viewer sees no decision buttons and a forged request with the
//! viewer's session is refused; an admin installs a worker through the review page and it
//! runs; the kill switch stops a domain; every page is screenshot and audited by axe-core.
//! Then the dashboard's numbers are checked against the execution log read through
//! `/v1/executions` with the same filters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve_process::{free_port, http};
use crate::up::Up;

const HOUR_MS: i64 = 3_600_000;

/// The browser tests' directory (`tests/console`).
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/console")
}

/// Node, chromium and the npm packages, or the commands that install them.
fn tools() -> PathBuf {
    let install = "apt-get install -y chromium nodejs npm && (cd tests/console && npm ci)";
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "the console tests drive Debian's chromium ({}); install it: {install}",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the console tests run node; install it: {install}"
    );
    assert!(
        scripts().join("node_modules/playwright-core").is_dir()
            && scripts().join("node_modules/axe-core").is_dir(),
        "the console tests need playwright-core and axe-core from npm; install them: {install}"
    );
    chromium
}

/// The API as the demo admin.
struct Api {
    port: u16,
    token: String,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let auth = [("authorization", format!("Bearer {}", self.token))];
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = http(self.port, method, path, &auth, body.as_bytes())
            .unwrap_or_else(|| panic!("{method} {path}: no answer"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (status, answer) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.call("POST", path, Some(body));
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {answer}"
        );
        answer
    }

    /// Every page of a listing.
    fn all(&self, path: &str, field: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let joiner = if path.contains('?') { '&' } else { '?' };
            let page = match &next {
                Some(n) => format!("{path}{joiner}limit=1000&next={n}"),
                None => format!("{path}{joiner}limit=1000"),
            };
            let answer = self.get(&page);
            out.extend(answer[field].as_array().cloned().unwrap_or_default());
            match answer["next"].as_str() {
                Some(n) => next = Some(n.to_string()),
                None => return out,
            }
        }
    }

    /// A one-time sign-in path for an account.
    fn login_link(&self, account: &str) -> String {
        let answer = self.post(&format!("/v1/people/{account}/login-links"), &json!({}));
        answer["link"].as_str().unwrap().to_string()
    }
}

/// Kills `roster up` when the test ends, however it ends.
struct Running(Option<Up>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(up) = &mut self.0 {
            let _ = up.child.kill();
            let _ = up.child.wait();
        }
    }
}

fn count_by<'a>(items: impl Iterator<Item = &'a Value>, key: &str) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for item in items {
        *counts
            .entry(item[key].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

#[test]
fn the_console_runs_reviews_installs_and_stops_workers_in_a_real_browser() {
    let chromium = tools();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut running = Running(Some(Up::start(data.path(), port)));
    let up = running.0.as_mut().unwrap();
    let console = up.until(Duration::from_secs(600), |l| l.contains("console: http://"));
    assert!(
        console.contains(&format!("http://127.0.0.1:{port}/")),
        "{console}"
    );
    let link = up.until(Duration::from_secs(30), |l| l.contains("/login?code="));
    let admin_link = link[link.find("/login?code=").unwrap()..]
        .trim()
        .to_string();
    up.until(Duration::from_secs(60), |l| {
        l.starts_with("roster serving on")
    });
    let token = std::fs::read_to_string(data.path().join("up/api-token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api { port, token };

    // Wait for enough held actions in one domain for the reviewer.
    let deadline = Instant::now() + Duration::from_secs(300);
    let domain = loop {
        let held = api.all("/v1/approvals?status=pending", "approvals");
        if let Some((d, n)) = count_by(held.iter(), "domain").into_iter().next()
            && n >= 6
        {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "too few held actions after 5 minutes"
        );
        std::thread::sleep(Duration::from_secs(2));
    };

    // People: a reviewer in that domain and a viewer.
    for (id, roles) in [
        ("rita@demo.example", json!([format!("reviewer@{domain}")])),
        ("vic@demo.example", json!(["viewer"])),
    ] {
        api.post(
            "/v1/people",
            &json!({ "id": id, "kind": "user", "name": id, "roles": roles }),
        );
    }

    // The worker the admin installs through the review page: the busiest outside the
    // reviewer's domain, removed first so that its version is on offer.
    let workers = api.all("/v1/workers", "workers");
    let domain_of = |name: &str| {
        workers
            .iter()
            .find(|w| w["name"] == name)
            .map(|w| w["domain"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let activity = api.get("/v1/stats/activity");
    let busiest = activity["totals"]["executions"].as_u64().unwrap_or(0);
    assert!(busiest > 0, "the demo ran nothing: {activity}");
    let install = activity["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker"].as_str().unwrap().to_string())
        .find(|w| domain_of(w) != domain)
        .expect("a busy worker outside the reviewer's domain");
    let install_domain = domain_of(&install);
    let install_principal = workers
        .iter()
        .find(|w| w["name"] == install.as_str())
        .map(|w| w["principal"].clone())
        .unwrap();
    let sources = api.get("/v1/registry/catalogue");
    let source = &sources["sources"][0];
    let repository = source["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{install}"))
        })
        .unwrap_or_else(|| panic!("{install} is not in the registry: {sources}"));
    let reference = format!(
        "{}/{}:{}",
        source["registry"].as_str().unwrap(),
        repository["name"].as_str().unwrap(),
        repository["tags"][0].as_str().unwrap()
    );
    let (status, removed) = api.call(
        "DELETE",
        &format!("/v1/installations/{install}?reason=console%20test"),
        None,
    );
    assert_eq!(status, 200, "{removed}");

    // The domain the kill switch stops: another one.
    let mut domains: Vec<String> = workers
        .iter()
        .map(|w| w["domain"].as_str().unwrap().to_string())
        .collect();
    domains.sort();
    domains.dedup();
    let kill_domain = domains
        .iter()
        .find(|d| **d != domain && **d != install_domain)
        .unwrap()
        .clone();

    // A lead the built rule is tried on: an EMEA enterprise lead.
    api.post(
        "/v1/records/lead",
        &json!({ "id": "L-CONSOLE-SAMPLE", "owner": "bob", "fields": { "name": "Sample Lead", "company": "Sample Co", "employees": 800, "status": "open" } }),
    );

    // The browser.
    let removed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .arg("e2e.mjs")
        .current_dir(scripts())
        .env("ROSTER_BASE", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_LINK", &admin_link)
        .env("REVIEWER_LINK", api.login_link("rita@demo.example"))
        .env("VIEWER_LINK", api.login_link("vic@demo.example"))
        .env("INSTALL_REFERENCE", &reference)
        .env("KILL_DOMAIN", &kill_domain)
        .env("SAMPLE_LEAD", "lead/L-CONSOLE-SAMPLE")
        .env("ADMIN_TOKEN", &api.token)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let results: Value = serde_json::from_slice(
        &std::fs::read(artifacts.join("results.json")).unwrap_or_else(|e| {
            panic!(
                "the browser run wrote no results ({e}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }),
    )
    .unwrap();
    println!("screenshots: {}", artifacts.display());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results["problems"], json!([]), "{results:#}");
    assert_eq!(results["consoleErrors"], json!([]), "{results:#}");

    // Every page: a screenshot, and no serious or critical accessibility violation.
    let pages = results["pages"].as_array().unwrap();
    assert!(pages.len() >= 20, "{pages:?}");
    for page in pages {
        let file = artifacts.join(format!("{}.png", page.as_str().unwrap()));
        assert!(
            file.metadata().is_ok_and(|m| m.len() > 10_000),
            "{}",
            file.display()
        );
    }
    for (page, violations) in results["axe"].as_object().unwrap() {
        let grave: Vec<&Value> = violations
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(grave.is_empty(), "{page}: {grave:#?}");
    }
    assert!(results["axe"].as_object().unwrap().len() >= 16);

    // Safety headers on every answer, and typed text shown as text.
    let headers = &results["headers"];
    let csp = headers["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{headers:#}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff", "{headers:#}");
    assert_eq!(headers["x-frame-options"], "DENY", "{headers:#}");
    assert_eq!(results["editedShownAsText"], true, "{results:#}");
    assert_eq!(results["editedMarkup"], 0, "{results:#}");

    // The reviewer's three decisions, each applied once.
    let decided = |id: &Value| {
        api.get(&format!("/v1/approvals/{}", id.as_str().unwrap()))["approval"].clone()
    };
    let approved = decided(&results["approved"]);
    assert_eq!(approved["status"], "applied", "{approved:#}");
    assert_eq!(approved["decision"]["verdict"], "approve");
    assert_eq!(approved["decision"]["by"], "rita@demo.example");
    let edited = decided(&results["edited"]["id"]);
    assert_eq!(edited["status"], "applied", "{edited:#}");
    assert_eq!(edited["decision"]["verdict"], "edit");
    let field = results["edited"]["field"].as_str().unwrap();
    let value = &results["edited"]["value"];
    let effect = &edited["decision"]["edited"];
    if field == "body" {
        assert_eq!(&effect["body"], value, "{edited:#}");
    } else {
        assert_eq!(&effect["fields"][field], value, "{edited:#}");
        let record = api.get(&format!(
            "/v1/records/{}/{}",
            effect["object"].as_str().unwrap(),
            effect["id"].as_str().unwrap()
        ));
        assert_eq!(&record["record"]["fields"][field], value, "{record:#}");
    }
    let rejected = decided(&results["rejected"]);
    assert_eq!(rejected["status"], "rejected", "{rejected:#}");
    assert!(rejected["applied"].is_null(), "{rejected:#}");
    let decisions = api.all("/v1/audit?status=governance", "entries");
    for (id, action) in [
        (&results["approved"], "approval.approve"),
        (&results["edited"]["id"], "approval.edit"),
        (&results["rejected"], "approval.reject"),
    ] {
        let n = decisions
            .iter()
            .filter(|e| {
                let g = &e["entry"]["report"]["governance"];
                g["subject"] == *id
                    && g["action"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("approval."))
            })
            .map(|e| e["entry"]["report"]["governance"]["action"].clone())
            .collect::<Vec<_>>();
        assert_eq!(n, vec![json!(action)], "the audit records {id} once");
    }

    // The viewer: held actions in view, no decision buttons, forged requests refused.
    assert!(results["viewerCards"].as_u64().unwrap() > 0, "{results:#}");
    assert_eq!(results["viewerButtons"], 0);
    for hidden in ["Kill switch", "Install", "People"] {
        assert!(
            !results["viewerNav"]
                .as_array()
                .unwrap()
                .contains(&json!(hidden)),
            "{results:#}"
        );
    }
    for (what, status) in results["forged"].as_object().unwrap() {
        if what != "target" {
            assert_eq!(status, 403, "forged {what}: {results:#}");
        }
    }
    let target = api.get(&format!(
        "/v1/approvals/{}",
        results["forged"]["target"].as_str().unwrap()
    ));
    assert_eq!(
        target["approval"]["status"], "pending",
        "a forged decision changed nothing"
    );

    // Live updates, the chain verified in the browser, the export.
    assert_eq!(results["liveArrived"], true, "{results:#}");
    assert_eq!(results["verified"], 1);
    assert_eq!(results["exportStatus"], 200);
    assert!(
        results["exportHead"]
            .as_str()
            .unwrap()
            .starts_with("seq,hash,")
    );
    assert_eq!(results["afterSignOut"], "/login");

    // The rule built in the browser: the misspelt field caught as it was typed, the rule
    // tried on the sample lead, deployed; it fired on the EMEA lead and not the NA one.
    let problem = results["ruleLiveProblem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("step 3 (notify)") && problem.contains("nmae"),
        "{results:#}"
    );
    assert_eq!(
        results["ruleMessage"],
        "New enterprise lead {{lead.name}} from {{lead.company}}"
    );
    let tried = results["ruleTried"].as_str().unwrap_or_default();
    assert!(
        tried.contains("1 ran") && tried.contains("0 failed"),
        "{tried}"
    );
    assert_eq!(
        results["ruleTriedActions"],
        json!(["records.update", "records.create", "notify.send"]),
        "{results:#}"
    );
    assert_eq!(results["ruleDeployed"], true);
    let runs = &results["ruleRuns"];
    let fired = &runs["lead/L-CONSOLE-1"];
    let actions: Vec<String> = fired["report"]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("the rule did not run on L-CONSOLE-1: {runs:#}"))
        .iter()
        .filter(|a| a["kind"] == "effect")
        .map(|a| {
            format!(
                "{}.{} {}",
                a["capability"].as_str().unwrap(),
                a["operation"].as_str().unwrap(),
                a["target"].as_str().unwrap()
            )
        })
        .collect();
    // Round-robin: the owner is whoever's turn it was (the demo's own leads take turns
    // too), and the Slack post goes to that owner.
    let summary = fired["report"]["outcome"]["summary"]
        .as_str()
        .unwrap_or_default();
    let owner = ["ann", "bob"]
        .into_iter()
        .find(|o| summary.contains(&format!("assigned lead/L-CONSOLE-1 to {o};")))
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(
        actions,
        [
            "records.update lead/L-CONSOLE-1".to_string(),
            "records.create task".to_string(),
            format!("notify.send slack:{owner}"),
        ],
        "{runs:#}"
    );
    let logs = fired["report"]["logs"].to_string();
    assert!(
        logs.contains("New enterprise lead Lead L-CONSOLE-1 from Console Corp"),
        "{logs}"
    );
    let skipped = &runs["lead/L-CONSOLE-2"];
    assert_eq!(skipped["detail"], "conditions not met", "{runs:#}");
    assert!(skipped["report"].is_null());

    // The installed worker runs.
    assert_eq!(results["installed"], install.as_str());
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // It was removed before the browser started: what ran since, the install ran.
        let ran = api.get(&format!(
            "/v1/executions?worker={install}&since={removed_at}&limit=1"
        ));
        if !ran["executions"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{install} did not run after its install"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let installed = api.get("/v1/installations");
    let row = installed["installations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == install.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["from-registry"], true, "{row}");
    assert_eq!(row["domain"], install_domain.as_str(), "{row}");
    assert_eq!(
        row["principal"], install_principal,
        "the usual principal is proposed"
    );

    // The kill switch paused exactly the domain's workers, as the page listed.
    let now_workers = api.all("/v1/workers", "workers");
    let mut in_domain: Vec<String> = now_workers
        .iter()
        .filter(|w| w["domain"] == kill_domain.as_str())
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    in_domain.sort();
    for w in &now_workers {
        let paused = w["paused"] == true;
        let here = w["domain"] == kill_domain.as_str();
        assert_eq!(paused, here, "{w}");
    }
    let mut listed: Vec<String> = results["killPaused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, in_domain);

    dashboard_matches_the_execution_log(&api, &domain, &install);

    let (status, _) = running.0.take().unwrap().interrupt();
    assert!(status.success());
}

/// Stops everything, then holds the dashboard's numbers to those worked out from the
/// execution log through `/v1/executions`, for the same filters.
fn dashboard_matches_the_execution_log(api: &Api, domain: &str, worker: &str) {
    api.post(
        "/v1/kill",
        &json!({ "scope": "all", "reason": "console test: hold the log still" }),
    );
    // Wait until the log stops growing.
    let mut last = u64::MAX;
    let mut calm = 0;
    while calm < 3 {
        let n = api.get("/v1/stats/activity")["totals"]["executions"]
            .as_u64()
            .unwrap();
        calm = if n == last { calm + 1 } else { 0 };
        last = n;
        std::thread::sleep(Duration::from_millis(700));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let to = (now / HOUR_MS + 1) * HOUR_MS;
    let from = to - 24 * HOUR_MS;
    let filters = [
        String::new(),
        format!("&domain={domain}"),
        format!("&worker={worker}"),
        "&status=success".to_string(),
        "&status=awaiting-approval".to_string(),
        "&kind=rules".to_string(),
        "&kind=ai".to_string(),
    ];
    let mut compared = 0;
    for filter in &filters {
        let stats = api.get(&format!("/v1/stats/activity?from={from}&to={to}{filter}"));
        let log = api.all(
            &format!("/v1/executions?since={from}&until={to}{filter}"),
            "executions",
        );
        let expected = summarize(&log);
        let totals = &stats["totals"];
        for key in [
            "executions",
            "succeeded",
            "skipped",
            "interrupted",
            "failed",
            "records_affected",
            "actions_held",
            "p95_duration_ms",
        ] {
            assert_eq!(
                totals[key], expected[key],
                "{key} with `{filter}`: {totals:#}"
            );
        }
        let average = |v: &Value| v.as_f64().unwrap_or(-1.0);
        assert!(
            (average(&totals["average_duration_ms"]) - average(&expected["average_duration_ms"]))
                .abs()
                < 1e-6,
            "average with `{filter}`: {totals:#} vs {expected:#}"
        );
        // Steps and workers add up to the totals.
        let steps: u64 = stats["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["activity"]["executions"].as_u64().unwrap())
            .sum();
        assert_eq!(steps, expected["executions"].as_u64().unwrap());
        for w in stats["workers"].as_array().unwrap() {
            let name = w["worker"].as_str().unwrap();
            let mine: Vec<Value> = log
                .iter()
                .filter(|e| e["worker"] == name)
                .cloned()
                .collect();
            assert_eq!(
                w["activity"]["executions"],
                json!(mine.len()),
                "{name} with `{filter}`"
            );
        }
        compared += log.len();
    }
    assert!(compared > 0, "the log was empty");
    println!(
        "dashboard checked against {compared} executions over {} filters",
        filters.len()
    );
}

/// The dashboard's numbers, worked out entry by entry.
fn summarize(log: &[Value]) -> Value {
    let (mut succeeded, mut skipped, mut interrupted, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let (mut records, mut held) = (0u64, 0u64);
    let mut durations: Vec<i64> = Vec::new();
    for e in log {
        match e["status"].as_str().unwrap() {
            "success" | "partial" | "awaiting-approval" => succeeded += 1,
            "skipped" => skipped += 1,
            "interrupted" => interrupted += 1,
            _ => failed += 1,
        }
        durations.push(e["finished_at"].as_i64().unwrap() - e["started_at"].as_i64().unwrap());
        for a in e["report"]["actions"].as_array().into_iter().flatten() {
            if a["kind"] != "effect" {
                continue;
            }
            match a["result"].as_str() {
                Some("held") => held += 1,
                Some("performed") if a["replayed"] != true && a["capability"] == "records" => {
                    records += 1
                }
                _ => {}
            }
        }
    }
    durations.sort_unstable();
    let n = durations.len();
    let p95 = (n > 0).then(|| durations[(n * 95).div_ceil(100).max(1) - 1]);
    let average = (n > 0).then(|| durations.iter().sum::<i64>() as f64 / n as f64);
    json!({
        "executions": n,
        "succeeded": succeeded,
        "skipped": skipped,
        "interrupted": interrupted,
        "failed": failed,
        "records_affected": records,
        "actions_held": held,
        "p95_duration_ms": p95,
        "average_duration_ms": average,
    })
}
