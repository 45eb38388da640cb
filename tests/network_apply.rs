//! plan, apply and destroy of networks and IAM roles on the local AWS, checked with
//! independent SDK calls: what lmi says it did must be what AWS has.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Target, example, project, runtime, unique_stack};

/// The `[stack]` and `[network]` sections of an example: the part of a stack this issue owns.
fn network_only(example_dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(example_dir.join("lmi.toml")).expect("read");
    let mut keep = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            keep = line == "[stack]" || line == "[network]";
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn tag(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:lmi:stack")
        .values(stack)
        .build()
}

/// Every EC2 resource and IAM role still tagged with the stack, as `kind id`.
async fn tagged(target: &Target, stack: &str) -> Vec<String> {
    let config = target.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let mut out = Vec::new();
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        vpcs.vpcs()
            .iter()
            .map(|v| format!("vpc {}", v.vpc_id().unwrap_or_default())),
    );
    let subnets = ec2
        .describe_subnets()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        subnets
            .subnets()
            .iter()
            .map(|s| format!("subnet {}", s.subnet_id().unwrap_or_default())),
    );
    let igws = ec2
        .describe_internet_gateways()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        igws.internet_gateways()
            .iter()
            .map(|g| format!("igw {}", g.internet_gateway_id().unwrap_or_default())),
    );
    let tables = ec2
        .describe_route_tables()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        tables
            .route_tables()
            .iter()
            .map(|t| format!("route table {}", t.route_table_id().unwrap_or_default())),
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        nats.nat_gateways()
            .iter()
            .filter(|n| n.state().is_some_and(|s| s.as_str() != "deleted"))
            // Not every endpoint honours the tag filter on NAT gateways: check the tag too.
            .filter(|n| {
                n.tags()
                    .iter()
                    .any(|t| t.key() == Some("lmi:stack") && t.value() == Some(stack))
            })
            .map(|n| format!("nat {}", n.nat_gateway_id().unwrap_or_default())),
    );
    let eips = ec2
        .describe_addresses()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        eips.addresses()
            .iter()
            .map(|a| format!("eip {}", a.allocation_id().unwrap_or_default())),
    );
    let groups = ec2
        .describe_security_groups()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        groups
            .security_groups()
            .iter()
            .map(|g| format!("sg {}", g.group_id().unwrap_or_default())),
    );
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(tag(stack))
        .send()
        .await
        .unwrap();
    out.extend(
        endpoints
            .vpc_endpoints()
            .iter()
            .filter(|e| {
                e.state()
                    .is_some_and(|s| !s.as_str().eq_ignore_ascii_case("deleted"))
            })
            .map(|e| format!("endpoint {}", e.vpc_endpoint_id().unwrap_or_default())),
    );
    let roles = iam
        .list_roles()
        .path_prefix(format!("/lmi/{stack}/"))
        .send()
        .await
        .unwrap();
    out.extend(
        roles
            .roles()
            .iter()
            .map(|r| format!("role {}", r.role_name())),
    );
    out
}

#[test]
fn example_networks_apply_converge_and_destroy() {
    let target = Target::private();
    let rt = runtime();
    for (name, expect) in [
        // VPC, IGW, 3 public + 3 private subnets, EIP, NAT, 2 route tables.
        ("cold-start", 12),
        // VPC, 3 private subnets, route table, endpoints SG, 2 interface + 2 gateway endpoints.
        ("private-endpoints", 10),
    ] {
        let stack = unique_stack("net");
        let dir = example(name, &stack);
        std::fs::write(dir.path().join("lmi.toml"), network_only(dir.path())).unwrap();

        let applied = target
            .lmi(dir.path(), &["apply", "--auto-approve"])
            .expect(0);
        assert!(
            applied.stdout.contains(&format!("{expect} created")),
            "{name}: {}",
            applied.stdout
        );
        let found = rt.block_on(tagged(&target, &stack));
        assert_eq!(found.len(), expect, "{name}: {found:?}");

        // Independent checks of what matters for LMI: DNS on, NAT available, endpoints.
        let config = rt.block_on(target.sdk());
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let vpc_id = rt.block_on(async {
            let vpcs = ec2
                .describe_vpcs()
                .filters(tag(&stack))
                .send()
                .await
                .unwrap();
            vpcs.vpcs()[0].vpc_id().unwrap().to_string()
        });
        let hostnames = rt.block_on(async {
            ec2.describe_vpc_attribute()
                .vpc_id(&vpc_id)
                .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
                .send()
                .await
                .unwrap()
                .enable_dns_hostnames()
                .and_then(|a| a.value())
        });
        assert_eq!(
            hostnames,
            Some(true),
            "{name}: DNS hostnames must be on for private DNS"
        );

        // Converged: a second apply only reads.
        if let Some(local) = target.local {
            local.clear_calls();
        }
        let again = target
            .lmi(dir.path(), &["apply", "--auto-approve"])
            .expect(0);
        assert!(
            again.stdout.contains("No changes"),
            "{name}: {}",
            again.stdout
        );
        assert!(
            again.stdout.contains("(0 writes)"),
            "{name}: {}",
            again.stdout
        );
        assert_eq!(
            target.writes(),
            Vec::<String>::new(),
            "{name}: a converged apply wrote"
        );

        target
            .lmi(dir.path(), &["destroy", "--auto-approve"])
            .expect(0);
        assert_eq!(
            rt.block_on(tagged(&target, &stack)),
            Vec::<String>::new(),
            "{name}: left behind"
        );
    }
}

const SMALL: &str = r#"
[stack]
name = "STACK"
tags = { team = "platform" }

[network]
cidr = "10.61.0.0/16"
azs = 2
egress = "nat"
interface_endpoints = ["logs"]
"#;

#[test]
fn changing_one_field_changes_only_that() {
    let target = Target::private();
    let stack = unique_stack("one");
    let dir = project(&SMALL.replace("STACK", &stack));
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);

    // Add an endpoint: exactly one resource to create.
    let text = SMALL
        .replace("STACK", &stack)
        .replace(r#"["logs"]"#, r#"["logs", "xray"]"#);
    std::fs::write(dir.path().join("lmi.toml"), &text).unwrap();
    let plan = target
        .lmi(dir.path(), &["plan", "--detailed-exitcode"])
        .expect(2);
    assert!(
        plan.stdout.contains("+ vpc_endpoint.xray"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to create, 0 to update, 0 to replace, 0 to delete"),
        "{}",
        plan.stdout
    );
    if let Some(local) = target.local {
        local.clear_calls();
    }
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    let w = target.changes();
    assert_eq!(
        w,
        vec!["ec2:CreateVpcEndpoint"],
        "only the endpoint is created"
    );

    // Change a tag: every resource is updated, in its tags only.
    let text = text.replace(r#"team = "platform""#, r#"team = "payments""#);
    std::fs::write(dir.path().join("lmi.toml"), &text).unwrap();
    let plan = target.lmi(dir.path(), &["plan", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let changes = json["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for change in changes {
        assert_eq!(change["action"], "update", "{change}");
        let fields: Vec<&str> = change["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["tags"], "{change}");
    }
    if let Some(local) = target.local {
        local.clear_calls();
    }
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    for write in target.changes() {
        assert!(
            write == "ec2:CreateTags" || write == "iam:TagRole",
            "unexpected write {write}"
        );
    }
    target
        .lmi(dir.path(), &["plan", "--detailed-exitcode"])
        .expect(0);
    target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);
}

#[test]
fn destroy_spares_lookalike_stacks_and_untagged_resources() {
    let target = Target::get();
    let rt = runtime();
    let stack = unique_stack("look");
    let lookalike = format!("{stack}-2");
    let dir = project(&SMALL.replace("STACK", &stack));
    let other = project(&SMALL.replace("STACK", &lookalike));
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    target
        .lmi(other.path(), &["apply", "--auto-approve"])
        .expect(0);
    let config = rt.block_on(target.sdk());
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let untagged = rt.block_on(async {
        let out = ec2
            .create_vpc()
            .cidr_block("10.99.0.0/16")
            .send()
            .await
            .unwrap();
        out.vpc().unwrap().vpc_id().unwrap().to_string()
    });
    let before_other = rt.block_on(tagged(&target, &lookalike));

    target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);

    assert_eq!(rt.block_on(tagged(&target, &stack)), Vec::<String>::new());
    assert_eq!(
        rt.block_on(tagged(&target, &lookalike)),
        before_other,
        "the lookalike stack was touched"
    );
    let still_there = rt.block_on(async {
        ec2.describe_vpcs()
            .vpc_ids(&untagged)
            .send()
            .await
            .map(|o| o.vpcs().len())
            .unwrap_or(0)
    });
    assert_eq!(still_there, 1, "an untagged VPC was deleted");

    target
        .lmi(other.path(), &["destroy", "--auto-approve"])
        .expect(0);
    rt.block_on(async { ec2.delete_vpc().vpc_id(&untagged).send().await.unwrap() });
}

#[test]
fn plan_json_and_detailed_exit_codes() {
    let target = Target::get();
    let stack = unique_stack("plan");
    let dir = project(&SMALL.replace("STACK", &stack));
    let plan = target
        .lmi(dir.path(), &["plan", "--json", "--detailed-exitcode"])
        .expect(2);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    assert_eq!(json["stack"], stack);
    assert!(
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "create")
    );
    assert!(
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["address"] == "vpc.main")
    );
    // Without --detailed-exitcode, changes are not an error.
    target.lmi(dir.path(), &["plan"]).expect(0);
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    target
        .lmi(dir.path(), &["plan", "--detailed-exitcode"])
        .expect(0);
    target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve_and_writes_nothing() {
    let target = Target::get();
    let stack = unique_stack("tty");
    let dir = project(&SMALL.replace("STACK", &stack));
    let out = target.lmi(dir.path(), &["apply"]).expect(1);
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
    let rt = runtime();
    assert_eq!(rt.block_on(tagged(&target, &stack)), Vec::<String>::new());
}

#[test]
fn destroy_works_by_stack_name_without_a_config() {
    let target = Target::get();
    let stack = unique_stack("name");
    let dir = project(&SMALL.replace("STACK", &stack));
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    // The config is gone (or broken): the stack name is enough.
    std::fs::write(dir.path().join("lmi.toml"), "this is not toml [").unwrap();
    target
        .lmi(
            dir.path(),
            &["destroy", "--stack", &stack, "--auto-approve"],
        )
        .expect(0);
    assert_eq!(
        runtime().block_on(tagged(&target, &stack)),
        Vec::<String>::new()
    );
    // Destroying nothing is fine too.
    let again = target
        .lmi(
            dir.path(),
            &["destroy", "--stack", &stack, "--auto-approve"],
        )
        .expect(0);
    assert!(
        again.stdout.contains("nothing to destroy"),
        "{}",
        again.stdout
    );
}

#[test]
fn preflight_rejects_an_existing_private_subnet_with_no_route_out() {
    let target = Target::private();
    let rt = runtime();
    let config = rt.block_on(target.sdk());
    let ec2 = aws_sdk_ec2::Client::new(&config);
    // A VPC and subnet the user owns, with no NAT route and no endpoints.
    let (vpc, subnet) = rt.block_on(async {
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.98.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.98.1.0/24")
            .availability_zone("us-east-1a")
            .send()
            .await
            .unwrap();
        (
            vpc,
            subnet.subnet().unwrap().subnet_id().unwrap().to_string(),
        )
    });
    let stack = unique_stack("pre");
    let dir = project(&format!(
        r#"
[stack]
name = "{stack}"

[network]
vpc_id = "{vpc}"
subnet_ids = ["{subnet}"]

[capacity_providers.main]

[functions.lmi]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true
capacity_provider = "main"
"#
    ));
    if let Some(local) = target.local {
        local.clear_calls();
    }
    let out = target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(1);
    assert!(
        out.stderr.contains(&format!("subnet {subnet}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("rtb-"),
        "names the route table: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("NAT gateway"),
        "says how to fix it: {}",
        out.stderr
    );
    assert_eq!(
        target.writes(),
        Vec::<String>::new(),
        "the preflight runs before any write"
    );
    rt.block_on(async {
        ec2.delete_subnet().subnet_id(&subnet).send().await.unwrap();
        ec2.delete_vpc().vpc_id(&vpc).send().await.unwrap();
    });
}
