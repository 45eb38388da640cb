//! What a validated stack asks for, as resources: the network, the IAM roles, the capacity
//! providers and the functions. Pure: the region's availability zones and the code's hashes
//! are inputs, read from AWS and the packager by the caller.

use std::collections::BTreeMap;

use super::resource::{Address, EndpointKind, Kind, Peer, Ref, Resource, Route, Rule, Spec};
use crate::model::{
    CREATED_TAG, Compute, Egress, InstanceTypes, ManagedNetwork, Network, Publish, REGION_TAG,
    RESOURCE_TAG, Role, Runtime, STACK_TAG, Scaling, Stack, aws_name,
};

/// AWS facts the desired state depends on.
pub struct Context<'a> {
    pub region: &'a str,
    /// Zone names to place subnets in, at least as many as the network's `azs`.
    pub availability_zones: &'a [String],
    /// Each function's code hash (`CodeSha256`), by function name.
    pub code: &'a BTreeMap<String, String>,
    /// This run's time (RFC 3339), the `lmi:created` tag of what it creates.
    pub created: &'a str,
}

/// AWS's MaxVCpuCount when none is given (LMI-FACTS, capacity provider API).
pub const DEFAULT_MAX_VCPUS: u32 = 400;
/// AWS's MinExecutionEnvironments when none is given (LMI-FACTS).
pub const DEFAULT_MIN_ENVIRONMENTS: u32 = 3;
/// AWS's ExecutionEnvironmentMemoryGiBPerVCpu when none is given (LMI-FACTS).
pub const DEFAULT_GIB_PER_VCPU: u8 = 2;

/// The IAM path of every role of a stack: it lets discovery list exactly the stack's roles with
/// a server-side filter (IAM has no tag filter on ListRoles).
pub fn role_path(stack: &str) -> String {
    format!("/lmi/{stack}/")
}

/// `aws`, `aws-cn` or `aws-us-gov`, for ARNs of AWS managed policies.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Letter of the n-th availability zone used, for readable names (`subnet.private-a`).
fn az_letter(index: usize) -> char {
    (b'a' + index as u8) as char
}

pub const INSTANCES_SG: &str = "instances";
pub const ENDPOINTS_SG: &str = "endpoints";

/// Every resource the stack needs, in no particular order.
pub fn desired(stack: &Stack, cx: &Context) -> Vec<Resource> {
    let mut out = Builder {
        stack,
        resources: Vec::new(),
        private_subnets: Vec::new(),
        instances_sg: None,
    };
    out.roles(cx);
    match &stack.network {
        Some(Network::Managed(net)) => out.managed_network(net, cx),
        // With no security group given, the provider's instances get one of lmi's own, in the
        // user's VPC: created and deleted by lmi, nothing of the user's is touched.
        Some(Network::Existing(net))
            if net.security_group_ids.is_empty() && !stack.capacity_providers.is_empty() =>
        {
            out.instances_security_group(Ref::External(net.vpc_id.clone()));
        }
        Some(Network::Existing(_)) | None => {}
    }
    out.capacity_providers();
    out.functions(cx);
    for resource in &mut out.resources {
        normalize(&mut resource.spec);
        resource
            .tags
            .insert(CREATED_TAG.into(), cx.created.to_string());
        if resource.address.kind == Kind::Role {
            resource
                .tags
                .insert(REGION_TAG.into(), cx.region.to_string());
        }
    }
    out.resources
}

/// Fills in what AWS assumes when a field is unset, so that the desired and the observed side
/// compare equal when they mean the same. Called on both sides.
pub fn normalize(spec: &mut Spec) {
    if let Spec::Function {
        runtime,
        memory_mb,
        capacity_provider: Some(_),
        per_environment_max_concurrency,
        memory_gib_per_vcpu,
        min_environments,
        ..
    } = spec
    {
        let ratio = *memory_gib_per_vcpu.get_or_insert(DEFAULT_GIB_PER_VCPU);
        min_environments.get_or_insert(DEFAULT_MIN_ENVIRONMENTS);
        if per_environment_max_concurrency.is_none()
            && let Some(runtime) = Runtime::parse(runtime)
        {
            // The runtime's default per vCPU, times the vCPUs the memory buys (DG
            // lambda-managed-instances-scaling).
            let vcpus = (*memory_mb / (u32::from(ratio) * 1024)).max(1);
            *per_environment_max_concurrency = Some(runtime.default_concurrency_per_vcpu() * vcpus);
        }
    }
}

struct Builder<'a> {
    stack: &'a Stack,
    resources: Vec<Resource>,
    /// Where capacity providers place instances: the managed network's private subnets.
    private_subnets: Vec<Ref>,
    /// lmi's security group for the instances, when it makes one.
    instances_sg: Option<Ref>,
}

impl Builder<'_> {
    fn add(&mut self, kind: Kind, name: &str, spec: Spec) -> Address {
        let address = Address::new(kind, name);
        let mut tags = self.stack.tags.clone();
        tags.insert(STACK_TAG.into(), self.stack.name.clone());
        tags.insert(RESOURCE_TAG.into(), address.to_string());
        if kind != Kind::Role {
            tags.insert("Name".into(), aws_name(&self.stack.name, name));
        }
        self.resources.push(Resource {
            address: address.clone(),
            spec,
            tags,
        });
        address
    }

    fn roles(&mut self, cx: &Context) {
        let arn = |policy: &str| format!("arn:{}:iam::aws:policy/{policy}", partition(cx.region));
        for function in &self.stack.functions {
            let Role::Create { name } = &function.role else {
                continue;
            };
            let mut policies = vec![arn("service-role/AWSLambdaBasicExecutionRole")];
            if function.tracing {
                policies.push(arn("AWSXRayDaemonWriteAccess"));
            }
            policies.sort();
            self.add(
                Kind::Role,
                &format!("function-{}", function.name),
                Spec::Role {
                    name: name.clone(),
                    trusted_service: "lambda.amazonaws.com".into(),
                    policies,
                },
            );
        }
        for provider in &self.stack.capacity_providers {
            let Role::Create { name } = &provider.operator_role else {
                continue;
            };
            self.add(
                Kind::Role,
                &format!("operator-{}", provider.name),
                Spec::Role {
                    name: name.clone(),
                    trusted_service: "lambda.amazonaws.com".into(),
                    policies: vec![arn("AWSLambdaManagedEC2ResourceOperator")],
                },
            );
        }
    }

    fn managed_network(&mut self, net: &ManagedNetwork, cx: &Context) {
        let vpc = Ref::Resource(self.add(
            Kind::Vpc,
            "main",
            Spec::Vpc {
                cidr: net.cidr.to_string(),
                dns: true,
            },
        ));
        let az = |i: usize| cx.availability_zones[i % cx.availability_zones.len()].clone();

        // Public side: only for NAT egress.
        let mut nats = Vec::new();
        if let Egress::Nat { per_az } = net.egress {
            let igw = self.add(
                Kind::InternetGateway,
                "main",
                Spec::InternetGateway { vpc: vpc.clone() },
            );
            let mut public = Vec::new();
            for (i, cidr) in net.public_subnets.iter().enumerate() {
                public.push(Ref::Resource(self.add(
                    Kind::Subnet,
                    &format!("public-{}", az_letter(i)),
                    Spec::Subnet {
                        vpc: vpc.clone(),
                        cidr: cidr.to_string(),
                        availability_zone: az(i),
                    },
                )));
            }
            public.sort();
            let nat_count = if per_az { net.public_subnets.len() } else { 1 };
            for (i, subnet) in public.iter().take(nat_count).enumerate() {
                let letter = az_letter(i);
                let eip = self.add(Kind::ElasticIp, &format!("nat-{letter}"), Spec::ElasticIp);
                nats.push(Ref::Resource(self.add(
                    Kind::NatGateway,
                    &letter.to_string(),
                    Spec::NatGateway {
                        subnet: subnet.clone(),
                        elastic_ip: Ref::Resource(eip),
                    },
                )));
            }
            self.add(
                Kind::RouteTable,
                "public",
                Spec::RouteTable {
                    vpc: vpc.clone(),
                    routes: vec![Route {
                        destination: "0.0.0.0/0".into(),
                        target: Ref::Resource(igw),
                    }],
                    subnets: public,
                },
            );
        }

        // Private side: where the capacity provider's instances run.
        let private: Vec<Ref> = net
            .private_subnets
            .iter()
            .enumerate()
            .map(|(i, cidr)| {
                Ref::Resource(self.add(
                    Kind::Subnet,
                    &format!("private-{}", az_letter(i)),
                    Spec::Subnet {
                        vpc: vpc.clone(),
                        cidr: cidr.to_string(),
                        availability_zone: az(i),
                    },
                ))
            })
            .collect();
        self.private_subnets = private.clone();
        let default_route = |target: &Ref| {
            vec![Route {
                destination: "0.0.0.0/0".into(),
                target: target.clone(),
            }]
        };
        let private_tables: Vec<Ref> = if nats.len() > 1 {
            // One NAT per AZ: each AZ's private subnet goes out through its own NAT.
            private
                .iter()
                .zip(&nats)
                .enumerate()
                .map(|(i, (subnet, nat))| {
                    Ref::Resource(self.add(
                        Kind::RouteTable,
                        &format!("private-{}", az_letter(i)),
                        Spec::RouteTable {
                            vpc: vpc.clone(),
                            routes: default_route(nat),
                            subnets: vec![subnet.clone()],
                        },
                    ))
                })
                .collect()
        } else {
            let mut subnets = private.clone();
            subnets.sort();
            vec![Ref::Resource(self.add(
                Kind::RouteTable,
                "private",
                Spec::RouteTable {
                    vpc: vpc.clone(),
                    routes: nats.first().map(default_route).unwrap_or_default(),
                    subnets,
                },
            ))]
        };

        let instances = (!self.stack.capacity_providers.is_empty())
            .then(|| self.instances_security_group(vpc.clone()));

        if !net.interface_endpoints.is_empty() {
            // Endpoints answer HTTPS from the instances (or, with no provider, the whole VPC).
            let peer = match &instances {
                Some(sg) => Peer::Group(Ref::Resource(sg.clone())),
                None => Peer::Cidr(net.cidr.to_string()),
            };
            let sg = self.add(
                Kind::SecurityGroup,
                ENDPOINTS_SG,
                Spec::SecurityGroup {
                    vpc: vpc.clone(),
                    description: format!("lmi {}: HTTPS to VPC endpoints", self.stack.name),
                    ingress: vec![Rule { port: 443, peer }],
                    egress: Vec::new(),
                },
            );
            let mut subnets = private.clone();
            subnets.sort();
            for service in &net.interface_endpoints {
                self.add(
                    Kind::VpcEndpoint,
                    &service.replace('.', "-"),
                    Spec::VpcEndpoint {
                        vpc: vpc.clone(),
                        service: format!("com.amazonaws.{}.{service}", cx.region),
                        endpoint: EndpointKind::Interface {
                            subnets: subnets.clone(),
                            security_groups: vec![Ref::Resource(sg.clone())],
                        },
                    },
                );
            }
        }
        for gateway in &net.gateway_endpoints {
            let mut route_tables = private_tables.clone();
            route_tables.sort();
            self.add(
                Kind::VpcEndpoint,
                gateway.service(),
                Spec::VpcEndpoint {
                    vpc: vpc.clone(),
                    service: format!("com.amazonaws.{}.{}", cx.region, gateway.service()),
                    endpoint: EndpointKind::Gateway { route_tables },
                },
            );
        }
    }

    fn capacity_providers(&mut self) {
        let (subnets, security_groups) = match &self.stack.network {
            Some(Network::Existing(net)) => {
                let groups: Vec<Ref> = if net.security_group_ids.is_empty() {
                    self.instances_sg.iter().cloned().collect()
                } else {
                    net.security_group_ids
                        .iter()
                        .map(|id| Ref::External(id.clone()))
                        .collect()
                };
                let subnets = net
                    .subnet_ids
                    .iter()
                    .map(|id| Ref::External(id.clone()))
                    .collect();
                (subnets, groups)
            }
            _ => (
                self.private_subnets.clone(),
                self.instances_sg.iter().cloned().collect(),
            ),
        };
        for provider in &self.stack.capacity_providers {
            let operator_role = match &provider.operator_role {
                Role::Create { .. } => Ref::Resource(Address::new(
                    Kind::Role,
                    format!("operator-{}", provider.name),
                )),
                Role::Existing { arn } => Ref::External(arn.clone()),
            };
            let sorted = |v: &Vec<String>| {
                let mut v = v.clone();
                v.sort();
                v
            };
            let (allowed, excluded) = match &provider.instance_types {
                InstanceTypes::Any => (Vec::new(), Vec::new()),
                InstanceTypes::Allowed(types) => (sorted(types), Vec::new()),
                InstanceTypes::Excluded(types) => (Vec::new(), sorted(types)),
            };
            let (scaling_mode, cpu_targets) = match &provider.scaling {
                Scaling::Auto => ("Auto", Vec::new()),
                Scaling::Manual { cpu_targets } => (
                    "Manual",
                    cpu_targets.iter().map(|t| format_target(*t)).collect(),
                ),
            };
            let mut subnets = subnets.clone();
            subnets.sort();
            let mut security_groups = security_groups.clone();
            security_groups.sort();
            self.add(
                Kind::CapacityProvider,
                &provider.name,
                Spec::CapacityProvider {
                    name: provider.aws_name.clone(),
                    subnets,
                    security_groups,
                    operator_role,
                    architecture: provider.architecture.as_str().into(),
                    allowed_instance_types: allowed,
                    excluded_instance_types: excluded,
                    max_vcpus: provider.max_vcpus.unwrap_or(DEFAULT_MAX_VCPUS),
                    scaling_mode: scaling_mode.into(),
                    cpu_targets,
                    kms_key_arn: provider.kms_key_arn.clone(),
                },
            );
        }
    }

    fn functions(&mut self, cx: &Context) {
        for function in &self.stack.functions {
            let role = match &function.role {
                Role::Create { .. } => Ref::Resource(Address::new(
                    Kind::Role,
                    format!("function-{}", function.name),
                )),
                Role::Existing { arn } => Ref::External(arn.clone()),
            };
            let managed = match &function.compute {
                Compute::Default => None,
                Compute::Managed(m) => Some(m),
            };
            self.add(
                Kind::Function,
                &function.name,
                Spec::Function {
                    name: function.aws_name.clone(),
                    runtime: function.runtime.as_str().into(),
                    handler: function.handler.clone(),
                    role,
                    memory_mb: function.memory_mb,
                    timeout_s: function.timeout_s,
                    environment: function.environment.clone(),
                    architecture: function.architecture.as_str().into(),
                    tracing: function.tracing,
                    code_sha256: cx.code.get(&function.name).cloned().unwrap_or_default(),
                    capacity_provider: managed.map(|m| {
                        Ref::Resource(Address::new(
                            Kind::CapacityProvider,
                            m.capacity_provider.clone(),
                        ))
                    }),
                    per_environment_max_concurrency: managed
                        .and_then(|m| m.per_environment_max_concurrency),
                    memory_gib_per_vcpu: managed.map(|m| m.memory_gib_per_vcpu),
                    min_environments: managed.and_then(|m| m.min_environments),
                    max_environments: managed.and_then(|m| m.max_environments),
                    publish: managed.map(|m| publish_name(m.publish).into()),
                },
            );
        }
    }

    /// The capacity provider's security group: HTTPS out (telemetry, AWS APIs), nothing in.
    fn instances_security_group(&mut self, vpc: Ref) -> Address {
        self.instances_sg = Some(Ref::Resource(Address::new(
            Kind::SecurityGroup,
            INSTANCES_SG,
        )));
        self.add(
            Kind::SecurityGroup,
            INSTANCES_SG,
            Spec::SecurityGroup {
                vpc,
                description: format!("lmi {}: capacity provider instances", self.stack.name),
                ingress: Vec::new(),
                egress: vec![Rule {
                    port: 443,
                    peer: Peer::Cidr("0.0.0.0/0".into()),
                }],
            },
        )
    }
}

/// How a publish target is spelled in a spec.
pub fn publish_name(publish: Publish) -> &'static str {
    match publish {
        Publish::LatestPublished => "latest_published",
        Publish::Version => "version",
    }
}

/// A target utilization as both sides spell it: `70`, `62.5`.
pub fn format_target(value: f64) -> String {
    format!("{value}")
}

/// Tags as a sorted map, dropping AWS's own `aws:` tags, which nobody can set or remove.
pub fn comparable_tags(
    tags: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::{Action, diff};

    fn cold_start() -> Stack {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cold-start");
        let text = std::fs::read_to_string(dir.join("lmi.toml")).unwrap();
        let loaded = crate::config::load_str("lmi.toml", &text, &dir, &|_| None);
        loaded.stack.expect("the example is valid")
    }

    fn resources(stack: &Stack) -> Vec<Resource> {
        let zones: Vec<String> = ["us-east-1a", "us-east-1b", "us-east-1c"]
            .map(String::from)
            .to_vec();
        let code = BTreeMap::from([
            ("lmi".to_string(), "SHA".to_string()),
            ("default".to_string(), "SHA".to_string()),
        ]);
        desired(
            stack,
            &Context {
                region: "us-east-1",
                availability_zones: &zones,
                code: &code,
                created: "2026-12-04T00:00:00Z",
            },
        )
    }

    fn find<'a>(resources: &'a [Resource], address: &str) -> &'a Resource {
        resources
            .iter()
            .find(|r| r.address.to_string() == address)
            .unwrap_or_else(|| panic!("no {address}"))
    }

    fn observed(resource: &Resource) -> crate::plan::Observed {
        crate::plan::Observed {
            id: format!("id-{}", resource.address),
            resource: resource.clone(),
            parts: BTreeMap::new(),
        }
    }

    #[test]
    fn the_provider_uses_the_private_subnets_the_instances_group_and_its_operator_role() {
        let wanted = resources(&cold_start());
        let Spec::CapacityProvider {
            subnets,
            security_groups,
            operator_role,
            max_vcpus,
            ..
        } = &find(&wanted, "capacity_provider.main").spec
        else {
            panic!("not a provider")
        };
        let names: Vec<String> = subnets.iter().map(Ref::to_string).collect();
        assert_eq!(
            names,
            ["subnet.private-a", "subnet.private-b", "subnet.private-c"]
        );
        assert_eq!(security_groups[0].to_string(), "security_group.instances");
        assert_eq!(operator_role.to_string(), "role.operator-main");
        assert_eq!(*max_vcpus, 12);
    }

    #[test]
    fn lmi_defaults_are_filled_so_aws_defaults_are_no_drift() {
        let wanted = resources(&cold_start());
        let Spec::Function {
            capacity_provider,
            per_environment_max_concurrency,
            memory_gib_per_vcpu,
            min_environments,
            max_environments,
            publish,
            ..
        } = &find(&wanted, "function.lmi").spec
        else {
            panic!("not a function")
        };
        assert_eq!(
            capacity_provider.as_ref().map(Ref::to_string).as_deref(),
            Some("capacity_provider.main")
        );
        // Node.js: 64 per vCPU; 2048 MB at 2 GiB per vCPU is one vCPU.
        assert_eq!(*per_environment_max_concurrency, Some(64));
        assert_eq!(*memory_gib_per_vcpu, Some(2));
        assert_eq!(*min_environments, Some(3));
        assert_eq!(*max_environments, None);
        assert_eq!(publish.as_deref(), Some("latest_published"));
        let Spec::Function {
            capacity_provider: None,
            per_environment_max_concurrency: None,
            ..
        } = &find(&wanted, "function.default").spec
        else {
            panic!("the default function has no LMI fields")
        };
    }

    #[test]
    fn a_resource_keeps_its_creation_time_and_it_is_never_drift() {
        let stack = cold_start();
        let wanted = resources(&stack);
        let mut have: Vec<_> = wanted.iter().map(observed).collect();
        for o in &mut have {
            o.resource
                .tags
                .insert(CREATED_TAG.into(), "2026-01-01T00:00:00Z".into());
        }
        // An older lmi made this one: no creation time, and none is added.
        have[0].resource.tags.remove(CREATED_TAG);
        let plan = diff(&stack.name, wanted.clone(), have);
        assert!(plan.is_empty(), "{plan:#?}");
        let create = diff(&stack.name, wanted, Vec::new());
        let tags = &create.changes[0].desired.as_ref().unwrap().tags;
        assert_eq!(tags[CREATED_TAG], "2026-12-04T00:00:00Z");
    }

    /// Each row: a change to an observed resource, and what the plan must do about it.
    #[test]
    fn provider_and_function_changes_update_or_replace_per_field() {
        let stack = cold_start();
        let wanted = resources(&stack);
        type Edit = fn(&mut Spec);
        let cases: Vec<(&str, Edit, Action, &str)> = vec![
            (
                "capacity_provider.main",
                |s| {
                    if let Spec::CapacityProvider { max_vcpus, .. } = s {
                        *max_vcpus = 400
                    }
                },
                Action::Update,
                "max_vcpus",
            ),
            (
                "capacity_provider.main",
                |s| {
                    if let Spec::CapacityProvider { subnets, .. } = s {
                        subnets.pop();
                    }
                },
                Action::Replace,
                "subnets",
            ),
            (
                "capacity_provider.main",
                |s| {
                    if let Spec::CapacityProvider { architecture, .. } = s {
                        *architecture = "arm64".into()
                    }
                },
                Action::Replace,
                "architecture",
            ),
            (
                "function.lmi",
                |s| {
                    if let Spec::Function { code_sha256, .. } = s {
                        *code_sha256 = "OLD".into()
                    }
                },
                Action::Update,
                "code_sha256",
            ),
            (
                "function.lmi",
                |s| {
                    if let Spec::Function { memory_mb, .. } = s {
                        *memory_mb = 4096
                    }
                },
                Action::Update,
                "memory_mb",
            ),
            (
                // Observed as a default function: moving it to LMI is a replace.
                "function.lmi",
                |s| {
                    if let Spec::Function {
                        capacity_provider, ..
                    } = s
                    {
                        *capacity_provider = None
                    }
                },
                Action::Replace,
                "capacity_provider",
            ),
        ];
        for (address, edit, action, field) in cases {
            let mut have: Vec<_> = wanted.iter().map(observed).collect();
            let target = have
                .iter_mut()
                .find(|o| o.resource.address.to_string() == address)
                .unwrap();
            edit(&mut target.resource.spec);
            let plan = diff(&stack.name, wanted.clone(), have);
            // A replaced provider also replaces its function (the next test); nothing else.
            let expected = if address.starts_with("capacity_provider") && action == Action::Replace
            {
                2
            } else {
                1
            };
            assert_eq!(plan.changes.len(), expected, "{address} {field}");
            let change = plan
                .changes
                .iter()
                .find(|c| c.address.to_string() == address)
                .unwrap();
            assert_eq!(change.action, action, "{address} {field}");
            assert!(
                change.fields.iter().any(|f| f.field == field),
                "{address} {field}: {:?}",
                change.fields
            );
        }
        // Converged: nothing to do.
        let have: Vec<_> = wanted.iter().map(observed).collect();
        assert!(diff(&stack.name, wanted.clone(), have).is_empty());
    }

    #[test]
    fn a_replaced_provider_replaces_its_functions() {
        let stack = cold_start();
        let wanted = resources(&stack);
        let mut have: Vec<_> = wanted.iter().map(observed).collect();
        for o in &mut have {
            if let Spec::CapacityProvider { kms_key_arn, .. } = &mut o.resource.spec {
                *kms_key_arn = Some("arn:aws:kms:us-east-1:1:key/old".into());
            }
        }
        let plan = diff(&stack.name, wanted, have);
        let replaced: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Replace)
            .map(|c| c.address.to_string())
            .collect();
        assert_eq!(replaced, ["capacity_provider.main", "function.lmi"]);
    }
}
