//! Charts drawn as SVG on the server: bars per step, stacked by how executions ended.

use maud::{Markup, html};

/// One bar: its label and the stacked values (succeeded, skipped, failed).
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) ok: u64,
    pub(super) skipped: u64,
    pub(super) failed: u64,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;

/// A stacked bar chart, with a title and description for assistive technology.
pub(super) fn bars(title: &str, bars: &[Bar]) -> Markup {
    let max = bars
        .iter()
        .map(|b| b.ok + b.skipped + b.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let bar_w = (slot * 0.75).max(1.0);
    let scale = |n: u64| n as f64 / max as f64 * plot_h;
    // Label at most about 12 steps.
    let every = bars.len().div_ceil(12).max(1);
    let total: u64 = bars.iter().map(|b| b.ok + b.skipped + b.failed).sum();
    let description = format!(
        "{} steps, {} executions in all, at most {} in one step",
        bars.len(),
        total,
        max
    );
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
            title { (title) }
            desc { (description) }
            @for i in 0..=4u64 {
                @let y = TOP + plot_h - plot_h * i as f64 / 4.0;
                line x1=(LEFT) x2=(WIDTH) y1=(y) y2=(y) {}
                text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (max * i / 4) }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                @let ok_h = scale(b.ok);
                @let skip_h = scale(b.skipped);
                @let bad_h = scale(b.failed);
                @let base = TOP + plot_h;
                g {
                    title { (b.label) ": " (b.ok) " succeeded, " (b.skipped) " skipped or interrupted, " (b.failed) " failed" }
                    rect.ok x=(x) y=(base - ok_h) width=(bar_w) height=(ok_h) {}
                    rect.skip x=(x) y=(base - ok_h - skip_h) width=(bar_w) height=(skip_h) {}
                    rect.bad x=(x) y=(base - ok_h - skip_h - bad_h) width=(bar_w) height=(bad_h) {}
                }
                @if i % every == 0 {
                    text x=(x + bar_w / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { (b.label) }
                }
            }
        }
        p.legend aria-hidden="true" {
            span.ok { "succeeded" }
            span.skip { "skipped or interrupted" }
            span.bad { "failed" }
        }
    }
}
