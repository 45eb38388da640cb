//! `lmi test`: run the experiments of lmi.toml against the applied stack and judge them.
//!
//! `run` is the only part that talks to AWS: it finds each function's invocable version,
//! invokes it in the test's pattern (each invoke with its own trace id) and polls X-Ray for the
//! traces. Everything after that is pure: `logtail` and `trace` read what came back, `stats`
//! computes exact percentiles and `verdict` turns expectations into checks with evidence.

pub mod logtail;
pub mod run;
pub mod stats;
pub mod trace;
pub mod verdict;

use std::time::Duration;

use serde::Serialize;

pub use run::{Options, run};
pub use verdict::{Check, Judged, Verdict};

/// One invoke, as the client saw it and as its log tail and trace describe it.
#[derive(Debug, Clone, Serialize)]
pub struct Invoke {
    /// 1-based, in the order invokes were started.
    pub index: u32,
    /// The X-Ray trace id lmi sent (`1-<epoch hex>-<random>`).
    pub trace_id: String,
    /// When it was started, from the start of the test.
    #[serde(rename = "started_ms", serialize_with = "stats::serialize_ms")]
    pub started: Duration,
    /// Round trip as the client measured it.
    #[serde(rename = "latency_ms", serialize_with = "stats::serialize_ms")]
    pub latency: Duration,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub report: Option<logtail::Report>,
    pub cold_start: Option<bool>,
    /// The function segment of its trace; `None` until (unless) X-Ray has it.
    pub segment: Option<trace::FunctionSegment>,
}

/// How an invoke ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The handler failed (`X-Amz-Function-Error`).
    FunctionError {
        function_error: String,
    },
    /// 429: no execution environment could take the invoke.
    Throttled {
        reason: String,
    },
    /// The invoke itself failed (not the handler): a 5xx, a network error.
    Failed {
        status: Option<u16>,
        error: String,
    },
}

impl Outcome {
    /// Whether the invoke reached the function: only those have a latency sample and a trace.
    pub fn ran(&self) -> bool {
        matches!(self, Outcome::Ok | Outcome::FunctionError { .. })
    }

    /// Errors for `max_error_rate`: the handler's and the invoke's own; throttles are counted
    /// separately, by `max_throttle_rate`.
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::FunctionError { .. } | Outcome::Failed { .. })
    }
}

/// One test's run: what was invoked and what each invoke showed.
#[derive(Debug, Clone, Serialize)]
pub struct TestRun {
    pub name: String,
    /// Logical name, from lmi.toml.
    pub function: String,
    /// The AWS function name and the qualifier invoked (`$LATEST.PUBLISHED`, `3`, or none).
    pub function_name: String,
    pub qualifier: Option<String>,
    pub invocations: u32,
    pub concurrency: u32,
    /// Whether traces were fetched (the function has active tracing and a check needs them).
    pub traced: bool,
    /// Whether lmi renewed the function's environments first, so invoke 1 is a cold start.
    pub renewed_environments: bool,
    pub invokes: Vec<Invoke>,
    /// From the first invoke's start to the last one's end.
    #[serde(rename = "invoking_ms", serialize_with = "stats::serialize_ms")]
    pub invoking: Duration,
    /// From the last invoke's end until every trace arrived or the deadline passed.
    #[serde(
        rename = "waiting_for_traces_ms",
        serialize_with = "stats::serialize_ms"
    )]
    pub waiting_for_traces: Duration,
}

impl TestRun {
    /// Latencies of the invokes that reached the function, in invoke order.
    pub fn latencies(&self) -> Vec<Duration> {
        self.invokes
            .iter()
            .filter(|i| i.outcome.ran())
            .map(|i| i.latency)
            .collect()
    }

    pub fn summary(&self) -> Option<stats::Summary> {
        stats::Summary::of(&self.latencies())
    }
}
