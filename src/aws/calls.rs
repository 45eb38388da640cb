//! One SDK interceptor that records every AWS call lmi makes: service, operation, duration,
//! attempts and outcome. It serves `--verbose` timings, the call summary after apply, and tests
//! ("a converged apply made zero write calls") without mocking anything.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;

/// One finished AWS call.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub service: String,
    pub operation: String,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    pub attempts: u32,
    pub ok: bool,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl Call {
    /// Whether the call may change something. AWS names every read Describe*, Get* or List*;
    /// an Invoke runs the user's code but changes no resource, so it is counted on its own.
    pub fn is_write(&self) -> bool {
        !self.is_invoke()
            && !["Describe", "Get", "List", "BatchGet"]
                .iter()
                .any(|p| self.operation.starts_with(p))
    }

    pub fn is_invoke(&self) -> bool {
        self.operation == "Invoke"
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} {} ms{}{}",
            self.service,
            self.operation,
            self.duration.as_millis(),
            if self.attempts > 1 {
                format!(" ({} attempts)", self.attempts)
            } else {
                String::new()
            },
            if self.ok { "" } else { " failed" }
        )
    }
}

/// The shared record of calls; cheap to clone, one per `Aws`.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl CallLog {
    pub fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn writes(&self) -> Vec<Call> {
        self.snapshot().into_iter().filter(Call::is_write).collect()
    }

    fn push(&self, call: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

#[derive(Debug, Clone)]
struct Started {
    at: Instant,
    attempts: u32,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "lmi::CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started {
            at: Instant::now(),
            attempts: 0,
        });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(started) = cfg.load::<Started>().cloned() {
            cfg.interceptor_state().store_put(Started {
                attempts: started.attempts + 1,
                ..started
            });
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_default();
        let started = cfg.load::<Started>();
        self.push(Call {
            service,
            operation,
            duration: started.map(|s| s.at.elapsed()).unwrap_or_default(),
            attempts: started.map_or(0, |s| s.attempts),
            ok: matches!(context.output_or_error(), Some(Ok(_))),
        });
        Ok(())
    }
}
