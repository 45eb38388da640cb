//! plan, apply and destroy of capacity providers and functions on the local AWS, checked with
//! independent SDK calls and the local AWS's own call log: what lmi says it did must be what
//! AWS has, and a change must make exactly the calls it needs.

mod common;

use common::{Target, example, runtime, unique_stack};

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| c.as_str() == op).count()
}

/// Rewrites one `[functions.NAME]` table of lmi.toml with `edit`.
fn edit_function(dir: &std::path::Path, name: &str, edit: impl Fn(&str) -> String) {
    let path = dir.join("lmi.toml");
    let text = std::fs::read_to_string(&path).expect("read lmi.toml");
    let header = format!("[functions.{name}]");
    let start = text.find(&header).expect("function table");
    let end = text[start + header.len()..]
        .find("\n[")
        .map_or(text.len(), |i| start + header.len() + i);
    let edited = format!(
        "{}{}{}",
        &text[..start],
        edit(&text[start..end]),
        &text[end..]
    );
    std::fs::write(&path, edited).expect("write lmi.toml");
}

async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    qualifier: Option<&str>,
) -> Result<(i32, String), String> {
    lambda
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .payload(aws_smithy_types::Blob::new(r#"{"hello":"lmi"}"#))
        .send()
        .await
        .map(|out| {
            (
                out.status_code(),
                String::from_utf8_lossy(out.payload().map(|p| p.as_ref()).unwrap_or_default())
                    .into_owned(),
            )
        })
        .map_err(|e| {
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(e)
            )
        })
}

/// The stack's functions and capacity providers as AWS lists them.
async fn left(target: &Target, stack: &str) -> Vec<String> {
    let lambda = aws_sdk_lambda::Client::new(&target.sdk().await);
    let prefix = format!("{stack}-");
    let mut out = Vec::new();
    let functions = lambda.list_functions().send().await.expect("ListFunctions");
    out.extend(
        functions
            .functions()
            .iter()
            .filter_map(|f| f.function_name())
            .filter(|n| n.starts_with(&prefix))
            .map(|n| format!("function {n}")),
    );
    let providers = lambda
        .list_capacity_providers()
        .send()
        .await
        .expect("ListCapacityProviders");
    out.extend(
        providers
            .capacity_providers()
            .iter()
            .map(|p| p.capacity_provider_arn())
            .filter(|arn| {
                arn.rsplit(':')
                    .next()
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .map(|arn| format!("capacity provider {arn}")),
    );
    out
}

/// The whole life of the cold-start example, in order: each step's call counts need the call
/// log to itself, so this is one test on a local AWS of its own.
#[test]
fn cold_start_example_applies_converges_updates_replaces_and_destroys() {
    let target = Target::private();
    let local = target
        .local
        .expect("these tests need the local AWS's call log");
    let rt = runtime();
    let stack = unique_stack("cs");
    let dir = example("cold-start", &stack);
    let lmi_name = format!("{stack}-lmi");
    let default_name = format!("{stack}-default");

    // Network (12) + instances SG + 3 roles + provider + 2 functions.
    let applied = target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    assert!(applied.stdout.contains("19 created"), "{}", applied.stdout);
    assert!(
        applied.stderr.contains("to be Active"),
        "progress shows the waits: {}",
        applied.stderr
    );

    let config = rt.block_on(target.sdk());
    let lambda = aws_sdk_lambda::Client::new(&config);
    rt.block_on(async {
        let provider = lambda
            .get_capacity_provider()
            .capacity_provider_name(format!("{stack}-main"))
            .send()
            .await
            .expect("the capacity provider exists");
        let provider = provider.capacity_provider().expect("provider");
        assert_eq!(provider.state().as_str(), "Active");
        assert_eq!(provider.vpc_config().map(|v| v.subnet_ids().len()), Some(3));
        assert_eq!(
            provider
                .capacity_provider_scaling_config()
                .and_then(|s| s.max_v_cpu_count()),
            Some(12)
        );

        let lmi = lambda
            .get_function_configuration()
            .function_name(&lmi_name)
            .send()
            .await
            .expect("the LMI function exists");
        let cpc = lmi
            .capacity_provider_config()
            .and_then(|c| c.lambda_managed_instances_capacity_provider_config())
            .expect("the LMI function is on the capacity provider");
        assert_eq!(
            cpc.capacity_provider_arn(),
            provider.capacity_provider_arn()
        );
        assert_eq!(
            lmi.tracing_config()
                .and_then(|t| t.mode())
                .map(|m| m.as_str()),
            Some("Active")
        );
        let published = lambda
            .get_function_configuration()
            .function_name(&lmi_name)
            .qualifier("$LATEST.PUBLISHED")
            .send()
            .await
            .expect("the LMI function is published to $LATEST.PUBLISHED");
        assert_eq!(published.state().map(|s| s.as_str()), Some("Active"));
        let scaling = lambda
            .get_function_scaling_config()
            .function_name(&lmi_name)
            .qualifier("$LATEST.PUBLISHED")
            .send()
            .await
            .expect("scaling config");
        assert_eq!(
            scaling
                .requested_function_scaling_config()
                .and_then(|s| s.min_execution_environments()),
            Some(3)
        );

        let default = lambda
            .get_function_configuration()
            .function_name(&default_name)
            .send()
            .await
            .expect("the default function exists");
        assert!(default.capacity_provider_config().is_none());

        // Both answer: the default one unqualified, the LMI one through its published version.
        let (status, payload) = invoke(&lambda, &default_name, None)
            .await
            .expect("invoke default");
        assert_eq!(status, 200);
        assert!(payload.contains("lmi"), "{payload}");
        let (status, payload) = invoke(&lambda, &lmi_name, Some("$LATEST.PUBLISHED"))
            .await
            .expect("invoke LMI");
        assert_eq!(status, 200);
        assert!(payload.contains("lmi"), "{payload}");
    });

    // Converged: a second apply only reads.
    local.clear_calls();
    let again = target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(
        local.writes(),
        Vec::<String>::new(),
        "a converged apply wrote"
    );

    // The same files elsewhere, written later, zip to the same bytes: still nothing to do.
    let handler_lmi = dir.path().join("handler-lmi");
    std::fs::create_dir(&handler_lmi).unwrap();
    std::fs::copy(
        dir.path().join("handler/index.mjs"),
        handler_lmi.join("index.mjs"),
    )
    .unwrap();
    edit_function(dir.path(), "lmi", |t| {
        t.replace("code = \"handler\"", "code = \"handler-lmi\"")
    });
    local.clear_calls();
    let moved = target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    assert!(moved.stdout.contains("No changes"), "{}", moved.stdout);
    assert_eq!(local.writes(), Vec::<String>::new());

    // A code change: one code update and one publish, no configuration update.
    let mut code = std::fs::read_to_string(handler_lmi.join("index.mjs")).unwrap();
    code.push_str("\n// changed\n");
    std::fs::write(handler_lmi.join("index.mjs"), code).unwrap();
    let plan = target.lmi(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("~ function.lmi"), "{}", plan.stdout);
    assert!(plan.stdout.contains("code_sha256"), "{}", plan.stdout);
    local.clear_calls();
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    let w = local.changes();
    assert_eq!(count(&w, "lambda:UpdateFunctionCode"), 1, "{w:?}");
    assert_eq!(count(&w, "lambda:PublishVersion"), 1, "{w:?}");
    assert_eq!(count(&w, "lambda:UpdateFunctionConfiguration"), 0, "{w:?}");
    assert!(
        w.iter().all(|c| c.starts_with("lambda:")),
        "only Lambda changes: {w:?}"
    );

    // A configuration change: one configuration update and one publish, no code update.
    edit_function(dir.path(), "lmi", |t| {
        t.replace("memory_mb = 2048", "memory_mb = 4096")
    });
    local.clear_calls();
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    let w = local.changes();
    assert_eq!(count(&w, "lambda:UpdateFunctionConfiguration"), 1, "{w:?}");
    assert_eq!(count(&w, "lambda:PublishVersion"), 1, "{w:?}");
    assert_eq!(count(&w, "lambda:UpdateFunctionCode"), 0, "{w:?}");
    let memory = rt.block_on(async {
        lambda
            .get_function_configuration()
            .function_name(&lmi_name)
            .qualifier("$LATEST.PUBLISHED")
            .send()
            .await
            .unwrap()
            .memory_size()
    });
    assert_eq!(
        memory,
        Some(4096),
        "the published version has the new memory"
    );

    // Default → LMI: a replace, shown as such, and the function lands on the provider.
    edit_function(dir.path(), "default", |t| {
        t.replacen("\n", "\ncapacity_provider = \"main\"\n", 1)
    });
    let plan = target.lmi(dir.path(), &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("function.default (replace)"),
        "{}",
        plan.stdout
    );
    local.clear_calls();
    target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    let w = local.changes();
    assert_eq!(count(&w, "lambda:DeleteFunction"), 1, "{w:?}");
    assert_eq!(count(&w, "lambda:CreateFunction"), 1, "{w:?}");
    rt.block_on(async {
        let default = lambda
            .get_function_configuration()
            .function_name(&default_name)
            .send()
            .await
            .unwrap();
        assert!(default.capacity_provider_config().is_some());
        let (status, _) = invoke(&lambda, &default_name, Some("$LATEST.PUBLISHED"))
            .await
            .expect("invoke the replaced function");
        assert_eq!(status, 200);
    });
    local.clear_calls();
    let again = target
        .lmi(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(local.writes(), Vec::<String>::new());

    // Destroy: functions, then the provider, then the network; nothing is left.
    let destroyed = target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);
    assert!(
        destroyed.stdout.contains("19 deleted"),
        "{}",
        destroyed.stdout
    );
    let calls = local.calls();
    let position = |op: &str| calls.iter().rposition(|c| c == op);
    assert!(
        position("lambda:DeleteFunction") < position("lambda:DeleteCapacityProvider"),
        "functions go before their provider: {calls:?}"
    );
    assert!(
        position("lambda:DeleteCapacityProvider")
            < calls.iter().position(|c| c == "ec2:DeleteSubnet"),
        "the provider goes before its subnets: {calls:?}"
    );
    assert_eq!(rt.block_on(left(&target, &stack)), Vec::<String>::new());
    let nothing = target
        .lmi(dir.path(), &["destroy", "--auto-approve"])
        .expect(0);
    assert!(
        nothing.stdout.contains("nothing to destroy"),
        "{}",
        nothing.stdout
    );
}

#[test]
fn an_unsupported_runtime_is_rejected_before_any_aws_call() {
    let target = Target::private();
    let local = target
        .local
        .expect("these tests need the local AWS's call log");
    let dir = example("cold-start", &unique_stack("rt"));
    edit_function(dir.path(), "lmi", |t| {
        t.replace("runtime = \"nodejs22.x\"", "runtime = \"python3.12\"")
    });
    local.clear_calls();
    for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let out = target.lmi(dir.path(), command).expect(1);
        assert!(out.stderr.contains("python3.12"), "{}", out.stderr);
        assert!(
            out.stderr.contains("nothing was sent to AWS"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(local.calls(), Vec::<String>::new());
}
