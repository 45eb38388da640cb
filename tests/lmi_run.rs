//! `lmi run`, `lmi ls`, `lmi gc`, `lmi unlock` and the stack lock on the local AWS: run always
//! destroys (after passing or failing tests, a failed apply, an interrupt), a second interrupt
//! stops the cleanup and lists what remains, two writers of one stack can't interleave, and gc
//! collects only what is older than its limit.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Output, Target, example, project, unique_stack};
use serde_json::Value;

/// `lmi ARGS` started in the background, its stderr lines sent to a channel.
fn spawn(target: &Target, dir: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmi"));
    cmd.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in target.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn lmi");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `needle`; returns every line read so far.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with {needle:?} on stderr:\n{}", seen.join("\n"));
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn exit_code(mut child: Child) -> i32 {
    child.wait().expect("wait").code().unwrap_or(-1)
}

fn ls(target: &Target, dir: &Path) -> Vec<Value> {
    let out = target.lmi(dir, &["ls", "--json"]).expect(0);
    serde_json::from_str::<Value>(&out.stdout)
        .expect("ls --json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn listed<'a>(stacks: &'a [Value], name: &str) -> Option<&'a Value> {
    stacks.iter().find(|s| s["stack"] == name)
}

/// Nothing is tagged with the stack: destroy by name finds nothing, ls doesn't list it.
fn assert_gone(target: &Target, dir: &Path, stack: &str) {
    let out = target
        .lmi(dir, &["destroy", "--stack", stack, "--auto-approve"])
        .expect(0);
    assert!(out.stdout.contains("nothing to destroy"), "{}", out.stdout);
    assert!(
        listed(&ls(target, dir), stack).is_none(),
        "{stack} is still listed"
    );
}

fn default_only(stack: &str, expectation: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"

[functions.default]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true

[tests.cold]
function = "default"
invocations = 2
expect.initialization = "{expectation}"
"#
    )
}

#[test]
fn run_applies_tests_destroys_and_reports() {
    let target = Target::get();
    let stack = unique_stack("rp");
    let dir = example("cold-start", &stack);
    let dir = dir.path();
    let out = target
        .lmi(
            dir,
            &["run", "--suffix", "job7", "--junit", "report.xml", "--json"],
        )
        .expect(0);
    // stdout holds only the test results; plans and progress go to stderr.
    let results: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("run --json: {e}\n{}", out.stdout));
    assert_eq!(results["verdict"], "passed");
    assert_eq!(results["stack"], format!("{stack}-job7"));
    assert!(dir.join("report.xml").exists());
    for phase in ["== apply", "== test", "== destroy"] {
        assert!(out.stderr.contains(phase), "{}", out.stderr);
    }
    assert_gone(&target, dir, &format!("{stack}-job7"));
}

#[test]
fn run_destroys_after_failing_tests_unless_asked_to_keep() {
    let target = Target::get();
    let stack = unique_stack("rf");
    let dir = project(&default_only(&stack, "none"));
    let dir = dir.path();
    let out = target.lmi(dir, &["run", "--suffix", "a"]).expect(3);
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    assert_gone(&target, dir, &format!("{stack}-a"));

    let out = target
        .lmi(dir, &["run", "--suffix", "b", "--keep-on-failure"])
        .expect(3);
    let kept = format!("{stack}-b");
    assert!(
        out.stderr
            .contains(&format!("`lmi destroy --stack {kept}` removes it")),
        "{}",
        out.stderr
    );
    let stacks = ls(&target, dir);
    let info = listed(&stacks, &kept).expect("the kept stack is listed");
    assert!(info["resources"].as_u64().unwrap() >= 2, "{info:#}");
    assert!(
        info["locked_by"].is_null(),
        "the lock is released: {info:#}"
    );
    assert!(info["created"].is_string(), "{info:#}");
    target
        .lmi(dir, &["destroy", "--stack", &kept, "--auto-approve"])
        .expect(0);
    assert_gone(&target, dir, &kept);
}

#[test]
fn run_destroys_what_a_failed_apply_made() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("local AWS");
    // Every CreateFunction fails (the SDK's retries included): roles exist by then.
    local.configure(
        r#"{"fault": {"error_rate": 1.0, "operations": ["lambda:CreateFunction"], "seed": 1}}"#,
    );
    let stack = unique_stack("ra");
    let dir = project(&default_only(&stack, "first_only"));
    let dir = dir.path();
    let out = target.lmi(dir, &["run"]).expect(1);
    assert!(out.stderr.contains("== destroy"), "{}", out.stderr);
    assert!(!out.stderr.contains("== test"), "{}", out.stderr);
    local.configure(r#"{"fault": {"error_rate": 0.0, "operations": []}}"#);
    assert_gone(&target, dir, &stack);
}

#[test]
fn an_interrupted_run_destroys_and_a_second_interrupt_stops_the_cleanup() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("local AWS");
    // Slow enough to interrupt: a NAT gateway takes 2 s to create and to delete.
    local.configure(r#"{"latency_s": {"ec2:CreateNatGateway": 2.0, "ec2:DeleteNatGateway": 2.0}}"#);
    let stack = unique_stack("ri");
    let dir = example("cold-start", &stack);
    let dir = dir.path();

    // One interrupt during apply: apply stops, the stack is destroyed, exit 130.
    let (child, rx) = spawn(&target, dir, &["run"]);
    let mut seen = Vec::new();
    wait_for(&rx, "creating nat_gateway", &mut seen);
    signal(&child, "INT");
    assert_eq!(exit_code(child), 130);
    assert_gone(&target, dir, &stack);

    // A second interrupt during the cleanup stops it and says what remains.
    let (child, rx) = spawn(&target, dir, &["run"]);
    let mut seen = Vec::new();
    wait_for(&rx, "creating nat_gateway", &mut seen);
    signal(&child, "TERM");
    wait_for(&rx, "deleting nat_gateway", &mut seen);
    signal(&child, "INT");
    let code = exit_code(child);
    seen.extend(rx.try_iter());
    assert_eq!(code, 4, "{}", seen.join("\n"));
    let text = seen.join("\n");
    assert!(
        text.contains(&format!(
            "`lmi destroy --stack {stack}` removes what remains"
        )),
        "{text}"
    );
    let stacks = ls(&target, dir);
    assert!(listed(&stacks, &stack).is_some(), "something remains");
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
    assert_gone(&target, dir, &stack);
}

#[test]
fn a_second_writer_fails_or_waits_and_a_dead_holders_lock_is_taken_over() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("local AWS");
    local.configure(r#"{"latency_s": {"lambda:CreateFunction": 2.0}}"#);
    let stack = unique_stack("rl");
    let dir = project(&default_only(&stack, "first_only"));
    let dir = dir.path();

    let (first, rx) = spawn(&target, dir, &["apply", "--auto-approve"]);
    let mut seen = Vec::new();
    wait_for(&rx, "creating function.default", &mut seen);
    let refused: Output = target.lmi(dir, &["destroy", "--auto-approve"]).expect(1);
    assert!(
        refused.stderr.contains("is locked by `lmi apply`"),
        "{}",
        refused.stderr
    );
    let stacks = ls(&target, dir);
    let info = listed(&stacks, &stack).expect("listed");
    assert!(
        info["locked_by"].as_str().unwrap().contains("lmi apply"),
        "{info:#}"
    );
    // With a timeout, the second waits for the first and then runs.
    let waited = target
        .lmi(dir, &["destroy", "--auto-approve", "--lock-timeout", "60s"])
        .expect(0);
    assert!(
        waited.stderr.contains("Waiting up to 60 s"),
        "{}",
        waited.stderr
    );
    assert_eq!(exit_code(first), 0);
    assert_gone(&target, dir, &stack);

    // A holder killed with SIGKILL leaves its lock; on the same host it is taken over at once.
    let (mut killed, rx) = spawn(&target, dir, &["apply", "--auto-approve"]);
    let mut seen = Vec::new();
    wait_for(&rx, "creating function.default", &mut seen);
    killed.kill().expect("kill -9");
    killed.wait().expect("wait");
    let stacks = ls(&target, dir);
    let info = listed(&stacks, &stack).expect("listed");
    assert_eq!(info["lock_stale"], true, "{info:#}");
    let out = target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    assert!(
        out.stderr.contains("Taking over the lock"),
        "{}",
        out.stderr
    );

    // unlock: nothing to do on an unlocked stack; removes a stale lock.
    let out = target.lmi(dir, &["unlock"]).expect(0);
    assert!(out.stdout.contains("is not locked"), "{}", out.stdout);
    local.configure(r#"{"latency_s": {"lambda:DeleteFunction": 2.0}}"#);
    let (mut killed, rx) = spawn(&target, dir, &["destroy", "--auto-approve"]);
    let mut seen = Vec::new();
    wait_for(&rx, "deleting function.default", &mut seen);
    killed.kill().expect("kill -9");
    killed.wait().expect("wait");
    let out = target.lmi(dir, &["unlock"]).expect(0);
    assert!(out.stdout.contains("Removed the lock"), "{}", out.stdout);
    local.configure(r#"{"latency_s": {}}"#);
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
    assert_gone(&target, dir, &stack);
}

#[test]
fn gc_collects_only_stacks_older_than_its_limit() {
    if common::real_aws() {
        // gc acts on every stack of the account: never on a shared real one from a test.
        return;
    }
    let target = Target::private();
    let old = unique_stack("go");
    let dir = project(&default_only(&old, "first_only"));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);

    let out = target
        .lmi(dir, &["gc", "--older-than", "1h", "--auto-approve"])
        .expect(0);
    assert!(
        out.stdout.contains("No stack older than 1h00m"),
        "{}",
        out.stdout
    );
    let out = target
        .lmi(dir, &["gc", "--older-than", "0s", "--dry-run"])
        .expect(0);
    assert!(out.stdout.contains(&old), "{}", out.stdout);
    assert!(out.stdout.contains("Dry run"), "{}", out.stdout);
    let info = ls(&target, dir);
    assert!(listed(&info, &old).is_some(), "a dry run destroys nothing");
    target.lmi(dir, &["gc", "--older-than", "0s"]).expect(1); // no terminal, no --auto-approve
    let out = target
        .lmi(dir, &["gc", "--older-than", "0s", "--auto-approve"])
        .expect(0);
    assert!(
        out.stdout.contains("Collected 1 stack(s)."),
        "{}",
        out.stdout
    );
    assert_gone(&target, dir, &old);
}

#[test]
fn run_checks_its_report_paths_before_creating_anything() {
    let target = Target::get();
    let stack = unique_stack("rw");
    let dir = project(&default_only(&stack, "first_only"));
    let dir = dir.path();
    let out = target
        .lmi(dir, &["run", "--junit", "no-such-dir/report.xml"])
        .expect(1);
    assert!(
        out.stderr.contains("can't write the report"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("== apply"), "{}", out.stderr);
    assert_gone(&target, dir, &stack);
}

#[test]
fn run_refuses_a_stack_that_exists_unless_adopting_it() {
    let target = Target::get();
    let stack = unique_stack("re");
    let dir = project(&default_only(&stack, "first_only"));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    let out = target.lmi(dir, &["run"]).expect(1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let stacks = ls(&target, dir);
    let info = listed(&stacks, &stack).expect("the stack is untouched");
    assert!(info["locked_by"].is_null(), "{info:#}");
    target.lmi(dir, &["run", "--adopt"]).expect(0);
    assert_gone(&target, dir, &stack);
}

#[test]
fn another_region_never_sees_or_touches_a_stacks_roles() {
    let target = Target::get();
    let stack = unique_stack("rg");
    let dir = project(&default_only(&stack, "first_only"));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    // IAM is global: the roles carry their stack's region, and other regions pass them by.
    let out = target
        .lmi(dir, &["ls", "--region", "eu-west-1", "--json"])
        .expect(0);
    assert!(!out.stdout.contains(&stack), "{}", out.stdout);
    let out = target
        .lmi(
            dir,
            &[
                "destroy",
                "--stack",
                &stack,
                "--region",
                "eu-west-1",
                "--auto-approve",
            ],
        )
        .expect(0);
    assert!(out.stdout.contains("nothing to destroy"), "{}", out.stdout);
    target.lmi(dir, &["plan", "--detailed-exitcode"]).expect(0);
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
    assert_gone(&target, dir, &stack);
}
