//! `[capacity_providers.NAME]` and `[functions.NAME]`: the LMI rules AWS would otherwise report
//! minutes into a deploy (runtime allow-list, memory and vCPU ratio, architecture, counts).

use std::collections::BTreeMap;
use std::path::Path;

use super::{S, Validator};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawCapacityProvider, RawConfig, RawFunction};
use crate::config::read::did_you_mean;
use crate::model::{
    Architecture, CapacityProvider, Code, Compute, Function, InstanceTypes, ManagedCompute,
    Publish, Role, Runtime, Scaling, aws_name, limits,
};

/// Environment variables Lambda sets itself and rejects in a function's configuration
/// (DG configuration-envvars, "Defined runtime environment variables").
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

impl<'r> Validator<'_> {
    pub(super) fn capacity_providers(
        &mut self,
        raw: &'r RawConfig,
        stack: Option<&str>,
    ) -> Vec<(&'r RawCapacityProvider, CapacityProvider)> {
        if let (Some(first), None) = (raw.capacity_providers.first(), &raw.network) {
            self.push(
                Problem::error(
                    "lmi::capacity_provider::no_network",
                    first.name.span(),
                    format!("capacity provider `{}` needs a `[network]`", first.name.get_ref()),
                )
                .label("its instances run in a VPC")
                .help("add [network] with cidr = \"10.0.0.0/16\" (lmi creates it) or vpc_id and subnet_ids (an existing one)"),
            );
        }
        let providers: Vec<_> = raw
            .capacity_providers
            .iter()
            .filter_map(|cp| Some((cp, self.capacity_provider(cp, stack)?)))
            .collect();
        self.role_case_collisions(
            providers
                .iter()
                .map(|(raw, cp)| (&raw.name, &cp.operator_role)),
            "capacity providers",
        );
        providers
    }

    /// IAM role names are unique regardless of case: `Api` and `api` would get roles that IAM
    /// takes for one, and the second CreateRole would fail minutes into an apply.
    fn role_case_collisions<'a>(
        &mut self,
        named: impl Iterator<Item = (&'a S<String>, &'a Role)>,
        what: &str,
    ) {
        let mut seen: Vec<(String, &S<String>, &str)> = Vec::new();
        for (name, role) in named {
            let Role::Create { name: role } = role else {
                continue;
            };
            let key = role.to_lowercase();
            if let Some((_, first, first_role)) = seen.iter().find(|(k, _, _)| *k == key) {
                self.push(
                    Problem::error(
                        "lmi::name::case_collision",
                        name.span(),
                        format!(
                            "{what} `{}` and `{}` differ only in case",
                            first.get_ref(),
                            name.get_ref()
                        ),
                    )
                    .label("same name as another one, ignoring case")
                    .help(format!(
                        "IAM ignores case in role names: `{first_role}` and `{role}` would be one role; rename one of them"
                    )),
                );
            } else {
                seen.push((key, name, role));
            }
        }
    }

    fn capacity_provider(
        &mut self,
        raw: &RawCapacityProvider,
        stack: Option<&str>,
    ) -> Option<CapacityProvider> {
        let name = raw.name.get_ref().clone();
        let aws = aws_name(stack.unwrap_or(""), &name);
        let names_ok = stack.is_none()
            || self.aws_name(
                &raw.name,
                &aws,
                limits::CAPACITY_PROVIDER_NAME_MAX,
                "capacity provider name",
            );
        let operator_role = match &raw.operator_role_arn {
            Some(arn) => self
                .arn(arn, "iam", "role/", "an IAM role")
                .map(|arn| Role::Existing { arn }),
            None => {
                let role = format!("{aws}-operator");
                // A name already reported above is not reported again for its role.
                (names_ok
                    && (stack.is_none()
                        || self.aws_name(
                            &raw.name,
                            &role,
                            limits::ROLE_NAME_MAX,
                            "operator role name",
                        )))
                .then_some(Role::Create { name: role })
            }
        };
        let architecture = self.architecture(raw.architecture.as_ref());
        let instance_types = match (&raw.instance_types, &raw.excluded_instance_types) {
            (Some(_), Some(excluded)) => {
                self.push(
                    Problem::error(
                        "lmi::capacity_provider::instance_types",
                        excluded.span(),
                        "`instance_types` and `excluded_instance_types` exclude each other",
                    )
                    .label("can't be used with instance_types")
                    .help("AWS takes either an allow-list or a deny-list of instance types"),
                );
                None
            }
            (Some(allowed), None) => self.instance_types(allowed).map(InstanceTypes::Allowed),
            (None, Some(excluded)) => self.instance_types(excluded).map(InstanceTypes::Excluded),
            (None, None) => Some(InstanceTypes::Any),
        };
        let max_vcpus = match &raw.max_vcpus {
            Some(v) => Some(self.in_range(v, limits::MAX_VCPUS, "`max_vcpus`", "")? as u32),
            None => None,
        };
        let scaling = self.scaling(raw);
        let kms_key_arn = match &raw.kms_key_arn {
            Some(arn) => Some(self.arn(arn, "kms", "key/", "a KMS key")?),
            None => None,
        };
        if !names_ok {
            return None;
        }
        Some(CapacityProvider {
            name,
            aws_name: aws,
            architecture: architecture?,
            instance_types: instance_types?,
            max_vcpus,
            scaling: scaling?,
            kms_key_arn,
            operator_role: operator_role?,
        })
    }

    fn architecture(&mut self, value: Option<&S<String>>) -> Option<Architecture> {
        // Other tools' names for the two architectures; string similarity would suggest
        // "arm64" for "amd64".
        let alias = value.and_then(|v| match v.get_ref().as_str() {
            "amd64" | "x86-64" | "x64" | "x86" => Some("x86_64"),
            "aarch64" | "arm" | "graviton" => Some("arm64"),
            _ => None,
        });
        if let (Some(v), Some(arch)) = (value, alias) {
            self.push(
                Problem::error(
                    "lmi::config::invalid_value",
                    v.span(),
                    format!("`{}` is not a valid architecture", v.get_ref()),
                )
                .label("expected \"x86_64\" or \"arm64\"")
                .help(format!("Lambda calls it \"{arch}\"")),
            );
            return None;
        }
        match value {
            None => Some(Architecture::X86_64),
            Some(v) => match self.one_of(v, &["x86_64", "arm64"], "architecture")? {
                "arm64" => Some(Architecture::Arm64),
                _ => Some(Architecture::X86_64),
            },
        }
    }

    fn instance_types(&mut self, list: &S<Vec<S<String>>>) -> Option<Vec<String>> {
        let n = list.get_ref().len();
        if n == 0 || n > limits::INSTANCE_TYPES_MAX {
            self.push(
                Problem::error(
                    "lmi::capacity_provider::instance_types",
                    list.span(),
                    format!(
                        "1 to {} instance types, got {n}",
                        limits::INSTANCE_TYPES_MAX
                    ),
                )
                .label("wrong number of instance types")
                .help("leave the key out to let Lambda choose"),
            );
            return None;
        }
        let mut ok = true;
        for item in list.get_ref() {
            let t = item.get_ref();
            let valid = t.split_once('.').is_some_and(|(family, size)| {
                !family.is_empty()
                    && !size.is_empty()
                    && family
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && size
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '*')
            });
            if !valid {
                ok = false;
                self.push(
                    Problem::error(
                        "lmi::capacity_provider::instance_types",
                        item.span(),
                        format!("`{t}` is not an EC2 instance type"),
                    )
                    .label("expected e.g. m7i.large or c7g.*"),
                );
            }
        }
        ok.then(|| list.get_ref().iter().map(|t| t.get_ref().clone()).collect())
    }

    fn scaling(&mut self, raw: &RawCapacityProvider) -> Option<Scaling> {
        let mode = match &raw.scaling {
            Some(s) => self.one_of(s, &["auto", "manual"], "scaling mode")?,
            None => "auto",
        };
        match (mode, &raw.scaling_policies) {
            ("auto", None) => Some(Scaling::Auto),
            ("auto", Some(policies)) => {
                self.push(
                    Problem::error(
                        "lmi::capacity_provider::scaling_policies",
                        policies.span(),
                        "scaling policies are only used with manual scaling",
                    )
                    .label("ignored by AWS with scaling = \"auto\"")
                    .help("set scaling = \"manual\" to use them, or remove them"),
                );
                None
            }
            (_, None)
                if self.invalid.contains(&format!(
                    "capacity_providers.{}.scaling_policies",
                    raw.name.get_ref()
                )) =>
            {
                None
            }
            (_, policies) => {
                let span = policies
                    .as_ref()
                    .map(|p| p.span())
                    .or_else(|| raw.scaling.as_ref().map(|s| s.span()))
                    .unwrap_or(raw.span.clone());
                let targets = policies
                    .as_ref()
                    .map(|p| p.get_ref().as_slice())
                    .unwrap_or_default();
                if !limits::SCALING_POLICIES.contains(&targets.len()) {
                    self.push(
                        Problem::error(
                            "lmi::capacity_provider::scaling_policies",
                            span,
                            format!(
                                "manual scaling needs 1 to 10 scaling policies, got {}",
                                targets.len()
                            ),
                        )
                        .label("wrong number of policies")
                        .help("add scaling_policies = [{ cpu_target = 60 }]"),
                    );
                    return None;
                }
                let mut cpu_targets = Vec::new();
                for target in targets {
                    if !limits::CPU_TARGET.contains(target.get_ref()) {
                        self.push(
                            Problem::error(
                                "lmi::config::out_of_range",
                                target.span(),
                                format!(
                                    "`cpu_target` is a percentage (0–100), got {}",
                                    target.get_ref()
                                ),
                            )
                            .label("not in 0–100"),
                        );
                        return None;
                    }
                    cpu_targets.push(*target.get_ref());
                }
                Some(Scaling::Manual { cpu_targets })
            }
        }
    }

    pub(super) fn functions(
        &mut self,
        raw: &'r RawConfig,
        stack: Option<&str>,
        providers: &[(&RawCapacityProvider, CapacityProvider)],
    ) -> Vec<(&'r RawFunction, Function)> {
        let declared: Vec<&str> = raw
            .capacity_providers
            .iter()
            .map(|cp| cp.name.get_ref().as_str())
            .collect();
        let functions: Vec<_> = raw
            .functions
            .iter()
            .filter_map(|f| Some((f, self.function(f, stack, providers, &declared)?)))
            .collect();
        self.role_case_collisions(
            functions.iter().map(|(raw, f)| (&raw.name, &f.role)),
            "functions",
        );
        functions
    }

    fn function(
        &mut self,
        raw: &RawFunction,
        stack: Option<&str>,
        providers: &[(&RawCapacityProvider, CapacityProvider)],
        declared: &[&str],
    ) -> Option<Function> {
        let name = raw.name.get_ref().clone();
        let aws = aws_name(stack.unwrap_or(""), &name);
        let names_ok = stack.is_none()
            || self.aws_name(&raw.name, &aws, limits::FUNCTION_NAME_MAX, "function name");

        // The provider first: the runtime, memory and architecture rules depend on it.
        let provider = match &raw.capacity_provider {
            None => {
                self.managed_keys_without_provider(raw);
                None
            }
            Some(reference) => {
                let found = providers
                    .iter()
                    .find(|(_, cp)| &cp.name == reference.get_ref());
                // A provider that is declared but has errors of its own is not "unknown": its
                // own problems are reported where it is.
                if found.is_none() && !declared.contains(&reference.get_ref().as_str()) {
                    self.unknown_provider(reference, providers);
                }
                // Keep checking the function's own rules as LMI even when the name is wrong.
                Some(found.map(|(_, cp)| cp))
            }
        };
        let managed = provider.is_some();

        let runtime = self.runtime(raw, managed);
        let handler = match (&raw.handler, &runtime) {
            (Some(h), _) if h.get_ref().trim().is_empty() => {
                self.push(
                    Problem::error("lmi::function::handler", h.span(), "empty handler")
                        .label("expected e.g. index.handler"),
                );
                None
            }
            (Some(h), _) => Some(h.get_ref().clone()),
            // OS-only runtimes ignore the handler; Lambda still wants one.
            (None, Some(r)) if r.as_str().starts_with("provided") => {
                Some(String::from("bootstrap"))
            }
            (None, _) => {
                self.missing(
                    &format!("functions.{}.handler", raw.name.get_ref()),
                    Problem::error(
                        "lmi::config::missing_key",
                        raw.span.clone(),
                        format!("missing key `functions.{name}.handler`"),
                    )
                    .label("`handler` is required here")
                    .help("e.g. handler = \"index.handler\" for index.mjs exporting handler"),
                );
                None
            }
        };
        let code = self.code(raw);

        let memory_gib_per_vcpu = match &raw.memory_gib_per_vcpu {
            Some(v) if managed => {
                if limits::MEMORY_GIB_PER_VCPU.contains(v.get_ref()) {
                    Some(*v.get_ref() as u8)
                } else {
                    self.push(
                        Problem::error(
                            "lmi::function::memory_gib_per_vcpu",
                            v.span(),
                            format!(
                                "`memory_gib_per_vcpu` must be 2, 4 or 8, got {}",
                                v.get_ref()
                            ),
                        )
                        .label("not 2, 4 or 8"),
                    );
                    None
                }
            }
            _ => Some(2),
        };
        let memory_mb = self.memory(raw, managed, memory_gib_per_vcpu);
        let timeout_s = match &raw.timeout_s {
            Some(t) => self
                .in_range(t, limits::TIMEOUT_S, "`timeout_s`", " s")
                .map(|t| t as u32),
            None => Some(3),
        };
        let environment = self.environment(raw);
        let architecture = self.function_architecture(raw, provider.flatten());
        let role = match &raw.role_arn {
            Some(arn) => self
                .arn(arn, "iam", "role/", "an IAM role")
                .map(|arn| Role::Existing { arn }),
            None => {
                let role = format!("{aws}-role");
                // A name already reported above is not reported again for its role.
                (names_ok
                    && (stack.is_none()
                        || self.aws_name(
                            &raw.name,
                            &role,
                            limits::ROLE_NAME_MAX,
                            "execution role name",
                        )))
                .then_some(Role::Create { name: role })
            }
        };
        let build = match &raw.build {
            Some(b) if b.get_ref().trim().is_empty() => {
                self.push(
                    Problem::error("lmi::function::build", b.span(), "empty build command")
                        .label("remove it, or give a command"),
                );
                None
            }
            Some(b) => Some(Some(b.get_ref().clone())),
            None => Some(None),
        };
        let compute = match provider {
            None => Some(Compute::Default),
            Some(cp) => self.managed_compute(raw, cp?, memory_gib_per_vcpu?),
        };
        if !names_ok {
            return None;
        }
        Some(Function {
            name,
            aws_name: aws,
            runtime: runtime?,
            handler: handler?,
            code: code?,
            build: build?,
            memory_mb: memory_mb?,
            timeout_s: timeout_s?,
            environment: environment?,
            architecture: architecture?,
            tracing: raw.tracing.as_ref().is_some_and(|t| *t.get_ref()),
            role: role?,
            compute: compute?,
        })
    }

    fn managed_keys_without_provider(&mut self, raw: &RawFunction) {
        let present = [
            (
                "per_environment_max_concurrency",
                raw.per_environment_max_concurrency
                    .as_ref()
                    .map(|v| v.span()),
            ),
            (
                "memory_gib_per_vcpu",
                raw.memory_gib_per_vcpu.as_ref().map(|v| v.span()),
            ),
            (
                "min_environments",
                raw.min_environments.as_ref().map(|v| v.span()),
            ),
            (
                "max_environments",
                raw.max_environments.as_ref().map(|v| v.span()),
            ),
            ("publish", raw.publish.as_ref().map(|v| v.span())),
        ];
        for (key, span) in present {
            if let Some(span) = span {
                self.push(
                    Problem::error(
                        "lmi::function::managed_key_without_provider",
                        span,
                        format!("`{key}` only applies to a function on a capacity provider"),
                    )
                    .label("this function is a default Lambda")
                    .help("add capacity_provider = \"NAME\" to run it on Lambda Managed Instances, or remove this key"),
                );
            }
        }
    }

    fn unknown_provider(
        &mut self,
        reference: &S<String>,
        providers: &[(&RawCapacityProvider, CapacityProvider)],
    ) {
        let names: Vec<&str> = providers.iter().map(|(_, cp)| cp.name.as_str()).collect();
        let mut problem = Problem::error(
            "lmi::function::unknown_capacity_provider",
            reference.span(),
            format!("no capacity provider named `{}`", reference.get_ref()),
        )
        .label("not defined in this file");
        problem = match did_you_mean(reference.get_ref(), &names) {
            Some(best) => problem.help(format!("did you mean `{best}`?")),
            None if names.is_empty() => problem.help(format!(
                "define it: [capacity_providers.{}]",
                reference.get_ref()
            )),
            None => problem.help(format!("defined providers: {}", names.join(", "))),
        };
        self.push(problem);
    }

    fn runtime(&mut self, raw: &RawFunction, managed: bool) -> Option<Runtime> {
        let Some(value) = &raw.runtime else {
            self.missing(
                &format!("functions.{}.runtime", raw.name.get_ref()),
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.clone(),
                    format!("missing key `functions.{}.runtime`", raw.name.get_ref()),
                )
                .label("`runtime` is required here")
                .help("e.g. runtime = \"nodejs22.x\""),
            );
            return None;
        };
        let id = value.get_ref();
        let Some(runtime) = Runtime::parse(id) else {
            let supported: Vec<&str> = Runtime::supported().collect();
            let mut problem = Problem::error(
                "lmi::function::unknown_runtime",
                value.span(),
                format!("unknown runtime `{id}`"),
            )
            .label("not a Lambda runtime");
            problem = match did_you_mean(id, &supported) {
                Some(best) => problem.help(format!("did you mean \"{best}\"?")),
                None => problem.help(format!("supported runtimes: {}", supported.join(", "))),
            };
            self.push(problem);
            return None;
        };
        if managed && !runtime.supports_managed_instances() {
            // The reference experiment's CloudFormation deploy failed after minutes with
            // "Runtime Enum nodejs16.x does not support specified feature: Lambda Managed Instances".
            self.push(
                Problem::error(
                    "lmi::function::runtime_not_supported_on_lmi",
                    value.span(),
                    format!("runtime `{id}` does not run on Lambda Managed Instances"),
                )
                .label("not supported on a capacity provider")
                .help(format!(
                    "use one of: {} (AWS would reject it at CreateFunction: \"Runtime Enum {id} does not support specified feature: Lambda Managed Instances\")",
                    Runtime::managed_instances().collect::<Vec<_>>().join(", ")
                )),
            );
            return None;
        }
        if let Some(date) = runtime.deprecated_on() {
            self.push(
                Problem::warning(
                    "lmi::function::deprecated_runtime",
                    value.span(),
                    format!("runtime `{id}` was deprecated by AWS on {date}"),
                )
                .label("deprecated")
                .help(format!(
                    "AWS no longer patches it and will block creating and then updating functions on it; move to one of: {}",
                    Runtime::supported()
                        .filter(|r| r.split(|c: char| c.is_ascii_digit()).next() == id.split(|c: char| c.is_ascii_digit()).next())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
        Some(runtime)
    }

    fn code(&mut self, raw: &RawFunction) -> Option<Code> {
        let Some(value) = &raw.code else {
            self.missing(&format!("functions.{}.code", raw.name.get_ref()), 
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.clone(),
                    format!("missing key `functions.{}.code`", raw.name.get_ref()),
                )
                .label("`code` is required here")
                .help("a directory to zip (code = \"./handler\") or a built zip (code = \"dist/fn.zip\")"),
            );
            return None;
        };
        if value.get_ref().trim().is_empty() {
            self.push(
                Problem::error(
                    "lmi::function::code_missing",
                    value.span(),
                    "empty code path",
                )
                .label("would zip the whole project, lmi.toml included")
                .help("name the handler's directory (code = \"handler\") or a built zip"),
            );
            return None;
        }
        let path = self.base_dir.join(value.get_ref());
        let is_zip = Path::new(value.get_ref())
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        // With a build command the code may not exist yet: the build makes it.
        if raw.build.is_none() {
            let problem = match (is_zip, path.is_file(), path.is_dir()) {
                (true, true, _) | (false, _, true) => None,
                (true, false, _) => Some("is not a file"),
                (false, true, _) => Some("is a file but not a .zip"),
                (false, false, false) => Some("does not exist"),
            };
            if let Some(what) = problem {
                self.push(
                    Problem::error(
                        "lmi::function::code_missing",
                        value.span(),
                        format!("code path `{}` {what}", value.get_ref()),
                    )
                    .label(what)
                    .help(format!(
                        "paths are relative to the directory of lmi.toml ({}); add `build` if a command makes it",
                        self.base_dir.display()
                    )),
                );
                return None;
            }
        }
        Some(if is_zip {
            Code::Zip(path)
        } else {
            Code::Directory(path)
        })
    }

    fn memory(
        &mut self,
        raw: &RawFunction,
        managed: bool,
        gib_per_vcpu: Option<u8>,
    ) -> Option<u32> {
        let Some(value) = &raw.memory_mb else {
            if !managed {
                return Some(128);
            }
            // The default 2048 MB is one vCPU only at 2 GiB per vCPU.
            let default = *limits::LMI_MEMORY_MB.start();
            if let (Some(ratio), Some(ratio_value)) = (gib_per_vcpu, &raw.memory_gib_per_vcpu)
                && default % (i64::from(ratio) * 1024) != 0
            {
                let vcpu = i64::from(ratio) * 1024;
                self.push(
                    Problem::error(
                        "lmi::function::memory_ratio",
                        ratio_value.span(),
                        format!("the default memory_mb ({default} MB) is less than one vCPU at {ratio} GiB per vCPU"),
                    )
                    .label(format!("needs memory_mb of at least {vcpu}"))
                    .help(format!(
                        "set memory_mb = {vcpu} (or a multiple of it), or leave memory_gib_per_vcpu out; AWS would reject it: \"Memory ratio of {vcpu}.0MB per CPU exceeds function's total memory\""
                    )),
                );
                return None;
            }
            return Some(default as u32);
        };
        if !managed {
            return self
                .in_range(
                    value,
                    limits::DEFAULT_MEMORY_MB,
                    "`memory_mb` of a default function",
                    " MB",
                )
                .map(|m| m as u32);
        }
        let memory = self.in_range(
            value,
            limits::LMI_MEMORY_MB,
            "`memory_mb` of an LMI function",
            " MB",
        )?;
        let ratio = i64::from(gib_per_vcpu?);
        if memory % (ratio * 1024) != 0 {
            let lower = memory / (ratio * 1024) * ratio * 1024;
            let upper = lower + ratio * 1024;
            self.push(
                Problem::error(
                    "lmi::function::memory_ratio",
                    value.span(),
                    format!("{memory} MB is not a whole number of vCPUs at {ratio} GiB per vCPU"),
                )
                .label(format!("not a multiple of {} MB", ratio * 1024))
                .help(format!(
                    "an LMI environment gets memory_mb / ({ratio} × 1024) vCPUs, which must be whole: use {}{upper} MB, or change memory_gib_per_vcpu",
                    if lower >= 2048 { format!("{lower} or ") } else { String::new() }
                )),
            );
            return None;
        }
        Some(memory as u32)
    }

    fn environment(&mut self, raw: &RawFunction) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in raw.environment.iter().flat_map(|e| e.get_ref()) {
            let k = key.get_ref();
            // AWS's pattern is [a-zA-Z]([a-zA-Z0-9_])+: at least two characters.
            let valid = k.len() >= 2
                && k.starts_with(|c: char| c.is_ascii_alphabetic())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                ok = false;
                self.push(
                    Problem::error(
                        "lmi::function::environment",
                        key.span(),
                        format!("`{k}` is not a valid variable name"),
                    )
                    .label("2 or more letters, digits and _, starting with a letter"),
                );
            } else if RESERVED_ENV.contains(&k.as_str()) {
                ok = false;
                self.push(
                    Problem::error(
                        "lmi::function::environment",
                        key.span(),
                        format!("`{k}` is reserved by Lambda"),
                    )
                    .label("Lambda sets this variable itself")
                    .help("AWS rejects a function that sets it; choose another name"),
                );
            }
            out.insert(k.clone(), value.get_ref().clone());
        }
        // Lambda caps the whole set at 4 KB (DG configuration-envvars, quotas).
        let size: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
        if let Some(env) = &raw.environment
            && size > limits::ENVIRONMENT_BYTES_MAX
        {
            ok = false;
            self.push(
                Problem::error(
                    "lmi::function::environment_size",
                    env.span(),
                    format!(
                        "the environment is {size} bytes; Lambda allows {} in all",
                        limits::ENVIRONMENT_BYTES_MAX
                    ),
                )
                .label("too large")
                .help("move large values to SSM Parameter Store or Secrets Manager and read them at init"),
            );
        }
        ok.then_some(out)
    }

    fn function_architecture(
        &mut self,
        raw: &RawFunction,
        provider: Option<&CapacityProvider>,
    ) -> Option<Architecture> {
        let Some(provider) = provider else {
            return self.architecture(raw.architecture.as_ref());
        };
        let Some(value) = &raw.architecture else {
            return Some(provider.architecture);
        };
        let arch = self.architecture(Some(value))?;
        if arch != provider.architecture {
            self.push(
                Problem::error(
                    "lmi::function::architecture_mismatch",
                    value.span(),
                    format!(
                        "function `{}` is {} but capacity provider `{}` runs {}",
                        raw.name.get_ref(),
                        arch.as_str(),
                        provider.name,
                        provider.architecture.as_str()
                    ),
                )
                .label("differs from the capacity provider's")
                .help(format!(
                    "a function on a capacity provider runs on its instances: use architecture = \"{}\" or leave it out",
                    provider.architecture.as_str()
                )),
            );
            return None;
        }
        Some(arch)
    }

    fn managed_compute(
        &mut self,
        raw: &RawFunction,
        provider: &CapacityProvider,
        gib_per_vcpu: u8,
    ) -> Option<Compute> {
        let concurrency = match &raw.per_environment_max_concurrency {
            Some(c) => Some(self.in_range(
                c,
                limits::PER_ENVIRONMENT_CONCURRENCY,
                "`per_environment_max_concurrency`",
                "",
            )? as u32),
            None => None,
        };
        let min = raw
            .min_environments
            .as_ref()
            .map(|m| self.in_range(m, limits::EXECUTION_ENVIRONMENTS, "`min_environments`", ""));
        let max = raw
            .max_environments
            .as_ref()
            .map(|m| self.in_range(m, limits::EXECUTION_ENVIRONMENTS, "`max_environments`", ""));
        if let (Some(Some(lo)), Some(Some(hi)), Some(max_value)) = (min, max, &raw.max_environments)
            && lo > hi
        {
            self.push(
                Problem::error(
                    "lmi::function::environments",
                    max_value.span(),
                    format!("`max_environments` ({hi}) is below `min_environments` ({lo})"),
                )
                .label("must be at least min_environments"),
            );
            return None;
        }
        // AWS starts 3 environments when no minimum is given (LMI-FACTS, FunctionScalingConfig).
        if let (None, Some(Some(hi)), Some(max_value)) = (min, max, &raw.max_environments)
            && hi < 3
        {
            self.push(
                Problem::error(
                    "lmi::function::environments",
                    max_value.span(),
                    format!("`max_environments` ({hi}) is below AWS's default minimum of 3"),
                )
                .label("below the default min_environments")
                .help("set min_environments too, at most this value"),
            );
            return None;
        }
        // A range error above is already recorded; the stack is dropped for it.
        let (min, max) = (min.flatten(), max.flatten());
        let publish = match &raw.publish {
            Some(p) => match self.one_of(p, &["latest_published", "version"], "publish target")? {
                "version" => Publish::Version,
                _ => Publish::LatestPublished,
            },
            None => Publish::LatestPublished,
        };
        Some(Compute::Managed(ManagedCompute {
            capacity_provider: provider.name.clone(),
            per_environment_max_concurrency: concurrency,
            memory_gib_per_vcpu: gib_per_vcpu,
            min_environments: min.map(|m| m as u32),
            max_environments: max.map(|m| m as u32),
            publish,
        }))
    }
}
