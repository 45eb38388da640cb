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
