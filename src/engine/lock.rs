//! One writer per stack: apply, destroy and run hold the stack's lock while they change it, so
//! two of them can't interleave. The lock is an IAM role with no permissions,
//! `{stack}-lock` (see `aws::iam::create_lock`): IAM refuses a second role of the same name,
//! which makes creating it an atomic test-and-set, and it needs no permission lmi doesn't
//! already have. Its tags say who holds it (user, host, pid, command) and until when.
//!
//! The holder extends the expiry every `HEARTBEAT` while it works. A lock is stale once its
//! expiry has passed, or at once when its holder ran on this host and that process is gone
//! (a `kill -9`); a stale lock is taken over. `lmi unlock` removes one by hand.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use miette::miette;
use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::model::{CREATED_TAG, REGION_TAG, STACK_TAG, now_rfc3339, parse_rfc3339, rfc3339};

/// How long a lock lives without a heartbeat: the longest a crashed holder on another host
/// blocks the stack.
pub const TTL: Duration = Duration::from_secs(10 * 60);
const HEARTBEAT: Duration = Duration::from_secs(2 * 60);
/// How often a waiting command looks at the lock again.
const RETRY: Duration = Duration::from_secs(2);

const TOKEN: &str = "lmi:lock-token";
const OWNER: &str = "lmi:lock-owner";
const HOST: &str = "lmi:lock-host";
const PID: &str = "lmi:lock-pid";
const EXPIRES: &str = "lmi:lock-expires";

/// Who holds a lock, as its tags say.
#[derive(Debug, Clone)]
pub struct Holder {
    pub owner: String,
    pub host: String,
    pub pid: Option<u32>,
    pub since: String,
    pub expires: Option<SystemTime>,
    token: String,
}

impl Holder {
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Holder {
        let get = |k: &str| tags.get(k).cloned().unwrap_or_default();
        Holder {
            owner: get(OWNER),
            host: get(HOST),
            pid: tags.get(PID).and_then(|p| p.parse().ok()),
            since: get(CREATED_TAG),
            expires: tags.get(EXPIRES).and_then(|e| parse_rfc3339(e)),
            token: get(TOKEN),
        }
    }

    /// Why the lock may be taken over, if it may.
    pub fn stale(&self, now: SystemTime) -> Option<String> {
        match self.expires {
            None => return Some("it has no valid expiry".into()),
            Some(expires) if expires < now => {
                return Some("it expired (its holder stopped renewing it)".into());
            }
            Some(_) => {}
        }
        if self.host == hostname()
            && let Some(pid) = self.pid
            && !process_alive(pid)
        {
            return Some(format!("process {pid} on this host is gone"));
        }
        None
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} since {}", self.owner, self.since)?;
        if let Some(expires) = self.expires {
            let left = expires
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs();
            write!(
                f,
                " (expires in {}m{:02}s unless renewed)",
                left / 60,
                left % 60
            )?;
        }
        Ok(())
    }
}

/// A held lock. Release it with [`Lock::release`]; a lock that isn't released (a crash)
/// expires after [`TTL`], or at once for a command on the same host.
pub struct Lock {
    aws: Aws,
    stack: String,
    token: String,
    stop: CancellationToken,
}

/// Takes the stack's lock, waiting up to `timeout` for another holder to finish.
pub async fn acquire(
    aws: &Aws,
    stack: &str,
    command: &str,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> miette::Result<Lock> {
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let started = Instant::now();
    let mut told = false;
    loop {
        if aws
            .iam
            .create_lock(stack, &tags(stack, &aws.region, &token, command))
            .await?
        {
            // A taker of a stale lock may have deleted ours between its read and its delete;
            // whoever's token is on the lock now holds it.
            match aws.iam.read_lock(stack).await? {
                Some(t) if t.get(TOKEN) == Some(&token) => {
                    return Ok(Lock::start(aws, stack, token));
                }
                _ => continue,
            }
        }
        let Some(tags) = aws.iam.read_lock(stack).await? else {
            continue; // released between the two calls
        };
        let holder = Holder::from_tags(&tags);
        if let Some(why) = holder.stale(SystemTime::now()) {
            progress(format!(
                "Taking over the lock of stack `{stack}` held by {}: {why}.",
                holder.owner
            ));
            // Delete only the lock we judged: it may have changed hands since.
            if aws
                .iam
                .read_lock(stack)
                .await?
                .is_some_and(|t| t.get(TOKEN) == Some(&holder.token))
            {
                aws.iam.delete_lock(stack).await?;
            }
            continue;
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(miette!(
                code = "lmi::lock::held",
                help = format!(
                    "wait for it to finish, or pass --lock-timeout to wait longer; if that run is gone, `lmi unlock --stack {stack}` releases the lock"
                ),
                "stack `{stack}` is locked by {holder}"
            ));
        }
        if !told {
            progress(format!(
                "Waiting up to {} s for the lock of stack `{stack}`, held by {holder}.",
                timeout.as_secs()
            ));
            told = true;
        }
        tokio::time::sleep(RETRY.min(timeout - waited)).await;
    }
}

/// The lock's current holder, if any.
pub async fn holder(aws: &Aws, stack: &str) -> miette::Result<Option<Holder>> {
    Ok(aws
        .iam
        .read_lock(stack)
        .await?
        .map(|t| Holder::from_tags(&t)))
}

/// Removes the lock whoever holds it (`lmi unlock`).
pub async fn remove(aws: &Aws, stack: &str) -> miette::Result<()> {
    Ok(aws.iam.delete_lock(stack).await?)
}

impl Lock {
    fn start(aws: &Aws, stack: &str, token: String) -> Lock {
        let stop = CancellationToken::new();
        let (aws2, stack2, token2, stop2) =
            (aws.clone(), stack.to_string(), token.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(HEARTBEAT) => {}
                    () = stop2.cancelled() => return,
                }
                let ours = matches!(
                    aws2.iam.read_lock(&stack2).await,
                    Ok(Some(t)) if t.get(TOKEN) == Some(&token2)
                );
                if !ours {
                    eprintln!(
                        "warning: lost the lock of stack `{stack2}` (removed by `lmi unlock`?)"
                    );
                    return;
                }
                let expires = BTreeMap::from([(EXPIRES.to_string(), expiry())]);
                // A failed renewal is retried at the next beat; the TTL leaves room for it.
                let _ = aws2.iam.tag_lock(&stack2, &expires).await;
            }
        });
        Lock {
            aws: aws.clone(),
            stack: stack.to_string(),
            token,
            stop,
        }
    }

    /// Releases the lock, if it is still this command's.
    pub async fn release(self) -> miette::Result<()> {
        self.stop.cancel();
        if self
            .aws
            .iam
            .read_lock(&self.stack)
            .await?
            .is_some_and(|t| t.get(TOKEN) == Some(&self.token))
        {
            self.aws.iam.delete_lock(&self.stack).await?;
        }
        Ok(())
    }
}

fn tags(stack: &str, region: &str, token: &str, command: &str) -> BTreeMap<String, String> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    let host = hostname();
    let pid = std::process::id();
    BTreeMap::from([
        (STACK_TAG.to_string(), stack.to_string()),
        (REGION_TAG.to_string(), region.to_string()),
        (TOKEN.to_string(), token.to_string()),
        (
            OWNER.to_string(),
            format!("`lmi {command}` ({user}@{host}, pid {pid})"),
        ),
        (HOST.to_string(), host),
        (PID.to_string(), pid.to_string()),
        (CREATED_TAG.to_string(), now_rfc3339()),
        (EXPIRES.to_string(), expiry()),
    ])
}

fn expiry() -> String {
    rfc3339(SystemTime::now() + TTL)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether a process runs on this host. Where that can't be told (no /proc), it is assumed
/// alive, and only the expiry frees its lock.
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, expires_in: i64) -> Holder {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let expires = aws_smithy_types::DateTime::from_secs(now + expires_in)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap();
        Holder::from_tags(&BTreeMap::from([
            (HOST.to_string(), host.to_string()),
            (PID.to_string(), pid.to_string()),
            (EXPIRES.to_string(), expires),
        ]))
    }

    #[test]
    fn a_live_holder_keeps_its_lock() {
        let me = holder(&hostname(), std::process::id(), 600);
        assert_eq!(me.stale(SystemTime::now()), None);
        let elsewhere = holder("another-host", 1, 600);
        assert_eq!(elsewhere.stale(SystemTime::now()), None);
    }

    #[test]
    fn an_expired_lock_or_a_dead_local_holder_is_stale() {
        assert!(
            holder("another-host", 1, -5)
                .stale(SystemTime::now())
                .is_some()
        );
        // No process has pid u32::MAX (Linux caps pids at 2^22).
        let dead = holder(&hostname(), u32::MAX, 600);
        assert!(dead.stale(SystemTime::now()).unwrap().contains("is gone"));
    }

    #[test]
    fn a_lock_without_an_expiry_is_stale() {
        let h = Holder::from_tags(&BTreeMap::new());
        assert!(h.stale(SystemTime::now()).is_some());
    }
}
