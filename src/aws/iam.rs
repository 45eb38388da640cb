//! IAM: execution and operator roles. Roles live under the path `/lmi/{stack}/`, which lets
//! discovery list exactly the stack's roles server-side; the `lmi:stack` tag confirms it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;

use super::error::AwsError;
use crate::model::{REGION_TAG, STACK_TAG};
use crate::plan::desired::role_path;
use crate::plan::resource::{Address, Observed, Resource, Spec};

#[derive(Clone, Debug)]
pub struct Iam {
    client: Client,
    /// The region lmi works in: roles are global, so each carries its stack's region.
    region: String,
}

/// The lock role's name. lmi's other roles end in `-role` or `-operator`, so it can't collide
/// with one of them.
pub fn lock_name(stack: &str) -> String {
    format!("{stack}-lock")
}

/// Tags as IAM takes them; `operation` and `role` say where a bad one was going.
fn tag_list(
    tags: &BTreeMap<String, String>,
    operation: &'static str,
    role: &str,
) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| AwsError::lmi("iam", operation, role, e.to_string()))
}

/// The trust policy of a role that one AWS service may assume.
fn trust_policy(service: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
        }]
    })
    .to_string()
}

/// The service a trust policy lets assume the role (IAM returns the document URL-encoded).
fn trusted_service(document: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy();
    let json: serde_json::Value = serde_json::from_str(&decoded).unwrap_or_default();
    let principal = &json["Statement"][0]["Principal"]["Service"];
    match principal {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .first()
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

impl Iam {
    pub fn new(client: Client, region: &str) -> Self {
        Iam {
            client,
            region: region.to_string(),
        }
    }

    /// Whether a role belongs to a stack of this region. A role without the tag was made by
    /// an lmi before it tagged regions; it is taken as this region's.
    fn in_region(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(REGION_TAG).is_none_or(|r| *r == self.region)
    }

    /// Every role of the stack: listed by path, kept only if tagged with the stack.
    pub async fn observe(&self, stack: &str) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_roles()
            .path_prefix(role_path(stack))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("iam", "ListRoles", stack, e))?;
            for role in page.roles() {
                let name = role.role_name();
                let Some(tags) = AwsError::unless_gone(self.tags(name).await)? else {
                    continue;
                };
                if tags.get(STACK_TAG).map(String::as_str) != Some(stack) || !self.in_region(&tags)
                {
                    continue;
                }
                let Some(address) = tags
                    .get(crate::model::RESOURCE_TAG)
                    .and_then(|a| Address::parse(a))
                else {
                    continue;
                };
                let Some(policies) = AwsError::unless_gone(self.attached_policies(name).await)?
                else {
                    continue;
                };
                out.push(Observed {
                    // The ARN: what Lambda and CreateCapacityProvider refer to a role by.
                    id: role.arn().to_string(),
                    resource: Resource {
                        address,
                        spec: Spec::Role {
                            name: name.to_string(),
                            trusted_service: trusted_service(
                                role.assume_role_policy_document().unwrap_or_default(),
                            ),
                            policies: policies.into_iter().collect(),
                        },
                        tags,
                    },
                    parts: BTreeMap::new(),
                });
            }
        }
        Ok(out)
    }

    /// Names of the stacks that have roles in this account: the `{stack}` of every role path
    /// `/lmi/{stack}/`, confirmed by the role's `lmi:stack` tag.
    pub async fn stacks(&self) -> Result<BTreeSet<String>, AwsError> {
        let mut out = BTreeSet::new();
        let mut pages = self
            .client
            .list_roles()
            .path_prefix("/lmi/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::new("iam", "ListRoles", "/lmi/", e))?;
            for role in page.roles() {
                let Some(stack) = role
                    .path()
                    .strip_prefix("/lmi/")
                    .and_then(|p| p.strip_suffix('/'))
                    .filter(|p| !p.is_empty() && !p.contains('/'))
                else {
                    continue;
                };
                if out.contains(stack) {
                    continue;
                }
                let Some(tags) = AwsError::unless_gone(self.tags(role.role_name()).await)? else {
                    continue;
                };
                if tags.get(STACK_TAG).map(String::as_str) == Some(stack) && self.in_region(&tags) {
                    out.insert(stack.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Creates the stack's lock: a role with no permissions, `{stack}-lock` under the stack's
    /// path, whose tags say who holds it until when. `Ok(false)` if it exists already: IAM
    /// refuses a second role of one name, which is what makes this a lock.
    pub async fn create_lock(
        &self,
        stack: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, AwsError> {
        let name = lock_name(stack);
        let tags = tag_list(tags, "CreateRole", &name)?;
        let result = self
            .client
            .create_role()
            .role_name(&name)
            .path(role_path(stack))
            // Lambda may assume it, but it has no policy: it grants nothing.
            .assume_role_policy_document(trust_policy("lambda.amazonaws.com"))
            .description(format!(
                "lmi lock of stack {stack}: held while lmi changes the stack (no permissions); `lmi unlock` removes a stale one"
            ))
            .set_tags(Some(tags))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let error = AwsError::new("iam", "CreateRole", &name, e);
                if error.code.as_deref() == Some("EntityAlreadyExists") {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// The lock's tags, or `None` if the stack isn't locked.
    pub async fn read_lock(
        &self,
        stack: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match self.tags(&lock_name(stack)).await {
            Ok(tags) => Ok(Some(tags)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Rewrites some of the lock's tags (its expiry, on each heartbeat).
    pub async fn tag_lock(
        &self,
        stack: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let name = lock_name(stack);
        let tags = tag_list(tags, "TagRole", &name)?;
        self.client
            .tag_role()
            .role_name(&name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "TagRole", &name, e))?;
        Ok(())
    }

    /// Deletes the lock; already gone is fine.
    pub async fn delete_lock(&self, stack: &str) -> Result<(), AwsError> {
        let name = lock_name(stack);
        let result = self.client.delete_role().role_name(&name).send().await;
        AwsError::unless_gone(result.map_err(|e| AwsError::new("iam", "DeleteRole", &name, e)))?;
        Ok(())
    }

    async fn tags(&self, role: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .client
            .list_role_tags()
            .role_name(role)
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "ListRoleTags", role, e))?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn attached_policies(&self, role: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut out = BTreeSet::new();
        let mut pages = self
            .client
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::new("iam", "ListAttachedRolePolicies", role, e))?;
            out.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
        }
        Ok(out)
    }

    /// Creates a role with its tags in the same call, then attaches its policies. Returns its
    /// ARN.
    pub async fn create(&self, resource: &Resource, stack: &str) -> Result<String, AwsError> {
        let Spec::Role {
            name,
            trusted_service,
            policies,
        } = &resource.spec
        else {
            return Err(AwsError::lmi(
                "iam",
                "CreateRole",
                resource.address.to_string(),
                "not a role",
            ));
        };
        let tags = tag_list(&resource.tags, "CreateRole", name)?;
        let out = self
            .client
            .create_role()
            .role_name(name)
            .path(role_path(stack))
            .assume_role_policy_document(trust_policy(trusted_service))
            .description(format!("lmi stack {stack}: {}", resource.address))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "CreateRole", name, e))?;
        for policy in policies {
            self.attach(name, policy).await?;
        }
        Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
    }

    async fn attach(&self, role: &str, policy: &str) -> Result<(), AwsError> {
        self.client
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| {
                AwsError::new("iam", "AttachRolePolicy", format!("{role} ({policy})"), e)
            })?;
        Ok(())
    }

    pub async fn update(&self, have: &Observed, want: &Resource) -> Result<(), AwsError> {
        let (
            Spec::Role {
                name,
                trusted_service: had_trust,
                policies: had,
            },
            Spec::Role {
                trusted_service,
                policies,
                ..
            },
        ) = (&have.resource.spec, &want.spec)
        else {
            return Ok(());
        };
        if had_trust != trusted_service {
            self.client
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(trust_policy(trusted_service))
                .send()
                .await
                .map_err(|e| AwsError::new("iam", "UpdateAssumeRolePolicy", name, e))?;
        }
        for policy in policies.iter().filter(|p| !had.contains(p)) {
            self.attach(name, policy).await?;
        }
        for policy in had.iter().filter(|p| !policies.contains(p)) {
            self.detach(name, policy).await?;
        }
        let (set, remove) = super::ec2::tag_changes(&have.resource.tags, &want.tags);
        if !set.is_empty() {
            let tags = set
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError::lmi("iam", "TagRole", name, e.to_string()))?;
            self.client
                .tag_role()
                .role_name(name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| AwsError::new("iam", "TagRole", name, e))?;
        }
        if !remove.is_empty() {
            self.client
                .untag_role()
                .role_name(name)
                .set_tag_keys(Some(remove.iter().map(|k| k.to_string()).collect()))
                .send()
                .await
                .map_err(|e| AwsError::new("iam", "UntagRole", name, e))?;
        }
        Ok(())
    }

    async fn detach(&self, role: &str, policy: &str) -> Result<(), AwsError> {
        let result = self
            .client
            .detach_role_policy()
            .role_name(role)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "DetachRolePolicy", format!("{role} ({policy})"), e));
        match result {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Detaches every policy (IAM refuses to delete a role that has any), then deletes it.
    /// "Not found" is returned as such; the engine counts it as already deleted.
    pub async fn delete(&self, have: &Observed) -> Result<(), AwsError> {
        let Spec::Role { name, .. } = &have.resource.spec else {
            return Ok(());
        };
        let name = name.as_str();
        for policy in self.attached_policies(name).await? {
            self.detach(name, &policy).await?;
        }
        let inline = self
            .client
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "ListRolePolicies", name, e))?;
        for policy in inline.policy_names() {
            self.client
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(|e| AwsError::new("iam", "DeleteRolePolicy", name, e))?;
        }
        self.client
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| AwsError::new("iam", "DeleteRole", name, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trusted_service_from_an_encoded_document() {
        let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        assert_eq!(trusted_service(doc), "lambda.amazonaws.com");
        assert_eq!(
            trusted_service(&trust_policy("x.amazonaws.com")),
            "x.amazonaws.com"
        );
    }
}
