//! Desired vs observed, resource by resource and field by field: the plan. Pure and
//! deterministic; both sides speak the same vocabulary (`resource`), so a converged stack
//! plans nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::resource::{Address, Kind, Observed, Resource};
use crate::model::CREATED_TAG;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// Delete, then create: a field AWS can't change in place differs.
    Replace,
    Delete,
}

/// One field that differs, shown as `before → after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
    /// AWS can't change this field in place.
    pub forces_replace: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Empty for create and delete.
    pub fields: Vec<FieldChange>,
    /// The resource as wanted (create, update, replace).
    #[serde(skip)]
    pub desired: Option<Resource>,
    /// The resource as it is (update, replace, delete).
    #[serde(skip)]
    pub observed: Option<Observed>,
}

/// What `apply` will do. Serialized for `lmi plan --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub changes: Vec<Change>,
    /// Resources that already match lmi.toml.
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// Fields of each kind that AWS can't change in place (a change means replace).
fn forces_replace(kind: Kind, field: &str) -> bool {
    let fields: &[&str] = match kind {
        Kind::Role => &["name"],
        Kind::Vpc => &["cidr"],
        Kind::InternetGateway => &[],
        Kind::Subnet => &["vpc", "cidr", "availability_zone"],
        Kind::ElasticIp => &[],
        Kind::NatGateway => &["subnet", "elastic_ip"],
        Kind::RouteTable => &["vpc"],
        // EC2 has no call to change a group's description.
        Kind::SecurityGroup => &["vpc", "description"],
        Kind::VpcEndpoint => &["vpc", "service", "endpoint.type"],
        // UpdateCapacityProvider changes only the scaling config (LMI-FACTS).
        Kind::CapacityProvider => &[
            "name",
            "subnets",
            "security_groups",
            "operator_role",
            "architecture",
            "allowed_instance_types",
            "excluded_instance_types",
            "kms_key_arn",
        ],
        // The compute type is fixed at creation ("CapacityProviderConfig isn't supported for
        // Lambda Default functions"). Moving between providers is a replace too: no AWS
        // document says UpdateFunctionConfiguration may, and the old provider could not be
        // deleted while the function still held it.
        Kind::Function => &["name", "capacity_provider"],
    };
    fields.contains(&field)
}

/// Compares what is wanted with what is there.
pub fn diff(stack: &str, desired: Vec<Resource>, observed: Vec<Observed>) -> Plan {
    let mut observed: BTreeMap<Address, Observed> = observed
        .into_iter()
        .map(|o| (o.resource.address.clone(), o))
        .collect();
    let mut changes = Vec::new();
    for mut want in desired {
        match observed.remove(&want.address) {
            None => changes.push(Change {
                address: want.address.clone(),
                action: Action::Create,
                fields: Vec::new(),
                desired: Some(want),
                observed: None,
            }),
            Some(have) => {
                // A resource keeps the creation time it has (none, if an older lmi made it).
                match have.resource.tags.get(CREATED_TAG) {
                    Some(created) => want.tags.insert(CREATED_TAG.into(), created.clone()),
                    None => want.tags.remove(CREATED_TAG),
                };
                // An update with no fields is a no-op, kept until replacements cascade: a
                // replaced dependency may still make it change.
                let fields = field_changes(&want, &have.resource);
                let action = if fields.iter().any(|f| f.forces_replace) {
                    Action::Replace
                } else {
                    Action::Update
                };
                changes.push(Change {
                    address: want.address.clone(),
                    action,
                    fields,
                    desired: Some(want),
                    observed: Some(have),
                });
            }
        }
    }
    // What AWS has and lmi.toml no longer asks for.
    for (address, have) in observed {
        changes.push(Change {
            address,
            action: Action::Delete,
            fields: Vec::new(),
            desired: None,
            observed: Some(have),
        });
    }
    cascade_replacements(&mut changes);
    let before = changes.len();
    changes.retain(|c| c.action != Action::Update || !c.fields.is_empty());
    let unchanged = before - changes.len();
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    Plan {
        stack: stack.to_string(),
        changes,
        unchanged,
    }
}

/// A resource inside a replaced one must be replaced too (a subnet of a replaced VPC); one that
/// only points at a replaced one is updated to point at the new one (a route table's subnets).
fn cascade_replacements(changes: &mut [Change]) {
    loop {
        let replaced: BTreeSet<Address> = changes
            .iter()
            .filter(|c| c.action == Action::Replace)
            .map(|c| c.address.clone())
            .collect();
        let mut changed = false;
        for change in changes.iter_mut() {
            if change.action != Action::Update {
                continue;
            }
            let Some(want) = &change.desired else {
                continue;
            };
            let json = serde_json::to_value(&want.spec).unwrap_or(Value::Null);
            for target in want.spec.references() {
                if !replaced.contains(target) {
                    continue;
                }
                let field = field_referring(&json, &target.to_string());
                let forces = forces_replace(want.address.kind, &field);
                if change.fields.iter().any(|f| f.field == field) {
                    continue;
                }
                change.fields.push(FieldChange {
                    field,
                    before: target.to_string(),
                    after: format!("{target} (replaced)"),
                    forces_replace: forces,
                });
                if forces {
                    change.action = Action::Replace;
                }
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// The top-level field of a spec that mentions an address.
fn field_referring(spec: &Value, address: &str) -> String {
    spec.as_object()
        .into_iter()
        .flatten()
        .find(|(_, v)| v.to_string().contains(&format!("\"{address}\"")))
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| "reference".into())
}

/// Field-by-field differences of two resources of one kind, tags included.
pub fn field_changes(want: &Resource, have: &Resource) -> Vec<FieldChange> {
    let kind = want.address.kind;
    let w = serde_json::to_value(&want.spec).unwrap_or(Value::Null);
    let h = serde_json::to_value(&have.spec).unwrap_or(Value::Null);
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let w_fields = w.as_object().unwrap_or(&empty);
    let h_fields = h.as_object().unwrap_or(&empty);
    for (field, w_value) in w_fields {
        if field == "kind" {
            continue;
        }
        let h_value = h_fields.get(field).unwrap_or(&Value::Null);
        if w_value == h_value {
            continue;
        }
        // An endpoint's type (interface or gateway) is fixed; its subnets, groups or route
        // tables are not.
        let forces = if field == "endpoint" {
            w_value.get("type") != h_value.get("type")
        } else {
            forces_replace(kind, field)
        };
        out.push(FieldChange {
            field: field.clone(),
            before: show(h_value),
            after: show(w_value),
            forces_replace: forces,
        });
    }
    if want.tags != have.tags {
        out.push(FieldChange {
            field: "tags".into(),
            before: show_tags(&have.tags, &want.tags),
            after: show_tags(&want.tags, &have.tags),
            forces_replace: false,
        });
    }
    out
}

/// A JSON value as a person reads it: strings bare, lists in brackets.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The tags of `one` that differ from `other`, `k=v`; the unchanged ones don't help a reader.
fn show_tags(one: &BTreeMap<String, String>, other: &BTreeMap<String, String>) -> String {
    let differing: Vec<String> = one
        .iter()
        .filter(|(k, v)| other.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if differing.is_empty() {
        "{}".into()
    } else {
        format!("{{{}}}", differing.join(", "))
    }
}
