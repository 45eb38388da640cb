//! The only code that imports `aws_sdk_*`. Each service is a small struct whose methods speak
//! lmi's types; every failure is an [`AwsError`] that names service, operation and resource.
//!
//! The endpoint, region and credentials come from the standard AWS configuration
//! (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ...): lmi has no notion of a "local" AWS.

pub mod calls;
pub mod ec2;
pub mod error;
pub mod iam;
pub mod invoke;
pub mod lambda;
pub mod wait;
pub mod xray;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

pub use calls::{Call, CallLog};
pub use error::{AwsError, ErrorKind};

/// Clients for one region, sharing one call log.
#[derive(Clone, Debug)]
pub struct Aws {
    pub region: String,
    pub ec2: ec2::Ec2,
    pub iam: iam::Iam,
    pub lambda: lambda::Lambda,
    /// Lambda's Invoke without retries, for experiments (see `invoke`).
    pub invoker: invoke::Invoker,
    pub xray: xray::Xray,
    pub calls: CallLog,
}

/// Attempts per call, throttling included. The SDK's standard mode backs off exponentially
/// with jitter; lmi's waiters add their own backoff on top.
const MAX_ATTEMPTS: u32 = 8;

impl Aws {
    /// Loads the standard AWS configuration; `region` (from lmi.toml) overrides its region.
    pub async fn connect(region: Option<&str>) -> Result<Aws, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        let config = loader.load().await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(AwsError::lmi(
                "lmi",
                "Configure",
                "",
                "no AWS region: set `region` in [stack], AWS_REGION, or a region in your AWS profile",
            ));
        };
        let calls = CallLog::default();
        let ec2 = aws_sdk_ec2::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build();
        let iam = aws_sdk_iam::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build();
        let lambda = aws_sdk_lambda::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build();
        let invoker = aws_sdk_lambda::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .interceptor(calls.clone())
            .build();
        let xray = aws_sdk_xray::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build();
        Ok(Aws {
            lambda: lambda::Lambda::new(aws_sdk_lambda::Client::from_conf(lambda)),
            invoker: invoke::Invoker::new(aws_sdk_lambda::Client::from_conf(invoker)),
            xray: xray::Xray::new(aws_sdk_xray::Client::from_conf(xray)),
            ec2: ec2::Ec2::new(aws_sdk_ec2::Client::from_conf(ec2)),
            iam: iam::Iam::new(aws_sdk_iam::Client::from_conf(iam), &region),
            region,
            calls,
        })
    }
}
