//! What a validated stack asks for, as resources: the network and the IAM roles. Pure: the
//! region's availability zones are an input, read from AWS by the caller.

use std::collections::BTreeMap;

use super::resource::{Address, EndpointKind, Kind, Peer, Ref, Resource, Route, Rule, Spec};
use crate::model::{
    Egress, ManagedNetwork, Network, RESOURCE_TAG, Role, STACK_TAG, Stack, aws_name,
};

/// AWS facts the desired state depends on.
pub struct Context<'a> {
    pub region: &'a str,
    /// Zone names to place subnets in, at least as many as the network's `azs`.
    pub availability_zones: &'a [String],
}

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
    out.resources
}

struct Builder<'a> {
    stack: &'a Stack,
    resources: Vec<Resource>,
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

    /// The capacity provider's security group: HTTPS out (telemetry, AWS APIs), nothing in.
    fn instances_security_group(&mut self, vpc: Ref) -> Address {
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

/// Tags as a sorted map, dropping AWS's own `aws:` tags, which nobody can set or remove.
pub fn comparable_tags(
    tags: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}
