//! Crash safety: `kill -9` of lmi at random points of apply and of destroy. After each kill the
//! next apply converges (`plan --detailed-exitcode` says so, every address has exactly one
//! resource, and the VPC has the DNS attributes the plan can't see), the next destroy leaves
//! nothing of the stack (no tagged resource, no role under its path, not its lock), and nothing
//! lmi created was ever untagged.
//!
//! Random but reproducible: the failure message names the seed; `LMI_CRASH_SEED=N` replays a
//! run and `LMI_CRASH_TRIALS=N` changes the number of trials (default 20). Kill points the
//! random trials hit only now and then have deterministic tests of their own, at the end.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Output, Target, by_address, example, inventory, remains, runtime, unique_stack};

/// Added latency on the writes of apply and destroy, so that a kill lands inside real work
/// (a request in flight, a wait) rather than between two instant calls.
const LATENCIES: &str = r#"{"latency_s": {
    "ec2:CreateVpc": 0.1, "ec2:ModifyVpcAttribute": 0.05, "ec2:CreateSubnet": 0.1,
    "ec2:CreateInternetGateway": 0.1, "ec2:AttachInternetGateway": 0.05,
    "ec2:AllocateAddress": 0.1, "ec2:CreateNatGateway": 0.3, "ec2:CreateRouteTable": 0.1,
    "ec2:CreateRoute": 0.05, "ec2:AssociateRouteTable": 0.05, "ec2:CreateSecurityGroup": 0.1,
    "ec2:AuthorizeSecurityGroupEgress": 0.05, "ec2:RevokeSecurityGroupEgress": 0.05,
    "iam:CreateRole": 0.15, "iam:AttachRolePolicy": 0.05,
    "lambda:CreateCapacityProvider": 0.3, "lambda:CreateFunction": 0.2,
    "lambda:PublishVersion": 0.1, "lambda:PutFunctionScalingConfig": 0.05,
    "ec2:DeleteNatGateway": 0.2, "ec2:ReleaseAddress": 0.1, "ec2:DeleteSubnet": 0.1,
    "ec2:DisassociateRouteTable": 0.05, "ec2:DeleteRouteTable": 0.05,
    "ec2:DeleteSecurityGroup": 0.1, "ec2:DetachInternetGateway": 0.05,
    "ec2:DeleteInternetGateway": 0.05, "ec2:DeleteVpc": 0.1,
    "iam:DetachRolePolicy": 0.05, "iam:DeleteRole": 0.1,
    "lambda:DeleteFunction": 0.2, "lambda:DeleteCapacityProvider": 0.2
}}"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// A run of lmi killed with SIGKILL after `after`, unless it finished first.
struct Killed {
    after: Duration,
    /// Whether the kill found it running (else it had exited, with `code`).
    killed: bool,
    code: Option<i32>,
    log: String,
}

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.killed {
            write!(f, "killed after {} ms", self.after.as_millis())?;
        } else {
            write!(
                f,
                "finished (exit {:?}) before the kill at {} ms",
                self.code,
                self.after.as_millis()
            )?;
        }
        let tail: Vec<&str> = self.log.lines().rev().take(12).collect();
        writeln!(f, "; its last lines:")?;
        for line in tail.into_iter().rev() {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// Starts `lmi ARGS` as a user would, its output going to `killed.log` in `dir`.
fn spawn(target: &Target, dir: &Path, args: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("killed.log")).expect("create the log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmi"));
    cmd.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    for (k, v) in target.env() {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start lmi")
}

/// `kill -9`s `child`, which started `after` ago, unless it has exited.
fn kill(target: &Target, dir: &Path, mut child: Child, after: Duration) -> Killed {
    let running = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let status = child.wait().expect("wait for lmi");
    // SIGKILL is 9.
    let killed = running && status.signal() == Some(9);
    // What it had sent still runs on the server: let that finish before anyone looks.
    if let Some(local) = target.local {
        local.settle(Duration::from_secs(30));
    }
    Killed {
        after,
        killed,
        code: status.code(),
        log: std::fs::read_to_string(dir.join("killed.log")).unwrap_or_default(),
    }
}

/// Starts `lmi ARGS`, sleeps `after`, and kills it.
fn kill_after(target: &Target, dir: &Path, args: &[&str], after: Duration) -> Killed {
    let child = spawn(target, dir, args);
    std::thread::sleep(after);
    kill(target, dir, child, after)
}

fn expect(out: Output, code: i32, context: &str) -> Output {
    assert_eq!(
        out.code, code,
        "{context}\nexit code\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout, out.stderr
    );
    out
}

/// A uniformly random instant in [0, within].
fn random_point(rng: &mut fastrand::Rng, within: Duration) -> Duration {
    within.mul_f64(rng.f64())
}

#[test]
fn kill_9_during_apply_or_destroy_then_apply_converges_and_destroy_leaves_nothing() {
    if common::real_aws() {
        // Hundreds of resource creations killed mid-flight: a job for the local AWS.
        return;
    }
    let seed: u64 = env_or("LMI_CRASH_SEED", fastrand::u64(..));
    let trials: usize = env_or("LMI_CRASH_TRIALS", 20);
    let mut rng = fastrand::Rng::with_seed(seed);
    let replay = format!("seed {seed} (replay: LMI_CRASH_SEED={seed} LMI_CRASH_TRIALS={trials})");
    eprintln!("crash safety: {replay}");

    let target = Target::private();
    let local = target.local.expect("a local AWS");
    local.configure(LATENCIES);
    let rt = runtime();
    let stack = unique_stack("crash");
    let project = example("cold-start", &stack);
    let dir = project.path();

    // What the account has before lmi: moto's default VPC, its subnets, tables and group.
    let before: BTreeSet<(String, String)> = rt
        .block_on(inventory(&target))
        .iter()
        .map(common::Found::key)
        .collect();
    let untagged = |context: &str| {
        let found = rt.block_on(inventory(&target));
        let bad: Vec<String> = common::untagged_new(&before, &found, &stack)
            .into_iter()
            .map(|f| f.to_string())
            .collect();
        assert!(
            bad.is_empty(),
            "{context}: resources created without the tag lmi:stack={stack}:\n  {}",
            bad.join("\n  ")
        );
        found
    };
    let addresses = common::planned_addresses(&target, dir);
    // The stack has its network, roles, a capacity provider and both kinds of function.
    for kind in [
        "vpc.",
        "nat_gateway.",
        "role.",
        "capacity_provider.",
        "function.",
    ] {
        assert!(
            addresses.iter().any(|a| a.starts_with(kind)),
            "{addresses:?}"
        );
    }
    let converged = |context: &str| {
        expect(
            target.lmi(dir, &["plan", "--detailed-exitcode"]),
            0,
            context,
        );
        let found = untagged(context);
        let mine = by_address(&found, &stack);
        let duplicated: BTreeMap<&String, &Vec<String>> =
            mine.iter().filter(|(_, ids)| ids.len() > 1).collect();
        assert!(
            duplicated.is_empty(),
            "{context}: duplicated resources: {duplicated:#?}"
        );
        let have: BTreeSet<String> = mine.keys().filter(|a| !a.is_empty()).cloned().collect();
        assert_eq!(have, addresses, "{context}: the stack's resources");
        // What the plan can't see: the VPC's DNS attributes, set after CreateVpc.
        let ec2 = aws_sdk_ec2::Client::new(&rt.block_on(target.sdk()));
        let vpc = rt.block_on(stack_vpc(&ec2, &stack));
        assert_eq!(
            rt.block_on(dns_attributes(&ec2, &vpc)),
            (Some(true), Some(true)),
            "{context}: DNS support and DNS hostnames of {vpc}"
        );
    };
    let gone = |context: &str| {
        let left = rt.block_on(remains(&target, &stack));
        assert!(
            left.is_empty(),
            "{context}: left after destroy:\n  {}",
            left.join("\n  ")
        );
        untagged(context);
    };

    // One full apply and destroy: their durations bound the kill points.
    let started = Instant::now();
    expect(
        target.lmi(dir, &["apply", "--auto-approve"]),
        0,
        "the first apply",
    );
    let apply_time = started.elapsed();
    converged("after the first apply");
    let started = Instant::now();
    expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "the first destroy",
    );
    let destroy_time = started.elapsed();
    gone("after the first destroy");
    eprintln!(
        "a full apply takes {} ms, a full destroy {} ms",
        apply_time.as_millis(),
        destroy_time.as_millis()
    );

    let (mut applies_killed, mut destroys_killed) = (0, 0);
    let test_started = Instant::now();
    for trial in 1..=trials {
        let apply = kill_after(
            &target,
            dir,
            &["apply", "--auto-approve"],
            random_point(&mut rng, apply_time),
        );
        applies_killed += usize::from(apply.killed);
        let context = format!("{replay}, trial {trial}: apply {apply}");
        untagged(&format!("{context}\nafter the kill"));
        expect(
            target.lmi(dir, &["apply", "--auto-approve"]),
            0,
            &format!("{context}\nthe next apply"),
        );
        converged(&format!("{context}\nafter the next apply"));

        let destroy = kill_after(
            &target,
            dir,
            &["destroy", "--auto-approve"],
            random_point(&mut rng, destroy_time),
        );
        destroys_killed += usize::from(destroy.killed);
        let context = format!("{replay}, trial {trial}: destroy {destroy}");
        untagged(&format!("{context}\nafter the kill"));
        expect(
            target.lmi(dir, &["destroy", "--auto-approve"]),
            0,
            &format!("{context}\nthe next destroy"),
        );
        gone(&format!("{context}\nafter the next destroy"));
        eprintln!(
            "trial {trial}: apply {} at {} ms, destroy {} at {} ms: ok",
            if apply.killed { "killed" } else { "done" },
            apply.after.as_millis(),
            if destroy.killed { "killed" } else { "done" },
            destroy.after.as_millis(),
        );
    }
    eprintln!(
        "{trials} trials in {} s: {applies_killed} applies and {destroys_killed} destroys killed mid-run",
        test_started.elapsed().as_secs()
    );
    // The kill points are uniform over a full run: most must land inside one, or this test
    // tests nothing.
    assert!(
        applies_killed * 2 >= trials && destroys_killed * 2 >= trials,
        "{replay}: too few kills landed mid-run: {applies_killed} applies and {destroys_killed} destroys of {trials}"
    );
}

// Kill points the random trials hit only now and then, made deterministic with the local
// AWS's latency and fault knobs.

/// An apply killed right after taking the lock, before creating anything, leaves only the
/// lock: the next destroy must take it over and remove it, not say "nothing to destroy" and
/// leave a role tagged with the stack (the same state as a destroy killed after its last
/// delete).
#[test]
fn a_destroy_after_a_run_killed_holding_the_lock_removes_the_lock() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("a local AWS");
    let rt = runtime();
    let stack = unique_stack("lockleft");
    let project = example("cold-start", &stack);
    let dir = project.path();
    // The lock's own read-back (`iam:ListRoleTags`, apply's first call after the lock's
    // `iam:CreateRole`; planning reads no role tags while the stack has no role) takes 3 s:
    // the kill lands there.
    local.configure(r#"{"latency_s": {"iam:ListRoleTags": 3.0}}"#);
    local.clear_calls();
    let started = Instant::now();
    let child = spawn(&target, dir, &["apply", "--auto-approve"]);
    while !local
        .calls_detailed()
        .iter()
        .any(|c| c["op"] == "iam:CreateRole" && c["status"] == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = kill(&target, dir, child, started.elapsed());
    assert!(killed.killed, "apply {killed}");
    local.configure(r#"{"latency_s": {"iam:ListRoleTags": null}}"#);
    let left = rt.block_on(remains(&target, &stack));
    assert!(
        left.len() == 1 && left[0].contains(&format!("{stack}-lock")),
        "only the lock is left: {left:#?}"
    );

    let destroyed = expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "destroy",
    );
    let left = rt.block_on(remains(&target, &stack));
    assert!(
        left.is_empty(),
        "left after destroy:\n  {}\n--- destroy said\n{}{}",
        left.join("\n  "),
        destroyed.stdout,
        destroyed.stderr
    );
}

/// A destroy killed after `DeleteCapacityProvider` leaves the provider `Deleting`; the next
/// destroy lists it, and it is gone when lmi reads its tags. Gone is what destroy wants: that
/// must not be an error.
#[test]
fn a_capacity_provider_vanishing_while_destroy_looks_at_it_is_not_an_error() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("a local AWS");
    let rt = runtime();
    let stack = unique_stack("vanish");
    let project = common::project(&format!(
        r#"
[stack]
name = "{stack}"

[network]
cidr = "10.43.0.0/16"
azs = 2
egress = "nat"

[capacity_providers.main]
"#
    ));
    let dir = project.path();
    expect(target.lmi(dir, &["apply", "--auto-approve"]), 0, "apply");
    // Deleting for 1 s; every ListTags answered after 2 s.
    local.configure(
        r#"{"capacity_provider_delete_delay_s": 1.0, "latency_s": {"lambda:ListTags": 2.0}}"#,
    );
    let config = rt.block_on(target.sdk());
    let lambda = aws_sdk_lambda::Client::new(&config);
    rt.block_on(
        lambda
            .delete_capacity_provider()
            .capacity_provider_name(format!("{stack}-main"))
            .send(),
    )
    .expect("DeleteCapacityProvider");

    expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "destroy while the provider is Deleting",
    );
    local.configure(r#"{"latency_s": {"lambda:ListTags": null}}"#);
    let left = rt.block_on(remains(&target, &stack));
    assert!(left.is_empty(), "left after destroy: {left:#?}");
}

/// A stack with just a network: a VPC, an internet gateway, public and private subnets, a NAT.
fn network(stack: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"

[network]
cidr = "10.44.0.0/16"
azs = 2
egress = "nat"
"#
    )
}

/// Kills an apply at its first attempt of `operation`, which fails (an injected 500, so it
/// changes nothing): the state a `kill -9` between a create's calls leaves. Then a second
/// apply must finish the job.
fn apply_killed_at(target: &Target, dir: &Path, operation: &str) {
    let local = target.local.expect("a local AWS");
    local.configure(&format!(
        r#"{{"fault": {{"error_rate": 1.0, "seed": 1, "operations": ["{operation}"]}}}}"#
    ));
    local.clear_calls();
    let started = Instant::now();
    let child = spawn(target, dir, &["apply", "--auto-approve"]);
    while !local
        .calls_detailed()
        .iter()
        .any(|c| c["op"] == operation && !c["injected"].is_null())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "apply never reached {operation}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = kill(target, dir, child, started.elapsed());
    local.configure(r#"{"fault": {"error_rate": 0.0}}"#);
    assert!(killed.killed, "apply {killed}");
    expect(
        target.lmi(dir, &["apply", "--auto-approve"]),
        0,
        &format!("the apply after one killed at {operation}"),
    );
    expect(
        target.lmi(dir, &["plan", "--detailed-exitcode"]),
        0,
        &format!("after an apply killed at {operation} and one that finished"),
    );
}

/// CreateInternetGateway, then AttachInternetGateway: stopped between the two, the next apply
/// must attach the gateway it finds (a detached one gives the NAT, and so the functions, no
/// way out).
#[test]
fn an_internet_gateway_created_but_not_attached_is_attached_by_the_next_apply() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let rt = runtime();
    let stack = unique_stack("igw");
    let project = common::project(&network(&stack));
    let dir = project.path();
    apply_killed_at(&target, dir, "ec2:AttachInternetGateway");

    let config = rt.block_on(target.sdk());
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let tag = |stack: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name("tag:lmi:stack")
            .values(stack)
            .build()
    };
    let (vpc, attached) = rt.block_on(async {
        let vpcs = ec2
            .describe_vpcs()
            .filters(tag(&stack))
            .send()
            .await
            .unwrap();
        let igws = ec2
            .describe_internet_gateways()
            .filters(tag(&stack))
            .send()
            .await
            .unwrap();
        let attached: Vec<String> = igws
            .internet_gateways()
            .iter()
            .flat_map(|g| g.attachments())
            .filter_map(|a| a.vpc_id().map(str::to_string))
            .collect();
        (vpcs.vpcs()[0].vpc_id().unwrap().to_string(), attached)
    });
    assert_eq!(attached, [vpc], "the internet gateway's attachments");
    expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "destroy",
    );
}

/// CreateVpc, then ModifyVpcAttribute for DNS support and DNS hostnames: stopped between them,
/// the next apply must turn them on (interface endpoints' private DNS needs both).
#[test]
fn a_vpc_created_without_its_dns_attributes_gets_them_from_the_next_apply() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let rt = runtime();
    let stack = unique_stack("dns");
    let project = common::project(&network(&stack));
    let dir = project.path();
    apply_killed_at(&target, dir, "ec2:ModifyVpcAttribute");
    let config = rt.block_on(target.sdk());
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = rt.block_on(stack_vpc(&ec2, &stack));
    assert_eq!(
        rt.block_on(dns_attributes(&ec2, &vpc)),
        (Some(true), Some(true)),
        "DNS support and DNS hostnames of {vpc}"
    );
    expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "destroy",
    );
}

/// The id of the stack's VPC.
async fn stack_vpc(ec2: &aws_sdk_ec2::Client, stack: &str) -> String {
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:lmi:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVpcs");
    assert_eq!(vpcs.vpcs().len(), 1, "{stack}'s VPCs: {:?}", vpcs.vpcs());
    vpcs.vpcs()[0].vpc_id().unwrap_or_default().to_string()
}

/// (enableDnsSupport, enableDnsHostnames) of a VPC.
async fn dns_attributes(ec2: &aws_sdk_ec2::Client, vpc: &str) -> (Option<bool>, Option<bool>) {
    use aws_sdk_ec2::types::VpcAttributeName;
    let get = async |name| {
        ec2.describe_vpc_attribute()
            .vpc_id(vpc)
            .attribute(name)
            .send()
            .await
            .expect("DescribeVpcAttribute")
    };
    let support = get(VpcAttributeName::EnableDnsSupport).await;
    let hostnames = get(VpcAttributeName::EnableDnsHostnames).await;
    (
        support.enable_dns_support().and_then(|a| a.value()),
        hostnames.enable_dns_hostnames().and_then(|a| a.value()),
    )
}
