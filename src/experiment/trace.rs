//! What one invoke's X-Ray trace shows: the `AWS::Lambda::Function` segment and its
//! `Initialization`, `Invocation` and `Overhead` subsegments.
//!
//! Parsed tolerantly, as the recordings in `tests/fixtures/xray` demand: subsegments come in
//! any order, `Initialization` lies outside its parent's time range, the field set changed
//! between 2023 and 2024, and a trace may hold other functions' segments (a function that
//! invokes another). Only `origin`, `name`, times and `error`/`fault` are read.

use std::time::Duration;

use serde::Serialize;

/// The function segment of one invoke, once X-Ray has it complete.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionSegment {
    /// The segment's id, to find it in the console.
    pub segment_id: String,
    /// `Some` on a cold start: how long the Initialization subsegment lasted.
    #[serde(
        rename = "initialization_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub initialization: Option<Duration>,
    #[serde(
        rename = "invocation_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub invocation: Option<Duration>,
    #[serde(
        rename = "overhead_ms",
        serialize_with = "super::stats::serialize_opt_ms"
    )]
    pub overhead: Option<Duration>,
    /// The handler failed (`error` or `fault` on the segment).
    pub error: bool,
}

impl FunctionSegment {
    pub fn cold(&self) -> bool {
        self.initialization.is_some()
    }
}

/// Finds the function segment of `function` (its AWS name) among a trace's segment documents.
/// `None` while it has not arrived or is still in progress: poll again.
pub fn function_segment<'a>(
    documents: impl IntoIterator<Item = &'a str>,
    function: &str,
) -> Option<FunctionSegment> {
    documents
        .into_iter()
        .filter_map(|doc| serde_json::from_str::<serde_json::Value>(doc).ok())
        .filter(|doc| {
            doc["origin"] == "AWS::Lambda::Function"
                && doc["name"] == function
                && doc["in_progress"] != true
        })
        // Several segments of one function in one trace (it was invoked twice within the
        // trace) are not lmi's pattern; the earliest is the one lmi's invoke started.
        .min_by(|a, b| seconds(a, "start_time").total_cmp(&seconds(b, "start_time")))
        .map(|doc| read(&doc))
}

fn read(doc: &serde_json::Value) -> FunctionSegment {
    let mut segment = FunctionSegment {
        segment_id: doc["id"].as_str().unwrap_or_default().to_string(),
        error: doc["error"] == true || doc["fault"] == true,
        ..FunctionSegment::default()
    };
    for sub in doc["subsegments"].as_array().into_iter().flatten() {
        let slot = match sub["name"].as_str() {
            Some("Initialization") => &mut segment.initialization,
            Some("Invocation") => &mut segment.invocation,
            Some("Overhead") => &mut segment.overhead,
            _ => continue,
        };
        // A subsegment without a usable time range still counts as present.
        *slot = Some(span(sub).unwrap_or_default());
    }
    segment
}

fn seconds(doc: &serde_json::Value, field: &str) -> f64 {
    doc[field].as_f64().unwrap_or(f64::MAX)
}

fn span(doc: &serde_json::Value) -> Option<Duration> {
    let (start, end) = (doc["start_time"].as_f64()?, doc["end_time"].as_f64()?);
    Duration::try_from_secs_f64(end - start).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorded {
        id: String,
        documents: Vec<String>,
    }

    fn recorded(file: &str) -> Vec<Recorded> {
        let text = match file {
            "2023" => {
                include_str!("../../tests/fixtures/xray/xray-lambda-traces_real-aws_2023-04.json")
            }
            _ => include_str!(
                "../../tests/fixtures/xray/xray-lambda-segment_unattributed_2024-08.json"
            ),
        };
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let traces = match value["traces"].as_array() {
            Some(traces) => traces.clone(),
            None => vec![value],
        };
        traces
            .iter()
            .map(|t| Recorded {
                id: t["Id"].as_str().unwrap_or_default().to_string(),
                documents: t["Segments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    // Some recorded documents were stored parsed; AWS sends JSON text.
                    .map(|s| match &s["Document"] {
                        serde_json::Value::String(text) => text.clone(),
                        doc => doc.to_string(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn segment(trace: &Recorded, function: &str) -> Option<FunctionSegment> {
        function_segment(trace.documents.iter().map(String::as_str), function)
    }

    #[test]
    fn real_traces_cold_and_warm_starts() {
        let traces = recorded("2023");
        let post = "todo-list-app-dev-postTask";
        let by_id = |id: &str| traces.iter().find(|t| t.id == id).unwrap();
        // Subsegments listed Invocation, Initialization, Overhead: a cold start.
        let cold = segment(by_id("1-64373507-1fa10d7929b63ad548165c89"), post).unwrap();
        assert_eq!(cold.segment_id, "64db57830f6fd454");
        assert!(cold.cold());
        assert!(cold.invocation.is_some() && cold.overhead.is_some());
        // Listed Overhead, Invocation: warm.
        let warm = segment(by_id("1-6437350a-775b7afb3067811a4c6daade"), post).unwrap();
        assert!(!warm.cold());
        assert!(warm.invocation.unwrap() > Duration::from_millis(50));
    }

    #[test]
    fn six_of_eleven_recorded_function_segments_are_cold() {
        let traces = recorded("2023");
        let functions = [
            "todo-list-app-dev-postTask",
            "todo-list-app-dev-sendNotification",
            "todo-list-app-dev-getTasks",
            "todo-list-app-dev-deleteTask",
        ];
        let found: Vec<FunctionSegment> = traces
            .iter()
            .flat_map(|t| functions.iter().filter_map(|f| segment(t, f)))
            .collect();
        assert_eq!(found.len(), 11);
        assert_eq!(found.iter().filter(|s| s.cold()).count(), 6);
    }

    #[test]
    fn a_trace_with_two_functions_reads_the_one_asked_for() {
        let traces = recorded("2023");
        let both = traces
            .iter()
            .find(|t| t.id == "1-643aca1d-02e095f7341508e00b9b6d2b")
            .unwrap();
        assert!(segment(both, "todo-list-app-dev-postTask").unwrap().cold());
        assert!(
            !segment(both, "todo-list-app-dev-sendNotification")
                .unwrap()
                .cold()
        );
        assert_eq!(segment(both, "todo-list-app-dev-other"), None);
    }

    #[test]
    fn the_2024_shape_parses() {
        let trace = &recorded("2024")[0];
        let s = segment(trace, "nodejs-example-telemetry-api-demo-function").unwrap();
        assert!(!s.cold());
        assert_eq!(
            s.invocation, None,
            "the recording has no Invocation subsegment"
        );
        assert!(s.overhead.unwrap() > Duration::from_millis(300));
    }

    #[test]
    fn in_progress_or_missing_segments_mean_not_yet() {
        let partial = r#"{"id":"a","name":"f","origin":"AWS::Lambda::Function","in_progress":true,"start_time":1}"#;
        let service = r#"{"id":"b","name":"f","origin":"AWS::Lambda","start_time":1,"end_time":2}"#;
        assert_eq!(function_segment([partial, service], "f"), None);
        assert_eq!(function_segment(["not json"], "f"), None);
    }

    #[test]
    fn handler_errors_are_read() {
        let doc = r#"{"id":"a","name":"f","origin":"AWS::Lambda::Function","error":true,
            "start_time":1.0,"end_time":2.0,"subsegments":[{"name":"Invocation","error":true,
            "start_time":1.0,"end_time":1.5}]}"#;
        let s = function_segment([doc], "f").unwrap();
        assert!(s.error);
        assert_eq!(s.invocation, Some(Duration::from_millis(500)));
    }
}
