//! The harness for integration tests: lmi's binary and the AWS SDK against the local AWS
//! (tests/localaws, a moto server extended for LMI), over real HTTP on 127.0.0.1.
//!
//! One local AWS is started per test binary, on a free port, and shared: every test uses its
//! own stack name, so tests run in parallel without resets. A test that changes the server's
//! knobs (latency, faults) starts a private one with [`LocalAws::start`].
//!
//! With `LMI_TEST_REAL_AWS=1` no local AWS is started: lmi and the SDK use the ambient AWS
//! configuration (a real account), and tests that need the control endpoint skip themselves.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn real_aws() -> bool {
    std::env::var("LMI_TEST_REAL_AWS").is_ok_and(|v| v == "1")
}

/// A running local AWS; stopped when dropped (and, through its stdin, if the test dies).
pub struct LocalAws {
    pub endpoint: String,
    child: Mutex<Option<(Child, ChildStdin)>>,
}

/// The venv's python, created by `scripts/local-aws setup` on first use.
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new(repo().join("scripts/local-aws"))
            .arg("setup")
            .output()
            .expect("run scripts/local-aws setup");
        assert!(
            out.status.success(),
            "scripts/local-aws setup failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
}

impl LocalAws {
    /// Starts a private local AWS on a free port and waits until it listens.
    pub fn start() -> LocalAws {
        let mut child = Command::new(python())
            .args(["-m", "localaws", "--port", "0", "--exit-on-stdin-eof"])
            .env("PYTHONPATH", repo().join("tests"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the local AWS");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the local AWS's first line");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the local AWS: {line:?}"));
        LocalAws {
            endpoint: format!("http://{address}"),
            child: Mutex::new(Some((child, stdin))),
        }
    }

    /// The local AWS shared by the tests of this binary.
    pub fn shared() -> &'static LocalAws {
        static SHARED: OnceLock<LocalAws> = OnceLock::new();
        SHARED.get_or_init(LocalAws::start)
    }

    /// Environment that points lmi and the SDK at this server, as a user would set it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// A request to the control endpoint; returns the response body.
    pub fn control(&self, method: &str, path: &str, body: &str) -> String {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to the local AWS");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(head.contains(" 200 "), "{method} {path}: {head}\n{body}");
        body.to_string()
    }

    /// Operations received since the last `clear_calls`, as `service:Operation`.
    pub fn calls(&self) -> Vec<String> {
        let body = self.control("GET", "/_localaws/calls", "");
        let json: serde_json::Value = serde_json::from_str(&body).expect("calls JSON");
        json["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    }

    /// The write operations among `calls`: AWS names every read Describe, Get, List or BatchGet.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| {
                let op = c.split(':').nth(1).unwrap_or_default();
                !["Describe", "Get", "List", "BatchGet"]
                    .iter()
                    .any(|p| op.starts_with(p))
            })
            .collect()
    }

    /// The writes that changed the stack: [`writes`](Self::writes) without the stack's lock,
    /// which a changing command takes first (`iam:CreateRole`) and releases last
    /// (`iam:DeleteRole`).
    pub fn changes(&self) -> Vec<String> {
        let mut w = self.writes();
        if w.first().is_some_and(|c| c == "iam:CreateRole")
            && w.last().is_some_and(|c| c == "iam:DeleteRole")
        {
            w.remove(0);
            w.pop();
        }
        w
    }

    pub fn clear_calls(&self) {
        self.control("DELETE", "/_localaws/calls", "");
    }

    pub fn configure(&self, json: &str) {
        self.control("POST", "/_localaws/config", json);
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some((mut child, stdin)) = guard.take()
        {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a test's AWS is: the shared local AWS, or the ambient configuration.
pub struct Target {
    pub local: Option<&'static LocalAws>,
}

impl Target {
    pub fn get() -> Target {
        Target {
            local: (!real_aws()).then(LocalAws::shared),
        }
    }

    /// A target with a local AWS of its own, for tests that count the calls it receives
    /// (the shared one hears every test at once). On a real account, the ambient one.
    pub fn private() -> Target {
        Target {
            // Leaked on purpose: it lives as long as the test process, and exits with it
            // when its stdin closes.
            local: (!real_aws()).then(|| &*Box::leak(Box::new(LocalAws::start()))),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.local.map(LocalAws::env).unwrap_or_default()
    }

    /// Write operations the local AWS received since the last clear (none known on a real
    /// account).
    pub fn writes(&self) -> Vec<String> {
        self.local.map(LocalAws::writes).unwrap_or_default()
    }

    /// [`LocalAws::changes`] (none known on a real account).
    pub fn changes(&self) -> Vec<String> {
        self.local.map(LocalAws::changes).unwrap_or_default()
    }

    /// `lmi ARGS` with this target's environment and no colour.
    pub fn lmi(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmi"));
        cmd.current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run lmi");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// An SDK configuration for independent checks of what lmi did.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(local) = self.local {
            loader = loader
                .endpoint_url(&local.endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ));
        }
        loader.load().await
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect(self, code: i32) -> Output {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A runtime for the SDK calls that check what lmi did.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A stack name no other test (or earlier run on a shared account) uses.
pub fn unique_stack(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}{n}{:x}",
        std::process::id() % 10_000,
        nanos % 0xfff
    )
}

/// A directory holding `lmi.toml` with `text`, and a handler directory its functions can use
/// as `code = "handler"`.
pub fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("lmi.toml"), text).expect("write lmi.toml");
    let handler = dir.path().join("handler");
    std::fs::create_dir(&handler).expect("handler dir");
    std::fs::copy(
        repo().join("examples/cold-start/handler/index.mjs"),
        handler.join("index.mjs"),
    )
    .expect("copy handler");
    dir
}

/// An example's lmi.toml with its stack name replaced, so tests don't collide.
pub fn example(name: &str, stack: &str) -> tempfile::TempDir {
    let text = std::fs::read_to_string(repo().join("examples").join(name).join("lmi.toml"))
        .expect("read example");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("name = ") {
                format!("name = \"{stack}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    project(&text)
}

// --- The account's inventory, for tests that check what lmi left behind (crash safety,
// fault tolerance): every resource of the kinds lmi creates, found with independent SDK calls,
// with its tags. For the local AWS (one request per kind, no paging).

impl LocalAws {
    /// The call log with each call's `{op, t, status, injected}` (`injected`: null, "throttle"
    /// or "error").
    pub fn calls_detailed(&self) -> Vec<serde_json::Value> {
        let body = self.control("GET", "/_localaws/calls?detail=1", "");
        let json: serde_json::Value = serde_json::from_str(&body).expect("calls JSON");
        json["calls"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until every request the server has received is answered (after a `kill -9`, those
    /// the killed process sent still run, and change things, on the server), then clears the
    /// call log. Panics after `timeout`.
    pub fn settle(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let pending: Vec<String> = self
                .calls_detailed()
                .iter()
                .filter(|c| c["status"].is_null())
                .map(|c| c["op"].as_str().unwrap_or_default().to_string())
                .collect();
            if pending.is_empty() {
                self.clear_calls();
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "requests still unanswered after {timeout:?}: {pending:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The faults injected among the calls since the last `clear_calls`, as `op kind`.
    pub fn injected(&self) -> Vec<String> {
        self.calls_detailed()
            .iter()
            .filter_map(|c| {
                let kind = c["injected"].as_str()?;
                Some(format!("{} {kind}", c["op"].as_str().unwrap_or_default()))
            })
            .collect()
    }
}

/// One resource of the account.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: &'static str,
    pub id: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// For what AWS creates with a VPC and deletes with it, untagged (its main route table and
    /// default security group): that VPC's id.
    pub implicit_of: Option<String>,
}

impl Found {
    pub fn key(&self) -> (String, String) {
        (self.kind.to_string(), self.id.clone())
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?}", self.kind, self.id, self.tags)
    }
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Every VPC, subnet, route table, security group, internet gateway, Elastic IP, NAT gateway
/// and VPC endpoint (deleted ones excluded), IAM role, Lambda function and capacity provider in
/// the account, with its tags.
pub async fn inventory(target: &Target) -> Vec<Found> {
    let config = target.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let mut out = Vec::new();
    let found = |kind, id: Option<&str>, tags, implicit_of| Found {
        kind,
        id: id.unwrap_or_default().to_string(),
        tags,
        implicit_of,
    };

    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    for v in vpcs.vpcs() {
        out.push(found("vpc", v.vpc_id(), ec2_tags(v.tags()), None));
    }
    let subnets = ec2
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    for s in subnets.subnets() {
        out.push(found("subnet", s.subnet_id(), ec2_tags(s.tags()), None));
    }
    let tables = ec2
        .describe_route_tables()
        .send()
        .await
        .expect("DescribeRouteTables");
    for t in tables.route_tables() {
        let main = t.associations().iter().any(|a| a.main() == Some(true));
        let implicit = main.then(|| t.vpc_id().unwrap_or_default().to_string());
        out.push(found(
            "route_table",
            t.route_table_id(),
            ec2_tags(t.tags()),
            implicit,
        ));
    }
    let groups = ec2
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    for g in groups.security_groups() {
        let implicit =
            (g.group_name() == Some("default")).then(|| g.vpc_id().unwrap_or_default().to_string());
        out.push(found(
            "security_group",
            g.group_id(),
            ec2_tags(g.tags()),
            implicit,
        ));
    }
    let igws = ec2
        .describe_internet_gateways()
        .send()
        .await
        .expect("DescribeInternetGateways");
    for g in igws.internet_gateways() {
        out.push(found(
            "internet_gateway",
            g.internet_gateway_id(),
            ec2_tags(g.tags()),
            None,
        ));
    }
    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    for a in addresses.addresses() {
        out.push(found(
            "elastic_ip",
            a.allocation_id(),
            ec2_tags(a.tags()),
            None,
        ));
    }
    let nats = ec2
        .describe_nat_gateways()
        .send()
        .await
        .expect("DescribeNatGateways");
    for n in nats.nat_gateways() {
        if n.state().is_some_and(|s| s.as_str() == "deleted") {
            continue; // AWS (and moto) list deleted NAT gateways for a while
        }
        out.push(found(
            "nat_gateway",
            n.nat_gateway_id(),
            ec2_tags(n.tags()),
            None,
        ));
    }
    let endpoints = ec2
        .describe_vpc_endpoints()
        .send()
        .await
        .expect("DescribeVpcEndpoints");
    for e in endpoints.vpc_endpoints() {
        if e.state()
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
        {
            continue;
        }
        out.push(found(
            "vpc_endpoint",
            e.vpc_endpoint_id(),
            ec2_tags(e.tags()),
            None,
        ));
    }

    let roles = iam.list_roles().send().await.expect("ListRoles");
    for r in roles.roles() {
        let tags = match iam.list_role_tags().role_name(r.role_name()).send().await {
            Ok(t) => t
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            // Deleted between the two calls: gone.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                continue;
            }
            Err(e) => panic!("ListRoleTags {}: {e:?}", r.role_name()),
        };
        out.push(found("role", Some(r.arn()), tags, None));
    }

    // The tags of a function or capacity provider; `None` if it is gone.
    let lambda_tags = async |arn: &str| -> Option<std::collections::BTreeMap<String, String>> {
        match lambda.list_tags().resource(arn).send().await {
            Ok(t) => Some(t.tags().cloned().unwrap_or_default().into_iter().collect()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(e) => panic!("ListTags {arn}: {e:?}"),
        }
    };
    let functions = lambda.list_functions().send().await.expect("ListFunctions");
    for f in functions.functions() {
        let arn = f.function_arn().unwrap_or_default();
        if let Some(tags) = lambda_tags(arn).await {
            out.push(found("function", Some(arn), tags, None));
        }
    }
    let providers = lambda
        .list_capacity_providers()
        .send()
        .await
        .expect("ListCapacityProviders");
    for p in providers.capacity_providers() {
        let arn = p.capacity_provider_arn();
        if let Some(tags) = lambda_tags(arn).await {
            out.push(found("capacity_provider", Some(arn), tags, None));
        }
    }
    out
}

/// The resources `found` that are not in `before` (by kind and id) and don't belong to
/// `stack`: neither tagged `lmi:stack = stack` nor created by AWS with a VPC that is. Empty
/// when lmi created nothing untagged.
pub fn untagged_new<'a>(
    before: &std::collections::BTreeSet<(String, String)>,
    found: &'a [Found],
    stack: &str,
) -> Vec<&'a Found> {
    let stack_vpcs: std::collections::BTreeSet<&str> = found
        .iter()
        .filter(|f| f.kind == "vpc" && f.tag("lmi:stack") == Some(stack))
        .map(|f| f.id.as_str())
        .collect();
    found
        .iter()
        .filter(|f| !before.contains(&f.key()))
        .filter(|f| match &f.implicit_of {
            Some(vpc) => !stack_vpcs.contains(vpc.as_str()),
            None => f.tag("lmi:stack") != Some(stack),
        })
        .collect()
}

/// The stack's resources by their `lmi:resource` tag: each address with the ids carrying it
/// (one each, unless something was duplicated). Resources of the stack without that tag (the
/// lock) are under the empty address.
pub fn by_address(found: &[Found], stack: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in found.iter().filter(|f| f.tag("lmi:stack") == Some(stack)) {
        out.entry(f.tag("lmi:resource").unwrap_or_default().to_string())
            .or_default()
            .push(format!("{} {}", f.kind, f.id));
    }
    out
}

/// What remains of a stack after its destroy: anything tagged with it, any IAM role under its
/// path `/lmi/{stack}/` (the lock included), any function or capacity provider named
/// `{stack}-…`. Empty when the stack is gone.
pub async fn remains(target: &Target, stack: &str) -> Vec<String> {
    let found = inventory(target).await;
    let prefix = format!("{stack}-");
    let path = format!(":role/lmi/{stack}/");
    found
        .iter()
        .filter(|f| {
            f.tag("lmi:stack") == Some(stack)
                || (f.kind == "role" && f.id.contains(&path))
                || (matches!(f.kind, "function" | "capacity_provider")
                    && f.id
                        .rsplit(':')
                        .next()
                        .is_some_and(|name| name.starts_with(&prefix)))
        })
        .map(|f| f.to_string())
        .collect()
}

/// The addresses `lmi plan --json` would create for a stack that doesn't exist yet.
pub fn planned_addresses(target: &Target, dir: &Path) -> std::collections::BTreeSet<String> {
    let plan = target.lmi(dir, &["plan", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            assert_eq!(c["action"], "create", "{c}");
            c["address"].as_str().expect("address").to_string()
        })
        .collect()
}
