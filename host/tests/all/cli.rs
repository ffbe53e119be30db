//! The `roster` binary: `run` and `inspect` as a user calls them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use test_programs_artifacts::{CAPABILITY_PROBE, WORKER_WELL_BEHAVED};

fn roster(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const MANIFEST: &str = r#"[plugin]
id = "test.cli"
name = "CLI test"
version = "1.0.0"
domain = "revenue"
description = "d"

[owners]
business = "b@example.com"
technical = "t@example.com"

[capabilities.records.objects.lead]
read = ["name", "status"]
write = ["status"]
[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]
[capabilities.memory]
"#;

const GRANT: &str = r#"[grant]
plugin = "test.cli"
principal = "svc-cli"
[capabilities.records.objects.lead]
read = ["name", "status"]
write = ["status"]
[capabilities.notify]
channels = ["in-app"]
recipients = ["ann"]
[capabilities.memory]
"#;

fn files(dir: &Path, manifest: &str) {
    std::fs::write(dir.join("worker.toml"), manifest).unwrap();
    std::fs::write(dir.join("grant.toml"), GRANT).unwrap();
    std::fs::write(
        dir.join("records.jsonl"),
        "{\"object\": \"lead\", \"id\": \"CLI-1\", \"owner\": \"ann\", \"fields\": {\"name\": \"Cli Lead\", \"status\": \"new\"}}\n",
    )
    .unwrap();
}

#[test]
fn run_prints_the_outcome_and_every_action() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path(), MANIFEST);
    let data = dir.path().join("data");
    let m = dir.path().join("worker.toml");
    let g = dir.path().join("grant.toml");
    let r = dir.path().join("records.jsonl");
    let args = [
        "run",
        WORKER_WELL_BEHAVED,
        "--manifest",
        m.to_str().unwrap(),
        "--grant",
        g.to_str().unwrap(),
        "--records",
        r.to_str().unwrap(),
        "--event",
        "-",
    ];
    let event =
        r#"{"trigger": {"type": "record-created"}, "object": "lead", "record-id": "CLI-1"}"#;
    let out = roster(&data, &args, event);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("status    success"), "{stdout}");
    assert!(
        stdout.contains("outcome   reviewed CLI-1 run 1 (confidence 0.90)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("records.update lead/CLI-1  performed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notify.send in-app:ann  performed"),
        "{stdout}"
    );
    assert!(stdout.contains("info  reviewed CLI-1 (run 1)"), "{stdout}");

    let json = roster(&data, &[&args[..], &["--json"]].concat(), event);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["status"], "success");
    assert_eq!(report["principal"], "svc-cli");
    assert!(
        report["outcome"]["summary"]
            .as_str()
            .unwrap()
            .ends_with("run 2")
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    files(
        dir.path(),
        &MANIFEST.replace("domain = \"revenue\"", "domain = \"sales\""),
    );
    let m = dir.path().join("worker.toml");
    let g = dir.path().join("grant.toml");
    let base = [
        "run",
        WORKER_WELL_BEHAVED,
        "--grant",
        g.to_str().unwrap(),
        "--event",
        "-",
    ];
    let event = r#"{"trigger": {"type": "manual"}}"#;

    let out = roster(
        &data,
        &[&base[..], &["--manifest", m.to_str().unwrap()]].concat(),
        event,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("worker.toml:5:10"), "{stderr}");
    assert!(stderr.contains("unknown variant `sales`"), "{stderr}");

    files(dir.path(), MANIFEST);
    let args = [&base[..], &["--manifest", m.to_str().unwrap()]].concat();
    let out = roster(
        &data,
        &args,
        "{\"trigger\": {\"type\": \"manual\"},\n \"surprise\": 1}",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("<stdin>:2:"), "{stderr}");
    assert!(stderr.contains("unknown field `surprise`"), "{stderr}");

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm garbage").unwrap();
    let args = [
        "run",
        garbage.to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
        "--grant",
        g.to_str().unwrap(),
        "--event",
        "-",
    ];
    let out = roster(&data, &args, event);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a valid component"),
        "{}",
        text(&out.stderr)
    );

    assert!(!data.exists(), "rejected input created no data directory");
    let out = roster(
        &data,
        &[
            "run",
            WORKER_WELL_BEHAVED,
            "--manifest",
            m.to_str().unwrap(),
            "--grant",
            g.to_str().unwrap(),
            "--event",
            "-",
        ],
        "{\"trigger\": {\"type\": \"record-created\"}, \"object\": \"lead\", \"record-id\": \"CLI-1\"}",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the record was never imported: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("lead/CLI-1 does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_shows_imports_beside_the_request_and_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path(), MANIFEST);
    let m = dir.path().join("worker.toml");
    let g = dir.path().join("grant.toml");
    let out = roster(
        &dir.path().join("data"),
        &[
            "inspect",
            CAPABILITY_PROBE,
            "--manifest",
            m.to_str().unwrap(),
            "--grant",
            g.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("roster:worker/handler@0.1.0"), "{stdout}");
    assert!(
        stdout.contains(
            "roster:http/outbound@0.1.0\n      capability `http` / NOT REQUESTED / NOT GRANTED"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "roster:records/records@0.1.0\n      capability `records` / requested / granted"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("verdict   component refused"), "{stdout}");
    assert!(stdout.contains("capability `signals`"), "{stdout}");
}

#[test]
fn records_import_export_get_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        "id,owner,name,status,employees,last_activity_at,tags\nC1,ann,Ada,open,120,2026-01-01,vip;emea\nC2,bob,Bo,closed,,2026-02-01T10:00:00Z,\n",
    )
    .unwrap();
    let out = roster(
        &data,
        &[
            "records",
            "import",
            csv.to_str().unwrap(),
            "--object",
            "lead",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("imported 2 records"),
        "{}",
        text(&out.stdout)
    );

    let out = roster(&data, &["records", "get", "lead", "C1"], "");
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["fields"]["employees"], 120);
    assert_eq!(record["fields"]["tags"], serde_json::json!(["vip", "emea"]));
    assert_eq!(
        record["fields"]["last_activity_at"]["timestamp"],
        1_767_225_600_000i64
    );

    let out = roster(
        &data,
        &["records", "query", "lead", "--where", "status:equals:open"],
        "",
    );
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"C1\""));

    // One bad row anywhere: nothing from the file is imported.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"object\": \"lead\", \"id\": \"J1\", \"fields\": {\"name\": \"Ok\"}}\n{\"object\": \"lead\", \"id\": \"J2\", \"fields\": {\"employees\": \"lots\"}}\n",
    )
    .unwrap();
    let out = roster(&data, &["records", "import", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.jsonl:2"), "{stderr}");
    assert!(
        stderr.contains("`lead.employees` is an integer field"),
        "{stderr}"
    );
    let out = roster(&data, &["records", "get", "lead", "J1"], "");
    assert_eq!(out.status.code(), Some(1), "J1 was not imported");

    let unknown = dir.path().join("unknown.csv");
    std::fs::write(&unknown, "id,favourite_colour\nU1,blue\n").unwrap();
    let out = roster(
        &data,
        &[
            "records",
            "import",
            unknown.to_str().unwrap(),
            "--object",
            "lead",
        ],
        "",
    );
    assert!(
        text(&out.stderr).contains("unknown field `favourite_colour` on `lead`"),
        "{}",
        text(&out.stderr)
    );

    let exported = dir.path().join("out.csv");
    let out = roster(
        &data,
        &[
            "records",
            "export",
            "--object",
            "lead",
            "--format",
            "csv",
            "--output",
            exported.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv_text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(csv_text.lines().count(), 3, "{csv_text}");
    assert!(csv_text.contains("2026-01-01T00:00:00.000Z"), "{csv_text}");

    // The export imports back unchanged.
    let data2 = dir.path().join("data2");
    let out = roster(
        &data2,
        &[
            "records",
            "import",
            exported.to_str().unwrap(),
            "--object",
            "lead",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a: serde_json::Value =
        serde_json::from_slice(&roster(&data, &["records", "get", "lead", "C1"], "").stdout)
            .unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&roster(&data2, &["records", "get", "lead", "C1"], "").stdout)
            .unwrap();
    assert_eq!(a["fields"]["tags"], b["fields"]["tags"]);
    assert_eq!(
        a["fields"]["last_activity_at"],
        b["fields"]["last_activity_at"]
    );
}
