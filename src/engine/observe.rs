//! What AWS has for a stack, found by its tags: the "state" lmi needs, with no state file.

use std::collections::BTreeMap;

use crate::aws::{Aws, AwsError};
use crate::plan::resource::{Address, Observed, Ref};

/// The stack's resources as AWS has them, references rewritten as addresses.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub resources: Vec<Observed>,
}

impl Observation {
    /// AWS id of each resource, by address.
    pub fn ids(&self) -> BTreeMap<Address, String> {
        self.resources
            .iter()
            .map(|o| (o.resource.address.clone(), o.id.clone()))
            .collect()
    }
}

/// Discovers every resource tagged with the stack, in all the services lmi uses at once.
pub async fn observe(aws: &Aws, stack: &str) -> Result<Observation, AwsError> {
    let (network, roles, lambda) = futures::try_join!(
        aws.ec2.observe(stack),
        aws.iam.observe(stack),
        aws.lambda.observe(stack)
    )?;
    Ok(resolve(
        network.into_iter().chain(roles).chain(lambda).collect(),
    ))
}

/// Rewrites AWS ids that belong to the stack as addresses, so observed specs compare with
/// desired ones. Two resources claiming one address (a create retried after a crash) keep the
/// first; the other gets a unique address of its own, so the plan deletes it.
pub fn resolve(mut resources: Vec<Observed>) -> Observation {
    resources.sort_by(|a, b| (&a.resource.address, &a.id).cmp(&(&b.resource.address, &b.id)));
    let mut seen = BTreeMap::new();
    for observed in &mut resources {
        let address = &mut observed.resource.address;
        if seen.contains_key(address) {
            address.name = format!("{}~{}", address.name, observed.id);
        }
        seen.insert(address.clone(), observed.id.clone());
    }
    let by_id: BTreeMap<String, Address> = seen.into_iter().map(|(a, id)| (id, a)).collect();
    for observed in &mut resources {
        observed.resource.spec.map_refs(|r| {
            if let Ref::External(id) = r
                && let Some(address) = by_id.get(id)
            {
                *r = Ref::Resource(address.clone());
            }
        });
    }
    Observation { resources }
}
