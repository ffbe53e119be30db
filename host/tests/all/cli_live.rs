//! The command line against a running service: with `roster up` running, every command
//! that reads or changes state works through its API (found by the discovery file in the
//! data directory), and each read prints exactly what it prints on the data directory
//! once the service has stopped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve_process::{free_port, http};
use crate::up::Up;

/// What a command printed: exit code, standard output, standard error.
pub(crate) type Printed = (i32, String, String);

/// Runs `roster --data-dir DATA args...` from `cwd` (which has no roster.toml).
pub(crate) fn roster(cwd: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Printed {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command
        .current_dir(cwd)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ROSTER_TOKEN")
        .env_remove("ROSTER_CONFIG")
        .env_remove("ROSTER_DATA_DIR")
        .env_remove("ROSTER_REMOTE");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; its standard output.
fn ok(cwd: &Path, data: &Path, args: &[&str]) -> String {
    let (code, out, err) = roster(cwd, data, args, &[]);
    assert_eq!(code, 0, "roster {args:?}:\n{out}\n{err}");
    out
}

/// Timings vary between runs; everything else must not.
fn steady(printed: &Printed) -> Printed {
    let timing = regex::Regex::new(r"in [0-9.]+ ms").unwrap();
    (
        printed.0,
        printed.1.clone(),
        timing.replace_all(&printed.2, "in <t> ms").into_owned(),
    )
}

/// Waits until the service has nothing queued or running, twice in a row.
fn quiet(port: u16, token: &str) {
    let auth = [("authorization", format!("Bearer {token}"))];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut calm = 0;
    let mut last = String::new();
    while calm < 2 {
        assert!(
            Instant::now() < deadline,
            "the service did not settle: {last}"
        );
        let (status, body) = http(port, "GET", "/v1/queue", &auth, b"").unwrap();
        last.clone_from(&body);
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let q = &answer["status"];
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX / 4);
        let later = count(&q["delayed"]) + count(&q["waiting_for_capacity"]) + count(&q["held"]);
        calm = if count(&answer["stored"]) == later && count(&q["running"]) == 0 {
            calm + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn every_command_works_against_the_running_service_and_prints_what_it_prints_offline() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (data, cwd) = (data.path(), cwd.path());
    let port = free_port();

    // A first run accumulates work: executions and actions held for approval.
    let mut up = Up::start(data, port);
    up.until(Duration::from_secs(600), |l| l.starts_with("[5/5]"));
    let held = regex::Regex::new(r" (\d+) actions held").unwrap();
    up.until(Duration::from_secs(180), |l| {
        l.starts_with("── ")
            && held
                .captures(l)
                .and_then(|c| c[1].parse::<u32>().ok())
                .is_some_and(|n| n >= 3)
    });
    let (status, _) = up.interrupt();
    assert!(status.success());
    assert!(
        !data.join("up/service.json").exists(),
        "a stopped service leaves no discovery file"
    );

    // Again without the activity, so that nothing changes but what the commands do.
    let mut up = Up::start_with(data, port, &["--no-activity"]);
    let registry = up.until(Duration::from_secs(300), |l| {
        l.starts_with("[2/5] registry on")
    });
    let registry = registry
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    up.until(Duration::from_secs(300), |l| {
        l.starts_with("roster serving on")
    });
    let discovery: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("up/service.json")).unwrap()).unwrap();
    assert_eq!(discovery["pid"], up.child.id());
    assert_eq!(discovery["address"], format!("127.0.0.1:{port}"));
    let token = std::fs::read_to_string(data.join("up/api-token"))
        .unwrap()
        .trim()
        .to_string();
    quiet(port, &token);

    // Changes, through the service (the token of the discovery file acts: demo-admin).
    let workers = ok(cwd, data, &["workers", "list"]);
    assert!(workers.contains("new-lead-enricher"), "{workers}");
    let added = ok(
        cwd,
        data,
        &[
            "people",
            "add",
            "ops@example.com",
            "--name",
            "Ops",
            "--role",
            "operator",
        ],
    );
    assert!(added.contains("ops@example.com"), "{added}");
    let issued = ok(
        cwd,
        data,
        &["tokens", "issue", "ops@example.com", "--name", "ci"],
    );
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let token_id = issued["info"]["id"].as_str().unwrap().to_string();
    let ops_token = issued["token"].as_str().unwrap().to_string();
    ok(cwd, data, &["tokens", "revoke", &token_id]);
    ok(
        cwd,
        data,
        &["people", "change", "ops@example.com", "--add", "viewer"],
    );
    let leads = cwd.join("leads.jsonl");
    std::fs::write(
        &leads,
        "{\"object\":\"lead\",\"id\":\"L-live-1\",\"owner\":\"ann\",\"fields\":{\"name\":\"Live One\",\"company\":\"Acme\",\"status\":\"new\"}}\n\
         {\"object\":\"lead\",\"id\":\"L-live-2\",\"owner\":\"bob\",\"fields\":{\"name\":\"Live Two\",\"company\":\"Globex\",\"status\":\"new\"}}\n",
    )
    .unwrap();
    let imported = ok(cwd, data, &["records", "import", leads.to_str().unwrap()]);
    assert!(
        imported.starts_with("imported 2 records (2 new or changed)"),
        "{imported}"
    );
    let bad = cwd.join("bad.jsonl");
    std::fs::write(&bad, "{\"object\":\"lead\",\"id\":\"L-bad\"}\nnot json\n").unwrap();
    let (code, _, err) = roster(
        cwd,
        data,
        &["records", "import", bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("bad.jsonl:2: not JSON"), "{err}");
    ok(
        cwd,
        data,
        &[
            "workers",
            "pause",
            "new-lead-enricher",
            "--reason",
            "checking",
        ],
    );
    ok(
        cwd,
        data,
        &[
            "workers",
            "resume",
            "new-lead-enricher",
            "--reason",
            "checked",
        ],
    );
    ok(
        cwd,
        data,
        &[
            "kill",
            "--worker",
            "stale-lead-alerter",
            "--reason",
            "drill",
        ],
    );
    ok(
        cwd,
        data,
        &[
            "workers",
            "resume",
            "stale-lead-alerter",
            "--reason",
            "drill over",
        ],
    );
    let dataset = cwd.join("dataset.json");
    std::fs::write(
        &dataset,
        r#"{"records": [{"object": "lead", "id": "L-dry", "owner": "ann", "fields": {"name": "Dry", "company": "Initech", "status": "new"}}],
            "events": [{"id": "d1", "trigger": {"type": "record-created"}, "object": "lead", "record-id": "L-dry"}]}"#,
    )
    .unwrap();
    let (code, out, err) = roster(
        cwd,
        data,
        &[
            "workers",
            "dry-run",
            "new-lead-enricher",
            "--dataset",
            dataset.to_str().unwrap(),
        ],
        &[],
    );
    assert!(code == 0 || code == 3, "{out}\n{err}");
    assert!(out.starts_with("worker new-lead-enricher"), "{out}\n{err}");
    // A second installation of a plugin, into the running service, from its registry.
    let reference = format!("{registry}/roster/new-lead-enricher:0.1.0");
    let (code, out, err) = roster(
        cwd,
        data,
        &[
            "install",
            &reference,
            "--name",
            "second-enricher",
            "--grant-requested",
            "--principal",
            "svc-revenue",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("→ worker `second-enricher`"), "{out}");
    assert!(err.contains("running in the service now"), "{err}");
    assert!(ok(cwd, data, &["workers", "list"]).contains("second-enricher"));
    let checkpoint = ok(cwd, data, &["audit", "checkpoint"]);
    assert!(!checkpoint.trim().is_empty());

    // Decisions on held actions, by the demo admin.
    let pending = ok(cwd, data, &["approvals", "list"]);
    let ids: Vec<&str> = pending
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| id.starts_with("apr-"))
        .collect();
    assert!(ids.len() >= 3, "{pending}");
    ok(
        cwd,
        data,
        &["approvals", "reject", ids[0], "--reason", "not now"],
    );
    let shown = ok(cwd, data, &["approvals", "show", ids[1]]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let edited = shown["proposed"].to_string();
    let (code, out, err) = roster(
        cwd,
        data,
        &[
            "approvals",
            "edit",
            ids[1],
            "--edited",
            &edited,
            "--reason",
            "as proposed",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let approved = ok(
        cwd,
        data,
        &["approvals", "approve", ids[2], "--reason", "fine"],
    );
    assert!(approved.contains(ids[2]), "{approved}");
    // The trust curve: one stage down needs no readiness.
    ok(
        cwd,
        data,
        &[
            "workers",
            "stage",
            "new-lead-enricher",
            "--to",
            "assistive",
            "--reason",
            "closer review",
        ],
    );
    // A deploy needs a staged version and a rollback an earlier one: refused, in words.
    for what in ["deploy", "rollback"] {
        let (code, out, err) = roster(
            cwd,
            data,
            &["workers", what, "new-lead-enricher", "--reason", "test"],
            &[],
        );
        assert!(
            code == 0 || (code == 1 && err.starts_with("error: ") && err.contains(")\n")),
            "{what}: {out}\n{err}"
        );
    }
    quiet(port, &token);

    // Another host's view: --remote with a token of one's own.
    let (code, remote_list, err) = roster(
        cwd,
        data,
        &[
            "--remote",
            &format!("http://127.0.0.1:{port}"),
            "workers",
            "list",
        ],
        &[("ROSTER_TOKEN", &token)],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(remote_list, ok(cwd, data, &["workers", "list"]));
    // The revoked token no longer works, and the refusal is said in words.
    let (code, _, err) = roster(
        cwd,
        data,
        &[
            "--remote",
            &format!("http://127.0.0.1:{port}"),
            "people",
            "list",
        ],
        &[("ROSTER_TOKEN", &ops_token)],
    );
    assert_eq!(code, 1);
    assert!(err.contains("missing or wrong API token (401)"), "{err}");

    // Reads: through the service now, and on the data directory once it stopped.
    let export = cwd.join("leads.csv");
    let audit_export = cwd.join("audit.jsonl");
    let reads: Vec<Vec<String>> = [
        vec!["records", "get", "lead", "L-live-1"],
        vec!["records", "get", "lead", "L-none"],
        vec![
            "records",
            "query",
            "lead",
            "--where",
            "status:equals:new",
            "--limit",
            "7",
        ],
        vec![
            "records",
            "export",
            "--object",
            "lead",
            "--format",
            "csv",
            "--output",
            export.to_str().unwrap(),
        ],
        vec!["people", "list"],
        vec!["approvals", "list"],
        vec!["approvals", "list", "--status", "all"],
        vec!["approvals", "show", ids[0]],
        vec!["approvals", "show", ids[1]],
        vec!["workers", "list"],
        vec!["workers", "show", "new-lead-enricher"],
        vec!["workers", "show", "nobody"],
        vec!["workers", "inventory"],
        vec!["workers", "inventory", "--domain", "revenue", "--json"],
        vec!["workers", "trust", "new-lead-enricher"],
        vec!["workers", "versions", "new-lead-enricher"],
        vec!["workers", "readiness", "new-lead-enricher"],
        vec!["models"],
        vec!["models", "--json"],
        vec!["audit", "search", "--limit", "40"],
        vec![
            "audit",
            "search",
            "--worker",
            "new-lead-enricher",
            "--json",
            "--limit",
            "5",
        ],
        vec![
            "audit",
            "export",
            "--format",
            "jsonl",
            "--output",
            audit_export.to_str().unwrap(),
        ],
        vec!["audit", "grants"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_string).collect())
    .collect();
    let run_all = |files: &mut Vec<Vec<u8>>| -> Vec<Printed> {
        files.clear();
        let printed = reads
            .iter()
            .map(|args| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                steady(&roster(cwd, data, &args, &[]))
            })
            .collect();
        files.push(std::fs::read(&export).unwrap());
        files.push(std::fs::read(&audit_export).unwrap());
        printed
    };
    let mut online_files = Vec::new();
    let online = run_all(&mut online_files);
    let verified_online = ok(cwd, data, &["audit", "verify"]);
    let (status, _) = up.interrupt();
    assert!(status.success());

    let mut offline_files = Vec::new();
    let offline = run_all(&mut offline_files);
    for ((args, a), b) in reads.iter().zip(&online).zip(&offline) {
        if a == b {
            continue;
        }
        let (a_all, b_all) = (format!("{}\n{}", a.1, a.2), format!("{}\n{}", b.1, b.2));
        let first = a_all
            .lines()
            .zip(b_all.lines())
            .find(|(x, y)| x != y)
            .unwrap_or(("<shorter>", "<shorter>"));
        panic!(
            "roster {args:?} printed differently with the service stopped (exit {} vs {}): \
             first differing line:\n  running: {}\n  stopped: {}",
            a.0, b.0, first.0, first.1
        );
    }
    assert_eq!(online_files, offline_files, "the exports differ");
    // Every read worked, except those that name what does not exist.
    for ((args, printed), _) in reads.iter().zip(&online).zip(&offline) {
        let missing = args.contains(&"L-none".to_string()) || args.contains(&"nobody".to_string());
        assert_eq!(printed.0 != 0, missing, "roster {args:?}: {printed:?}");
    }
    assert!(
        online[1].2.contains("lead/L-none does not exist"),
        "{:?}",
        online[1]
    );
    assert!(online[2].1.contains("L-live-1"), "{:?}", online[2]);
    assert!(
        online[7].1.contains("\"status\": \"rejected\""),
        "{:?}",
        online[7]
    );
    assert!(online[4].1.contains("ops@example.com"), "{:?}", online[4]);
    // The chain is intact both ways (stopping signed one more checkpoint).
    let verified_offline = ok(cwd, data, &["audit", "verify"]);
    let entries = |t: &str| t.split(" checked)").next().unwrap_or_default().to_string();
    assert!(
        verified_online.starts_with("audit chain intact"),
        "{verified_online}"
    );
    assert_eq!(entries(&verified_online), entries(&verified_offline));

    // On the data directory, the local operator acts, and is recorded.
    let (code, out, err) = roster(
        cwd,
        data,
        &["people", "add", "late@example.com", "--role", "viewer"],
        &[("USER", "tester")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let trail = ok(
        cwd,
        data,
        &["audit", "search", "--json", "--limit", "10000"],
    );
    assert!(
        trail.contains("\"by\":\"local:tester\""),
        "the offline change is not recorded as the local operator"
    );
    assert!(trail.contains("\"by\":\"demo-admin\""));
}
