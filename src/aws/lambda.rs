//! Lambda: capacity providers and functions. Discovery by name prefix (`{stack}-`) confirmed by
//! the `lmi:stack` tag (Lambda has no server-side tag filter on its list calls); create, update
//! and delete with the waits LMI needs, since the Rust SDK has no waiter for capacity providers.
//!
//! Speaks `plan::resource` types with AWS ids as `Ref::External`; the engine maps them to
//! addresses. A provider's id is its ARN (functions refer to it by ARN); a function's id is
//! its ARN too, and calls use the name from its spec.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{
    Architecture, CapacityProviderConfig, CapacityProviderPermissionsConfig,
    CapacityProviderPredefinedMetricType, CapacityProviderScalingConfig,
    CapacityProviderScalingMode, CapacityProviderState, CapacityProviderVpcConfig, Environment,
    FunctionCode, FunctionConfiguration, FunctionScalingConfig, FunctionVersionLatestPublished,
    InstanceRequirements, LambdaManagedInstancesCapacityProviderConfig, LastUpdateStatus, Runtime,
    State, TargetTrackingScalingPolicy, TracingConfig, TracingMode,
};
use aws_smithy_types::Blob;

use super::ec2::Resolve;
use super::error::{AwsError, ErrorKind};
use super::wait::{Poll, poll, poll_from};
use crate::model::{RESOURCE_TAG, STACK_TAG};
use crate::plan::desired::{comparable_tags, format_target};
use crate::plan::resource::{Address, Observed, Ref, Resource, Spec};

/// The qualifier `PublishTo=LATEST_PUBLISHED` creates and overwrites.
pub const LATEST_PUBLISHED: &str = "$LATEST.PUBLISHED";

/// A provider usually turns Active in a minute or two.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A provider is gone once its instances are terminated.
const PROVIDER_DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A published LMI version starts instances and environments; init may take 15 minutes
/// (LMI-FACTS).
const VERSION_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a new role may take to propagate through IAM before Lambda accepts it. Terraform
/// retries CreateCapacityProvider for the same reason (LMI-FACTS, IAM).
const ROLE_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// Tells the engine what is being waited for ("waiting for version 1 to be Active").
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// Capacity-provider writes are limited to 1 per second per account, reads to 15 (LMI-FACTS,
/// quotas; not raisable): writes are spaced by this, provider polls start this far apart.
const PROVIDER_CALL_SPACING: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Lambda {
    client: Client,
    /// When the last capacity-provider write was sent, shared by every task of this client.
    last_provider_write: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

fn not_a(kind: &str, resource: &Resource, operation: &'static str) -> AwsError {
    AwsError::lmi(
        "lambda",
        operation,
        resource.address.to_string(),
        format!("not a {kind}"),
    )
}

fn observed(
    id: &str,
    tags: BTreeMap<String, String>,
    spec: Spec,
    parts: BTreeMap<String, String>,
) -> Option<Observed> {
    let address = Address::parse(tags.get(RESOURCE_TAG)?)?;
    (address.kind == spec.kind()).then(|| Observed {
        id: id.to_string(),
        resource: Resource {
            address,
            spec,
            tags,
        },
        parts,
    })
}

/// The hint lmi gives for a published version that failed, by its StateReasonCode
/// (LMI-FACTS, "Functions on a capacity provider").
pub fn failure_hint(code: &str) -> &'static str {
    match code {
        "CapacityProviderScalingLimitExceeded" => {
            "the version's minimum environments don't fit the provider: raise max_vcpus of its capacity provider, or lower min_environments or memory_mb"
        }
        "InsufficientCapacity" => {
            "EC2 has no capacity for the allowed instance types here: allow more instance types, or try again later"
        }
        "VcpuLimitExceeded" => "the account's EC2 vCPU quota is reached: ask AWS to raise it",
        "InsufficientRolePermissions" => {
            "the operator role needs the managed policy AWSLambdaManagedEC2ResourceOperator"
        }
        "InvalidSubnet" | "InvalidSecurityGroup" => {
            "check the capacity provider's subnets and security groups exist and belong to one VPC"
        }
        "SubnetOutOfIPAddresses" => {
            "the provider's subnets have no free addresses: use larger subnets"
        }
        c if c.starts_with("FunctionError") => {
            "the function failed to start: check its handler, and its logs in CloudWatch"
        }
        _ => "see the StateReason above",
    }
}

impl Lambda {
    pub fn new(client: Client) -> Self {
        Lambda {
            client,
            last_provider_write: Arc::default(),
        }
    }

    /// Waits until a capacity-provider write may be sent without breaking the 1/s quota.
    async fn provider_write_slot(&self) {
        let mut last = self.last_provider_write.lock().await;
        if let Some(at) = *last {
            let next = at + PROVIDER_CALL_SPACING;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// The stack's capacity providers and functions.
    pub async fn observe(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let (mut providers, functions) =
            futures::try_join!(self.observe_providers(stack), self.observe_functions(stack))?;
        providers.extend(functions);
        Ok(providers)
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .client
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "ListTags", arn, e))?;
        Ok(comparable_tags(
            out.tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        ))
    }

    async fn observe_providers(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let prefix = format!("{stack}-");
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_capacity_providers()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::new("lambda", "ListCapacityProviders", stack, e))?;
            for cp in page.capacity_providers() {
                let arn = cp.capacity_provider_arn();
                let name = arn.rsplit(':').next().unwrap_or_default();
                if !name.starts_with(&prefix) {
                    continue;
                }
                let Some(tags) = AwsError::unless_gone(self.tags(arn).await)? else {
                    continue;
                };
                if tags.get(STACK_TAG).map(String::as_str) != Some(stack) {
                    continue;
                }
                let vpc = cp.vpc_config();
                let mut subnets: Vec<Ref> = vpc
                    .map(|v| {
                        v.subnet_ids()
                            .iter()
                            .map(|s| Ref::External(s.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                subnets.sort();
                let mut security_groups: Vec<Ref> = vpc
                    .map(|v| {
                        v.security_group_ids()
                            .iter()
                            .map(|s| Ref::External(s.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                security_groups.sort();
                let req = cp.instance_requirements();
                let sorted = |v: &[String]| {
                    let mut v = v.to_vec();
                    v.sort();
                    v
                };
                let scaling = cp.capacity_provider_scaling_config();
                let spec = Spec::CapacityProvider {
                    name: name.to_string(),
                    subnets,
                    security_groups,
                    operator_role: Ref::External(
                        cp.permissions_config()
                            .map(|p| p.capacity_provider_operator_role_arn().to_string())
                            .unwrap_or_default(),
                    ),
                    architecture: req
                        .and_then(|r| r.architectures().first())
                        .map_or("x86_64", |a| a.as_str())
                        .to_string(),
                    allowed_instance_types: req
                        .map(|r| sorted(r.allowed_instance_types()))
                        .unwrap_or_default(),
                    excluded_instance_types: req
                        .map(|r| sorted(r.excluded_instance_types()))
                        .unwrap_or_default(),
                    max_vcpus: scaling
                        .and_then(|s| s.max_v_cpu_count())
                        .map_or(crate::plan::desired::DEFAULT_MAX_VCPUS, |v| v as u32),
                    scaling_mode: scaling
                        .and_then(|s| s.scaling_mode())
                        .map_or("Auto", |m| m.as_str())
                        .to_string(),
                    cpu_targets: scaling
                        .map(|s| {
                            s.scaling_policies()
                                .iter()
                                .map(|p| format_target(p.target_value()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    kms_key_arn: cp.kms_key_arn().map(str::to_string),
                };
                out.extend(observed(arn, tags, spec, BTreeMap::new()));
            }
        }
        Ok(out)
    }

    async fn observe_functions(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let prefix = format!("{stack}-");
        let mut out = Vec::new();
        let mut pages = self.client.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("lambda", "ListFunctions", stack, e))?;
            for f in page.functions() {
                let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
                    continue;
                };
                if !name.starts_with(&prefix) {
                    continue;
                }
                let Some(tags) = AwsError::unless_gone(self.tags(arn).await)? else {
                    continue;
                };
                if tags.get(STACK_TAG).map(String::as_str) != Some(stack) {
                    continue;
                }
                let mut parts = BTreeMap::new();
                // The role as AWS has it: after discovery the spec names the role's address,
                // which a replaced role keeps, so only the ARN tells an update it moved.
                parts.insert("role".into(), f.role().unwrap_or_default().to_string());
                let lmi = f
                    .capacity_provider_config()
                    .and_then(|c| c.lambda_managed_instances_capacity_provider_config());
                let (mut publish, mut min, mut max) = (None, None, None);
                let published = if lmi.is_some() {
                    match AwsError::unless_gone(self.published(name).await)? {
                        Some(published) => published,
                        None => continue,
                    }
                } else {
                    None
                };
                if let Some((target, qualifier)) = published {
                    let scaling = self.scaling(name, &qualifier).await?;
                    min = scaling
                        .as_ref()
                        .and_then(|s| s.min_execution_environments());
                    max = scaling.and_then(|s| s.max_execution_environments());
                    publish = Some(target.to_string());
                    parts.insert("qualifier".into(), qualifier);
                }
                let mut spec = Spec::Function {
                    name: name.to_string(),
                    runtime: f.runtime().map_or("", |r| r.as_str()).to_string(),
                    handler: f.handler().unwrap_or_default().to_string(),
                    role: Ref::External(f.role().unwrap_or_default().to_string()),
                    memory_mb: f.memory_size().unwrap_or(128) as u32,
                    timeout_s: f.timeout().unwrap_or(3) as u32,
                    environment: f
                        .environment()
                        .and_then(|e| e.variables())
                        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    architecture: f
                        .architectures()
                        .first()
                        .map_or("x86_64", |a| a.as_str())
                        .to_string(),
                    tracing: f
                        .tracing_config()
                        .and_then(|t| t.mode())
                        .is_some_and(|m| *m == TracingMode::Active),
                    code_sha256: f.code_sha256().unwrap_or_default().to_string(),
                    capacity_provider: lmi
                        .map(|c| Ref::External(c.capacity_provider_arn().to_string())),
                    per_environment_max_concurrency: lmi
                        .and_then(|c| c.per_execution_environment_max_concurrency())
                        .map(|c| c as u32),
                    memory_gib_per_vcpu: lmi
                        .and_then(|c| c.execution_environment_memory_gib_per_v_cpu())
                        .map(|r| r as u8),
                    min_environments: min.map(|m| m as u32),
                    max_environments: max.map(|m| m as u32),
                    publish,
                };
                crate::plan::desired::normalize(&mut spec);
                out.extend(observed(arn, tags, spec, parts));
            }
        }
        Ok(out)
    }

    /// How an LMI function is published: `$LATEST.PUBLISHED` if it exists, else its newest
    /// numbered version; `None` if nothing is, or if that version Failed, so that the next
    /// apply publishes again instead of calling a broken version converged.
    async fn published(&self, name: &str) -> Result<Option<(&'static str, String)>, AwsError> {
        let mut newest: Option<(u64, bool)> = None;
        let mut latest_published: Option<bool> = None;
        let mut pages = self
            .client
            .list_versions_by_function()
            .function_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::new("lambda", "ListVersionsByFunction", name, e))?;
            for v in page.versions() {
                let failed = v.state() == Some(&State::Failed);
                match v.version() {
                    Some(LATEST_PUBLISHED) => latest_published = Some(failed),
                    Some(n) => {
                        if let Ok(n) = n.parse::<u64>() {
                            newest = newest.max(Some((n, failed)));
                        }
                    }
                    None => {}
                }
            }
        }
        Ok(match (latest_published, newest) {
            (Some(false), _) => Some(("latest_published", LATEST_PUBLISHED.to_string())),
            (None, Some((n, false))) => Some(("version", n.to_string())),
            _ => None,
        })
    }

    async fn scaling(
        &self,
        name: &str,
        qualifier: &str,
    ) -> Result<Option<FunctionScalingConfig>, AwsError> {
        let result = self
            .client
            .get_function_scaling_config()
            .function_name(name)
            .qualifier(qualifier)
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "GetFunctionScalingConfig", name, e));
        match result {
            // What was asked for is what lmi compares; "applied" converges to it on its own.
            Ok(out) => Ok(out
                .requested_function_scaling_config()
                .or(out.applied_function_scaling_config())
                .cloned()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Retries `call` while Lambda refuses a role it can't see yet (IAM propagation).
    async fn retry_role<T, F, Fut>(
        &self,
        progress: Progress<'_>,
        mut call: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let started = Instant::now();
        // At least a second apart: capacity-provider writes are limited to 1 per second.
        let mut pause = Duration::from_secs(2);
        loop {
            match call().await {
                Err(e)
                    if e.kind == ErrorKind::Invalid
                        && e.message.to_lowercase().contains("role")
                        && started.elapsed() < ROLE_PROPAGATION_TIMEOUT =>
                {
                    progress(format!(
                        "the role is not usable yet (new IAM roles take seconds to propagate): {}; retrying in {} s",
                        e.message,
                        pause.as_secs()
                    ));
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(15));
                }
                other => return other,
            }
        }
    }

    // ---- capacity providers ----

    pub async fn create_provider(
        &self,
        resource: &Resource,
        resolve: Resolve<'_>,
        progress: Progress<'_>,
    ) -> Result<String, AwsError> {
        let Spec::CapacityProvider {
            name,
            subnets,
            security_groups,
            operator_role,
            architecture,
            allowed_instance_types,
            excluded_instance_types,
            kms_key_arn,
            ..
        } = &resource.spec
        else {
            return Err(not_a(
                "capacity provider",
                resource,
                "CreateCapacityProvider",
            ));
        };
        let invalid = |e: aws_smithy_types::error::operation::BuildError| {
            AwsError::lmi("lambda", "CreateCapacityProvider", name, e.to_string())
        };
        let vpc = CapacityProviderVpcConfig::builder()
            .set_subnet_ids(Some(subnets.iter().map(resolve).collect::<Result<_, _>>()?))
            .set_security_group_ids(Some(
                security_groups
                    .iter()
                    .map(resolve)
                    .collect::<Result<_, _>>()?,
            ))
            .build()
            .map_err(invalid)?;
        let permissions = CapacityProviderPermissionsConfig::builder()
            .capacity_provider_operator_role_arn(resolve(operator_role)?)
            .build()
            .map_err(invalid)?;
        let requirements = InstanceRequirements::builder()
            .architectures(Architecture::from(architecture.as_str()))
            .set_allowed_instance_types(
                (!allowed_instance_types.is_empty()).then(|| allowed_instance_types.clone()),
            )
            .set_excluded_instance_types(
                (!excluded_instance_types.is_empty()).then(|| excluded_instance_types.clone()),
            )
            .build();
        let scaling = scaling_config(&resource.spec)?;
        let arn = self
            .retry_role(progress, || async {
                self.provider_write_slot().await;
                self.client
                    .create_capacity_provider()
                    .capacity_provider_name(name)
                    .vpc_config(vpc.clone())
                    .permissions_config(permissions.clone())
                    .instance_requirements(requirements.clone())
                    .capacity_provider_scaling_config(scaling.clone())
                    .set_kms_key_arn(kms_key_arn.clone())
                    .set_tags(Some(
                        resource
                            .tags
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<HashMap<_, _>>(),
                    ))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("lambda", "CreateCapacityProvider", name, e))
            })
            .await?
            .capacity_provider()
            .map(|cp| cp.capacity_provider_arn().to_string())
            .unwrap_or_default();
        progress(format!("waiting for capacity provider {name} to be Active"));
        self.wait_provider_active(name).await?;
        Ok(arn)
    }

    async fn wait_provider_active(&self, name: &str) -> Result<(), AwsError> {
        let what = "the capacity provider to be Active";
        poll_from(PROVIDER_CALL_SPACING, PROVIDER_TIMEOUT, name, what, || async {
            let out = self
                .client
                .get_capacity_provider()
                .capacity_provider_name(name)
                .send()
                .await;
            match out {
                Err(e) => Poll::Failed(AwsError::new("lambda", "GetCapacityProvider", name, e)),
                Ok(out) => match out.capacity_provider().map(|cp| cp.state()) {
                    Some(CapacityProviderState::Active) => Poll::Done(()),
                    // GetCapacityProvider has no state reason (LMI-FACTS).
                    Some(CapacityProviderState::Failed) => Poll::Failed(AwsError::lmi(
                        "lambda",
                        "GetCapacityProvider",
                        name,
                        "the capacity provider went to Failed (AWS gives no reason: check its subnets, security groups and operator role)",
                    )),
                    _ => Poll::Pending,
                },
            }
        })
        .await
    }

    /// Only the scaling config can change in place; everything else is a replace (the plan).
    pub async fn update_provider(
        &self,
        have: &Observed,
        want: &Resource,
        progress: Progress<'_>,
    ) -> Result<(), AwsError> {
        let Spec::CapacityProvider { name, .. } = &want.spec else {
            return Err(not_a("capacity provider", want, "UpdateCapacityProvider"));
        };
        let scaling_of = |s: &Spec| match s {
            Spec::CapacityProvider {
                max_vcpus,
                scaling_mode,
                cpu_targets,
                ..
            } => Some((*max_vcpus, scaling_mode.clone(), cpu_targets.clone())),
            _ => None,
        };
        if scaling_of(&have.resource.spec) != scaling_of(&want.spec) {
            self.provider_write_slot().await;
            self.client
                .update_capacity_provider()
                .capacity_provider_name(name)
                .capacity_provider_scaling_config(scaling_config(&want.spec)?)
                .send()
                .await
                .map_err(|e| AwsError::new("lambda", "UpdateCapacityProvider", name, e))?;
            progress(format!("waiting for capacity provider {name} to be Active"));
            self.wait_provider_active(name).await?;
        }
        self.retag(&have.id, &have.resource.tags, &want.tags).await
    }

    /// Deletes a provider and waits until it is gone: its instances are terminated then, and
    /// only then may its subnets and security groups go. A provider still used by a function
    /// version is a conflict, which the engine retries.
    pub async fn delete_provider(
        &self,
        have: &Observed,
        progress: Progress<'_>,
    ) -> Result<(), AwsError> {
        let Spec::CapacityProvider { name, .. } = &have.resource.spec else {
            return Err(not_a(
                "capacity provider",
                &have.resource,
                "DeleteCapacityProvider",
            ));
        };
        self.provider_write_slot().await;
        let result = self
            .client
            .delete_capacity_provider()
            .capacity_provider_name(name)
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "DeleteCapacityProvider", name, e));
        if AwsError::unless_gone(result)?.is_none() {
            return Ok(());
        }
        progress(format!(
            "waiting for capacity provider {name} to be gone (its instances are terminated first)"
        ));
        poll_from(
            PROVIDER_CALL_SPACING,
            PROVIDER_DELETE_TIMEOUT,
            name,
            "the capacity provider to be deleted",
            || async {
                let out = self
                    .client
                    .get_capacity_provider()
                    .capacity_provider_name(name)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("lambda", "GetCapacityProvider", name, e));
                match out {
                    Err(e) if e.is_not_found() => Poll::Done(()),
                    Err(e) => Poll::Failed(e),
                    Ok(_) => Poll::Pending,
                }
            },
        )
        .await
    }

    async fn retag(
        &self,
        arn: &str,
        have: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let (set, remove) = super::ec2::tag_changes(have, want);
        if !set.is_empty() {
            self.client
                .tag_resource()
                .resource(arn)
                .set_tags(Some(
                    set.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| AwsError::new("lambda", "TagResource", arn, e))?;
        }
        if !remove.is_empty() {
            self.client
                .untag_resource()
                .resource(arn)
                .set_tag_keys(Some(remove.iter().map(|k| k.to_string()).collect()))
                .send()
                .await
                .map_err(|e| AwsError::new("lambda", "UntagResource", arn, e))?;
        }
        Ok(())
    }

    // ---- functions ----

    /// Creates a function, waits for it, and for LMI publishes it, sets its scaling and waits
    /// for the published version to be Active. Returns its ARN.
    pub async fn create_function(
        &self,
        resource: &Resource,
        zip: &[u8],
        resolve: Resolve<'_>,
        progress: Progress<'_>,
    ) -> Result<String, AwsError> {
        let Spec::Function {
            name,
            runtime,
            handler,
            role,
            memory_mb,
            timeout_s,
            environment,
            architecture,
            tracing,
            ..
        } = &resource.spec
        else {
            return Err(not_a("function", resource, "CreateFunction"));
        };
        let role = resolve(role)?;
        let provider = provider_config(&resource.spec, resolve)?;
        let out = self
            .retry_role(progress, || async {
                self.client
                    .create_function()
                    .function_name(name)
                    .runtime(Runtime::from(runtime.as_str()))
                    .role(&role)
                    .handler(handler)
                    .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
                    .memory_size(*memory_mb as i32)
                    .timeout(*timeout_s as i32)
                    .environment(environment_of(environment))
                    .architectures(Architecture::from(architecture.as_str()))
                    .tracing_config(tracing_of(*tracing))
                    .set_capacity_provider_config(provider.clone())
                    .set_tags(Some(
                        resource
                            .tags
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("lambda", "CreateFunction", name, e))
            })
            .await?;
        let arn = out.function_arn().unwrap_or_default().to_string();
        progress(format!("waiting for function {name} to be Active"));
        self.wait_function_ready(name).await?;
        self.publish_if_lmi(&resource.spec, None, true, progress)
            .await?;
        Ok(arn)
    }

    /// Updates configuration and code as the fields ask, each followed by a wait for
    /// LastUpdateStatus, then (LMI) publishes and waits for the version.
    pub async fn update_function(
        &self,
        have: &Observed,
        want: &Resource,
        zip: Option<&[u8]>,
        resolve: Resolve<'_>,
        progress: Progress<'_>,
    ) -> Result<(), AwsError> {
        let (
            Spec::Function {
                runtime: r0,
                handler: h0,
                role: role0,
                memory_mb: m0,
                timeout_s: t0,
                environment: e0,
                architecture: a0,
                tracing: tr0,
                code_sha256: c0,
                per_environment_max_concurrency: p0,
                memory_gib_per_vcpu: g0,
                min_environments: min0,
                max_environments: max0,
                publish: pub0,
                ..
            },
            Spec::Function {
                name,
                runtime,
                handler,
                role,
                memory_mb,
                timeout_s,
                environment,
                architecture,
                tracing,
                code_sha256,
                per_environment_max_concurrency,
                memory_gib_per_vcpu,
                min_environments,
                max_environments,
                publish,
                ..
            },
        ) = (&have.resource.spec, &want.spec)
        else {
            return Err(not_a("function", want, "UpdateFunctionConfiguration"));
        };
        let config_changed = (r0, h0, m0, t0, e0, tr0, p0, g0)
            != (
                runtime,
                handler,
                memory_mb,
                timeout_s,
                environment,
                tracing,
                per_environment_max_concurrency,
                memory_gib_per_vcpu,
            )
            || match have.parts.get("role") {
                Some(arn) => *arn != resolve(role)?,
                None => role0 != role,
            };
        // Architectures is a parameter of UpdateFunctionCode, not of the configuration.
        let code_changed = c0 != code_sha256 || a0 != architecture;
        if config_changed || code_changed {
            self.wait_function_ready(name).await?;
        }
        if config_changed {
            self.client
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(runtime.as_str()))
                .role(resolve(role)?)
                .handler(handler)
                .memory_size(*memory_mb as i32)
                .timeout(*timeout_s as i32)
                .environment(environment_of(environment))
                .tracing_config(tracing_of(*tracing))
                .set_capacity_provider_config(provider_config(&want.spec, resolve)?)
                .send()
                .await
                .map_err(|e| AwsError::new("lambda", "UpdateFunctionConfiguration", name, e))?;
            progress(format!("waiting for the configuration update of {name}"));
            self.wait_function_ready(name).await?;
        }
        if code_changed {
            let Some(zip) = zip else {
                return Err(AwsError::lmi(
                    "lambda",
                    "UpdateFunctionCode",
                    name,
                    "no code was packaged for this function",
                ));
            };
            self.client
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .architectures(Architecture::from(architecture.as_str()))
                .send()
                .await
                .map_err(|e| AwsError::new("lambda", "UpdateFunctionCode", name, e))?;
            progress(format!("waiting for the code update of {name}"));
            self.wait_function_ready(name).await?;
        }
        let republish = config_changed || code_changed || pub0 != publish;
        let rescale = (min0, max0) != (min_environments, max_environments);
        if republish || rescale {
            self.publish_if_lmi(
                &want.spec,
                have.parts.get("qualifier").map(String::as_str),
                republish,
                progress,
            )
            .await?;
        }
        self.retag(&have.id, &have.resource.tags, &want.tags).await
    }

    /// For an LMI function: publishes (when `publish`) or reuses `qualifier`, puts the
    /// scaling config on it, and waits for the version to be Active.
    async fn publish_if_lmi(
        &self,
        spec: &Spec,
        qualifier: Option<&str>,
        publish: bool,
        progress: Progress<'_>,
    ) -> Result<(), AwsError> {
        let Spec::Function {
            name,
            capacity_provider: Some(_),
            min_environments,
            max_environments,
            publish: target,
            ..
        } = spec
        else {
            return Ok(());
        };
        let version = match (publish, qualifier) {
            (false, Some(q)) => q.to_string(),
            _ => {
                let latest = target.as_deref() != Some("version");
                let out = self
                    .client
                    .publish_version()
                    .function_name(name)
                    .set_publish_to(
                        latest.then_some(FunctionVersionLatestPublished::LatestPublished),
                    )
                    .send()
                    .await
                    .map_err(|e| AwsError::new("lambda", "PublishVersion", name, e))?;
                out.version()
                    .map(str::to_string)
                    .unwrap_or_else(|| LATEST_PUBLISHED.to_string())
            }
        };
        self.client
            .put_function_scaling_config()
            .function_name(name)
            .qualifier(&version)
            .function_scaling_config(
                FunctionScalingConfig::builder()
                    .set_min_execution_environments(min_environments.map(|m| m as i32))
                    .set_max_execution_environments(max_environments.map(|m| m as i32))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                AwsError::new(
                    "lambda",
                    "PutFunctionScalingConfig",
                    format!("{name}:{version}"),
                    e,
                )
            })?;
        progress(format!(
            "waiting for version {version} of {name} to be Active (instances and execution environments start now)"
        ));
        self.wait_version_active(name, &version).await
    }

    /// The state fields of `$LATEST` or a version, copied into a `FunctionConfiguration` so
    /// every waiter reads one type.
    async fn configuration(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfiguration, AwsError> {
        let out = self
            .client
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "GetFunctionConfiguration", name, e))?;
        Ok(FunctionConfiguration::builder()
            .set_state(out.state().cloned())
            .set_state_reason(out.state_reason().map(str::to_string))
            .set_state_reason_code(out.state_reason_code().cloned())
            .set_last_update_status(out.last_update_status().cloned())
            .set_last_update_status_reason(out.last_update_status_reason().map(str::to_string))
            .build())
    }

    /// A version's state (`Active`, `Pending`, `Inactive`, `Failed`) and AWS's reason, to tell
    /// whether it can be invoked.
    pub async fn state(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(String, Option<String>), AwsError> {
        let c = self.configuration(name, qualifier).await?;
        Ok((
            c.state().map_or("Active", |s| s.as_str()).to_string(),
            c.state_reason().map(str::to_string),
        ))
    }

    /// Makes `$LATEST` start new execution environments, so that its next invoke is a cold
    /// start: AWS provisions new ones after any configuration update. The description is the
    /// one field lmi doesn't manage, so this is no drift for `plan`.
    pub async fn renew_environments(&self, name: &str, note: &str) -> Result<(), AwsError> {
        self.wait_function_ready(name).await?;
        self.client
            .update_function_configuration()
            .function_name(name)
            .description(note)
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "UpdateFunctionConfiguration", name, e))?;
        self.wait_function_ready(name).await
    }

    /// Waits until `$LATEST` is out of Pending and no update is in progress (lambroll waits
    /// like this before and after every update).
    async fn wait_function_ready(&self, name: &str) -> Result<(), AwsError> {
        poll(
            FUNCTION_TIMEOUT,
            name,
            "the function to be ready",
            || async {
                let c = match self.configuration(name, None).await {
                    Ok(c) => c,
                    Err(e) => return Poll::Failed(e),
                };
                if c.state() == Some(&State::Failed) {
                    return Poll::Failed(AwsError::lmi(
                        "lambda",
                        "GetFunctionConfiguration",
                        name,
                        format!(
                            "the function is Failed: {}",
                            c.state_reason().unwrap_or("no reason given")
                        ),
                    ));
                }
                if c.last_update_status() == Some(&LastUpdateStatus::Failed) {
                    return Poll::Failed(AwsError::lmi(
                        "lambda",
                        "GetFunctionConfiguration",
                        name,
                        format!(
                            "the last update failed: {}",
                            c.last_update_status_reason().unwrap_or("no reason given")
                        ),
                    ));
                }
                match (c.state(), c.last_update_status()) {
                    (Some(State::Pending), _) | (_, Some(LastUpdateStatus::InProgress)) => {
                        Poll::Pending
                    }
                    _ => Poll::Done(()),
                }
            },
        )
        .await
    }

    /// Waits for a published version to be Active; on Failed, says why and what to do.
    async fn wait_version_active(&self, name: &str, version: &str) -> Result<(), AwsError> {
        let at = format!("{name}:{version}");
        poll(
            VERSION_TIMEOUT,
            &at,
            "the published version to be Active",
            || async {
                let c = match self.configuration(name, Some(version)).await {
                    Ok(c) => c,
                    Err(e) => return Poll::Failed(e),
                };
                match c.state() {
                    Some(State::Active) => Poll::Done(()),
                    Some(State::Failed) => {
                        let code = c.state_reason_code().map_or("", |c| c.as_str());
                        Poll::Failed(AwsError {
                            code: Some(code.to_string()).filter(|c| !c.is_empty()),
                            ..AwsError::lmi(
                                "lambda",
                                "PublishVersion",
                                at.clone(),
                                format!(
                                    "version {version} went to Failed: {}. Hint: {}",
                                    c.state_reason().unwrap_or("no reason given"),
                                    failure_hint(code)
                                ),
                            )
                        })
                    }
                    _ => Poll::Pending,
                }
            },
        )
        .await
    }

    /// Deletes a function with all its versions, and waits until it is gone: an LMI function's
    /// delete is asynchronous, and its provider can't be deleted while a version holds it.
    pub async fn delete_function(
        &self,
        have: &Observed,
        progress: Progress<'_>,
    ) -> Result<(), AwsError> {
        let Spec::Function { name, .. } = &have.resource.spec else {
            return Err(not_a("function", &have.resource, "DeleteFunction"));
        };
        let result = self
            .client
            .delete_function()
            .function_name(name)
            .send()
            .await
            .map_err(|e| AwsError::new("lambda", "DeleteFunction", name, e));
        if AwsError::unless_gone(result)?.is_none() {
            return Ok(());
        }
        progress(format!(
            "waiting for function {name} and its versions to be gone"
        ));
        poll(
            FUNCTION_TIMEOUT,
            name,
            "the function to be deleted",
            || async {
                match self.configuration(name, None).await {
                    Err(e) if e.is_not_found() => Poll::Done(()),
                    Err(e) => Poll::Failed(e),
                    Ok(_) => Poll::Pending,
                }
            },
        )
        .await
    }
}

fn scaling_config(spec: &Spec) -> Result<CapacityProviderScalingConfig, AwsError> {
    let Spec::CapacityProvider {
        name,
        max_vcpus,
        scaling_mode,
        cpu_targets,
        ..
    } = spec
    else {
        return Ok(CapacityProviderScalingConfig::builder().build());
    };
    let policies = cpu_targets
        .iter()
        .map(|t| {
            TargetTrackingScalingPolicy::builder()
                .predefined_metric_type(
                    CapacityProviderPredefinedMetricType::LambdaCapacityProviderAverageCpuUtilization,
                )
                .target_value(t.parse::<f64>().unwrap_or_default())
                .build()
                .map_err(|e| AwsError::lmi("lambda", "CreateCapacityProvider", name, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CapacityProviderScalingConfig::builder()
        .max_v_cpu_count(*max_vcpus as i32)
        .scaling_mode(CapacityProviderScalingMode::from(scaling_mode.as_str()))
        .set_scaling_policies((!policies.is_empty()).then_some(policies))
        .build())
}

fn provider_config(
    spec: &Spec,
    resolve: Resolve<'_>,
) -> Result<Option<CapacityProviderConfig>, AwsError> {
    let Spec::Function {
        name,
        capacity_provider: Some(provider),
        per_environment_max_concurrency,
        memory_gib_per_vcpu,
        ..
    } = spec
    else {
        return Ok(None);
    };
    let inner = LambdaManagedInstancesCapacityProviderConfig::builder()
        .capacity_provider_arn(resolve(provider)?)
        .set_per_execution_environment_max_concurrency(
            per_environment_max_concurrency.map(|c| c as i32),
        )
        .set_execution_environment_memory_gib_per_v_cpu(memory_gib_per_vcpu.map(f64::from))
        .build()
        .map_err(|e| AwsError::lmi("lambda", "CreateFunction", name, e.to_string()))?;
    Ok(Some(
        CapacityProviderConfig::builder()
            .lambda_managed_instances_capacity_provider_config(inner)
            .build(),
    ))
}

fn environment_of(vars: &BTreeMap<String, String>) -> Environment {
    Environment::builder()
        .set_variables(Some(
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ))
        .build()
}

fn tracing_of(active: bool) -> TracingConfig {
    TracingConfig::builder()
        .mode(if active {
            TracingMode::Active
        } else {
            TracingMode::PassThrough
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_versions_get_a_hint_that_names_the_fix() {
        assert!(failure_hint("CapacityProviderScalingLimitExceeded").contains("max_vcpus"));
        assert!(failure_hint("FunctionError.InitTimeout").contains("logs"));
        assert!(failure_hint("SomethingNew").contains("StateReason"));
    }
}
