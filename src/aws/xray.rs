//! X-Ray: segment documents of traces, fetched by id (BatchGetTraces; no time-range scan).

use std::collections::HashMap;

use aws_sdk_xray::Client;

use super::error::AwsError;

/// BatchGetTraces takes at most 5 trace ids per call.
const IDS_PER_CALL: usize = 5;

#[derive(Clone, Debug)]
pub struct Xray {
    client: Client,
}

impl Xray {
    pub fn new(client: Client) -> Self {
        Xray { client }
    }

    /// The segment documents (JSON text) X-Ray has so far for each of `ids`; an id X-Ray doesn't
    /// have yet is absent from the map.
    pub async fn segments(&self, ids: &[String]) -> Result<HashMap<String, Vec<String>>, AwsError> {
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .batch_get_traces()
                    .set_trace_ids(Some(chunk.to_vec()))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::new("xray", "BatchGetTraces", chunk.join(","), e))?;
                for trace in out.traces() {
                    let Some(id) = trace.id() else { continue };
                    found.entry(id.to_string()).or_default().extend(
                        trace
                            .segments()
                            .iter()
                            .filter_map(|s| s.document().map(str::to_string)),
                    );
                }
                match out.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}
