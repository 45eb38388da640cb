//! Fault tolerance: with the local AWS throttling 10% and failing 10% (HTTP 500) of the requests
//! of every service, and adding latency to all, `lmi apply`, `lmi test`, `lmi destroy` and
//! `lmi run` succeed, create every resource exactly once, and leave nothing behind.
//!
//! Lambda's Invoke is never faulted: `lmi test` invokes with the SDK's retries off on purpose
//! and counts throttles and errors as results (docs/testing.md), so a faulted invoke is a
//! failed check, not a failure of lmi.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    LocalAws, Output, Target, by_address, example, inventory, planned_addresses, remains, runtime,
    unique_stack, untagged_new,
};

/// The fault streams' seed (phase N uses SEED + N); `LMI_FAULT_SEED=N` tries another. Which
/// requests fail depends only on the order of the faultable requests, so a run is nearly
/// reproducible.
const SEED: u64 = 1;

fn seed() -> u64 {
    std::env::var("LMI_FAULT_SEED")
        .ok()
        .map(|s| s.parse().expect("LMI_FAULT_SEED is a number"))
        .unwrap_or(SEED)
}
const THROTTLE_RATE: f64 = 0.10;
const ERROR_RATE: f64 = 0.10;

/// Every Lambda operation but the invokes, from the model the local AWS names operations with
/// (botocore's): the control plane lmi deploys with, including operations it may use later.
fn lambda_control_plane() -> Vec<String> {
    let out = std::process::Command::new(common::python())
        .args([
            "-c",
            "import botocore.session, json\n\
             m = botocore.session.get_session().get_service_model('lambda')\n\
             print(json.dumps([o for o in m.operation_names if not o.startswith('Invoke')]))",
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ops: Vec<String> = serde_json::from_slice(&out.stdout).expect("operation names");
    assert!(ops.iter().any(|o| o == "CreateCapacityProvider"), "{ops:?}");
    assert!(ops.iter().all(|o| !o.starts_with("Invoke")));
    ops.into_iter().map(|o| format!("lambda:{o}")).collect()
}

/// Faults on (with a seed per phase, so each phase's stream is reproducible) or off (for the
/// test's own checks, which don't retry as lmi does).
fn faults(local: &LocalAws, seed: Option<u64>, operations: &[String]) {
    let fault = match seed {
        Some(seed) => serde_json::json!({
            "throttle_rate": THROTTLE_RATE,
            "error_rate": ERROR_RATE,
            "seed": seed,
            "operations": operations,
        }),
        None => serde_json::json!({"throttle_rate": 0.0, "error_rate": 0.0}),
    };
    local.configure(&serde_json::json!({ "fault": fault }).to_string());
}

fn expect(out: Output, code: i32, what: &str) -> Output {
    assert_eq!(
        out.code,
        code,
        "{what} under injected faults (seed {})\n--- stdout\n{}\n--- stderr\n{}",
        seed(),
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn apply_test_destroy_and_run_succeed_under_throttling_errors_and_latency() {
    if common::real_aws() {
        // Faults are injected by the local AWS.
        return;
    }
    let target = Target::private();
    let local = target.local.expect("a local AWS");
    let rt = runtime();
    let stack = unique_stack("ft");
    let project = example("cold-start", &stack);
    let dir = project.path();
    let mut operations: Vec<String> = ["ec2:*", "iam:*", "sts:*", "xray:*", "logs:*"]
        .map(String::from)
        .to_vec();
    operations.extend(lambda_control_plane());

    let before: BTreeSet<(String, String)> = rt
        .block_on(inventory(&target))
        .iter()
        .map(common::Found::key)
        .collect();
    let addresses = planned_addresses(&target, dir);
    local.configure(r#"{"latency_s": {"*": 0.02}}"#);
    local.clear_calls();
    let mut injected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let seed = seed();

    // apply: every resource exactly once, each tagged with the stack.
    faults(local, Some(seed), &operations);
    expect(
        target.lmi(dir, &["apply", "--auto-approve"]),
        0,
        "lmi apply",
    );
    faults(local, None, &operations);
    injected.insert("apply", local.injected());
    local.clear_calls();
    let found = rt.block_on(inventory(&target));
    let mine = by_address(&found, &stack);
    let duplicated: BTreeMap<&String, &Vec<String>> =
        mine.iter().filter(|(_, ids)| ids.len() != 1).collect();
    assert!(
        duplicated.is_empty(),
        "duplicated resources: {duplicated:#?}"
    );
    assert_eq!(
        mine.keys().cloned().collect::<BTreeSet<_>>(),
        addresses,
        "the stack's resources (the lock, without an address, must be released)"
    );
    let untagged: Vec<String> = untagged_new(&before, &found, &stack)
        .into_iter()
        .map(|f| f.to_string())
        .collect();
    assert!(untagged.is_empty(), "untagged resources: {untagged:#?}");
    // And nothing else: as many new resources of each kind as the stack has addresses.
    let mut new_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for f in found
        .iter()
        .filter(|f| !before.contains(&f.key()) && f.implicit_of.is_none())
    {
        *new_by_kind.entry(f.kind).or_default() += 1;
    }
    let mut planned_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &addresses {
        *planned_by_kind
            .entry(a.split('.').next().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(new_by_kind, planned_by_kind, "new resources by kind");

    // test and destroy.
    faults(local, Some(seed + 1), &operations);
    let tested = expect(target.lmi(dir, &["test"]), 0, "lmi test");
    assert!(
        tested
            .stdout
            .contains("PASSED: 2 passed, 0 failed, 0 inconclusive."),
        "{}",
        tested.stdout
    );
    faults(local, None, &operations);
    injected.insert("test", local.injected());
    local.clear_calls();
    faults(local, Some(seed + 2), &operations);
    expect(
        target.lmi(dir, &["destroy", "--auto-approve"]),
        0,
        "lmi destroy",
    );
    faults(local, None, &operations);
    injected.insert("destroy", local.injected());
    local.clear_calls();
    let left = rt.block_on(remains(&target, &stack));
    assert!(left.is_empty(), "left after destroy: {left:#?}");

    // run: apply, test and destroy in one command, on its own stack.
    faults(local, Some(seed + 3), &operations);
    let ran = expect(target.lmi(dir, &["run", "--suffix", "ft"]), 0, "lmi run");
    faults(local, None, &operations);
    injected.insert("run", local.injected());
    let ft = format!("{stack}-ft");
    assert!(
        ran.stderr.contains(&format!("== destroy stack `{ft}`")),
        "{}",
        ran.stderr
    );
    let left = rt.block_on(remains(&target, &ft));
    assert!(left.is_empty(), "left after run: {left:#?}");
    let found = rt.block_on(inventory(&target));
    let new: Vec<String> = found
        .iter()
        .filter(|f| !before.contains(&f.key()))
        .map(|f| f.to_string())
        .collect();
    assert!(new.is_empty(), "left in the account: {new:#?}");

    // The faults happened, in every phase and every service, and never on an invoke.
    let all: Vec<&String> = injected.values().flatten().collect();
    eprintln!(
        "faults injected (seed {seed}): {}",
        injected
            .iter()
            .map(|(phase, f)| format!("{phase} {}", f.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(all.len() > 10, "only {} faults: {all:?}", all.len());
    for (phase, faults) in &injected {
        assert!(!faults.is_empty(), "no fault injected during {phase}");
    }
    for service in ["ec2:", "iam:", "lambda:"] {
        assert!(
            all.iter().any(|f| f.starts_with(service)),
            "no fault on {service}: {all:?}"
        );
    }
    for kind in [" throttle", " error"] {
        assert!(all.iter().any(|f| f.ends_with(kind)), "no{kind}: {all:?}");
    }
    assert!(
        all.iter().all(|f| !f.starts_with("lambda:Invoke")),
        "{all:?}"
    );
}
