//! `roster workers dry-run`: a worker run on a staging dataset, every action checked and
//! shown, none performed (the other version commands print the API's answer as it is).

use std::path::Path;
use std::process::ExitCode;

use super::client::{Client, segment};
use crate::service::staging::Dataset;

/// `roster workers dry-run NAME --dataset FILE`.
pub(super) fn dry_run(
    client: &Client,
    name: &str,
    dataset: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let data = Dataset::load(dataset)?;
    let path = format!("/v1/workers/{}/dry-run", segment(name));
    let answer = client.post(&path, &serde_json::to_value(&data)?)?;
    let report = &answer["staging"];
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_staging(report);
    }
    Ok(if report["summary"]["failed"] == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub(super) fn print_staging(r: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let s = &r["summary"];
    println!(
        "worker {} {} ({}) — dry run: {} events, {} ran, {} skipped, {} failed, {} actions proposed, {} denied",
        text(&r["worker"]),
        text(&r["version"]),
        text(&r["component_digest"]),
        s["events"],
        s["ran"],
        s["skipped"],
        s["failed"],
        s["proposed"],
        s["denied"]
    );
    for run in r["runs"].as_array().into_iter().flatten() {
        let id = text(&run["event"]["id"]);
        if !run["skipped"].is_null() {
            println!("  {id}: skipped — {}", text(&run["skipped"]));
            continue;
        }
        let report = &run["report"];
        if report.is_null() {
            continue;
        }
        println!("  {id}: {}", text(&report["status"]));
        for a in report["actions"].as_array().into_iter().flatten() {
            let shown = if a["proposal"].is_null() {
                a["input"].to_string()
            } else {
                a["proposal"].to_string()
            };
            println!(
                "    {}.{} {} {shown}",
                text(&a["capability"]),
                text(&a["operation"]),
                text(&a["target"])
            );
        }
    }
}
