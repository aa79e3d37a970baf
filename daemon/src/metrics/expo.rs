//! Prometheus text exposition format (version 0.0.4), written by hand: a few families,
//! no dependency. Pure, so the formatting rules (label escaping, float spelling,
//! cumulative histogram buckets) are unit-tested here.

use std::fmt::Write as _;

/// The content type scrapers expect for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram buckets: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`]; bucket counts are stored cumulative.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

/// Escape a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escape HELP text: backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Spell a float the way Prometheus parses it (`+Inf`, `-Inf`, `NaN`, Go-like numbers).
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn labels(out: &mut String, l: &[(&str, &str)], extra: Option<(&str, &str)>) {
    if l.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in l.iter().copied().chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out.push('}');
}

/// Builds one exposition document. Call [`Writer::family`] once per metric name, then
/// its samples.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, ty: Type, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", ty.as_str());
    }

    /// An integer sample (counters and counts stay exact).
    pub fn int(&mut self, name: &str, l: &[(&str, &str)], v: u64) {
        self.out.push_str(name);
        labels(&mut self.out, l, None);
        let _ = writeln!(self.out, " {v}");
    }

    /// A float sample (gauges that may not fit u64, latencies).
    pub fn float(&mut self, name: &str, l: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        labels(&mut self.out, l, None);
        let _ = writeln!(self.out, " {}", fmt_float(v));
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram series.
    pub fn histogram(&mut self, name: &str, l: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            self.out.push_str(&bucket);
            labels(&mut self.out, l, Some(("le", &fmt_float(*le))));
            let _ = writeln!(self.out, " {n}");
        }
        self.out.push_str(&bucket);
        labels(&mut self.out, l, Some(("le", "+Inf")));
        let _ = writeln!(self.out, " {}", h.count);
        self.float(&format!("{name}_sum"), l, h.sum);
        self.int(&format!("{name}_count"), l, h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("plain/{id}"), "plain/{id}");
    }

    #[test]
    fn floats() {
        assert_eq!(fmt_float(f64::INFINITY), "+Inf");
        assert_eq!(fmt_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(fmt_float(f64::NAN), "NaN");
        assert_eq!(fmt_float(0.0005), "0.0005");
        assert_eq!(fmt_float(1.0), "1");
        assert_eq!(fmt_float(2.5), "2.5");
    }

    #[test]
    fn families_and_samples() {
        let mut w = Writer::new();
        w.family("netd_x_total", Type::Counter, "Things.\nTwo lines");
        w.int("netd_x_total", &[("op", "create"), ("q", "a\"b")], 3);
        w.int("netd_y", &[], 7);
        w.float("netd_z", &[("pool", "local/10.0.0.0/24")], 1.5);
        let s = w.finish();
        assert_eq!(
            s,
            "# HELP netd_x_total Things.\\nTwo lines\n\
             # TYPE netd_x_total counter\n\
             netd_x_total{op=\"create\",q=\"a\\\"b\"} 3\n\
             netd_y 7\n\
             netd_z{pool=\"local/10.0.0.0/24\"} 1.5\n"
        );
    }

    #[test]
    fn histogram_is_cumulative_with_inf_sum_count() {
        let mut h = Histogram::default();
        h.observe(0.0001); // first bucket
        h.observe(0.003); // 0.005 and up
        h.observe(20.0); // only +Inf
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[2], 1, "0.0025 bucket excludes 0.003");
        assert_eq!(h.buckets[3], 2);
        assert_eq!(*h.buckets.last().unwrap(), 2);
        let mut w = Writer::new();
        w.histogram("lat", &[("op", "a")], &h);
        let s = w.finish();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), LATENCY_BUCKETS.len() + 3);
        assert_eq!(lines[0], "lat_bucket{op=\"a\",le=\"0.0005\"} 1");
        assert_eq!(lines[3], "lat_bucket{op=\"a\",le=\"0.005\"} 2");
        assert_eq!(
            lines[LATENCY_BUCKETS.len()],
            "lat_bucket{op=\"a\",le=\"+Inf\"} 3"
        );
        assert!(lines[LATENCY_BUCKETS.len() + 1].starts_with("lat_sum{op=\"a\"} 20.003"));
        assert_eq!(lines[LATENCY_BUCKETS.len() + 2], "lat_count{op=\"a\"} 3");
        // Buckets never decrease.
        let counts: Vec<u64> = lines[..=LATENCY_BUCKETS.len()]
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }
}
