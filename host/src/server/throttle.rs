//! Throttling failed authentication per client.
//!
//! Every request answered `401` (no token, a wrong or expired token, a bad webhook
//! signature) costs its client one cell of a per-address bucket: a burst of
//! `failed-auth-burst` failures (default
//! [`crate::config::DEFAULT_FAILED_AUTH_BURST`]), refilled at one every [`REFILL`]. A
//! client whose bucket is empty is answered `429 Too Many Requests` with `Retry-After` — for every request — until the
//! bucket has refilled, so guessing tokens or signatures is slowed to the refill rate.
//! Requests that authenticate cost nothing. The client is the peer address of the
//! connection (the service does not trust forwarded-for headers).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;

/// How often a client regains one failed authentication.
pub const REFILL: Duration = Duration::from_secs(1);
/// Past this many clients tracked, forgotten ones are dropped.
const MAX_TRACKED: usize = 10_000;

/// The per-client buckets of failed authentication.
#[derive(Clone)]
pub struct Throttle {
    failures: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Arc<Mutex<HashMap<IpAddr, Instant>>>,
}

impl Throttle {
    /// Buckets of `burst` failed authentications per client.
    pub fn new(burst: u32) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(REFILL)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Throttle {
            failures: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
            blocked: Arc::default(),
        }
    }

    /// How long `client` must wait, if it is throttled now.
    fn wait(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let blocked = self.blocked.lock().ok()?;
        blocked
            .get(&client)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Counts a failed authentication of `client`; how long it must wait when its bucket
    /// is empty.
    fn failed(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let not_until = self.failures.check_key(&client).err()?;
        let wait = not_until
            .wait_time_from(self.failures.clock().now())
            .max(Duration::from_millis(1));
        if let Ok(mut blocked) = self.blocked.lock() {
            if blocked.len() >= MAX_TRACKED {
                blocked.retain(|_, until| *until > now);
                self.failures.retain_recent();
            }
            blocked.insert(client, now + wait);
        }
        Some(wait)
    }
}

/// The answer to a throttled client.
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed authentications from this address; retry in {seconds} s"),
    )
    .into_response();
    if let Ok(value) = seconds.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The middleware: answers a throttled client `429`, and counts every `401`.
pub async fn limit(State(throttle): State<Throttle>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(client) = client else {
        return next.run(request).await;
    };
    if let Some(wait) = throttle.wait(client, Instant::now()) {
        return too_many(wait);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(wait) = throttle.failed(client, Instant::now())
    {
        return too_many(wait);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_FAILED_AUTH_BURST;

    #[test]
    fn a_burst_of_failures_empties_the_bucket_and_others_are_untouched() {
        let throttle = Throttle::new(DEFAULT_FAILED_AUTH_BURST);
        let (eve, ann): (IpAddr, IpAddr) =
            ("10.0.0.66".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let now = Instant::now();
        for _ in 0..DEFAULT_FAILED_AUTH_BURST {
            assert_eq!(throttle.failed(eve, now), None);
        }
        let wait = throttle.failed(eve, now).expect("the bucket is empty");
        assert!(wait <= REFILL, "{wait:?}");
        assert!(throttle.wait(eve, now).is_some());
        assert!(throttle.wait(ann, now).is_none());
        assert!(throttle.wait(eve, now + REFILL * 2).is_none());
    }
}
