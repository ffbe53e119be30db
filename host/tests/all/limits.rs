//! Limits: each runaway behaviour ends its execution with its own status, and the same host
//! then runs a well-behaved worker correctly.

use roster_host::sandbox::gate::ActionResult;
use roster_host::{ExecutionReport, Status};
use serde_json::json;
use test_programs_artifacts::*;

use crate::common::*;

fn run_program(program: &str, id: &str, caps: &str, limits: &str) -> ExecutionReport {
    let worker = load_granted(program, id, caps, limits);
    run(&worker, &payload_event(json!({})))
}

#[test]
pub fn limits_spin() {
    let report = run_program(
        LIMITS_SPIN,
        "test.spin-fuel",
        "",
        "fuel = 50_000_000\ntimeout-ms = 60_000",
    );
    assert_eq!(report.status, Status::OutOfFuel, "{report:#?}");
    assert_eq!(report.fuel_consumed, 50_000_000);
    assert!(report.backtrace.is_some());
    assert_host_still_healthy("spin-fuel");
}

#[test]
fn a_spinning_worker_with_plenty_of_fuel_times_out_while_others_carry_on() {
    let spinner = load_granted(
        LIMITS_SPIN,
        "test.spin-timeout",
        "",
        "fuel = 1_000_000_000_000_000\ntimeout-ms = 300",
    );
    let handle = std::thread::spawn(move || run(&spinner, &payload_event(json!({}))));
    // Another worker runs to completion while the spinner is still spinning.
    assert_host_still_healthy("during-spin");
    let report = handle.join().unwrap();
    assert_eq!(report.status, Status::Timeout, "{report:#?}");
    assert!(report.duration_us >= 300_000, "{}", report.duration_us);
    assert!(
        report.error.as_deref().unwrap().contains("interrupt"),
        "{:?}",
        report.error
    );
    assert_host_still_healthy("spin-timeout");
}

#[test]
pub fn limits_memory_bomb() {
    let report = run_program(
        LIMITS_MEMORY_BOMB,
        "test.memory-bomb",
        "",
        "memory-bytes = 16_777_216",
    );
    assert_eq!(report.status, Status::MemoryLimit, "{report:#?}");
    assert!(
        report.error.as_deref().unwrap().contains("16777216 bytes"),
        "{:?}",
        report.error
    );
    assert_host_still_healthy("memory-bomb");
}

#[test]
pub fn limits_recursion() {
    let report = run_program(LIMITS_RECURSION, "test.recursion", "", "");
    assert_eq!(report.status, Status::StackOverflow, "{report:#?}");
    assert!(
        report.backtrace.as_deref().unwrap().contains("descend"),
        "{:?}",
        report.backtrace
    );
    assert_host_still_healthy("recursion");
}

#[test]
pub fn limits_huge_string() {
    let report = run_program(LIMITS_HUGE_STRING, "test.huge-string", "", "");
    assert_eq!(report.status, Status::PayloadLimit, "{report:#?}");
    assert_eq!(
        report.error.as_deref(),
        Some("a host call passed 16777216 bytes, more than the limit of 1048576")
    );
    assert!(report.logs.is_empty(), "the oversized line was not kept");
    assert_host_still_healthy("huge-string");
}

#[test]
pub fn limits_call_flood() {
    let report = run_program(
        LIMITS_CALL_FLOOD,
        "test.call-flood",
        "[memory]\n",
        "host-calls = 500",
    );
    assert_eq!(report.status, Status::HostCallLimit, "{report:#?}");
    assert_eq!(report.host_calls, 501);
    assert_host_still_healthy("call-flood");
}

#[test]
pub fn limits_action_flood() {
    let caps = "[records.objects.task]\nwrite = [\"subject\"]\ncreate = true\n";
    let report = run_program(
        LIMITS_ACTION_FLOOD,
        "test.action-flood",
        caps,
        "actions = 5",
    );
    assert_eq!(report.status, Status::ActionLimit, "{report:#?}");
    let performed = report
        .actions
        .iter()
        .filter(|a| matches!(a.result, ActionResult::Performed { .. }))
        .count();
    assert_eq!(performed, 5);
    assert!(
        matches!(&report.actions[5].result, ActionResult::Failed { error } if error.contains("action limit of 5"))
    );
    assert_host_still_healthy("action-flood");
}

#[test]
pub fn fault_panic() {
    let report = run_program(FAULT_PANIC, "test.panic", "", "");
    assert_eq!(report.status, Status::Trapped, "{report:#?}");
    let error = report.error.as_deref().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    assert!(
        error.contains("invariant broken while handling"),
        "the panic message is reported: {error}"
    );
    let backtrace = report.backtrace.as_deref().unwrap();
    assert!(backtrace.contains("check_invariant"), "{backtrace}");
    assert_host_still_healthy("panic");
}

#[test]
fn table_and_instance_caps_end_instantiation_cleanly() {
    let report = run_program(
        WORKER_WELL_BEHAVED,
        "test.tables",
        WELL_BEHAVED_CAPS,
        "table-elements = 1",
    );
    assert_eq!(report.status, Status::TableLimit, "{report:#?}");
    let report = run_program(
        WORKER_WELL_BEHAVED,
        "test.instances",
        WELL_BEHAVED_CAPS,
        "instances = 1",
    );
    assert_eq!(report.status, Status::InstantiationFailed, "{report:#?}");
    assert!(
        report.error.as_deref().unwrap().contains("instance"),
        "{:?}",
        report.error
    );
    assert_host_still_healthy("tables");
}
