//! The validated stack: what the user asked for, in domain types, with every AWS name already
//! derived. Produced only by `config::load`; everything downstream (plan, engine, experiments)
//! reads it and can rely on its invariants, which `config::validate` checks.

pub mod limits;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Serialize;

pub use runtime::Runtime;

/// Name of the tag that marks every resource lmi owns; its value is the stack name.
pub const STACK_TAG: &str = "lmi:stack";
/// Name of the tag that holds a resource's logical address (`function.lmi`).
pub const RESOURCE_TAG: &str = "lmi:resource";
/// Name of the tag that holds when a resource was created (RFC 3339, UTC): how `lmi gc` and
/// `lmi ls` tell a stack's age. Set once, at creation; never part of a diff.
pub const CREATED_TAG: &str = "lmi:created";
/// Name of the tag that holds the region of a role's stack. IAM is global: without it, a
/// command in one region would take another region's same-named stack's roles for its own.
pub const REGION_TAG: &str = "lmi:region";

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    /// Region from lmi.toml; `None` defers to the AWS configuration (AWS_REGION, profile).
    pub region: Option<String>,
    /// The user's tags, added to every resource beside lmi's own.
    pub tags: BTreeMap<String, String>,
    /// `None` when the stack has no capacity provider and so needs no VPC.
    pub network: Option<Network>,
    pub capacity_providers: Vec<CapacityProvider>,
    pub functions: Vec<Function>,
    pub tests: Vec<Experiment>,
}

impl Stack {
    pub fn capacity_provider(&self, name: &str) -> Option<&CapacityProvider> {
        self.capacity_providers.iter().find(|cp| cp.name == name)
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The AWS name of a resource of this stack: `{stack}-{name}`.
    pub fn aws_name(&self, name: &str) -> String {
        aws_name(&self.name, name)
    }
}

/// The current time as lmi writes it in tags: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// A time as lmi writes it in tags: RFC 3339, UTC, whole seconds.
pub fn rfc3339(at: std::time::SystemTime) -> String {
    let at = aws_smithy_types::DateTime::from(at);
    aws_smithy_types::DateTime::from_secs(at.secs())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Parses a time written by [`now_rfc3339`].
pub fn parse_rfc3339(text: &str) -> Option<std::time::SystemTime> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|t| std::time::SystemTime::try_from(t).ok())
}

/// The AWS name of a resource: `{stack}-{name}`, one rule for every kind.
pub fn aws_name(stack: &str, name: &str) -> String {
    format!("{stack}-{name}")
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Network {
    /// A VPC that lmi creates, owns and deletes.
    Managed(ManagedNetwork),
    /// A VPC the user owns: lmi uses its ids and never changes or deletes it.
    Existing(ExistingNetwork),
}

#[derive(Debug, Clone, Serialize)]
pub struct ManagedNetwork {
    pub cidr: Ipv4Net,
    /// Availability zones, counted; their names come from the region at apply time.
    pub azs: u8,
    pub egress: Egress,
    /// One public subnet per AZ when egress is through NAT, none otherwise.
    pub public_subnets: Vec<Ipv4Net>,
    /// One private subnet per AZ: where the capacity provider's instances run.
    pub private_subnets: Vec<Ipv4Net>,
    pub interface_endpoints: Vec<String>,
    pub gateway_endpoints: Vec<GatewayEndpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// NAT gateway(s) in the public subnets; `per_az` gives one per AZ instead of one shared.
    Nat { per_az: bool },
    /// No route to the internet: services are reached through VPC endpoints only.
    Endpoints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayEndpoint {
    S3,
    Dynamodb,
}

impl GatewayEndpoint {
    pub fn service(self) -> &'static str {
        match self {
            GatewayEndpoint::S3 => "s3",
            GatewayEndpoint::Dynamodb => "dynamodb",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ExistingNetwork {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// An IAM role: one lmi creates for the resource, or one the user already has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created by lmi with this name.
    Create {
        name: String,
    },
    Existing {
        arn: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct CapacityProvider {
    /// The key in lmi.toml (`[capacity_providers.main]` → `main`).
    pub name: String,
    /// `{stack}-{name}`.
    pub aws_name: String,
    pub architecture: Architecture,
    pub instance_types: InstanceTypes,
    /// `None`: AWS's default.
    pub max_vcpus: Option<u32>,
    pub scaling: Scaling,
    pub kms_key_arn: Option<String>,
    pub operator_role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceTypes {
    /// Lambda chooses.
    Any,
    Allowed(Vec<String>),
    Excluded(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    Auto,
    /// Target-tracking policies on average CPU utilization (percent).
    Manual {
        cpu_targets: Vec<f64>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    pub aws_name: String,
    pub runtime: Runtime,
    pub handler: String,
    pub code: Code,
    /// Shell command run in the code's directory before packaging.
    pub build: Option<String>,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub architecture: Architecture,
    /// X-Ray active tracing.
    pub tracing: bool,
    pub role: Role,
    pub compute: Compute,
}

impl Function {
    pub fn managed(&self) -> Option<&ManagedCompute> {
        match &self.compute {
            Compute::Default => None,
            Compute::Managed(m) => Some(m),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum Code {
    /// A directory, zipped deterministically by lmi.
    Directory(PathBuf),
    /// A prebuilt zip, uploaded as is.
    Zip(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Compute {
    /// A default (on-demand) Lambda function.
    Default,
    /// A function on a capacity provider (Lambda Managed Instances).
    Managed(ManagedCompute),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagedCompute {
    /// Logical name of the capacity provider in this stack.
    pub capacity_provider: String,
    /// `None`: AWS's per-runtime default.
    pub per_environment_max_concurrency: Option<u32>,
    pub memory_gib_per_vcpu: u8,
    pub min_environments: Option<u32>,
    pub max_environments: Option<u32>,
    pub publish: Publish,
}

/// Where an LMI function's code is published so that it can be invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Publish {
    /// `PublishTo=LATEST_PUBLISHED`: the `$LATEST.PUBLISHED` version, overwritten on each change.
    LatestPublished,
    /// A new numbered version on each change.
    Version,
}

/// A test of lmi.toml: invoke a function in a pattern and assert on what happens.
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub name: String,
    /// Logical name of the function under test.
    pub function: String,
    pub invocations: u32,
    /// 1 = sequential.
    pub concurrency: u32,
    pub payload: serde_json::Value,
    pub expect: Expectations,
    pub trace_deadline: Duration,
    /// A trace that never arrives passes instead of failing the gate.
    pub allow_inconclusive: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Expectations {
    pub initialization: Option<InitExpectation>,
    pub latency: LatencyLimits,
    pub ratio: Option<LatencyRatio>,
    pub max_throttle_rate: Option<f64>,
    pub max_error_rate: Option<f64>,
}

/// Which invokes may have an `Initialization` subsegment in X-Ray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitExpectation {
    /// No invoke (the LMI promise).
    None,
    /// The first invoke only (a default function's cold start).
    FirstOnly,
    /// Anything goes; recorded but not asserted.
    Any,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyLimits {
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    pub max: Option<Duration>,
}

/// `statistic(this test) ≤ max × baseline_statistic(baseline test)`.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRatio {
    pub baseline: String,
    pub statistic: Statistic,
    pub baseline_statistic: Statistic,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    First,
    Min,
    Mean,
    P50,
    P95,
    P99,
    Max,
}

impl Statistic {
    pub const NAMES: &'static [&'static str] =
        &["first", "min", "mean", "p50", "p95", "p99", "max"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "first" => Statistic::First,
            "min" => Statistic::Min,
            "mean" => Statistic::Mean,
            "p50" => Statistic::P50,
            "p95" => Statistic::P95,
            "p99" => Statistic::P99,
            "max" => Statistic::Max,
            _ => return None,
        })
    }
}
