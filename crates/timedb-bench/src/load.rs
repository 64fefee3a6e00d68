//! A closed-loop HTTP load generator and the latency percentiles it reports.
//!
//! Each simulated client has a reqwest client of its own (so its own keep-alive
//! connection) and sends its next request as soon as the previous answer is read in
//! full. Clients first open their connection and send a few unrecorded requests, then
//! start together at a barrier, so connection set-up is not measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Unrecorded requests per client before the measurement starts.
const WARM_UP_REQUESTS: usize = 20;

/// What a load run measured.
pub struct LoadResult {
    pub requests: u64,
    /// From the first client's start to the last client's end.
    pub seconds: f64,
    /// Every request's latency, sorted.
    pub latencies: Latencies,
}

/// Latencies in nanoseconds, sorted ascending.
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn new(mut nanos: Vec<u64>) -> Self {
        nanos.sort_unstable();
        Self(nanos)
    }

    /// The `p`-th percentile (nearest rank) in microseconds; 0 when empty.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1] as f64 / 1e3
    }
}

/// One GET; `Ok(())` only for a 2xx whose body was read in full.
async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> anyhow::Result<()> {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        anyhow::bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// `clients` clients sending `GET url` (with `key` as `X-API-Key`, if any) for
/// `duration`. Any failed request fails the run: a benchmark that counts errors as
/// answers measures nothing.
pub async fn hammer(url: &str, key: Option<&str>, clients: usize, duration: Duration) -> anyhow::Result<LoadResult> {
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = reqwest::Client::builder().build().context("building an HTTP client")?;
        let (url, key, barrier) = (url.to_owned(), key.map(str::to_owned), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let warm_up = async {
                for _ in 0..WARM_UP_REQUESTS {
                    get(&client, &url, key.as_deref()).await?;
                }
                anyhow::Ok(())
            }
            .await;
            // Wait even after a failure, or the other clients would wait forever.
            barrier.wait().await;
            warm_up?;
            let start = Instant::now();
            let end = start + duration;
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                get(&client, &url, key.as_deref()).await?;
                latencies.push(sent.elapsed().as_nanos() as u64);
            }
            anyhow::Ok((start, Instant::now(), latencies))
        }));
    }
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    let mut all = Vec::new();
    for task in tasks {
        let (start, end, latencies) = task.await??;
        first_start = Some(first_start.map_or(start, |s| s.min(start)));
        last_end = Some(last_end.map_or(end, |e| e.max(end)));
        all.extend(latencies);
    }
    let seconds = match (first_start, last_end) {
        (Some(s), Some(e)) => (e - s).as_secs_f64(),
        _ => 0.0,
    };
    Ok(LoadResult { requests: all.len() as u64, seconds, latencies: Latencies::new(all) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(|us| us * 1000).collect());
        assert_eq!(l.percentile_us(50.0), 50.0);
        assert_eq!(l.percentile_us(99.0), 99.0);
        assert_eq!(l.percentile_us(100.0), 100.0);
        assert_eq!(Latencies::new(vec![]).percentile_us(99.0), 0.0);
    }
}
