//! Latency statistics, computed exactly on the samples: no histograms, no interpolation.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted samples is the
//! sample at rank ⌈p/100 × n⌉ (1-based). It is always a latency that was observed, and with 3
//! samples p50 is the middle one and p95, p99 and max are the slowest, as a reader expects.

use std::time::Duration;

use serde::Serialize;

use crate::model::Statistic;

/// The statistics of one test's latencies, in invoke order for `first`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    #[serde(serialize_with = "serialize_ms")]
    pub first: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub min: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub mean: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub p50: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub p95: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub p99: Duration,
    #[serde(serialize_with = "serialize_ms")]
    pub max: Duration,
}

/// Milliseconds with microsecond precision: what the reports and JSON show.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A latency for people: `0.012 ms`, `807.1 ms`, `12.35 s`.
pub fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Serializes a duration as [`ms`]: every duration in lmi's JSON is in milliseconds.
pub fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

/// [`serialize_ms`], or `null`.
pub fn serialize_opt_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_ms(d, s),
        None => s.serialize_none(),
    }
}

impl Summary {
    /// `None` when there is no sample (every invoke was throttled or failed to reach Lambda).
    pub fn of(in_order: &[Duration]) -> Option<Summary> {
        let first = *in_order.first()?;
        let mut sorted = in_order.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        Some(Summary {
            count: sorted.len(),
            first,
            min: sorted[0],
            mean: total / u32::try_from(sorted.len()).unwrap_or(u32::MAX),
            p50: nearest_rank(&sorted, 50),
            p95: nearest_rank(&sorted, 95),
            p99: nearest_rank(&sorted, 99),
            max: sorted[sorted.len() - 1],
        })
    }

    pub fn get(&self, statistic: Statistic) -> Duration {
        match statistic {
            Statistic::First => self.first,
            Statistic::Min => self.min,
            Statistic::Mean => self.mean,
            Statistic::P50 => self.p50,
            Statistic::P95 => self.p95,
            Statistic::P99 => self.p99,
            Statistic::Max => self.max,
        }
    }
}

/// The sample at rank ⌈p × n / 100⌉ of a sorted, non-empty slice.
fn nearest_rank(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn the_reference_experiment() {
        // The default function's invokes from the seed article: 807, 58, 42 ms.
        let s = Summary::of(&ms_list(&[807, 58, 42])).unwrap();
        assert_eq!(s.first, Duration::from_millis(807));
        assert_eq!(s.min, Duration::from_millis(42));
        assert_eq!(s.p50, Duration::from_millis(58));
        assert_eq!(s.p95, Duration::from_millis(807));
        assert_eq!(s.max, Duration::from_millis(807));
        assert_eq!(s.mean, Duration::from_nanos(302_333_333));
    }

    #[test]
    fn nearest_rank_on_a_hundred_samples() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&ms_list(&samples)).unwrap();
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.first, Duration::from_millis(100));
    }

    #[test]
    fn one_sample_is_every_statistic() {
        let s = Summary::of(&ms_list(&[7])).unwrap();
        for stat in [
            Statistic::Min,
            Statistic::P50,
            Statistic::P99,
            Statistic::Max,
        ] {
            assert_eq!(s.get(stat), Duration::from_millis(7));
        }
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn p95_of_twenty_is_the_nineteenth() {
        let s = Summary::of(&ms_list(&(1..=20).collect::<Vec<_>>())).unwrap();
        assert_eq!(s.p95, Duration::from_millis(19));
        assert_eq!(s.p99, Duration::from_millis(20));
    }
}
