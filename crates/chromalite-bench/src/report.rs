//! Rendering results: a terminal table with ratios against chromadb, JSON, and an SVG chart.

use std::fmt::Write;

use crate::workload::Measurements;

type Metric = (&'static str, fn(&Measurements) -> Option<f64>, bool);

/// (label, value, whether higher is better)
const METRICS: &[Metric] = &[
    ("ingest records/s", |m| Some(m.ingest_rps), true),
    ("open-to-first-query ms", |m| m.open_to_first_query_ms, false),
    ("query p50 ms", |m| Some(m.query_p50_ms), false),
    ("query p99 ms", |m| Some(m.query_p99_ms), false),
    ("QPS 1 thread", |m| Some(m.qps_1_thread), true),
    ("QPS 2 threads", |m| Some(m.qps_2_threads), true),
    ("recall@10 (ef=100)", |m| Some(m.recall_at_10), true),
    ("filtered query p50 ms", |m| Some(m.filtered_query_p50_ms), false),
    ("get where p50 ms", |m| Some(m.get_where_p50_ms), false),
    ("peak RSS MiB", |m| m.peak_rss_mb, false),
    ("disk MiB", |m| m.disk_mb, false),
];

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The table: one row per metric, one column per system, plus "vs chromadb" for each chromalite
/// system (>1 means better than chromadb in that metric's direction).
#[must_use]
pub fn table(results: &[Measurements]) -> String {
    let peer = results.iter().find(|m| m.system == "chromadb");
    let mut out = String::new();
    let _ = write!(out, "{:<24}", "metric");
    let widths: Vec<usize> = results.iter().map(|m| m.system.len().max(10) + 2).collect();
    for (m, w) in results.iter().zip(&widths) {
        let _ = write!(out, "{:>w$}", m.system);
    }
    if peer.is_some() {
        for m in results.iter().filter(|m| m.system != "chromadb") {
            let _ = write!(out, "{:>22}", format!("{} vs chroma", short(&m.system)));
        }
    }
    out.push('\n');
    for (label, get, higher) in METRICS {
        let _ = write!(out, "{label:<24}");
        for (m, w) in results.iter().zip(&widths) {
            let _ = write!(out, "{:>w$}", fmt_num(get(m)));
        }
        if let Some(p) = peer {
            for m in results.iter().filter(|m| m.system != "chromadb") {
                let ratio = match (get(m), get(p)) {
                    (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(if *higher { a / b } else { b / a }),
                    _ => None,
                };
                let _ = write!(out, "{:>22}", ratio.map_or("-".into(), |r| format!("{r:.2}x")));
            }
        }
        out.push('\n');
    }
    out
}

fn short(system: &str) -> &str {
    system.strip_prefix("chromalite-").unwrap_or(system)
}

/// A recall@10 vs queries/s chart, one polyline per system with an ef curve.
#[must_use]
#[allow(clippy::many_single_char_names)] // x/y/w/h are the chart's coordinate names
pub fn svg(results: &[Measurements], title: &str) -> String {
    let (w, h, pad) = (720.0, 440.0, 60.0);
    let max_qps = results.iter().flat_map(|m| m.curve.iter().map(|p| p.qps)).fold(1.0f64, f64::max) * 1.1;
    let min_recall =
        results.iter().flat_map(|m| m.curve.iter().map(|p| p.recall_at_10)).fold(1.0f64, f64::min).min(0.9);
    let x = |r: f64| pad + (r - min_recall) / (1.0 - min_recall).max(1e-9) * (w - 2.0 * pad);
    let y = |q: f64| h - pad - q / max_qps * (h - 2.0 * pad);
    let colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(s, "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>", w / 2.0);
    let _ = writeln!(s, "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>", h - pad, w - pad, h - pad, h - pad);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">recall@10 (from {min_recall:.2} to 1.0)</text>",
        w / 2.0,
        h - 20.0
    );
    let _ = writeln!(s, "<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">queries per second, 1 thread (max {max_qps:.0})</text>", h / 2.0, h / 2.0);
    for (i, m) in results.iter().filter(|m| !m.curve.is_empty()).enumerate() {
        let c = colors[i % colors.len()];
        let pts: Vec<String> = m.curve.iter().map(|p| format!("{:.1},{:.1}", x(p.recall_at_10), y(p.qps))).collect();
        let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
        for p in &m.curve {
            let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"><title>{} ef={} recall={:.3} qps={:.0}</title></circle>", x(p.recall_at_10), y(p.qps), m.system, p.ef, p.recall_at_10, p.qps);
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{}</text>",
            w - pad - 150.0,
            pad + 16.0 * i as f64,
            m.system
        );
    }
    s.push_str("</svg>\n");
    s
}
