//! `[network]`: a VPC lmi creates (CIDR, AZs, egress, endpoints) or an existing one used by id.

use ipnet::Ipv4Net;

use super::{S, Validator};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawConfig, RawFunction, RawNetwork};
use crate::model::{Egress, ExistingNetwork, GatewayEndpoint, ManagedNetwork, Network, limits};

pub(super) struct CheckedNetwork {
    pub model: Network,
}

impl Validator<'_> {
    pub(super) fn network(&mut self, raw: &RawNetwork) -> Option<CheckedNetwork> {
        // A key with a bad value still says which kind of network the user meant.
        let invalid = self.invalid;
        let has = |keys: &'static [&'static str]| {
            keys.iter()
                .copied()
                .find(|k| raw_has(raw, k) || invalid.contains(&format!("network.{k}")))
        };
        match (
            has(RawNetwork::MANAGED_KEYS),
            has(RawNetwork::EXISTING_KEYS),
        ) {
            (Some(managed), Some(existing)) => {
                let span = raw_span(raw, existing).unwrap_or(raw.span.clone());
                self.push(
                    Problem::error(
                        "lmi::network::conflicting_keys",
                        span,
                        format!("`network.{existing}` can't be used with `network.{managed}`"),
                    )
                    .label("this is for an existing VPC")
                    .help("either describe a VPC for lmi to create (cidr, azs, egress, ...) or name an existing one (vpc_id, subnet_ids, security_group_ids), not both"),
                );
                None
            }
            (_, Some(_)) => self.existing_network(raw),
            (Some(_), None) => self.managed_network(raw),
            (None, None) => {
                self.push(
                    Problem::error(
                        "lmi::config::missing_key",
                        raw.span.clone(),
                        "`[network]` needs `cidr` or `vpc_id`",
                    )
                    .label("empty network")
                    .help("cidr = \"10.0.0.0/16\" makes lmi create a VPC; vpc_id = \"vpc-…\" uses an existing one"),
                );
                None
            }
        }
    }

    fn managed_network(&mut self, raw: &RawNetwork) -> Option<CheckedNetwork> {
        let cidr_value = raw.cidr.as_ref().or_else(|| {
            self.missing(
                "network.cidr",
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.clone(),
                    "missing key `network.cidr`",
                )
                .label("a VPC lmi creates needs a CIDR")
                .help("e.g. cidr = \"10.0.0.0/16\""),
            );
            None
        });
        let cidr = cidr_value.and_then(|c| self.vpc_cidr(c));
        let azs = match &raw.azs {
            Some(azs) => self.in_range(azs, limits::AZS, "`network.azs`", "")? as u8,
            None => 3,
        };
        let egress = match raw.egress.as_ref() {
            Some(e) => self.one_of(e, &["nat", "endpoints"], "egress")?,
            None => "nat",
        };
        let per_az = match (&raw.nat_gateways, egress) {
            (Some(n), "nat") => {
                self.one_of(n, &["single", "per_az"], "NAT gateway layout")? == "per_az"
            }
            (Some(n), _) => {
                self.push(
                    Problem::error(
                        "lmi::network::nat_without_nat",
                        n.span(),
                        "`nat_gateways` needs egress = \"nat\"",
                    )
                    .label("no NAT gateway with egress = \"endpoints\""),
                );
                false
            }
            (None, _) => false,
        };
        let egress = if egress == "nat" {
            Egress::Nat { per_az }
        } else {
            Egress::Endpoints
        };
        let interface_endpoints = self.interface_endpoints(raw);
        let gateway_endpoints = self.gateway_endpoints(raw);

        let cidr = cidr?;
        let public_count = if matches!(egress, Egress::Nat { .. }) {
            azs as usize
        } else {
            0
        };
        if public_count == 0
            && let Some(public) = &raw.public_subnets
        {
            self.push(
                Problem::error(
                    "lmi::network::public_without_nat",
                    public.span(),
                    "public subnets are only created for NAT gateways",
                )
                .label("not used with egress = \"endpoints\"")
                .help("remove public_subnets, or use egress = \"nat\""),
            );
            return None;
        }
        let (public, private) = self.subnets(raw, cidr, azs as usize, public_count)?;
        Some(CheckedNetwork {
            model: Network::Managed(ManagedNetwork {
                cidr,
                azs,
                egress,
                public_subnets: public,
                private_subnets: private,
                interface_endpoints,
                gateway_endpoints,
            }),
        })
    }

    fn vpc_cidr(&mut self, value: &S<String>) -> Option<Ipv4Net> {
        let cidr = self.cidr(value)?;
        if !limits::VPC_PREFIX.contains(&cidr.prefix_len()) {
            self.push(
                Problem::error(
                    "lmi::network::cidr",
                    value.span(),
                    format!(
                        "a VPC's prefix must be /16 to /28, got /{}",
                        cidr.prefix_len()
                    ),
                )
                .label("AWS rejects this VPC size"),
            );
            return None;
        }
        Some(cidr)
    }

    fn cidr(&mut self, value: &S<String>) -> Option<Ipv4Net> {
        let text = value.get_ref();
        match text.parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                self.push(
                    Problem::error(
                        "lmi::network::cidr",
                        value.span(),
                        format!("`{text}` has host bits set"),
                    )
                    .label(format!("did you mean {}?", net.trunc())),
                );
                None
            }
            Err(_) => {
                self.push(
                    Problem::error(
                        "lmi::network::cidr",
                        value.span(),
                        format!("`{text}` is not an IPv4 CIDR block"),
                    )
                    .label("expected e.g. 10.0.0.0/16"),
                );
                None
            }
        }
    }

    /// Public and private subnets: as written, or carved out of the VPC in equal blocks.
    fn subnets(
        &mut self,
        raw: &RawNetwork,
        vpc: Ipv4Net,
        azs: usize,
        public_count: usize,
    ) -> Option<(Vec<Ipv4Net>, Vec<Ipv4Net>)> {
        let given_public =
            self.subnet_list(raw.public_subnets.as_ref(), public_count, vpc, "public")?;
        let given_private = self.subnet_list(raw.private_subnets.as_ref(), azs, vpc, "private")?;
        // Explicit subnets must not overlap each other.
        let spanned: Vec<(Ipv4Net, std::ops::Range<usize>)> =
            [&raw.public_subnets, &raw.private_subnets]
                .into_iter()
                .flatten()
                .flat_map(|list| list.get_ref().iter())
                .filter_map(|s| s.get_ref().parse().ok().map(|n| (n, s.span())))
                .collect();
        for (i, (a, _)) in spanned.iter().enumerate() {
            for (b, span) in &spanned[i + 1..] {
                if a.contains(&b.network()) || b.contains(&a.network()) {
                    self.push(
                        Problem::error(
                            "lmi::network::subnet_overlap",
                            span.clone(),
                            format!("subnet {b} overlaps {a}"),
                        )
                        .label("overlaps another subnet"),
                    );
                    return None;
                }
            }
        }
        // Carve what was not given from the blocks the given ones don't overlap.
        let needed = (public_count - given_public.as_ref().map_or(0, |_| public_count))
            + (azs - given_private.as_ref().map_or(0, |_| azs));
        let given: Vec<Ipv4Net> = spanned.iter().map(|(n, _)| *n).collect();
        let mut carved = Vec::new();
        if needed > 0 {
            let blocks = (public_count + azs).next_power_of_two();
            let prefix = vpc.prefix_len() + blocks.trailing_zeros() as u8;
            if prefix > limits::SUBNET_PREFIX_MAX {
                let span = raw.cidr.as_ref().map_or(raw.span.clone(), |c| c.span());
                self.push(
                    Problem::error(
                        "lmi::network::too_small",
                        span,
                        format!(
                            "{vpc} is too small for {} subnets of at least /{}",
                            public_count + azs,
                            limits::SUBNET_PREFIX_MAX
                        ),
                    )
                    .label("not enough address space")
                    .help("use a larger VPC (e.g. a /16), or fewer AZs"),
                );
                return None;
            }
            carved = vpc
                .subnets(prefix)
                .ok()?
                .filter(|block| {
                    !given
                        .iter()
                        .any(|g| g.contains(&block.network()) || block.contains(&g.network()))
                })
                .take(needed)
                .collect();
            if carved.len() < needed {
                let span = raw.cidr.as_ref().map_or(raw.span.clone(), |c| c.span());
                self.push(
                    Problem::error(
                        "lmi::network::too_small",
                        span,
                        format!("{vpc} has no room left for {needed} more subnets of /{prefix}"),
                    )
                    .label("not enough address space")
                    .help("list every subnet explicitly, or use a larger VPC"),
                );
                return None;
            }
        }
        let mut carved = carved.into_iter();
        let public = given_public.unwrap_or_else(|| carved.by_ref().take(public_count).collect());
        let private = given_private.unwrap_or_else(|| carved.by_ref().take(azs).collect());
        Some((public, private))
    }

    /// Subnets given in lmi.toml: `None` when absent, one per AZ, each inside the VPC.
    fn subnet_list(
        &mut self,
        list: Option<&S<Vec<S<String>>>>,
        count: usize,
        vpc: Ipv4Net,
        kind: &str,
    ) -> Option<Option<Vec<Ipv4Net>>> {
        let Some(list) = list else { return Some(None) };
        if count > 0 && list.get_ref().len() != count {
            self.push(
                Problem::error(
                    "lmi::network::subnet_count",
                    list.span(),
                    format!(
                        "{} {kind} subnets given for {count} AZs",
                        list.get_ref().len()
                    ),
                )
                .label(format!("expected {count}, one per AZ")),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for item in list.get_ref() {
            let Some(net) = self.cidr(item) else {
                ok = false;
                continue;
            };
            if !vpc.contains(&net) {
                ok = false;
                self.push(
                    Problem::error(
                        "lmi::network::subnet_outside_vpc",
                        item.span(),
                        format!("subnet {net} is not inside the VPC {vpc}"),
                    )
                    .label("outside the VPC's CIDR"),
                );
            } else if net.prefix_len() > limits::SUBNET_PREFIX_MAX {
                ok = false;
                self.push(
                    Problem::error(
                        "lmi::network::too_small",
                        item.span(),
                        format!("subnet {net} is smaller than AWS's minimum /28"),
                    )
                    .label("too small"),
                );
            }
            out.push(net);
        }
        ok.then_some(Some(out))
    }

    fn interface_endpoints(&mut self, raw: &RawNetwork) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in raw.interface_endpoints.iter().flat_map(|l| l.get_ref()) {
            let name = item.get_ref();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !valid {
                self.push(
                    Problem::error(
                        "lmi::network::endpoint",
                        item.span(),
                        format!("`{name}` is not a service name"),
                    )
                    .label("expected a short service name such as logs, xray, sts, ecr.api")
                    .help("lmi prefixes it with com.amazonaws.REGION."),
                );
            } else if let Some(short) = name
                .strip_prefix("com.amazonaws.")
                .and_then(|rest| rest.split_once('.'))
                .map(|(_region, service)| service)
            {
                self.push(
                    Problem::error(
                        "lmi::network::endpoint",
                        item.span(),
                        format!("`{name}` is a full service name"),
                    )
                    .label("expected the short name")
                    .help(format!(
                        "write \"{short}\": lmi prefixes it with com.amazonaws.REGION. itself"
                    )),
                );
            } else if out.contains(name) {
                self.push(
                    Problem::error(
                        "lmi::network::endpoint",
                        item.span(),
                        format!("`{name}` is listed twice"),
                    )
                    .label("duplicate"),
                );
            } else if name == "s3" || name == "dynamodb" {
                self.push(
                    Problem::warning(
                        "lmi::network::endpoint",
                        item.span(),
                        format!("`{name}` as an interface endpoint is billed per hour"),
                    )
                    .label("a gateway endpoint is free")
                    .help(format!("move it to gateway_endpoints = [\"{name}\"]")),
                );
                out.push(name.clone());
            } else {
                out.push(name.clone());
            }
        }
        out
    }

    fn gateway_endpoints(&mut self, raw: &RawNetwork) -> Vec<GatewayEndpoint> {
        let mut out = Vec::new();
        for item in raw.gateway_endpoints.iter().flat_map(|l| l.get_ref()) {
            let endpoint = match self.one_of(item, &["s3", "dynamodb"], "gateway endpoint") {
                Some("s3") => GatewayEndpoint::S3,
                Some(_) => GatewayEndpoint::Dynamodb,
                None => continue,
            };
            if out.contains(&endpoint) {
                self.push(
                    Problem::error(
                        "lmi::network::endpoint",
                        item.span(),
                        format!("`{}` is listed twice", item.get_ref()),
                    )
                    .label("duplicate"),
                );
            } else {
                out.push(endpoint);
            }
        }
        out
    }

    fn existing_network(&mut self, raw: &RawNetwork) -> Option<CheckedNetwork> {
        let vpc_id = raw.vpc_id.as_ref().or_else(|| {
            self.missing(
                "network.vpc_id",
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.clone(),
                    "missing key `network.vpc_id`",
                )
                .label("an existing network needs its VPC id"),
            );
            None
        });
        let vpc_id = vpc_id.and_then(|v| self.aws_id(v, "vpc"));
        let subnets = raw.subnet_ids.as_ref().or_else(|| {
            self.missing(
                "network.subnet_ids",
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.clone(),
                    "missing key `network.subnet_ids`",
                )
                .label("the capacity provider needs the subnets its instances run in")
                .help("private subnets with a route out (NAT) or logs and xray endpoints"),
            );
            None
        });
        let subnet_ids =
            subnets.and_then(|s| self.id_list(s, "subnet", limits::PROVIDER_SUBNETS.clone()));
        let security_group_ids = match &raw.security_group_ids {
            Some(list) => self.id_list(list, "sg", 0..=limits::PROVIDER_SECURITY_GROUPS_MAX)?,
            None => Vec::new(),
        };
        Some(CheckedNetwork {
            model: Network::Existing(ExistingNetwork {
                vpc_id: vpc_id?,
                subnet_ids: subnet_ids?,
                security_group_ids,
            }),
        })
    }

    fn id_list(
        &mut self,
        list: &S<Vec<S<String>>>,
        prefix: &str,
        count: std::ops::RangeInclusive<usize>,
    ) -> Option<Vec<String>> {
        let n = list.get_ref().len();
        if !count.contains(&n) {
            self.push(
                Problem::error(
                    "lmi::network::id_count",
                    list.span(),
                    format!(
                        "a capacity provider takes {} to {} {prefix} ids, got {n}",
                        count.start(),
                        count.end()
                    ),
                )
                .label("wrong number of ids"),
            );
            return None;
        }
        let ids: Vec<Option<String>> = list
            .get_ref()
            .iter()
            .map(|id| self.aws_id(id, prefix))
            .collect();
        let ids: Option<Vec<String>> = ids.into_iter().collect();
        let ids = ids?;
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                self.push(
                    Problem::error(
                        "lmi::network::duplicate_id",
                        list.get_ref()[i].span(),
                        format!("`{id}` is listed twice"),
                    )
                    .label("duplicate"),
                );
                return None;
            }
        }
        Some(ids)
    }

    /// An EC2 id such as `vpc-0abc…`.
    fn aws_id(&mut self, value: &S<String>, prefix: &str) -> Option<String> {
        let v = value.get_ref();
        let valid = v
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if valid {
            Some(v.clone())
        } else {
            self.push(
                Problem::error(
                    "lmi::network::id",
                    value.span(),
                    format!("`{v}` is not a {prefix} id"),
                )
                .label(format!("expected {prefix}-0123abcd…")),
            );
            None
        }
    }

    /// An LMI function in a network with no way out loses its logs and traces without a word:
    /// the reference experiment saw no log events for exactly this reason (LMI-FACTS "Network").
    ///
    /// Read from the functions as written, so that the mistake shows even when an LMI function
    /// has other errors: all of them in one run.
    pub(super) fn egress(&mut self, raw: &RawConfig) {
        let Some(network) = &raw.network else { return };
        let Some(egress) = &network.egress else {
            return;
        };
        if egress.get_ref() != "endpoints" {
            return;
        }
        let managed: Vec<&RawFunction> = raw
            .functions
            .iter()
            .filter(|f| f.capacity_provider.is_some())
            .collect();
        if managed.is_empty() {
            return;
        }
        let listed: Vec<&str> = network
            .interface_endpoints
            .iter()
            .flat_map(|l| l.get_ref())
            .map(|e| e.get_ref().as_str())
            .collect();
        let mut missing = Vec::new();
        if !listed.contains(&"logs") {
            missing.push("logs");
        }
        if managed
            .iter()
            .any(|f| f.tracing.as_ref().is_some_and(|t| *t.get_ref()))
            && !listed.contains(&"xray")
        {
            missing.push("xray");
        }
        if missing.is_empty() {
            return;
        }
        let span = network
            .interface_endpoints
            .as_ref()
            .map_or(egress.span(), |l| l.span());
        self.push(
            Problem::error(
                "lmi::network::no_egress",
                span,
                format!(
                    "the private subnets have no way out for {}",
                    missing.join(" and ")
                ),
            )
            .label(format!("missing {}", missing.join(", ")))
            .help(format!(
                "with egress = \"endpoints\" there is no NAT, so telemetry can't leave the private subnets: function `{}` would run but its logs and traces would never arrive. Add interface_endpoints = [{}] or use egress = \"nat\"",
                managed[0].name.get_ref(),
                ["logs", "xray"]
                    .iter()
                    .filter(|e| missing.contains(e) || listed.contains(e))
                    .chain(
                        // Keep the user's other endpoints, but only valid, distinct short names:
                        // the suggestion must itself validate.
                        listed
                            .iter()
                            .filter(|e| !["logs", "xray", "s3", "dynamodb"].contains(e))
                            .filter(|e| {
                                !e.starts_with("com.")
                                    && e.chars().all(|c| {
                                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
                                    })
                            })
                            .enumerate()
                            .filter(|(i, e)| !listed[..*i].contains(e))
                            .map(|(_, e)| e),
                    )
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
}

fn raw_has(raw: &RawNetwork, key: &str) -> bool {
    raw_span(raw, key).is_some()
}

/// The span of a key's value in `[network]`, for keys read as strings or lists.
fn raw_span(raw: &RawNetwork, key: &str) -> Option<std::ops::Range<usize>> {
    match key {
        "cidr" => raw.cidr.as_ref().map(|v| v.span()),
        "azs" => raw.azs.as_ref().map(|v| v.span()),
        "egress" => raw.egress.as_ref().map(|v| v.span()),
        "nat_gateways" => raw.nat_gateways.as_ref().map(|v| v.span()),
        "interface_endpoints" => raw.interface_endpoints.as_ref().map(|v| v.span()),
        "gateway_endpoints" => raw.gateway_endpoints.as_ref().map(|v| v.span()),
        "public_subnets" => raw.public_subnets.as_ref().map(|v| v.span()),
        "private_subnets" => raw.private_subnets.as_ref().map(|v| v.span()),
        "vpc_id" => raw.vpc_id.as_ref().map(|v| v.span()),
        "subnet_ids" => raw.subnet_ids.as_ref().map(|v| v.span()),
        "security_group_ids" => raw.security_group_ids.as_ref().map(|v| v.span()),
        _ => None,
    }
}
