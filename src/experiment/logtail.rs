//! What an invoke's log tail (`LogType=Tail`: the last 4 KB, base64) says about it: the
//! platform's REPORT line and a Powertools-style `cold_start` field.

use std::time::Duration;

use serde::Serialize;

/// The REPORT line Lambda writes after each invoke:
/// `REPORT RequestId: … Duration: 1.23 ms Billed Duration: 2 ms … Init Duration: 180.55 ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    #[serde(
        rename = "duration_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub duration: Option<Duration>,
    #[serde(
        rename = "billed_duration_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub billed_duration: Option<Duration>,
    /// Present only on a cold start.
    #[serde(
        rename = "init_duration_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub init_duration: Option<Duration>,
}

/// What the tail shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tail {
    pub report: Option<Report>,
    /// `cold_start` from a structured (JSON) log line, as AWS Lambda Powertools' loggers write it.
    pub cold_start: Option<bool>,
}

/// Reads the decoded tail. The tail may start mid-line (it is cut at 4 KB); the REPORT line is
/// the last one, so it is whole when it is there at all.
pub fn read(text: &str) -> Tail {
    let mut tail = Tail::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("REPORT ") {
            tail.report = Some(report(rest));
        } else if let Some(cold) = cold_start(line) {
            tail.cold_start = Some(cold);
        }
    }
    tail
}

/// Fields are tab-separated `Name: value unit` pairs; order and set vary by runtime and era.
fn report(fields: &str) -> Report {
    let mut report = Report::default();
    for field in fields.split('\t') {
        let Some((name, value)) = field.split_once(": ") else {
            continue;
        };
        let slot = match name.trim() {
            "Duration" => &mut report.duration,
            "Billed Duration" => &mut report.billed_duration,
            "Init Duration" => &mut report.init_duration,
            _ => continue,
        };
        *slot = value
            .trim()
            .strip_suffix("ms")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| Duration::from_secs_f64(v / 1000.0));
    }
    report
}

/// Powertools loggers write one JSON object per line, sometimes after a runtime prefix
/// (`2024-… <request id> INFO {…}`); `cold_start` is a boolean at its top level.
fn cold_start(line: &str) -> Option<bool> {
    let start = line.find('{')?;
    let value: serde_json::Value = serde_json::from_str(&line[start..]).ok()?;
    value.get("cold_start")?.as_bool()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_start_report() {
        let text = "START RequestId: 8f5 Version: $LATEST\nEND RequestId: 8f5\n\
            REPORT RequestId: 8f5\tDuration: 2.84 ms\tBilled Duration: 3 ms\tMemory Size: 2048 MB\t\
            Max Memory Used: 67 MB\tInit Duration: 180.55 ms\t\n";
        let tail = read(text);
        let report = tail.report.unwrap();
        assert_eq!(report.duration, Some(Duration::from_micros(2840)));
        assert_eq!(report.billed_duration, Some(Duration::from_millis(3)));
        assert_eq!(report.init_duration, Some(Duration::from_micros(180_550)));
        assert_eq!(tail.cold_start, None);
    }

    #[test]
    fn a_warm_report_has_no_init_duration() {
        let text = "REPORT RequestId: a\tDuration: 1.00 ms\tBilled Duration: 1 ms\t\
                    Memory Size: 128 MB\tMax Memory Used: 60 MB\t";
        let report = read(text).report.unwrap();
        assert_eq!(report.init_duration, None);
        assert_eq!(report.duration, Some(Duration::from_millis(1)));
    }

    #[test]
    fn powertools_cold_start_with_and_without_a_prefix() {
        let plain = r#"{"level":"INFO","message":"hello","cold_start":true,"function_name":"f"}"#;
        assert_eq!(read(plain).cold_start, Some(true));
        let prefixed =
            "2024-08-16T22:40:13.136Z\tabc\tINFO\t{\"cold_start\":false,\"message\":\"x\"}";
        assert_eq!(read(prefixed).cold_start, Some(false));
    }

    #[test]
    fn a_truncated_or_foreign_tail_is_not_an_error() {
        let tail = read("ation: 1.2 ms\t\nsome text { not json\n{\"cold_start\": \"yes\"}");
        assert_eq!(tail, Tail::default());
    }

    #[test]
    fn a_garbled_value_is_skipped() {
        let report = read("REPORT RequestId: a\tDuration: fast ms\tBilled Duration: 4 ms").report;
        assert_eq!(
            report,
            Some(Report {
                duration: None,
                billed_duration: Some(Duration::from_millis(4)),
                init_duration: None,
            })
        );
    }
}
