//! Pictures where a person would rather look than read, as inline SVG: an instance's timeline
//! (one lane per person, a dot per event), and per workflow the cycle times and the deadlines
//! missed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use signoff_runtime::access::InstanceFilter;
use signoff_runtime::timeline::Line;

use super::{Viewer, failed_page, me, render};
use crate::AppState;
use crate::openapi::escape;

const WIDTH: f64 = 880.0;
const LEFT: f64 = 150.0;
const LANE: f64 = 28.0;

/// The colour of an event by what kind of fact it is.
fn colour(ty: &str) -> &'static str {
    if ty.contains("approval") || ty.contains("form") {
        "#0c66e4"
    } else if ty.contains("ended") || ty.contains("cancelled") {
        "#1f845a"
    } else if ty.contains("escalated") || ty.contains("timer") {
        "#c9372c"
    } else if ty.contains("status") || ty.contains("comment") || ty.contains("task") {
        "#8f7ee7"
    } else {
        "#8590a2"
    }
}

/// An instance's events on a time axis, one lane per actor.
#[must_use]
pub fn instance_timeline(lines: &[Line]) -> String {
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return String::new();
    };
    let mut lanes: Vec<&str> = Vec::new();
    for line in lines {
        if !lanes.contains(&line.actor.as_str()) {
            lanes.push(&line.actor);
        }
    }
    let span = (last.time.0 - first.time.0).max(1) as f64;
    let height = LANE * lanes.len() as f64 + 40.0;
    let x = |t: i64| LEFT + (t - first.time.0) as f64 / span * (WIDTH - LEFT - 20.0);
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"timeline of {} events\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\">",
        lines.len()
    );
    for (i, actor) in lanes.iter().enumerate() {
        let y = 20.0 + LANE * i as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dfe1e6\"/>",
            y + 4.0,
            escape(actor),
            WIDTH - 10.0
        );
    }
    for line in lines {
        let lane = lanes.iter().position(|a| *a == line.actor).unwrap_or(0);
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\" fill=\"{}\"><title>{} {}: {}</title></circle>",
            x(line.time.0),
            20.0 + LANE * lane as f64,
            colour(&line.ty),
            escape(&super::when(line.time)),
            escape(&line.actor),
            escape(&line.summary)
        );
    }
    let axis = height - 8.0;
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{axis:.1}\">{}</text><text x=\"{:.1}\" y=\"{axis:.1}\" text-anchor=\"end\">{}</text></svg>",
        escape(&super::when(first.time)),
        WIDTH - 10.0,
        escape(&super::when(last.time))
    );
    svg
}

/// A duration in the unit that reads best.
fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7_200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3_600.0)
    } else {
        format!("{:.1} d", seconds / 86_400.0)
    }
}

/// Horizontal bars, one row per label, each with one or two values.
fn bars(title: &str, rows: &[(String, Vec<(f64, String)>)], legend: &[(&str, &str)]) -> String {
    let max = rows
        .iter()
        .flat_map(|(_, values)| values.iter().map(|(v, _)| *v))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let row_height = 16.0 * legend.len() as f64 + 12.0;
    let height = 50.0 + row_height * rows.len().max(1) as f64;
    let mut svg = format!(
        "<h2>{}</h2><svg class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\">",
        escape(title),
        escape(title)
    );
    for (i, (name, colour)) in legend.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"14\">{}</text>",
            LEFT + 140.0 * i as f64,
            LEFT + 140.0 * i as f64 + 16.0,
            escape(name)
        );
    }
    if rows.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{LEFT}\" y=\"44\">nothing to show yet</text>"
        );
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let top = 30.0 + row_height * r as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text>",
            top + 12.0,
            escape(label)
        );
        for (i, ((value, text), (_, colour))) in values.iter().zip(legend).enumerate() {
            let y = top + 16.0 * i as f64;
            let w = value / max * (WIDTH - LEFT - 120.0);
            let _ = write!(
                svg,
                "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"13\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT + w + 6.0,
                y + 11.0,
                escape(text)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Cycle times and missed deadlines per workflow, over the instances the person may see.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let rt = &state.runtime;
    let filter = InstanceFilter {
        limit: crate::api::MAX_LIST * 100,
        ..InstanceFilter::default()
    };
    let visible = match rt.list_instances(&viewer.actor, &filter).await {
        Ok(list) => list,
        Err(e) => return failed_page(&viewer.actor, e),
    };
    let mut cycle: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut missed: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for i in &visible {
        let counts = missed.entry(&i.workflow).or_default();
        counts.0 += f64::from(u8::from(i.escalations > 0));
        counts.1 += f64::from(u8::from(i.outcome.as_deref() == Some("expired")));
        if let (Some(end), "ended") = (i.ended_at, i.status.as_str()) {
            cycle
                .entry(&i.workflow)
                .or_default()
                .push((end.0 - i.started_at.0) as f64 / 1e6);
        }
    }
    let cycle_rows: Vec<(String, Vec<(f64, String)>)> = cycle
        .into_iter()
        .map(|(workflow, mut times)| {
            times.sort_by(f64::total_cmp);
            let (p50, p90) = (percentile(&times, 0.5), percentile(&times, 0.9));
            (
                format!("{workflow} ({})", times.len()),
                vec![(p50, duration(p50)), (p90, duration(p90))],
            )
        })
        .collect();
    let missed_rows: Vec<(String, Vec<(f64, String)>)> = missed
        .into_iter()
        .map(|(workflow, (esc, exp))| {
            (
                workflow.to_owned(),
                vec![
                    (esc, format!("{esc} escalated")),
                    (exp, format!("{exp} expired")),
                ],
            )
        })
        .collect();
    render(
        "charts.html",
        json!({
            "me": me(&viewer.actor),
            "cycle": bars(
                "Cycle time, start to end",
                &cycle_rows,
                &[("median", "#0c66e4"), ("90th percentile", "#85b8ff")],
            ),
            "breaches": bars(
                "Deadlines missed",
                &missed_rows,
                &[("escalated", "#c9372c"), ("expired", "#f87168")],
            ),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars(
            "T",
            &[
                ("a<b".into(), vec![(10.0, "10 s".into())]),
                ("c".into(), vec![(5.0, "5 s".into())]),
            ],
            &[("median", "#000")],
        );
        assert!(svg.contains("a&lt;b"));
        let full = WIDTH - LEFT - 120.0;
        assert!(svg.contains(&format!("width=\"{full:.1}\"")));
        assert!(svg.contains(&format!("width=\"{:.1}\"", full / 2.0)));
        assert_eq!(duration(90.0), "90 s");
        assert_eq!(duration(3.0 * 86_400.0), "3.0 d");
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5) - 3.0).abs() < f64::EPSILON);
    }
}
