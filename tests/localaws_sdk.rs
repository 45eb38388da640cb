//! The local AWS through the Rust SDK, as the issue that built it asks: lmi creates a capacity
//! provider, an LMI function on it (published) and a default function; the SDK then invokes
//! them with trace ids it chose, finds those traces with BatchGetTraces (Initialization only on
//! the default function's cold start), and sees a 429 when the LMI version is saturated.
//! (The local AWS's own pytest suite covers the same with boto3.)

mod common;

use aws_sdk_lambda::primitives::Blob;
use common::{Target, project, unique_stack};

/// `Root=1-<8 hex epoch seconds>-<24 hex>`, as AWS documents the header.
fn trace_id(n: u32) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "1-{secs:08x}-{:024x}",
        0xabc000 + u64::from(n) + u64::from(std::process::id()) * 1000
    )
}

async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    qualifier: Option<&str>,
    trace: &str,
    payload: &str,
) -> Result<(), u16> {
    let header = format!("Root={trace};Sampled=1");
    lambda
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .payload(Blob::new(payload.as_bytes().to_vec()))
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert("X-Amzn-Trace-Id", header.clone());
        })
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.raw_response().map_or(0, |r| r.status().as_u16()))
}

/// Names of the subsegments of the trace's `AWS::Lambda::Function` segment.
async fn function_subsegments(xray: &aws_sdk_xray::Client, trace: &str) -> Vec<String> {
    let out = xray
        .batch_get_traces()
        .trace_ids(trace)
        .send()
        .await
        .expect("BatchGetTraces");
    let mut names = Vec::new();
    for t in out.traces() {
        for segment in t.segments() {
            let doc: serde_json::Value =
                serde_json::from_str(segment.document().unwrap_or("{}")).expect("segment JSON");
            if doc["origin"] == "AWS::Lambda::Function" {
                for sub in doc["subsegments"].as_array().into_iter().flatten() {
                    names.push(sub["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    names.sort();
    names
}

#[test]
fn the_rust_sdk_sees_traces_cold_starts_and_throttles() {
    if common::real_aws() {
        // Saturation and cold starts are the local AWS's model, not AWS's behaviour.
        return;
    }
    let target = Target::private();
    let stack = unique_stack("sdk");
    let dir = project(&format!(
        r#"
[stack]
name = "{stack}"

[network]
cidr = "10.70.0.0/16"
azs = 2

[capacity_providers.main]

[functions.lmi]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true
capacity_provider = "main"
per_environment_max_concurrency = 1
min_environments = 1
max_environments = 1

[functions.default]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true
"#
    ));
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let config = target.sdk().await;
        // No retries: the SDK retries 429 as throttling, which would hide it.
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        let xray = aws_sdk_xray::Client::new(&config);
        let default = format!("{stack}-default");
        let lmi = format!("{stack}-lmi");

        let (cold, warm, managed) = (trace_id(1), trace_id(2), trace_id(3));
        invoke(&lambda, &default, None, &cold, "{}")
            .await
            .expect("invoke default");
        invoke(&lambda, &default, None, &warm, "{}")
            .await
            .expect("invoke default again");
        invoke(&lambda, &lmi, Some("$LATEST.PUBLISHED"), &managed, "{}")
            .await
            .expect("invoke LMI");
        assert_eq!(
            function_subsegments(&xray, &cold).await,
            ["Initialization", "Invocation", "Overhead"]
        );
        assert_eq!(
            function_subsegments(&xray, &warm).await,
            ["Invocation", "Overhead"]
        );
        assert_eq!(
            function_subsegments(&xray, &managed).await,
            ["Invocation", "Overhead"]
        );

        // One environment serving one invoke at a time: a second, overlapping invoke is
        // throttled with 429 TooManyRequestsException.
        let slow = r#"{"sleep_ms": 1500}"#;
        let (first, second) = (trace_id(4), trace_id(5));
        let (a, b) = tokio::join!(
            invoke(&lambda, &lmi, Some("$LATEST.PUBLISHED"), &first, slow),
            invoke(&lambda, &lmi, Some("$LATEST.PUBLISHED"), &second, slow),
        );
        let mut results = [a, b];
        results.sort();
        assert_eq!(
            results,
            [Ok(()), Err(429)],
            "exactly one of two overlapping invokes is throttled"
        );
    });

    target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);
}
