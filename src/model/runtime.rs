//! Lambda runtime identifiers: which exist, which are deprecated, which run on Lambda Managed
//! Instances.
//!
//! Sources: DG lambda-runtimes (deprecation schedule, as published in late 2026) and DG
//! lambda-managed-instances-runtimes (Node.js 22+, Python 3.13+, Java 21+, .NET 8+,
//! provided.al2023). A runtime missing here is unknown to lmi, not necessarily to AWS: update
//! this table when AWS adds one.

use std::fmt;

use serde::Serialize;

/// A runtime identifier lmi knows, e.g. `nodejs22.x`.
#[derive(Clone, Copy)]
pub struct Runtime(&'static Known);

struct Known {
    id: &'static str,
    /// The date AWS deprecated it, if it has been.
    deprecated: Option<&'static str>,
    managed_instances: bool,
}

const fn current(id: &'static str, managed_instances: bool) -> Known {
    Known {
        id,
        deprecated: None,
        managed_instances,
    }
}

const fn deprecated(id: &'static str, on: &'static str) -> Known {
    Known {
        id,
        deprecated: Some(on),
        managed_instances: false,
    }
}

const KNOWN: &[Known] = &[
    current("nodejs24.x", true),
    current("nodejs22.x", true),
    current("python3.14", true),
    current("python3.13", true),
    current("python3.12", false),
    current("python3.11", false),
    current("java25", true),
    current("java21", true),
    current("java17", false),
    current("java11", false),
    current("dotnet10", true),
    // .NET 8 left AWS's standard support in November 2026 but is still listed for LMI.
    Known {
        id: "dotnet8",
        deprecated: Some("2026-11-10"),
        managed_instances: true,
    },
    current("ruby3.4", false),
    current("ruby3.3", false),
    current("provided.al2023", true),
    deprecated("provided.al2", "2026-06-30"),
    deprecated("java8.al2", "2026-06-30"),
    deprecated("nodejs20.x", "2026-04-30"),
    deprecated("python3.10", "2026-06-30"),
    deprecated("ruby3.2", "2026-03-31"),
    deprecated("python3.9", "2025-12-15"),
    deprecated("nodejs18.x", "2025-09-01"),
    deprecated("python3.8", "2024-10-14"),
    deprecated("nodejs16.x", "2024-06-12"),
    deprecated("dotnet6", "2024-12-20"),
    deprecated("java8", "2024-01-08"),
    deprecated("go1.x", "2024-01-08"),
    deprecated("provided", "2024-01-08"),
    deprecated("nodejs14.x", "2023-12-04"),
    deprecated("python3.7", "2023-12-04"),
];

impl Runtime {
    pub fn parse(id: &str) -> Option<Runtime> {
        KNOWN.iter().find(|k| k.id == id).map(Runtime)
    }

    pub fn as_str(self) -> &'static str {
        self.0.id
    }

    fn known(self) -> &'static Known {
        self.0
    }

    /// The date AWS deprecated this runtime, if it has.
    pub fn deprecated_on(self) -> Option<&'static str> {
        self.known().deprecated
    }

    pub fn supports_managed_instances(self) -> bool {
        self.known().managed_instances
    }

    /// Every runtime that runs on Lambda Managed Instances, for error messages.
    pub fn managed_instances() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().filter(|k| k.managed_instances).map(|k| k.id)
    }

    /// Every runtime AWS still supports, for error messages.
    pub fn supported() -> impl Iterator<Item = &'static str> {
        KNOWN
            .iter()
            .filter(|k| k.deprecated.is_none())
            .map(|k| k.id)
    }

    /// Per-environment concurrency AWS uses when none is set, per vCPU (DG
    /// lambda-managed-instances-scaling).
    pub fn default_concurrency_per_vcpu(self) -> u32 {
        match self.0.id {
            id if id.starts_with("nodejs") => 64,
            id if id.starts_with("python") => 16,
            _ => 32,
        }
    }
}

impl PartialEq for Runtime {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Runtime {}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Runtime({})", self.0.id)
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

impl Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_instances_allow_list_matches_the_docs() {
        let lmi: Vec<_> = Runtime::managed_instances().collect();
        assert_eq!(
            lmi,
            [
                "nodejs24.x",
                "nodejs22.x",
                "python3.14",
                "python3.13",
                "java25",
                "java21",
                "dotnet10",
                "dotnet8",
                "provided.al2023"
            ]
        );
        let node16 = Runtime::parse("nodejs16.x").unwrap();
        assert!(!node16.supports_managed_instances());
        assert_eq!(node16.deprecated_on(), Some("2024-06-12"));
        assert!(Runtime::parse("nodejs99.x").is_none());
    }
}
