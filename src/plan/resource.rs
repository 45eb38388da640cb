//! The resources lmi manages, in one vocabulary for both sides of a diff: what lmi.toml asks for
//! (desired) and what AWS has (observed). References between resources are logical addresses,
//! so the two sides compare field by field.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The kinds of resource, in the order a person reads a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Role,
    Vpc,
    InternetGateway,
    Subnet,
    ElasticIp,
    NatGateway,
    RouteTable,
    SecurityGroup,
    VpcEndpoint,
    CapacityProvider,
    Function,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Role,
        Kind::Vpc,
        Kind::InternetGateway,
        Kind::Subnet,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::VpcEndpoint,
        Kind::CapacityProvider,
        Kind::Function,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Vpc => "vpc",
            Kind::InternetGateway => "internet_gateway",
            Kind::Subnet => "subnet",
            Kind::ElasticIp => "elastic_ip",
            Kind::NatGateway => "nat_gateway",
            Kind::RouteTable => "route_table",
            Kind::SecurityGroup => "security_group",
            Kind::VpcEndpoint => "vpc_endpoint",
            Kind::CapacityProvider => "capacity_provider",
            Kind::Function => "function",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A resource's logical address, `kind.name` (`subnet.private-a`), stored in its `lmi:resource`
/// tag. Stable across applies: it is how lmi recognises its own resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Address {
            kind,
            name: name.into(),
        }
    }

    /// Parses the value of an `lmi:resource` tag.
    pub fn parse(s: &str) -> Option<Address> {
        let (kind, name) = s.split_once('.')?;
        Some(Address::new(Kind::parse(kind)?, name))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

/// A reference from one resource to another: one of the stack's, or an AWS id lmi does not own
/// (an existing subnet, the VPC's main route table, a NAT someone else made).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Ref {
    Resource(Address),
    External(String),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Resource(a) => a.fmt(f),
            Ref::External(id) => f.write_str(id),
        }
    }
}

/// A route in a route table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Route {
    pub destination: String,
    pub target: Ref,
}

/// A security group rule: TCP on one port, to or from a CIDR or another group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Rule {
    pub port: u16,
    pub peer: Peer,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(String),
    Group(Ref),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EndpointKind {
    /// An ENI per subnet, private DNS on, guarded by security groups.
    Interface {
        subnets: Vec<Ref>,
        security_groups: Vec<Ref>,
    },
    /// Routes in route tables (S3, DynamoDB).
    Gateway { route_tables: Vec<Ref> },
}

/// The fields lmi manages for each kind. Lists are kept sorted so that equal means equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Spec {
    Role {
        /// The IAM role name; fixed at creation.
        name: String,
        /// The service that may assume it (`lambda.amazonaws.com`).
        trusted_service: String,
        /// Managed policy ARNs, sorted.
        policies: Vec<String>,
    },
    Vpc {
        cidr: String,
        /// DNS support and DNS hostnames, both on: interface endpoints with private DNS need
        /// them. Observed, so that a VPC whose create was cut short gets them on the next apply.
        dns: bool,
    },
    InternetGateway {
        vpc: Ref,
    },
    Subnet {
        vpc: Ref,
        cidr: String,
        availability_zone: String,
    },
    ElasticIp,
    NatGateway {
        subnet: Ref,
        elastic_ip: Ref,
    },
    RouteTable {
        vpc: Ref,
        /// Routes lmi manages (not `local`, not the prefix-list routes gateway endpoints add).
        routes: Vec<Route>,
        /// Subnets associated with the table, sorted.
        subnets: Vec<Ref>,
    },
    SecurityGroup {
        vpc: Ref,
        description: String,
        ingress: Vec<Rule>,
        egress: Vec<Rule>,
    },
    VpcEndpoint {
        vpc: Ref,
        /// Full service name, `com.amazonaws.REGION.logs`.
        service: String,
        endpoint: EndpointKind,
    },
    /// AWS defaults are filled in (see `plan::desired::normalize`), so an unset field and
    /// AWS's default compare equal.
    CapacityProvider {
        /// The AWS name, `{stack}-{name}`; fixed at creation.
        name: String,
        subnets: Vec<Ref>,
        security_groups: Vec<Ref>,
        operator_role: Ref,
        architecture: String,
        /// Sorted; at most one of the two lists is non-empty.
        allowed_instance_types: Vec<String>,
        excluded_instance_types: Vec<String>,
        max_vcpus: u32,
        /// `Auto` or `Manual`.
        scaling_mode: String,
        /// Target CPU utilizations of the Manual policies, formatted (`f64` has no `Eq`).
        cpu_targets: Vec<String>,
        kms_key_arn: Option<String>,
    },
    Function {
        /// The AWS name, `{stack}-{name}`; fixed at creation.
        name: String,
        runtime: String,
        handler: String,
        role: Ref,
        memory_mb: u32,
        timeout_s: u32,
        environment: BTreeMap<String, String>,
        architecture: String,
        tracing: bool,
        /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
        code_sha256: String,
        /// `None` for a default function; set for LMI. Changing it either way is a replace.
        capacity_provider: Option<Ref>,
        /// The LMI fields; all `None` for a default function.
        per_environment_max_concurrency: Option<u32>,
        memory_gib_per_vcpu: Option<u8>,
        min_environments: Option<u32>,
        max_environments: Option<u32>,
        /// `latest_published` or `version`; observed from the versions that exist, `None`
        /// when nothing is published yet.
        publish: Option<String>,
    },
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Role { .. } => Kind::Role,
            Spec::Vpc { .. } => Kind::Vpc,
            Spec::InternetGateway { .. } => Kind::InternetGateway,
            Spec::Subnet { .. } => Kind::Subnet,
            Spec::ElasticIp => Kind::ElasticIp,
            Spec::NatGateway { .. } => Kind::NatGateway,
            Spec::RouteTable { .. } => Kind::RouteTable,
            Spec::SecurityGroup { .. } => Kind::SecurityGroup,
            Spec::VpcEndpoint { .. } => Kind::VpcEndpoint,
            Spec::CapacityProvider { .. } => Kind::CapacityProvider,
            Spec::Function { .. } => Kind::Function,
        }
    }

    /// Calls `f` on every reference, to rewrite AWS ids as addresses after discovery.
    pub fn map_refs(&mut self, mut f: impl FnMut(&mut Ref)) {
        match self {
            Spec::Role { .. } | Spec::Vpc { .. } | Spec::ElasticIp => {}
            Spec::InternetGateway { vpc } | Spec::Subnet { vpc, .. } => f(vpc),
            Spec::NatGateway { subnet, elastic_ip } => {
                f(subnet);
                f(elastic_ip);
            }
            Spec::RouteTable {
                vpc,
                routes,
                subnets,
            } => {
                f(vpc);
                routes.iter_mut().for_each(|r| f(&mut r.target));
                subnets.iter_mut().for_each(&mut f);
                routes.sort();
                subnets.sort();
            }
            Spec::SecurityGroup {
                vpc,
                ingress,
                egress,
                ..
            } => {
                f(vpc);
                for rule in ingress.iter_mut().chain(egress.iter_mut()) {
                    if let Peer::Group(g) = &mut rule.peer {
                        f(g);
                    }
                }
                ingress.sort();
                egress.sort();
            }
            Spec::VpcEndpoint { vpc, endpoint, .. } => {
                f(vpc);
                match endpoint {
                    EndpointKind::Interface {
                        subnets,
                        security_groups,
                    } => {
                        subnets
                            .iter_mut()
                            .chain(security_groups.iter_mut())
                            .for_each(&mut f);
                        subnets.sort();
                        security_groups.sort();
                    }
                    EndpointKind::Gateway { route_tables } => {
                        route_tables.iter_mut().for_each(&mut f);
                        route_tables.sort();
                    }
                }
            }
            Spec::CapacityProvider {
                subnets,
                security_groups,
                operator_role,
                ..
            } => {
                subnets
                    .iter_mut()
                    .chain(security_groups.iter_mut())
                    .for_each(&mut f);
                f(operator_role);
                subnets.sort();
                security_groups.sort();
            }
            Spec::Function {
                role,
                capacity_provider,
                ..
            } => {
                f(role);
                if let Some(cp) = capacity_provider {
                    f(cp);
                }
            }
        }
    }

    /// Every resource of the stack this one refers to: what must exist before it.
    pub fn references(&self) -> Vec<&Address> {
        let mut refs: Vec<&Ref> = Vec::new();
        match self {
            Spec::Role { .. } | Spec::Vpc { .. } | Spec::ElasticIp => {}
            Spec::InternetGateway { vpc } => refs.push(vpc),
            Spec::Subnet { vpc, .. } => refs.push(vpc),
            Spec::NatGateway { subnet, elastic_ip } => refs.extend([subnet, elastic_ip]),
            Spec::RouteTable {
                vpc,
                routes,
                subnets,
            } => {
                refs.push(vpc);
                refs.extend(routes.iter().map(|r| &r.target));
                refs.extend(subnets);
            }
            Spec::SecurityGroup {
                vpc,
                ingress,
                egress,
                ..
            } => {
                refs.push(vpc);
                for rule in ingress.iter().chain(egress) {
                    if let Peer::Group(g) = &rule.peer {
                        refs.push(g);
                    }
                }
            }
            Spec::VpcEndpoint { vpc, endpoint, .. } => {
                refs.push(vpc);
                match endpoint {
                    EndpointKind::Interface {
                        subnets,
                        security_groups,
                    } => refs.extend(subnets.iter().chain(security_groups)),
                    EndpointKind::Gateway { route_tables } => refs.extend(route_tables),
                }
            }
            Spec::CapacityProvider {
                subnets,
                security_groups,
                operator_role,
                ..
            } => {
                refs.extend(subnets.iter().chain(security_groups));
                refs.push(operator_role);
            }
            Spec::Function {
                role,
                capacity_provider,
                ..
            } => {
                refs.push(role);
                refs.extend(capacity_provider);
            }
        }
        refs.into_iter()
            .filter_map(|r| match r {
                Ref::Resource(a) => Some(a),
                Ref::External(_) => None,
            })
            .collect()
    }
}

/// A resource as lmi wants it or as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub address: Address,
    pub spec: Spec,
    /// Every tag, lmi's own included. AWS-reserved `aws:` tags are never compared.
    pub tags: BTreeMap<String, String>,
}

/// A resource AWS has, with its id.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub id: String,
    #[serde(flatten)]
    pub resource: Resource,
    /// Ids of parts that are not resources of their own but are needed to change them:
    /// a route table's association ids by subnet id, an internet gateway's attached VPC.
    #[serde(skip)]
    pub parts: BTreeMap<String, String>,
}
