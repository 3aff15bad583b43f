//! The monitors' tasks: one per watched address, checking it every interval until
//! shutdown and recording each result in [`super::Health`].
//!
//! This module owns the schedule: the first check of each address at a random point of
//! its first interval and every wait shortened by a random part of the jitter, so that a
//! thousand addresses are not checked in step (and a wait is never longer than the
//! interval, so the time to notice a death stays at most interval × down_after). It does
//! not decide what a result means ([`super::state`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::check::{CheckSetupError, Checker};
use super::config::HealthConfig;
use crate::live::Live;

/// Starts a task per watched address of `config`, recording into `live.health`.
pub(crate) fn spawn(
    config: &HealthConfig,
    live: &Arc<Live>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(), CheckSetupError> {
    let mut seed = [0u8; 8];
    // Without the system's randomness the schedule is only less spread: never fatal.
    let _ = getrandom::fill(&mut seed);
    let mut rng = Jitter(u64::from_le_bytes(seed) | 1);
    let mut count = 0;
    for monitor in &config.monitors {
        let checker = Checker::new(monitor)?;
        for &address in &monitor.addresses {
            let schedule = Schedule {
                interval: monitor.interval,
                jitter: monitor.interval * monitor.jitter_percent / 100,
                rng: Jitter(rng.next() | 1),
            };
            tasks.spawn(watch(
                address,
                checker.clone(),
                schedule,
                live.clone(),
                shutdown.clone(),
            ));
            count += 1;
        }
    }
    super::sources::spawn(&config.sources, live, shutdown, tasks)?;
    info!(
        addresses = count,
        monitors = config.monitors.len(),
        sources = config.sources.len(),
        "health checks started"
    );
    Ok(())
}

struct Schedule {
    interval: Duration,
    jitter: Duration,
    rng: Jitter,
}

impl Schedule {
    /// A random point of the first interval.
    fn first(&mut self) -> Duration {
        self.interval.mul_f64(self.rng.unit())
    }

    /// The interval, shortened by up to the jitter.
    fn next(&mut self) -> Duration {
        self.interval - self.jitter.mul_f64(self.rng.unit())
    }
}

async fn watch(
    address: IpAddr,
    checker: Checker,
    mut schedule: Schedule,
    live: Arc<Live>,
    shutdown: CancellationToken,
) {
    let mut at = Instant::now() + schedule.first();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(at) => {}
        }
        let started = Instant::now();
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = checker.run(address) => result,
        };
        live.health.record(address, result.err());
        at = started + schedule.next();
    }
}

/// xorshift64: the jitter needs spread, not secrecy.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_never_longer_than_the_interval_and_spread_over_the_jitter() {
        let mut s = Schedule {
            interval: Duration::from_secs(10),
            jitter: Duration::from_secs(1),
            rng: Jitter(12345),
        };
        let waits: Vec<Duration> = (0..1000).map(|_| s.next()).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w <= Duration::from_secs(10) && *w > Duration::from_secs(9))
        );
        assert!(waits.iter().any(|w| *w < Duration::from_millis(9_100)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(9_900)));
        let firsts: Vec<Duration> = (0..1000).map(|_| s.first()).collect();
        assert!(firsts.iter().any(|w| *w < Duration::from_secs(1)));
        assert!(firsts.iter().any(|w| *w > Duration::from_secs(9)));
    }
}
