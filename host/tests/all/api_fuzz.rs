//! The served API description held against the server by an outside tool: schemathesis
//! generates requests from `GET /v1/openapi.json` for every operation, as an admin, as a
//! viewer and with no token, and checks that no answer is a server error and every answer
//! conforms to the description (status, content type, body schema). Each run is bounded
//! in time; CI installs the pinned schemathesis (`.ci/run`).

use std::process::Command;
use std::sync::Arc;

use crate::access::{Api, person};
use crate::serve::Fixture;

/// The pinned version `.ci/run` installs.
const SCHEMATHESIS: &str = "4.32.5";

/// Seconds one run may take.
const BUDGET_S: &str = "40";

#[test]
fn the_server_answers_as_its_description_says() {
    let version = Command::new("schemathesis").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        panic!(
            "schemathesis is not installed: python3 -m pip install schemathesis=={SCHEMATHESIS}"
        );
    };
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(
        version.contains(SCHEMATHESIS),
        "want {SCHEMATHESIS}, have {version}"
    );

    let fixture =
        Fixture::pinged("failed-auth-burst = 1000000\nwebhook-secret-env = \"CARGO_MANIFEST_DIR\"");
    let service = Arc::new(fixture.start());
    let admin = person(&service, "admin@example.com", &["admin"]);
    let viewer = person(&service, "viewer@example.com", &["viewer"]);
    let api = Api::start(service.clone());
    let spec = format!("http://127.0.0.1:{}/v1/openapi.json", api.port);
    let mut failed = Vec::new();
    // Revoking tokens runs last: the generator finds the admin's own token id in `GET
    // /v1/people` and would log the admin out for the rest of the run.
    let revoke = ["--include-operation-id", "people_revoke_token"];
    let rest = ["--exclude-operation-id", "people_revoke_token"];
    let runs = [
        ("admin", Some(&admin), rest),
        ("viewer", Some(&viewer), rest),
        ("nobody", None, rest),
        ("admin, revoking tokens", Some(&admin), revoke),
    ];
    // The tool keeps a cache where it runs: somewhere that is not the repository.
    let scratch = tempfile::tempdir().unwrap();
    for (who, token, only) in runs {
        let mut run = Command::new("schemathesis");
        run.current_dir(scratch.path());
        run.args(["run", &spec, "--max-time", BUDGET_S, "--workers", "1"])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--suppress-health-check", "all"])
            .args(only)
            .env("SCHEMATHESIS_HOOKS", "")
            .env("NO_COLOR", "1");
        if let Some(token) = &token {
            run.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        let mut output = run.output().expect("running schemathesis");
        let mut text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        // The tool itself can fail (an internal error of its generator, reported as a
        // "Runtime Error" with no failed check): that run is repeated once.
        if !output.status.success() && !text.contains("FAILURES") && text.contains("Runtime Error")
        {
            println!("as {who}: the tool failed internally; running again");
            output = run.output().expect("running schemathesis");
            text = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
        }
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("errors"))
            .collect();
        println!("as {who}: {}", summary.join(" | "));
        if !output.status.success() {
            failed.push(format!("as {who}:\n{text}"));
        }
    }
    drop(api);
    service.stop();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
