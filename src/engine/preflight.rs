//! The network preflight: before any write, prove that the capacity provider's subnets have a
//! way out for telemetry. Without one, functions run but their logs and traces never arrive,
//! silently (the reference experiment lost its logs this way).
//!
//! The rules are pure (`check`); `existing` gathers the facts from EC2 for a VPC lmi does not
//! own, `planned` from the resources lmi is about to create.

use std::fmt;

use serde::Serialize;

use crate::aws::ec2::{EndpointInfo, SubnetRoute};
use crate::aws::{Aws, AwsError};
use crate::model::{ExistingNetwork, Stack};
use crate::plan::resource::{EndpointKind, Kind, Peer, Ref, Resource, Spec};

/// A subnet or security group that fails the preflight, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub resource: String,
    pub route_table: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.resource)?;
        if let Some(table) = &self.route_table {
            write!(f, " (route table {table})")?;
        }
        write!(f, ": {}. Fix: {}", self.problem, self.fix)
    }
}

/// What the preflight needs to know about a network.
pub struct Facts {
    /// The subnets the capacity provider uses; `None` for a route that was asked for but
    /// does not exist.
    pub subnets: Vec<(String, Option<SubnetRoute>)>,
    pub endpoints: Vec<EndpointInfo>,
    /// Each of the provider's security groups and whether it allows HTTPS out.
    pub groups: Vec<(String, bool)>,
    /// Whether X-Ray traffic must get out too (a function on the provider traces).
    pub needs_xray: bool,
}

/// The rules: each subnet sends 0.0.0.0/0 to a NAT gateway (or a transit gateway or a
/// network interface), or the VPC has logs (and xray) endpoints with private DNS; and a
/// security group lets HTTPS out.
pub fn check(facts: &Facts) -> Vec<Finding> {
    let has = |service: &str| {
        facts
            .endpoints
            .iter()
            .any(|e| e.service == service && e.private_dns)
    };
    let mut wanted = vec!["logs"];
    if facts.needs_xray {
        wanted.push("xray");
    }
    let missing: Vec<&str> = wanted.iter().copied().filter(|s| !has(s)).collect();
    let mut findings = Vec::new();
    for (subnet, route) in &facts.subnets {
        let Some(route) = route else {
            findings.push(Finding {
                resource: format!("subnet {subnet}"),
                route_table: None,
                problem: "does not exist in this account and region".into(),
                fix: "check network.subnet_ids, the region and the account".into(),
            });
            continue;
        };
        let egress = route
            .default_target
            .as_deref()
            .is_some_and(|t| ["nat-", "tgw-", "eni-"].iter().any(|p| t.starts_with(p)));
        if egress || missing.is_empty() {
            continue;
        }
        let problem = match route.default_target.as_deref() {
            Some(igw) if igw.starts_with("igw-") => format!(
                "routes 0.0.0.0/0 to the internet gateway {igw}, which instances without public IPs can't use, and the VPC has no {} endpoint{} with private DNS",
                missing.join(" or "),
                if missing.len() > 1 { "s" } else { "" }
            ),
            Some(other) => format!(
                "routes 0.0.0.0/0 to {other}, which is not a NAT gateway, and the VPC has no {} endpoint with private DNS",
                missing.join(" or ")
            ),
            None => format!(
                "has no route to 0.0.0.0/0 and the VPC has no {} endpoint{} with private DNS: logs and traces can't leave it",
                missing.join(" or "),
                if missing.len() > 1 { "s" } else { "" }
            ),
        };
        findings.push(Finding {
            resource: format!("subnet {subnet}"),
            route_table: Some(route.route_table.clone()),
            problem,
            fix: format!(
                "add a route 0.0.0.0/0 → a NAT gateway to {}, or create interface endpoints com.amazonaws.REGION.{{{}}} with private DNS in {}",
                route.route_table,
                missing.join(","),
                route.vpc
            ),
        });
    }
    if !facts.groups.is_empty() && !facts.groups.iter().any(|(_, ok)| *ok) {
        let ids: Vec<&str> = facts.groups.iter().map(|(g, _)| g.as_str()).collect();
        findings.push(Finding {
            resource: format!("security groups {}", ids.join(", ")),
            route_table: None,
            problem: "none allows outbound HTTPS (TCP 443)".into(),
            fix: "add an egress rule TCP 443 to 0.0.0.0/0 (or to the endpoints' security group)"
                .into(),
        });
    }
    findings
}

fn needs_xray(stack: &Stack) -> bool {
    stack
        .functions
        .iter()
        .any(|f| f.tracing && f.managed().is_some())
}

/// Facts about a VPC the user owns, read from EC2.
pub async fn existing(
    aws: &Aws,
    stack: &Stack,
    net: &ExistingNetwork,
) -> Result<Vec<Finding>, AwsError> {
    let routes = aws.ec2.subnet_routes(&net.subnet_ids).await;
    let routes = match routes {
        Ok(r) => r,
        // One unknown id fails the whole describe: report each id as missing.
        Err(e)
            if e.is_not_found()
                || e.code
                    .as_deref()
                    .is_some_and(|c| c.starts_with("InvalidSubnetID")) =>
        {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let endpoints = aws.ec2.interface_endpoints(&net.vpc_id).await?;
    let groups = if net.security_group_ids.is_empty() {
        // lmi creates the group, with HTTPS out.
        Vec::new()
    } else {
        aws.ec2.allows_https_out(&net.security_group_ids).await?
    };
    let mut findings = check(&Facts {
        subnets: net
            .subnet_ids
            .iter()
            .map(|s| (s.clone(), routes.iter().find(|r| &r.subnet == s).cloned()))
            .collect(),
        endpoints,
        groups,
        needs_xray: needs_xray(stack),
    });
    for route in &routes {
        if route.vpc != net.vpc_id {
            findings.push(Finding {
                resource: format!("subnet {}", route.subnet),
                route_table: None,
                problem: format!("is in {}, not in network.vpc_id {}", route.vpc, net.vpc_id),
                fix: "list subnets of the VPC named in network.vpc_id".into(),
            });
        }
    }
    Ok(findings)
}

/// Facts about a network lmi will create, read from the desired resources.
pub fn planned(stack: &Stack, desired: &[Resource]) -> Vec<Finding> {
    let private: Vec<&Resource> = desired
        .iter()
        .filter(|r| r.address.kind == Kind::Subnet && r.address.name.starts_with("private-"))
        .collect();
    let subnets = private
        .iter()
        .map(|subnet| {
            let table = desired.iter().find(|r| match &r.spec {
                Spec::RouteTable { subnets, .. } => {
                    subnets.contains(&Ref::Resource(subnet.address.clone()))
                }
                _ => false,
            });
            let route = table.map(|t| SubnetRoute {
                subnet: subnet.address.to_string(),
                vpc: "vpc.main".into(),
                route_table: t.address.to_string(),
                default_target: match &t.spec {
                    Spec::RouteTable { routes, .. } => routes
                        .iter()
                        .find(|r| r.destination == "0.0.0.0/0")
                        .map(|r| match &r.target {
                            Ref::Resource(a) if a.kind == Kind::NatGateway => format!("nat-({a})"),
                            other => other.to_string(),
                        }),
                    _ => None,
                },
            });
            // A planned subnet with no table of its own would use the main table: no route out.
            let route = route.or_else(|| {
                Some(SubnetRoute {
                    subnet: subnet.address.to_string(),
                    vpc: "vpc.main".into(),
                    route_table: "the VPC's main route table".into(),
                    default_target: None,
                })
            });
            (subnet.address.to_string(), route)
        })
        .collect();
    let endpoints = desired
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::VpcEndpoint {
                service,
                endpoint: EndpointKind::Interface { .. },
                ..
            } => Some(EndpointInfo {
                service: service.rsplit('.').next().unwrap_or_default().to_string(),
                private_dns: true,
            }),
            _ => None,
        })
        .collect();
    let groups = desired
        .iter()
        .filter(|r| r.address.kind == Kind::SecurityGroup && r.address.name == crate::plan::desired::INSTANCES_SG)
        .map(|r| {
            let ok = matches!(&r.spec, Spec::SecurityGroup { egress, .. }
                if egress.iter().any(|rule| rule.port == 443 && matches!(rule.peer, Peer::Cidr(_))));
            (r.address.to_string(), ok)
        })
        .collect();
    check(&Facts {
        subnets,
        endpoints,
        groups,
        needs_xray: needs_xray(stack),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(subnet: &str, target: Option<&str>) -> (String, Option<SubnetRoute>) {
        (
            subnet.into(),
            Some(SubnetRoute {
                subnet: subnet.into(),
                vpc: "vpc-1".into(),
                route_table: format!("rtb-{subnet}"),
                default_target: target.map(str::to_string),
            }),
        )
    }

    fn endpoint(service: &str) -> EndpointInfo {
        EndpointInfo {
            service: service.into(),
            private_dns: true,
        }
    }

    #[test]
    fn a_nat_route_or_both_endpoints_let_telemetry_out() {
        let cases: Vec<(Option<&str>, Vec<EndpointInfo>, bool, usize)> = vec![
            (Some("nat-1"), vec![], true, 0),
            (Some("tgw-1"), vec![], true, 0),
            (None, vec![endpoint("logs"), endpoint("xray")], true, 0),
            (None, vec![endpoint("logs")], false, 0),
            (None, vec![endpoint("logs")], true, 1),
            (None, vec![], false, 1),
            (Some("igw-1"), vec![], false, 1),
            (
                None,
                vec![EndpointInfo {
                    service: "logs".into(),
                    private_dns: false,
                }],
                false,
                1,
            ),
        ];
        for (target, endpoints, needs_xray, expected) in cases {
            let findings = check(&Facts {
                subnets: vec![route("subnet-a", target)],
                endpoints: endpoints.clone(),
                groups: vec![("sg-1".into(), true)],
                needs_xray,
            });
            assert_eq!(
                findings.len(),
                expected,
                "{target:?} {endpoints:?} xray={needs_xray}: {findings:?}"
            );
        }
    }

    #[test]
    fn findings_name_the_subnet_its_table_and_the_fix() {
        let findings = check(&Facts {
            subnets: vec![route("subnet-a", None), ("subnet-gone".into(), None)],
            endpoints: vec![],
            groups: vec![("sg-1".into(), false)],
            needs_xray: true,
        });
        assert_eq!(findings.len(), 3);
        let text = findings[0].to_string();
        assert!(text.contains("subnet subnet-a"), "{text}");
        assert!(text.contains("rtb-subnet-a"), "{text}");
        assert!(text.contains("NAT gateway"), "{text}");
        assert!(findings[1].problem.contains("does not exist"));
        assert!(findings[2].problem.contains("HTTPS"));
    }
}
