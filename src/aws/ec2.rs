//! EC2: the network. Discovery by the stack tag (server-side filters, paginated), and the
//! create, update and delete calls of each network kind, with their waits.
//!
//! Speaks `plan::resource` types with AWS ids as `Ref::External`; the engine maps them to
//! addresses. Never touches a resource without the stack's tag: every id it changes comes from
//! discovery or from its own create.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState,
    ResourceType, Tag, TagSpecification, UserIdGroupPair, VpcAttributeName, VpcEndpointType,
};

use super::error::AwsError;
use super::wait::{Poll, poll};
use crate::model::STACK_TAG;
use crate::plan::resource::{
    Address, EndpointKind, Observed, Peer, Ref, Resource, Route, Rule, Spec,
};

/// Maps a reference in a desired spec to the AWS id it stands for.
pub type Resolve<'a> = &'a (dyn Fn(&Ref) -> Result<String, AwsError> + Send + Sync);

/// NAT gateways and endpoints usually take 1–3 minutes; give AWS a generous margin.
const READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
}

fn tag_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{STACK_TAG}"))
        .values(stack)
        .build()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::plan::desired::comparable_tags(tags.iter().map(|t| {
        (
            t.key().unwrap_or_default().to_string(),
            t.value().unwrap_or_default().to_string(),
        )
    }))
}

fn spec_tags(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// An observed resource, if its `lmi:resource` tag names an address.
fn observed(
    id: &str,
    tags: &[Tag],
    spec: Spec,
    parts: BTreeMap<String, String>,
) -> Option<Observed> {
    let tags = tags_of(tags);
    let address = Address::parse(tags.get(crate::model::RESOURCE_TAG)?)?;
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

fn ext(id: Option<&str>) -> Ref {
    Ref::External(id.unwrap_or_default().to_string())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn rules(permissions: &[IpPermission]) -> Vec<Rule> {
    let mut out = BTreeSet::new();
    for p in permissions {
        // lmi writes TCP single-port rules only; anything else is shown as port 0 (drift).
        let port = match (p.ip_protocol(), p.from_port(), p.to_port()) {
            (Some("tcp"), Some(from), Some(to)) if from == to => from as u16,
            _ => 0,
        };
        for range in p.ip_ranges() {
            out.insert(Rule {
                port,
                peer: Peer::Cidr(range.cidr_ip().unwrap_or_default().to_string()),
            });
        }
        for pair in p.user_id_group_pairs() {
            out.insert(Rule {
                port,
                peer: Peer::Group(ext(pair.group_id())),
            });
        }
    }
    out.into_iter().collect()
}

fn permission(rule: &Rule, resolve: Resolve) -> Result<IpPermission, AwsError> {
    let builder = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(rule.port))
        .to_port(i32::from(rule.port));
    Ok(match &rule.peer {
        Peer::Cidr(cidr) => builder.ip_ranges(IpRange::builder().cidr_ip(cidr).build()),
        Peer::Group(group) => builder
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(resolve(group)?).build()),
    }
    .build())
}

impl Ec2 {
    pub fn new(client: Client) -> Self {
        Ec2 { client }
    }

    /// The region's available zones, sorted by name.
    pub async fn availability_zones(&self) -> Result<Vec<String>, AwsError> {
        let out = self
            .client
            .describe_availability_zones()
            .filters(filter("state", "available"))
            .filters(filter("zone-type", "availability-zone"))
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeAvailabilityZones", "region", e))?;
        Ok(sorted(
            out.availability_zones()
                .iter()
                .filter_map(|z| z.zone_name().map(str::to_string))
                .collect(),
        ))
    }

    /// Names of the stacks that have EC2 resources in this region: every value of an
    /// `lmi:stack` tag (DescribeTags, one paginated call for every resource type).
    pub async fn stacks(&self) -> Result<BTreeSet<String>, AwsError> {
        let mut out = BTreeSet::new();
        let mut pages = self
            .client
            .describe_tags()
            .filters(filter("key", STACK_TAG))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeTags", STACK_TAG, e))?;
            out.extend(
                page.tags()
                    .iter()
                    .filter_map(|t| t.value())
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(out)
    }

    /// Every network resource tagged with the stack.
    pub async fn observe(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let (vpcs, igws, subnets, eips, nats, tables, groups, endpoints) = futures::try_join!(
            self.vpcs(stack),
            self.internet_gateways(stack),
            self.subnets(stack),
            self.elastic_ips(stack),
            self.nat_gateways(stack),
            self.route_tables(stack),
            self.security_groups(stack),
            self.endpoints(stack),
        )?;
        // The server-side filter is a speed-up, not the guarantee: check every tag here, so a
        // filter an endpoint ignores can never put another stack's resource in lmi's hands.
        Ok([vpcs, igws, subnets, eips, nats, tables, groups, endpoints]
            .into_iter()
            .flatten()
            .filter(|o| o.resource.tags.get(STACK_TAG).map(String::as_str) == Some(stack))
            .collect())
    }

    async fn vpcs(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_vpcs()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeVpcs", stack, e))?;
            for vpc in page.vpcs() {
                let id = vpc.vpc_id().unwrap_or_default();
                let Some(dns) = AwsError::unless_gone(self.vpc_dns(id).await)? else {
                    continue; // deleted since it was listed
                };
                out.extend(observed(
                    id,
                    vpc.tags(),
                    Spec::Vpc {
                        cidr: vpc.cidr_block().unwrap_or_default().to_string(),
                        dns,
                    },
                    BTreeMap::new(),
                ));
            }
        }
        Ok(out)
    }

    /// Whether both DNS attributes of a VPC are on (EC2 answers one attribute per call).
    async fn vpc_dns(&self, id: &str) -> Result<bool, AwsError> {
        let read = |attribute: VpcAttributeName| async move {
            let out = self
                .client
                .describe_vpc_attribute()
                .vpc_id(id)
                .attribute(attribute)
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "DescribeVpcAttribute", id, e))?;
            Ok::<bool, AwsError>(
                out.enable_dns_support()
                    .or(out.enable_dns_hostnames())
                    .and_then(|v| v.value())
                    .unwrap_or(false),
            )
        };
        let (support, hostnames) = futures::try_join!(
            read(VpcAttributeName::EnableDnsSupport),
            read(VpcAttributeName::EnableDnsHostnames)
        )?;
        Ok(support && hostnames)
    }

    /// Turns both DNS attributes of a VPC on.
    async fn enable_vpc_dns(&self, id: &str, at: &str) -> Result<(), AwsError> {
        let on = || AttributeBooleanValue::builder().value(true).build();
        self.client
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_support(on())
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "ModifyVpcAttribute", at, e))?;
        self.client
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(on())
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "ModifyVpcAttribute", at, e))?;
        Ok(())
    }

    async fn internet_gateways(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_internet_gateways()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::new("ec2", "DescribeInternetGateways", stack, e))?;
            for igw in page.internet_gateways() {
                let vpc = igw.attachments().first().and_then(|a| a.vpc_id());
                // Detaching needs the VPC's id, which the engine rewrites as an address.
                let parts = vpc
                    .map(|v| (String::from("vpc"), v.to_string()))
                    .into_iter()
                    .collect();
                out.extend(observed(
                    igw.internet_gateway_id().unwrap_or_default(),
                    igw.tags(),
                    Spec::InternetGateway { vpc: ext(vpc) },
                    parts,
                ));
            }
        }
        Ok(out)
    }

    async fn subnets(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_subnets()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeSubnets", stack, e))?;
            for subnet in page.subnets() {
                out.extend(observed(
                    subnet.subnet_id().unwrap_or_default(),
                    subnet.tags(),
                    Spec::Subnet {
                        vpc: ext(subnet.vpc_id()),
                        cidr: subnet.cidr_block().unwrap_or_default().to_string(),
                        availability_zone: subnet
                            .availability_zone()
                            .unwrap_or_default()
                            .to_string(),
                    },
                    BTreeMap::new(),
                ));
            }
        }
        Ok(out)
    }

    async fn elastic_ips(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        // DescribeAddresses is not paginated.
        let out = self
            .client
            .describe_addresses()
            .filters(tag_filter(stack))
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeAddresses", stack, e))?;
        Ok(out
            .addresses()
            .iter()
            .filter_map(|a| {
                observed(
                    a.allocation_id().unwrap_or_default(),
                    a.tags(),
                    Spec::ElasticIp,
                    BTreeMap::new(),
                )
            })
            .collect())
    }

    async fn nat_gateways(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_nat_gateways()
            .filter(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeNatGateways", stack, e))?;
            for nat in page.nat_gateways() {
                // Deleted NAT gateways stay visible for about an hour; they are gone.
                if matches!(
                    nat.state(),
                    Some(
                        NatGatewayState::Deleted
                            | NatGatewayState::Deleting
                            | NatGatewayState::Failed
                    )
                ) {
                    continue;
                }
                let eip = nat
                    .nat_gateway_addresses()
                    .first()
                    .and_then(|a| a.allocation_id());
                out.extend(observed(
                    nat.nat_gateway_id().unwrap_or_default(),
                    nat.tags(),
                    Spec::NatGateway {
                        subnet: ext(nat.subnet_id()),
                        elastic_ip: ext(eip),
                    },
                    BTreeMap::new(),
                ));
            }
        }
        Ok(out)
    }

    async fn route_tables(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_route_tables()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeRouteTables", stack, e))?;
            for table in page.route_tables() {
                // Only the IPv4 routes lmi writes: not `local`, not the prefix-list routes that
                // gateway endpoints add themselves.
                let routes = table
                    .routes()
                    .iter()
                    .filter(|r| r.destination_prefix_list_id().is_none())
                    .filter(|r| r.gateway_id() != Some("local"))
                    .filter_map(|r| {
                        let destination = r.destination_cidr_block()?.to_string();
                        let target = r.nat_gateway_id().or(r.gateway_id())?;
                        Some(Route {
                            destination,
                            target: ext(Some(target)),
                        })
                    })
                    .collect();
                let mut parts = BTreeMap::new();
                let mut subnets = Vec::new();
                for assoc in table.associations() {
                    if let (Some(subnet), Some(id)) =
                        (assoc.subnet_id(), assoc.route_table_association_id())
                    {
                        parts.insert(subnet.to_string(), id.to_string());
                        subnets.push(ext(Some(subnet)));
                    }
                }
                out.extend(observed(
                    table.route_table_id().unwrap_or_default(),
                    table.tags(),
                    Spec::RouteTable {
                        vpc: ext(table.vpc_id()),
                        routes: sorted(routes),
                        subnets: sorted(subnets),
                    },
                    parts,
                ));
            }
        }
        Ok(out)
    }

    async fn security_groups(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_security_groups()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::new("ec2", "DescribeSecurityGroups", stack, e))?;
            for group in page.security_groups() {
                out.extend(observed(
                    group.group_id().unwrap_or_default(),
                    group.tags(),
                    Spec::SecurityGroup {
                        vpc: ext(group.vpc_id()),
                        description: group.description().unwrap_or_default().to_string(),
                        ingress: rules(group.ip_permissions()),
                        egress: rules(group.ip_permissions_egress()),
                    },
                    BTreeMap::new(),
                ));
            }
        }
        Ok(out)
    }

    async fn endpoints(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_vpc_endpoints()
            .filters(tag_filter(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("ec2", "DescribeVpcEndpoints", stack, e))?;
            for endpoint in page.vpc_endpoints() {
                // The Rust enum doesn't know AWS's lowercase states: compare the strings.
                let state = endpoint
                    .state()
                    .map(|s| s.as_str().to_ascii_lowercase())
                    .unwrap_or_default();
                if matches!(
                    state.as_str(),
                    "deleted" | "deleting" | "failed" | "rejected"
                ) {
                    continue;
                }
                let kind = match endpoint.vpc_endpoint_type() {
                    Some(VpcEndpointType::Gateway) => EndpointKind::Gateway {
                        route_tables: sorted(
                            endpoint
                                .route_table_ids()
                                .iter()
                                .map(|id| ext(Some(id)))
                                .collect(),
                        ),
                    },
                    _ => EndpointKind::Interface {
                        subnets: sorted(
                            endpoint
                                .subnet_ids()
                                .iter()
                                .map(|id| ext(Some(id)))
                                .collect(),
                        ),
                        security_groups: sorted(
                            endpoint
                                .groups()
                                .iter()
                                .map(|g| ext(g.group_id()))
                                .collect(),
                        ),
                    },
                };
                out.extend(observed(
                    endpoint.vpc_endpoint_id().unwrap_or_default(),
                    endpoint.tags(),
                    Spec::VpcEndpoint {
                        vpc: ext(endpoint.vpc_id()),
                        service: endpoint.service_name().unwrap_or_default().to_string(),
                        endpoint: kind,
                    },
                    BTreeMap::new(),
                ));
            }
        }
        Ok(out)
    }

    /// Creates a resource with its tags in the create call itself, so nothing lmi makes is ever
    /// untagged, then waits until it can be used. Returns its id.
    pub async fn create(
        &self,
        resource: &Resource,
        resolve: Resolve<'_>,
    ) -> Result<String, AwsError> {
        let at = resource.address.to_string();
        let tags = &resource.tags;
        // The client token makes a retried create return the first one's resource.
        let token = format!(
            "lmi-{}-{}",
            tags.get(STACK_TAG).map_or("", String::as_str),
            at
        );
        let token: String = token.chars().take(64).collect();
        match &resource.spec {
            Spec::Vpc { cidr, .. } => {
                let out = self
                    .client
                    .create_vpc()
                    .cidr_block(cidr)
                    .tag_specifications(spec_tags(ResourceType::Vpc, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateVpc", &at, e))?;
                let id = out
                    .vpc()
                    .and_then(|v| v.vpc_id())
                    .unwrap_or_default()
                    .to_string();
                self.enable_vpc_dns(&id, &at).await?;
                Ok(id)
            }
            Spec::InternetGateway { vpc } => {
                let out = self
                    .client
                    .create_internet_gateway()
                    .tag_specifications(spec_tags(ResourceType::InternetGateway, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateInternetGateway", &at, e))?;
                let id = out
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .unwrap_or_default()
                    .to_string();
                self.client
                    .attach_internet_gateway()
                    .internet_gateway_id(&id)
                    .vpc_id(resolve(vpc)?)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "AttachInternetGateway", &at, e))?;
                Ok(id)
            }
            Spec::Subnet {
                vpc,
                cidr,
                availability_zone,
            } => {
                let out = self
                    .client
                    .create_subnet()
                    .vpc_id(resolve(vpc)?)
                    .cidr_block(cidr)
                    .availability_zone(availability_zone)
                    .tag_specifications(spec_tags(ResourceType::Subnet, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateSubnet", &at, e))?;
                Ok(out
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .unwrap_or_default()
                    .to_string())
            }
            Spec::ElasticIp => {
                let out = self
                    .client
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(spec_tags(ResourceType::ElasticIp, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "AllocateAddress", &at, e))?;
                Ok(out.allocation_id().unwrap_or_default().to_string())
            }
            Spec::NatGateway { subnet, elastic_ip } => {
                let out = self
                    .client
                    .create_nat_gateway()
                    .subnet_id(resolve(subnet)?)
                    .allocation_id(resolve(elastic_ip)?)
                    .client_token(&token)
                    .tag_specifications(spec_tags(ResourceType::Natgateway, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateNatGateway", &at, e))?;
                let id = out
                    .nat_gateway()
                    .and_then(|n| n.nat_gateway_id())
                    .unwrap_or_default()
                    .to_string();
                self.wait_nat(&id, &at, NatGatewayState::Available).await?;
                Ok(id)
            }
            Spec::RouteTable {
                vpc,
                routes,
                subnets,
            } => {
                let out = self
                    .client
                    .create_route_table()
                    .vpc_id(resolve(vpc)?)
                    .tag_specifications(spec_tags(ResourceType::RouteTable, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateRouteTable", &at, e))?;
                let id = out
                    .route_table()
                    .and_then(|t| t.route_table_id())
                    .unwrap_or_default()
                    .to_string();
                for route in routes {
                    self.create_route(&id, route, resolve, &at).await?;
                }
                for subnet in subnets {
                    self.associate(&id, &resolve(subnet)?, &at).await?;
                }
                Ok(id)
            }
            Spec::SecurityGroup {
                vpc,
                description,
                ingress,
                egress,
            } => {
                let name = tags.get("Name").cloned().unwrap_or_else(|| at.clone());
                let out = self
                    .client
                    .create_security_group()
                    .group_name(name)
                    .description(description)
                    .vpc_id(resolve(vpc)?)
                    .tag_specifications(spec_tags(ResourceType::SecurityGroup, tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateSecurityGroup", &at, e))?;
                let id = out.group_id().unwrap_or_default().to_string();
                // A new group allows all egress; lmi's groups allow exactly what they declare.
                self.client
                    .revoke_security_group_egress()
                    .group_id(&id)
                    .ip_permissions(
                        IpPermission::builder()
                            .ip_protocol("-1")
                            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "RevokeSecurityGroupEgress", &at, e))?;
                self.authorize(&id, ingress, egress, resolve, &at).await?;
                Ok(id)
            }
            Spec::VpcEndpoint {
                vpc,
                service,
                endpoint,
            } => {
                let call = self
                    .client
                    .create_vpc_endpoint()
                    .vpc_id(resolve(vpc)?)
                    .service_name(service)
                    .client_token(&token)
                    .tag_specifications(spec_tags(ResourceType::VpcEndpoint, tags));
                let call = match endpoint {
                    EndpointKind::Interface {
                        subnets,
                        security_groups,
                    } => call
                        .vpc_endpoint_type(VpcEndpointType::Interface)
                        .private_dns_enabled(true)
                        .set_subnet_ids(Some(
                            subnets.iter().map(resolve).collect::<Result<_, _>>()?,
                        ))
                        .set_security_group_ids(Some(
                            security_groups
                                .iter()
                                .map(resolve)
                                .collect::<Result<_, _>>()?,
                        )),
                    EndpointKind::Gateway { route_tables } => call
                        .vpc_endpoint_type(VpcEndpointType::Gateway)
                        .set_route_table_ids(Some(
                            route_tables.iter().map(resolve).collect::<Result<_, _>>()?,
                        )),
                };
                let out = call
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "CreateVpcEndpoint", &at, e))?;
                let id = out
                    .vpc_endpoint()
                    .and_then(|e| e.vpc_endpoint_id())
                    .unwrap_or_default()
                    .to_string();
                self.wait_endpoint(&id, &at, Some("available")).await?;
                Ok(id)
            }
            Spec::Role { .. } | Spec::CapacityProvider { .. } | Spec::Function { .. } => {
                Err(AwsError::lmi("ec2", "Create", &at, "not an EC2 resource"))
            }
        }
    }

    async fn create_route(
        &self,
        table: &str,
        route: &Route,
        resolve: Resolve<'_>,
        at: &str,
    ) -> Result<(), AwsError> {
        let target = resolve(&route.target)?;
        let call = self
            .client
            .create_route()
            .route_table_id(table)
            .destination_cidr_block(&route.destination);
        let call = if target.starts_with("nat-") {
            call.nat_gateway_id(target)
        } else {
            call.gateway_id(target)
        };
        call.send()
            .await
            .map_err(|e| AwsError::new("ec2", "CreateRoute", at, e))?;
        Ok(())
    }

    async fn associate(&self, table: &str, subnet: &str, at: &str) -> Result<(), AwsError> {
        self.client
            .associate_route_table()
            .route_table_id(table)
            .subnet_id(subnet)
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "AssociateRouteTable", at, e))?;
        Ok(())
    }

    async fn authorize(
        &self,
        group: &str,
        ingress: &[Rule],
        egress: &[Rule],
        resolve: Resolve<'_>,
        at: &str,
    ) -> Result<(), AwsError> {
        if !ingress.is_empty() {
            self.client
                .authorize_security_group_ingress()
                .group_id(group)
                .set_ip_permissions(Some(
                    ingress
                        .iter()
                        .map(|r| permission(r, resolve))
                        .collect::<Result<_, _>>()?,
                ))
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "AuthorizeSecurityGroupIngress", at, e))?;
        }
        if !egress.is_empty() {
            self.client
                .authorize_security_group_egress()
                .group_id(group)
                .set_ip_permissions(Some(
                    egress
                        .iter()
                        .map(|r| permission(r, resolve))
                        .collect::<Result<_, _>>()?,
                ))
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "AuthorizeSecurityGroupEgress", at, e))?;
        }
        Ok(())
    }

    /// Changes what can change in place: tags, routes, associations, rules, endpoint members.
    pub async fn update(
        &self,
        have: &Observed,
        want: &Resource,
        resolve: Resolve<'_>,
    ) -> Result<(), AwsError> {
        let at = want.address.to_string();
        let id = have.id.as_str();
        self.update_tags(id, &have.resource.tags, &want.tags, &at)
            .await?;
        match (&have.resource.spec, &want.spec) {
            (Spec::Vpc { dns: false, .. }, Spec::Vpc { dns: true, .. }) => {
                self.enable_vpc_dns(id, &at).await?;
            }
            // A gateway created but not attached (a create cut short) is attached now.
            (Spec::InternetGateway { .. }, Spec::InternetGateway { vpc }) => {
                let want = resolve(vpc)?;
                if let Some(old) = have.parts.get("vpc").filter(|old| **old != want) {
                    self.client
                        .detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(old)
                        .send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "DetachInternetGateway", &at, e))?;
                }
                if have.parts.get("vpc") != Some(&want) {
                    self.client
                        .attach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(&want)
                        .send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "AttachInternetGateway", &at, e))?;
                }
            }
            (
                Spec::RouteTable {
                    routes: had,
                    subnets: had_subnets,
                    ..
                },
                Spec::RouteTable {
                    routes, subnets, ..
                },
            ) => {
                // Compare in ids: the observed side has ids where the desired side has addresses.
                let had_routes: BTreeMap<&str, String> = had
                    .iter()
                    .map(|r| Ok((r.destination.as_str(), resolve(&r.target)?)))
                    .collect::<Result<_, AwsError>>()?;
                for route in routes {
                    let target = resolve(&route.target)?;
                    match had_routes.get(route.destination.as_str()) {
                        Some(t) if *t == target => {}
                        Some(_) => {
                            let call = self
                                .client
                                .replace_route()
                                .route_table_id(id)
                                .destination_cidr_block(&route.destination);
                            let call = if target.starts_with("nat-") {
                                call.nat_gateway_id(&target)
                            } else {
                                call.gateway_id(&target)
                            };
                            call.send()
                                .await
                                .map_err(|e| AwsError::new("ec2", "ReplaceRoute", &at, e))?;
                        }
                        None => self.create_route(id, route, resolve, &at).await?,
                    }
                }
                for destination in had_routes.keys() {
                    if !routes.iter().any(|r| r.destination == *destination) {
                        self.client
                            .delete_route()
                            .route_table_id(id)
                            .destination_cidr_block(*destination)
                            .send()
                            .await
                            .map_err(|e| AwsError::new("ec2", "DeleteRoute", &at, e))?;
                    }
                }
                let want_subnets: BTreeSet<String> =
                    subnets.iter().map(resolve).collect::<Result<_, _>>()?;
                let had_subnets: BTreeSet<String> =
                    had_subnets.iter().map(resolve).collect::<Result<_, _>>()?;
                for subnet in want_subnets.difference(&had_subnets) {
                    self.associate(id, subnet, &at).await?;
                }
                for subnet in had_subnets.difference(&want_subnets) {
                    if let Some(association) = have.parts.get(subnet) {
                        self.client
                            .disassociate_route_table()
                            .association_id(association)
                            .send()
                            .await
                            .map_err(|e| AwsError::new("ec2", "DisassociateRouteTable", &at, e))?;
                    }
                }
            }
            (
                Spec::SecurityGroup {
                    ingress: had_in,
                    egress: had_out,
                    ..
                },
                Spec::SecurityGroup {
                    ingress, egress, ..
                },
            ) => {
                let resolved = |rules: &[Rule]| -> Result<BTreeSet<IpPermissionKey>, AwsError> {
                    rules
                        .iter()
                        .map(|r| IpPermissionKey::of(r, resolve))
                        .collect()
                };
                let (had_in, had_out) = (resolved(had_in)?, resolved(had_out)?);
                let (want_in, want_out) = (resolved(ingress)?, resolved(egress)?);
                let revoke_in: Vec<IpPermission> = had_in
                    .difference(&want_in)
                    .map(IpPermissionKey::build)
                    .collect();
                let revoke_out: Vec<IpPermission> = had_out
                    .difference(&want_out)
                    .map(IpPermissionKey::build)
                    .collect();
                if !revoke_in.is_empty() {
                    self.client
                        .revoke_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(revoke_in))
                        .send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "RevokeSecurityGroupIngress", &at, e))?;
                }
                if !revoke_out.is_empty() {
                    self.client
                        .revoke_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(revoke_out))
                        .send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "RevokeSecurityGroupEgress", &at, e))?;
                }
                let add_in: Vec<Rule> = ingress
                    .iter()
                    .filter(|r| IpPermissionKey::of(r, resolve).is_ok_and(|k| !had_in.contains(&k)))
                    .cloned()
                    .collect();
                let add_out: Vec<Rule> = egress
                    .iter()
                    .filter(|r| {
                        IpPermissionKey::of(r, resolve).is_ok_and(|k| !had_out.contains(&k))
                    })
                    .cloned()
                    .collect();
                self.authorize(id, &add_in, &add_out, resolve, &at).await?;
            }
            (
                Spec::VpcEndpoint { endpoint: had, .. },
                Spec::VpcEndpoint {
                    endpoint: want_kind,
                    ..
                },
            ) => {
                let ids = |refs: &[Ref]| -> Result<BTreeSet<String>, AwsError> {
                    refs.iter().map(resolve).collect()
                };
                let call = self.client.modify_vpc_endpoint().vpc_endpoint_id(id);
                let call = match (had, want_kind) {
                    (
                        EndpointKind::Interface {
                            subnets: hs,
                            security_groups: hg,
                        },
                        EndpointKind::Interface {
                            subnets: ws,
                            security_groups: wg,
                        },
                    ) => {
                        let (hs, ws, hg, wg) = (ids(hs)?, ids(ws)?, ids(hg)?, ids(wg)?);
                        call.set_add_subnet_ids(Some(ws.difference(&hs).cloned().collect()))
                            .set_remove_subnet_ids(Some(hs.difference(&ws).cloned().collect()))
                            .set_add_security_group_ids(Some(wg.difference(&hg).cloned().collect()))
                            .set_remove_security_group_ids(Some(
                                hg.difference(&wg).cloned().collect(),
                            ))
                    }
                    (
                        EndpointKind::Gateway { route_tables: h },
                        EndpointKind::Gateway { route_tables: w },
                    ) => {
                        let (h, w) = (ids(h)?, ids(w)?);
                        call.set_add_route_table_ids(Some(w.difference(&h).cloned().collect()))
                            .set_remove_route_table_ids(Some(h.difference(&w).cloned().collect()))
                    }
                    _ => return Ok(()),
                };
                if had != want_kind {
                    call.send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "ModifyVpcEndpoint", &at, e))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn update_tags(
        &self,
        id: &str,
        had: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
        at: &str,
    ) -> Result<(), AwsError> {
        let (set, remove) = tag_changes(had, want);
        if !set.is_empty() {
            self.client
                .create_tags()
                .resources(id)
                .set_tags(Some(
                    set.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "CreateTags", at, e))?;
        }
        if !remove.is_empty() {
            self.client
                .delete_tags()
                .resources(id)
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| Tag::builder().key(*k).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "DeleteTags", at, e))?;
        }
        Ok(())
    }

    /// Deletes a resource of the stack and waits until it no longer holds anything.
    /// "Not found" means someone already deleted it: done.
    /// The network interfaces that still use a subnet or security group, as
    /// `eni-… (description, status)`: what keeps its delete failing with DependencyViolation.
    /// Empty for other kinds.
    pub async fn interfaces_using(&self, have: &Observed) -> Result<Vec<String>, AwsError> {
        let by = match &have.resource.spec {
            Spec::Subnet { .. } => filter("subnet-id", &have.id),
            Spec::SecurityGroup { .. } => filter("group-id", &have.id),
            _ => return Ok(Vec::new()),
        };
        let out = self
            .client
            .describe_network_interfaces()
            .filters(by)
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeNetworkInterfaces", &have.id, e))?;
        Ok(out
            .network_interfaces()
            .iter()
            .map(|n| {
                format!(
                    "{} ({}; {})",
                    n.network_interface_id().unwrap_or_default(),
                    n.description()
                        .filter(|d| !d.is_empty())
                        .unwrap_or("no description"),
                    n.status().map_or("unknown status", |s| s.as_str())
                )
            })
            .collect())
    }

    /// "Not found" is returned as such; the engine counts it as already deleted.
    pub async fn delete(&self, have: &Observed) -> Result<(), AwsError> {
        let at = have.resource.address.to_string();
        let id = have.id.as_str();
        match &have.resource.spec {
            Spec::Vpc { .. } => {
                self.client
                    .delete_vpc()
                    .vpc_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteVpc", &at, e))?;
            }
            Spec::InternetGateway { .. } => {
                if let Some(vpc) = have.parts.get("vpc") {
                    let detached = self
                        .client
                        .detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(vpc)
                        .send()
                        .await;
                    if let Err(e) =
                        detached.map_err(|e| AwsError::new("ec2", "DetachInternetGateway", &at, e))
                        && !e.is_not_found()
                        && e.code.as_deref() != Some("Gateway.NotAttached")
                    {
                        return Err(e);
                    }
                }
                self.client
                    .delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteInternetGateway", &at, e))?;
            }
            Spec::Subnet { .. } => {
                self.client
                    .delete_subnet()
                    .subnet_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteSubnet", &at, e))?;
            }
            Spec::ElasticIp => {
                self.client
                    .release_address()
                    .allocation_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "ReleaseAddress", &at, e))?;
            }
            Spec::NatGateway { .. } => {
                self.client
                    .delete_nat_gateway()
                    .nat_gateway_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteNatGateway", &at, e))?;
                // Its elastic IP and subnet stay in use until it is fully deleted.
                self.wait_nat(id, &at, NatGatewayState::Deleted).await?;
            }
            Spec::RouteTable { .. } => {
                for association in have.parts.values() {
                    let result = self
                        .client
                        .disassociate_route_table()
                        .association_id(association)
                        .send()
                        .await;
                    if let Err(e) =
                        result.map_err(|e| AwsError::new("ec2", "DisassociateRouteTable", &at, e))
                        && !e.is_not_found()
                    {
                        return Err(e);
                    }
                }
                self.client
                    .delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteRouteTable", &at, e))?;
            }
            Spec::SecurityGroup { .. } => {
                self.client
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteSecurityGroup", &at, e))?;
            }
            Spec::VpcEndpoint { .. } => {
                self.client
                    .delete_vpc_endpoints()
                    .vpc_endpoint_ids(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DeleteVpcEndpoints", &at, e))?;
                // Its network interfaces hold the subnets and security groups until it is gone.
                self.wait_endpoint(id, &at, None).await?;
            }
            Spec::Role { .. } | Spec::CapacityProvider { .. } | Spec::Function { .. } => {}
        }
        Ok(())
    }

    async fn wait_nat(&self, id: &str, at: &str, until: NatGatewayState) -> Result<(), AwsError> {
        poll(
            READY_TIMEOUT,
            at,
            &format!("NAT gateway {id} to be {}", until.as_str()),
            || async {
                let out = self
                    .client
                    .describe_nat_gateways()
                    .nat_gateway_ids(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("ec2", "DescribeNatGateways", at, e));
                let state = match out {
                    Ok(out) => out.nat_gateways().first().and_then(|n| n.state().cloned()),
                    Err(e) if e.is_not_found() => Some(NatGatewayState::Deleted),
                    Err(e) => return Poll::Failed(e),
                };
                match state {
                    Some(s) if s == until => Poll::Done(()),
                    Some(NatGatewayState::Failed) => Poll::Failed(AwsError::lmi(
                        "ec2",
                        "CreateNatGateway",
                        at,
                        format!("NAT gateway {id} failed"),
                    )),
                    None if until == NatGatewayState::Deleted => Poll::Done(()),
                    _ => Poll::Pending,
                }
            },
        )
        .await
    }

    /// Waits for an endpoint to reach `state` (`None`: to be gone).
    async fn wait_endpoint(&self, id: &str, at: &str, state: Option<&str>) -> Result<(), AwsError> {
        let what = match state {
            Some(s) => format!("VPC endpoint {id} to be {s}"),
            None => format!("VPC endpoint {id} to be deleted"),
        };
        poll(READY_TIMEOUT, at, &what, || async {
            let out = self
                .client
                .describe_vpc_endpoints()
                .vpc_endpoint_ids(id)
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "DescribeVpcEndpoints", at, e));
            let current = match out {
                Ok(out) => out
                    .vpc_endpoints()
                    .first()
                    .and_then(|e| e.state())
                    .map(|s| s.as_str().to_ascii_lowercase()),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Poll::Failed(e),
            };
            match (state, current.as_deref()) {
                (None, None | Some("deleted")) => Poll::Done(()),
                (Some(want), Some(have)) if want == have => Poll::Done(()),
                (_, Some("failed" | "rejected")) => Poll::Failed(AwsError::lmi(
                    "ec2",
                    "CreateVpcEndpoint",
                    at,
                    format!("VPC endpoint {id} is {}", current.unwrap_or_default()),
                )),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

/// How a subnet reaches the outside, for the network preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRoute {
    pub subnet: String,
    pub vpc: String,
    /// The table that routes it: its own association, or else the VPC's main table.
    pub route_table: String,
    /// Target of its 0.0.0.0/0 route (`nat-…`, `igw-…`, `tgw-…`, `eni-…`), if any.
    pub default_target: Option<String>,
}

/// An interface endpoint in a VPC, for the network preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Short service name: `logs`, `xray`.
    pub service: String,
    pub private_dns: bool,
}

impl Ec2 {
    /// The route out of each subnet. Subnets that don't exist are left out: the caller
    /// compares with what it asked for.
    pub async fn subnet_routes(&self, subnet_ids: &[String]) -> Result<Vec<SubnetRoute>, AwsError> {
        let subnets = self
            .client
            .describe_subnets()
            .set_subnet_ids(Some(subnet_ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeSubnets", subnet_ids.join(", "), e))?;
        let mut out = Vec::new();
        for subnet in subnets.subnets() {
            let (Some(id), Some(vpc)) = (subnet.subnet_id(), subnet.vpc_id()) else {
                continue;
            };
            let explicit = self
                .client
                .describe_route_tables()
                .filters(filter("association.subnet-id", id))
                .send()
                .await
                .map_err(|e| AwsError::new("ec2", "DescribeRouteTables", id, e))?;
            let table = match explicit.route_tables().first() {
                Some(t) => t.clone(),
                None => {
                    let main = self
                        .client
                        .describe_route_tables()
                        .filters(filter("vpc-id", vpc))
                        .filters(filter("association.main", "true"))
                        .send()
                        .await
                        .map_err(|e| AwsError::new("ec2", "DescribeRouteTables", vpc, e))?;
                    match main.route_tables().first() {
                        Some(t) => t.clone(),
                        None => continue,
                    }
                }
            };
            let default_target = table
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                .and_then(|r| {
                    r.nat_gateway_id()
                        .or(r.transit_gateway_id())
                        .or(r.network_interface_id())
                        .or(r.gateway_id())
                        .map(str::to_string)
                });
            out.push(SubnetRoute {
                subnet: id.to_string(),
                vpc: vpc.to_string(),
                route_table: table.route_table_id().unwrap_or_default().to_string(),
                default_target,
            });
        }
        Ok(out)
    }

    /// The available interface endpoints of a VPC.
    pub async fn interface_endpoints(&self, vpc: &str) -> Result<Vec<EndpointInfo>, AwsError> {
        let out = self
            .client
            .describe_vpc_endpoints()
            .filters(filter("vpc-id", vpc))
            .filters(filter("vpc-endpoint-type", "Interface"))
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeVpcEndpoints", vpc, e))?;
        Ok(out
            .vpc_endpoints()
            .iter()
            .filter(|e| {
                e.state()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("available"))
            })
            .map(|e| EndpointInfo {
                service: e
                    .service_name()
                    .unwrap_or_default()
                    .rsplit_once(".amazonaws.com.")
                    .map(|(_, rest)| rest)
                    .or_else(|| e.service_name().unwrap_or_default().splitn(4, '.').nth(3))
                    .unwrap_or_default()
                    .to_string(),
                private_dns: e.private_dns_enabled().unwrap_or(false),
            })
            .collect())
    }

    /// For each security group, whether it lets HTTPS (TCP 443) out to anywhere.
    pub async fn allows_https_out(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, bool)>, AwsError> {
        let out = self
            .client
            .describe_security_groups()
            .set_group_ids(Some(group_ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::new("ec2", "DescribeSecurityGroups", group_ids.join(", "), e))?;
        Ok(out
            .security_groups()
            .iter()
            .map(|g| {
                let allows = g.ip_permissions_egress().iter().any(|p| {
                    let port_ok = match p.ip_protocol() {
                        Some("-1") => true,
                        Some("tcp" | "6") => {
                            p.from_port().unwrap_or(0) <= 443 && p.to_port().unwrap_or(65535) >= 443
                        }
                        _ => false,
                    };
                    port_ok
                        && (!p.ip_ranges().is_empty()
                            || !p.prefix_list_ids().is_empty()
                            || !p.user_id_group_pairs().is_empty())
                });
                (g.group_id().unwrap_or_default().to_string(), allows)
            })
            .collect())
    }
}

/// Tags to set (new or changed) and keys to remove, to turn `had` into `want`.
pub fn tag_changes<'a>(
    had: &'a BTreeMap<String, String>,
    want: &'a BTreeMap<String, String>,
) -> (Vec<(&'a str, &'a str)>, Vec<&'a str>) {
    let set = want
        .iter()
        .filter(|(k, v)| had.get(*k) != Some(v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let remove = had
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(String::as_str)
        .collect();
    (set, remove)
}

/// A rule with its peer resolved to an id, comparable across the two sides of a diff.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IpPermissionKey {
    port: u16,
    cidr: Option<String>,
    group: Option<String>,
}

impl IpPermissionKey {
    fn of(rule: &Rule, resolve: Resolve) -> Result<Self, AwsError> {
        Ok(match &rule.peer {
            Peer::Cidr(c) => IpPermissionKey {
                port: rule.port,
                cidr: Some(c.clone()),
                group: None,
            },
            Peer::Group(g) => IpPermissionKey {
                port: rule.port,
                cidr: None,
                group: Some(resolve(g)?),
            },
        })
    }

    fn build(&self) -> IpPermission {
        // Port 0 marks a rule lmi did not write (another protocol or a range): revoke it whole.
        let builder = if self.port == 0 {
            IpPermission::builder().ip_protocol("-1")
        } else {
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(i32::from(self.port))
                .to_port(i32::from(self.port))
        };
        match (&self.cidr, &self.group) {
            (Some(c), _) => builder.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            (_, Some(g)) => {
                builder.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
            }
            _ => builder,
        }
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_changes_are_a_set_difference() {
        let had: BTreeMap<String, String> = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let want: BTreeMap<String, String> = [("a", "1"), ("b", "20"), ("d", "4")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let (set, remove) = tag_changes(&had, &want);
        assert_eq!(set, vec![("b", "20"), ("d", "4")]);
        assert_eq!(remove, vec!["c"]);
        assert_eq!(tag_changes(&want, &want), (vec![], vec![]));
    }
}
