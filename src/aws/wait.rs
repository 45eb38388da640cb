//! Polling with a deadline and backoff, for states AWS reaches asynchronously (NAT gateways,
//! endpoints, capacity providers, published versions). The SDK has waiters for few of them.

use std::future::Future;
use std::time::{Duration, Instant};

use super::error::AwsError;

/// One look at the state being waited for.
pub enum Poll<T> {
    Done(T),
    Pending,
    Failed(AwsError),
}

/// First pause between looks; doubles up to `MAX_INTERVAL`. Short at first because most
/// waits end quickly, long later to stay far below AWS's read quotas.
const FIRST_INTERVAL: Duration = Duration::from_millis(200);
const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Calls `check` until it is done, fails, or `timeout` passes. `what` completes the sentence
/// "timed out waiting for …" and `at` names the resource.
pub async fn poll<T, F, Fut>(
    timeout: Duration,
    at: &str,
    what: &str,
    check: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    poll_from(FIRST_INTERVAL, timeout, at, what, check).await
}

/// [`poll`] with a first pause of `first`, for APIs with a low read quota (capacity providers:
/// 15 reads per second per account, shared by every provider being waited for).
pub async fn poll_from<T, F, Fut>(
    first: Duration,
    timeout: Duration,
    at: &str,
    what: &str,
    mut check: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = first;
    loop {
        match check().await {
            Poll::Done(value) => return Ok(value),
            Poll::Failed(error) => return Err(error),
            Poll::Pending => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(AwsError::lmi(
                "lmi",
                "Wait",
                at,
                format!("timed out after {} s waiting for {what}", timeout.as_secs()),
            ));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}
