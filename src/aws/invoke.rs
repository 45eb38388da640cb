//! Invoke, for `lmi test`: one synchronous call with the caller's trace header and the log tail,
//! sent by a client whose retries are off. The SDK's standard retry treats 429 as throttling
//! and would retry it out of sight; an experiment must count every throttle.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::LogType;
use aws_smithy_types::Blob;

use super::error::{AwsError, ErrorKind};

#[derive(Clone, Debug)]
pub struct Invoker {
    client: Client,
}

/// What a completed invoke returned.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// `X-Amz-Function-Error` (`Unhandled`, `Handled`): the handler failed.
    pub function_error: Option<String>,
    /// The decoded `LogType=Tail` (last 4 KB of the log), when Lambda sent it.
    pub log_tail: Option<String>,
}

/// An invoke that did not complete.
#[derive(Debug, Clone)]
pub enum InvokeError {
    /// 429 TooManyRequestsException: no environment could take it.
    Throttled { reason: String },
    /// Anything else: the HTTP status if there was a response, and the error.
    Failed {
        status: Option<u16>,
        error: AwsError,
    },
}

impl Invoker {
    pub fn new(client: Client) -> Self {
        Invoker { client }
    }

    /// Invokes `function` (at `qualifier`) synchronously; `trace_header` is sent as
    /// `X-Amzn-Trace-Id`, so that the invoke's trace can be fetched by its id.
    pub async fn invoke(
        &self,
        function: &str,
        qualifier: Option<&str>,
        payload: &[u8],
        trace_header: &str,
    ) -> Result<Invoked, InvokeError> {
        let header = trace_header.to_string();
        let result = self
            .client
            .invoke()
            .function_name(function)
            .set_qualifier(qualifier.map(str::to_string))
            .log_type(LogType::Tail)
            .payload(Blob::new(payload))
            .customize()
            .mutate_request(move |req| {
                req.headers_mut().insert("X-Amzn-Trace-Id", header.clone());
            })
            .send()
            .await;
        match result {
            Ok(out) => Ok(Invoked {
                function_error: out.function_error().map(str::to_string),
                log_tail: out.log_result().and_then(|b64| {
                    aws_smithy_types::base64::decode(b64)
                        .ok()
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                }),
            }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let error = AwsError::new("lambda", "Invoke", function, e);
                if status == Some(429)
                    || error.code.as_deref() == Some("TooManyRequestsException")
                    || error.kind == ErrorKind::Throttled
                {
                    Err(InvokeError::Throttled {
                        reason: error.message,
                    })
                } else {
                    Err(InvokeError::Failed { status, error })
                }
            }
        }
    }
}
