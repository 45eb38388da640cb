//! lmi.toml as written: one struct per table, every value spanned, nothing checked but TOML
//! types and key names. These types never leave `config`; `validate` turns them into the model.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Problem, Span};
use super::read::{self, Cx, Pairs, Table};

type S<T> = Spanned<T>;

pub struct RawConfig {
    pub span: Span,
    /// Keys whose values were reported as invalid while reading (see `Cx::invalid`).
    pub invalid: std::collections::HashSet<String>,
    pub stack: Option<RawStack>,
    pub network: Option<RawNetwork>,
    pub capacity_providers: Vec<RawCapacityProvider>,
    pub functions: Vec<RawFunction>,
    pub tests: Vec<RawTest>,
}

pub struct RawStack {
    pub span: Span,
    pub name: Option<S<String>>,
    pub region: Option<S<String>>,
    pub tags: Option<Pairs>,
}

pub struct RawNetwork {
    pub span: Span,
    pub cidr: Option<S<String>>,
    pub azs: Option<S<i64>>,
    pub egress: Option<S<String>>,
    pub nat_gateways: Option<S<String>>,
    pub interface_endpoints: Option<S<Vec<S<String>>>>,
    pub gateway_endpoints: Option<S<Vec<S<String>>>>,
    pub public_subnets: Option<S<Vec<S<String>>>>,
    pub private_subnets: Option<S<Vec<S<String>>>>,
    pub vpc_id: Option<S<String>>,
    pub subnet_ids: Option<S<Vec<S<String>>>>,
    pub security_group_ids: Option<S<Vec<S<String>>>>,
}

impl RawNetwork {
    /// Keys that only make sense for a network lmi creates.
    pub const MANAGED_KEYS: &'static [&'static str] = &[
        "cidr",
        "azs",
        "egress",
        "nat_gateways",
        "interface_endpoints",
        "gateway_endpoints",
        "public_subnets",
        "private_subnets",
    ];
    /// Keys that only make sense for an existing network.
    pub const EXISTING_KEYS: &'static [&'static str] =
        &["vpc_id", "subnet_ids", "security_group_ids"];
}

pub struct RawCapacityProvider {
    pub name: S<String>,
    pub span: Span,
    pub architecture: Option<S<String>>,
    pub instance_types: Option<S<Vec<S<String>>>>,
    pub excluded_instance_types: Option<S<Vec<S<String>>>>,
    pub max_vcpus: Option<S<i64>>,
    pub scaling: Option<S<String>>,
    /// `cpu_target` of each `[[..scaling_policies]]` entry.
    pub scaling_policies: Option<S<Vec<S<f64>>>>,
    pub kms_key_arn: Option<S<String>>,
    pub operator_role_arn: Option<S<String>>,
}

pub struct RawFunction {
    pub name: S<String>,
    pub span: Span,
    pub runtime: Option<S<String>>,
    pub handler: Option<S<String>>,
    pub code: Option<S<String>>,
    pub build: Option<S<String>>,
    pub memory_mb: Option<S<i64>>,
    pub timeout_s: Option<S<i64>>,
    pub environment: Option<Pairs>,
    pub architecture: Option<S<String>>,
    pub tracing: Option<S<bool>>,
    pub role_arn: Option<S<String>>,
    pub capacity_provider: Option<S<String>>,
    pub per_environment_max_concurrency: Option<S<i64>>,
    pub memory_gib_per_vcpu: Option<S<i64>>,
    pub min_environments: Option<S<i64>>,
    pub max_environments: Option<S<i64>>,
    pub publish: Option<S<String>>,
}

impl RawFunction {
    /// Keys that only make sense with `capacity_provider`.
    pub const MANAGED_KEYS: &'static [&'static str] = &[
        "per_environment_max_concurrency",
        "memory_gib_per_vcpu",
        "min_environments",
        "max_environments",
        "publish",
    ];
}

pub struct RawTest {
    pub name: S<String>,
    pub span: Span,
    pub function: Option<S<String>>,
    pub invocations: Option<S<i64>>,
    pub concurrency: Option<S<i64>>,
    pub payload: Option<S<serde_json::Value>>,
    pub expect: Option<RawExpect>,
    pub trace_deadline_s: Option<S<f64>>,
    pub allow_inconclusive: Option<S<bool>>,
}

pub struct RawExpect {
    pub initialization: Option<S<String>>,
    pub latency_ms: Option<RawLatency>,
    pub ratio: Option<RawRatio>,
    pub max_throttle_rate: Option<S<f64>>,
    pub max_error_rate: Option<S<f64>>,
}

pub struct RawLatency {
    pub p50: Option<S<f64>>,
    pub p95: Option<S<f64>>,
    pub p99: Option<S<f64>>,
    pub max: Option<S<f64>>,
}

pub struct RawRatio {
    pub span: Span,
    pub baseline: Option<S<String>>,
    pub statistic: Option<S<String>>,
    pub baseline_statistic: Option<S<String>>,
    pub max: Option<S<f64>>,
}

/// Reads a whole document. Sections that are the wrong type or have unknown keys are reported
/// and read as far as possible, so later rules still run on what is there.
pub fn read(doc: &Spanned<DeTable>, cx: &mut Cx) -> RawConfig {
    let root = Table::new(doc.get_ref(), doc.span(), "");
    root.deny_unknown(
        &[
            "stack",
            "network",
            "capacity_providers",
            "functions",
            "tests",
        ],
        cx,
    );
    let stack = root.table("stack", "stack", cx).map(|t| read_stack(t, cx));
    let network = root
        .table("network", "network", cx)
        .map(|t| read_network(t, cx));
    let capacity_providers = named_tables(&root, "capacity_providers", cx, read_capacity_provider);
    let functions = named_tables(&root, "functions", cx, read_function);
    let tests = named_tables(&root, "tests", cx, read_test);
    RawConfig {
        span: doc.span(),
        invalid: std::mem::take(&mut cx.invalid),
        stack,
        network,
        capacity_providers,
        functions,
        tests,
    }
}

/// `[section.NAME]` tables, each read by `read_one`.
fn named_tables<T>(
    root: &Table,
    section: &'static str,
    cx: &mut Cx,
    read_one: impl Fn(S<String>, Table, &mut Cx) -> T,
) -> Vec<T> {
    let Some(tables) = root.table(section, section, cx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in tables.entries() {
        let path = format!("{section}.{}", entry.key.get_ref());
        let name = Spanned::new(entry.key.span(), entry.key.get_ref().to_string());
        let DeValue::Table(map) = entry.value.get_ref() else {
            cx.push(
                Problem::error(
                    "lmi::config::wrong_type",
                    entry.value.span(),
                    format!(
                        "`{path}` must be a table, found {}",
                        read::article(entry.value.get_ref().type_str())
                    ),
                )
                .label("expected a table")
                .help(format!(
                    "each entry of `{section}` is a section of its own, with its settings inside: [{section}.NAME]"
                )),
            );
            continue;
        };
        out.push(read_one(
            name,
            Table::new(map, entry.value.span(), &path),
            cx,
        ));
    }
    out
}

fn read_stack(t: Table, cx: &mut Cx) -> RawStack {
    t.deny_unknown(&["name", "region", "tags"], cx);
    RawStack {
        span: t.span.clone(),
        name: t.string("name", cx),
        region: t.string("region", cx),
        tags: t.string_map("tags", cx),
    }
}

fn read_network(t: Table, cx: &mut Cx) -> RawNetwork {
    let known: Vec<&str> = RawNetwork::MANAGED_KEYS
        .iter()
        .chain(RawNetwork::EXISTING_KEYS)
        .copied()
        .collect();
    t.deny_unknown(&known, cx);
    RawNetwork {
        span: t.span.clone(),
        cidr: t.string("cidr", cx),
        azs: t.integer("azs", cx),
        egress: t.string("egress", cx),
        nat_gateways: t.string("nat_gateways", cx),
        interface_endpoints: t.strings("interface_endpoints", cx),
        gateway_endpoints: t.strings("gateway_endpoints", cx),
        public_subnets: t.strings("public_subnets", cx),
        private_subnets: t.strings("private_subnets", cx),
        vpc_id: t.string("vpc_id", cx),
        subnet_ids: t.strings("subnet_ids", cx),
        security_group_ids: t.strings("security_group_ids", cx),
    }
}

fn read_capacity_provider(name: S<String>, t: Table, cx: &mut Cx) -> RawCapacityProvider {
    t.deny_unknown(
        &[
            "architecture",
            "instance_types",
            "excluded_instance_types",
            "max_vcpus",
            "scaling",
            "scaling_policies",
            "kms_key_arn",
            "operator_role_arn",
        ],
        cx,
    );
    RawCapacityProvider {
        name,
        span: t.span.clone(),
        architecture: t.string("architecture", cx),
        instance_types: t.strings("instance_types", cx),
        excluded_instance_types: t.strings("excluded_instance_types", cx),
        max_vcpus: t.integer("max_vcpus", cx),
        scaling: t.string("scaling", cx),
        scaling_policies: read_scaling_policies(&t, cx),
        kms_key_arn: t.string("kms_key_arn", cx),
        operator_role_arn: t.string("operator_role_arn", cx),
    }
}

fn read_scaling_policies(t: &Table, cx: &mut Cx) -> Option<S<Vec<S<f64>>>> {
    let items = t.array("scaling_policies", cx)?;
    let path = t.key_path("scaling_policies");
    let mut targets = Vec::new();
    let mut ok = true;
    for item in items.get_ref().iter() {
        let Some(policy) = read::table(item, &path, cx) else {
            ok = false;
            continue;
        };
        policy.deny_unknown(&["cpu_target"], cx);
        let target = policy.number("cpu_target", cx);
        match policy.require("cpu_target", target, cx) {
            Some(target) => targets.push(target),
            None => ok = false,
        }
    }
    // As with `strings`: one bad policy makes the list unknown rather than shorter.
    if !ok {
        cx.invalid.insert(path);
        return None;
    }
    Some(Spanned::new(items.span(), targets))
}

fn read_function(name: S<String>, t: Table, cx: &mut Cx) -> RawFunction {
    let mut known = vec![
        "runtime",
        "handler",
        "code",
        "build",
        "memory_mb",
        "timeout_s",
        "environment",
        "architecture",
        "tracing",
        "role_arn",
        "capacity_provider",
    ];
    known.extend(RawFunction::MANAGED_KEYS);
    t.deny_unknown(&known, cx);
    RawFunction {
        name,
        span: t.span.clone(),
        runtime: t.string("runtime", cx),
        handler: t.string("handler", cx),
        code: t.string("code", cx),
        build: t.string("build", cx),
        memory_mb: t.integer("memory_mb", cx),
        timeout_s: t.integer("timeout_s", cx),
        environment: t.string_map("environment", cx),
        architecture: t.string("architecture", cx),
        tracing: t.boolean("tracing", cx),
        role_arn: t.string("role_arn", cx),
        capacity_provider: t.string("capacity_provider", cx),
        per_environment_max_concurrency: t.integer("per_environment_max_concurrency", cx),
        memory_gib_per_vcpu: t.integer("memory_gib_per_vcpu", cx),
        min_environments: t.integer("min_environments", cx),
        max_environments: t.integer("max_environments", cx),
        publish: t.string("publish", cx),
    }
}

fn read_test(name: S<String>, t: Table, cx: &mut Cx) -> RawTest {
    t.deny_unknown(
        &[
            "function",
            "invocations",
            "concurrency",
            "payload",
            "expect",
            "trace_deadline_s",
            "allow_inconclusive",
        ],
        cx,
    );
    let expect_path = t.key_path("expect");
    RawTest {
        name,
        span: t.span.clone(),
        function: t.string("function", cx),
        invocations: t.integer("invocations", cx),
        concurrency: t.integer("concurrency", cx),
        payload: t
            .entries()
            .find(|e| *e.key.get_ref() == "payload")
            .and_then(|e| to_json(e.value, cx).map(|json| Spanned::new(e.value.span(), json))),
        expect: t
            .table("expect", &expect_path, cx)
            .map(|e| read_expect(e, cx)),
        trace_deadline_s: t.number("trace_deadline_s", cx),
        allow_inconclusive: t.boolean("allow_inconclusive", cx),
    }
}

fn read_expect(t: Table, cx: &mut Cx) -> RawExpect {
    t.deny_unknown(
        &[
            "initialization",
            "latency_ms",
            "ratio",
            "max_throttle_rate",
            "max_error_rate",
        ],
        cx,
    );
    let latency_path = t.key_path("latency_ms");
    let ratio_path = t.key_path("ratio");
    RawExpect {
        initialization: t.string("initialization", cx),
        latency_ms: t.table("latency_ms", &latency_path, cx).map(|l| {
            l.deny_unknown(&["p50", "p95", "p99", "max"], cx);
            RawLatency {
                p50: l.number("p50", cx),
                p95: l.number("p95", cx),
                p99: l.number("p99", cx),
                max: l.number("max", cx),
            }
        }),
        ratio: t.table("ratio", &ratio_path, cx).map(|r| {
            r.deny_unknown(&["baseline", "statistic", "baseline_statistic", "max"], cx);
            RawRatio {
                span: r.span.clone(),
                baseline: r.string("baseline", cx),
                statistic: r.string("statistic", cx),
                baseline_statistic: r.string("baseline_statistic", cx),
                max: r.number("max", cx),
            }
        }),
        max_throttle_rate: t.number("max_throttle_rate", cx),
        max_error_rate: t.number("max_error_rate", cx),
    }
}

/// A TOML value as the JSON payload of an invoke; strings are interpolated like any other.
fn to_json(value: &Spanned<DeValue>, cx: &mut Cx) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match value.get_ref() {
        DeValue::String(_) => Value::String(read::string(value, "payload", cx)?.into_inner()),
        DeValue::Integer(_) => Value::from(*read::integer(value, "payload", cx)?.get_ref()),
        DeValue::Float(_) => Value::from(*read::number(value, "payload", cx)?.get_ref()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, cx))
                .collect::<Option<_>>()?,
        ),
        DeValue::Table(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.get_ref().to_string(), to_json(v, cx)?)))
                .collect::<Option<_>>()?,
        ),
    })
}
