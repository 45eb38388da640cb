//! AWS's limits that lmi checks before any call. Each cites its source; see
//! ../shared/LMI-FACTS.md for the LMI ones.

use std::ops::RangeInclusive;

/// Memory of an LMI function, MB (DG lambda-managed-instances: at least 1 vCPU of 2 GiB).
pub const LMI_MEMORY_MB: RangeInclusive<i64> = 2048..=32768;
/// Memory of a default function, MB (DG configuration-memory).
pub const DEFAULT_MEMORY_MB: RangeInclusive<i64> = 128..=10240;
/// GiB of memory per vCPU of an LMI execution environment (API ExecutionEnvironmentMemoryGiBPerVCpu).
pub const MEMORY_GIB_PER_VCPU: [i64; 3] = [2, 4, 8];
/// Timeout of a synchronous invoke, seconds (DG configuration-timeout).
pub const TIMEOUT_S: RangeInclusive<i64> = 1..=900;
/// PerExecutionEnvironmentMaxConcurrency (API).
pub const PER_ENVIRONMENT_CONCURRENCY: RangeInclusive<i64> = 1..=1600;
/// Min/MaxExecutionEnvironments (API FunctionScalingConfig).
pub const EXECUTION_ENVIRONMENTS: RangeInclusive<i64> = 0..=15000;
/// MaxVCpuCount (API CapacityProviderScalingConfig).
pub const MAX_VCPUS: RangeInclusive<i64> = 2..=15000;
/// SubnetIds of a capacity provider (API CapacityProviderVpcConfig).
pub const PROVIDER_SUBNETS: RangeInclusive<usize> = 1..=16;
/// SecurityGroupIds of a capacity provider (API CapacityProviderVpcConfig).
pub const PROVIDER_SECURITY_GROUPS_MAX: usize = 5;
/// Allowed/ExcludedInstanceTypes (API InstanceRequirements).
pub const INSTANCE_TYPES_MAX: usize = 400;
/// ScalingPolicies (API CapacityProviderScalingConfig).
pub const SCALING_POLICIES: RangeInclusive<usize> = 1..=10;
/// TargetValue of a CPU target-tracking policy, percent (API).
pub const CPU_TARGET: RangeInclusive<f64> = 0.0..=100.0;

/// Lambda function names (API CreateFunction FunctionName).
pub const FUNCTION_NAME_MAX: usize = 64;
/// Capacity provider names (API CreateCapacityProvider CapacityProviderName).
pub const CAPACITY_PROVIDER_NAME_MAX: usize = 140;
/// IAM role names (IAM CreateRole RoleName).
pub const ROLE_NAME_MAX: usize = 64;

/// A VPC's CIDR prefix length (VPC user guide, "VPC CIDR blocks").
pub const VPC_PREFIX: RangeInclusive<u8> = 16..=28;
/// The smallest subnet AWS allows (/28, 16 addresses of which AWS reserves 5).
pub const SUBNET_PREFIX_MAX: u8 = 28;
/// Availability zones a managed network spans. LMI spreads instances over 3 for resiliency.
pub const AZS: RangeInclusive<i64> = 1..=6;

/// Invokes and concurrency of one test.
pub const TEST_INVOCATIONS: RangeInclusive<i64> = 1..=10_000;
pub const TEST_CONCURRENCY: RangeInclusive<i64> = 1..=1_000;

/// Total size of a function's environment variables, keys and values (Lambda quotas).
pub const ENVIRONMENT_BYTES_MAX: usize = 4096;
/// Tags per resource (EC2, IAM, Lambda), less the three lmi sets: lmi:stack, lmi:resource, Name.
pub const USER_TAGS_MAX: usize = 50 - 3;
