//! Integration tests of the host, each with a real component built from `tests/programs` or
//! `plugins`.
//!
//! One test binary for the whole crate (link time is the bottleneck); one module per area.

mod access;
mod api_answers;
mod api_contract;
mod api_fuzz;
mod api_pages;
mod api_properties;
mod approvals;
mod attacks;
mod audit;
mod cli;
mod cli_live;
mod common;
mod connector;
mod console;
mod crash;
mod domains;
mod failures;
mod hot_install;
mod http;
mod install;
mod inventory;
mod kill;
mod layering;
mod limits;
mod loading;
mod messaging;
mod plugins;
mod rules;
mod scopes;
mod serve;
mod serve_process;
mod telemetry;
mod up;
mod versions;

/// Every guest program must have a test named after it: `foreach_program!` lists the
/// programs and this fails to compile when one has no test.
macro_rules! require_test {
    ($name:ident) => {
        const _: fn() = by_program::$name;
    };
}
test_programs_artifacts::foreach_program!(require_test);

mod by_program {
    pub use super::approvals::review_proposer;
    pub use super::attacks::limits_hostile;
    pub use super::failures::connector_client;
    pub use super::limits::{
        fault_panic, limits_action_flood, limits_call_flood, limits_huge_string,
        limits_memory_bomb, limits_recursion, limits_spin,
    };
    pub use super::loading::{bench_two_calls, worker_well_behaved};
    pub use super::plugins::{
        access_request, alert_classification, candidate_review, churn_signal, customer_onboarding,
        deal_stage_notifier, duplicate_merger, invoice_review, meeting_no_show_follow_up,
        new_lead_enricher, quota_milestone_alert, renewal_reminder, revenue_execution, rules,
        stale_lead_alerter, ticket_triage, win_loss_logger,
    };
    pub use super::scopes::capability_probe;
    pub use super::serve::serve_recorder;
}
