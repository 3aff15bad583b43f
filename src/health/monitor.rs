//! The monitors' tasks: one per watched address, checking it every interval, and one per
//! source, reading it every interval; a supervisor that starts and stops them as each
//! configuration's [`Plan`] says, until shutdown.
//!
//! This module owns the schedule: the first check of each address at a random point of
//! its first interval and every wait shortened by a random part of the jitter, so that a
//! thousand addresses are not checked in step (and a wait is never longer than the
//! interval, so the time to notice a death stays at most interval × down_after). An
//! address whose [`Task`] is the same in the next plan keeps its task (and its place in
//! the schedule); one added starts at a random point of its first interval like at
//! start. It does not decide what a result means ([`super::state`]) nor which results
//! count ([`super::Health`] checks each result's epoch).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::check::Checker;
use super::config::{Check, MonitorConfig};
use super::sources::Reader;
use crate::live::Live;

/// The tasks one configuration runs.
#[derive(Default)]
pub(crate) struct Plan {
    /// One per watched address.
    pub(crate) watches: Vec<Watch>,
    /// One per source, in configuration order.
    pub(crate) sources: Vec<Arc<Reader>>,
    /// The epoch the sources' readings are applied under.
    pub(crate) sources_epoch: u64,
}

/// The task checking one address.
pub(crate) struct Watch {
    pub(crate) address: IpAddr,
    pub(crate) task: Task,
    pub(crate) checker: Checker,
}

/// What a task checking an address does: when it is the same in the next plan, the task
/// running goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Task {
    check: Check,
    port: u16,
    timeout: Duration,
    interval: Duration,
    jitter_percent: u32,
    /// The epoch its results are recorded under.
    pub(crate) epoch: u64,
}

impl Task {
    pub(crate) fn of(monitor: &MonitorConfig, epoch: u64) -> Task {
        Task {
            check: monitor.check.clone(),
            port: monitor.port,
            timeout: monitor.timeout,
            interval: monitor.interval,
            jitter_percent: monitor.jitter_percent,
            epoch,
        }
    }
}

/// Starts the supervisor of the monitors' tasks: it runs the plan of `live.health` and
/// every plan a configuration reload publishes after it, until `shutdown`.
pub(crate) fn spawn(live: &Arc<Live>, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let plans = live.health.plans();
    tasks.spawn(supervise(live.clone(), plans, shutdown.clone()));
}

async fn supervise(
    live: Arc<Live>,
    mut plans: watch::Receiver<Arc<Plan>>,
    shutdown: CancellationToken,
) {
    let mut running = Running::new(shutdown.clone());
    let plan = plans.borrow_and_update().clone();
    let started = running.follow(&plan, &live);
    if started > 0 || !plan.sources.is_empty() {
        info!(
            addresses = started,
            sources = plan.sources.len(),
            "health checks started"
        );
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = plans.changed() => {
                if changed.is_err() {
                    break;
                }
                let plan = plans.borrow_and_update().clone();
                let before = running.watches.len();
                let started = running.follow(&plan, &live);
                info!(
                    started,
                    stopped = before + started - running.watches.len(),
                    running = running.watches.len(),
                    sources = plan.sources.len(),
                    "health checks follow the configuration"
                );
            }
            // Reaps the tasks stopped by a plan.
            Some(_) = running.tasks.join_next() => {}
        }
    }
    // Every task's token is a child of `shutdown`: they are stopping.
    while running.tasks.join_next().await.is_some() {}
}

/// The tasks running, and what each does.
struct Running {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    watches: HashMap<IpAddr, (Task, CancellationToken)>,
    /// The sources' readers, all stopped together when the list changes.
    sources: Option<(u64, CancellationToken)>,
    rng: Jitter,
}

impl Running {
    fn new(shutdown: CancellationToken) -> Running {
        Running {
            shutdown,
            tasks: JoinSet::new(),
            watches: HashMap::new(),
            sources: None,
            rng: Jitter::seeded(),
        }
    }

    /// Stops the tasks `plan` does not have, starts those it adds or changes; how many
    /// checking tasks started.
    fn follow(&mut self, plan: &Plan, live: &Arc<Live>) -> usize {
        let wanted: HashMap<IpAddr, &Watch> = plan.watches.iter().map(|w| (w.address, w)).collect();
        self.watches.retain(|address, (task, token)| {
            let keep = wanted.get(address).is_some_and(|w| w.task == *task);
            if !keep {
                token.cancel();
            }
            keep
        });
        let mut started = 0;
        for watch in &plan.watches {
            if self.watches.contains_key(&watch.address) {
                continue;
            }
            let token = self.shutdown.child_token();
            let schedule = Schedule::new(
                watch.task.interval,
                watch.task.jitter_percent,
                &mut self.rng,
            );
            self.tasks.spawn(check_every_interval(
                watch.address,
                watch.task.epoch,
                watch.checker.clone(),
                schedule,
                live.clone(),
                token.clone(),
            ));
            self.watches
                .insert(watch.address, (watch.task.clone(), token));
            started += 1;
        }
        let current = self.sources.as_ref().map(|(epoch, _)| *epoch);
        if current != Some(plan.sources_epoch) {
            if let Some((_, token)) = self.sources.take() {
                token.cancel();
            }
            let token = self.shutdown.child_token();
            for (index, reader) in plan.sources.iter().enumerate() {
                super::sources::spawn(
                    index,
                    plan.sources_epoch,
                    reader.clone(),
                    live,
                    &token,
                    &mut self.tasks,
                );
            }
            self.sources = Some((plan.sources_epoch, token));
        }
        started
    }
}

/// The longest slot [`Schedule::align`] gathers checks in.
const MAX_SLOT: Duration = Duration::from_millis(100);

/// Where slots are counted from: the same for every address.
static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

struct Schedule {
    interval: Duration,
    jitter: Duration,
    rng: Jitter,
}

impl Schedule {
    /// The schedule of one address checked every `interval`, each wait shortened by up
    /// to `jitter_percent` of it; its randomness drawn from `rng`.
    fn new(interval: Duration, jitter_percent: u32, rng: &mut Jitter) -> Schedule {
        Schedule {
            interval,
            jitter: interval * jitter_percent / 100,
            // Multiplied so that the addresses' streams are not one stream shifted.
            rng: Jitter(rng.next().wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        }
    }

    /// A random point of the first interval.
    fn first(&mut self) -> Duration {
        self.interval.mul_f64(self.rng.unit())
    }

    /// The interval, shortened by up to the jitter.
    fn next(&mut self) -> Duration {
        self.interval - self.jitter.mul_f64(self.rng.unit())
    }

    /// `at` moved back to the start of its slot: a slot is a hundredth of the interval
    /// (100 ms at most), counted from one origin for every address, so that the checks
    /// due in one slot start on one timer tick and their connections' readiness comes
    /// back in one poll — a wake-up of the runtime per slot rather than per check. Never
    /// later than `at`: a wait stays at most the interval.
    fn align(&self, at: Instant) -> Instant {
        let slot = (self.interval / 100).min(MAX_SLOT);
        let origin = *ORIGIN.get_or_init(Instant::now);
        if slot.is_zero() || at <= origin {
            return at;
        }
        let since = at.duration_since(origin);
        let slot_nanos = slot.as_nanos();
        let into_slot = since.as_nanos() % slot_nanos;
        // Below the slot, so below a u64 of nanoseconds.
        at - Duration::from_nanos(u64::try_from(into_slot).unwrap_or(0))
    }
}

async fn check_every_interval(
    address: IpAddr,
    epoch: u64,
    checker: Checker,
    mut schedule: Schedule,
    live: Arc<Live>,
    stop: CancellationToken,
) {
    let target = checker.target(address);
    let checks = async {
        let first = Instant::now() + schedule.first();
        let mut at = schedule.align(first);
        loop {
            tokio::time::sleep_until(at).await;
            let started = Instant::now();
            let result = checker.run(&target).await;
            live.health.record(address, epoch, result.err());
            let next = started + schedule.next();
            at = schedule.align(next);
        }
    };
    stop.run_until_cancelled(checks).await;
}

/// xorshift64: the jitter needs spread, not secrecy.
struct Jitter(u64);

impl Jitter {
    /// Seeded by the system's randomness: servers started together do not check in step.
    fn seeded() -> Jitter {
        let mut seed = [0u8; 8];
        // Without the system's randomness the schedule is only less spread: never fatal.
        let _ = getrandom::fill(&mut seed);
        Jitter(u64::from_le_bytes(seed) | 1)
    }

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
        let mut s = Schedule::new(Duration::from_secs(10), 10, &mut Jitter(12345));
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

    /// A check storm: 1,000 addresses started at once (a start, or a reload adding them)
    /// have their first checks spread over the whole first interval, as the supervisor
    /// seeds their schedules, whatever the seed.
    #[test]
    fn a_thousand_first_checks_spread_evenly_over_the_first_interval() {
        let interval = Duration::from_secs(10);
        for seed in [1, 12345, 0x9e37_79b9_7f4a_7c15, u64::MAX] {
            let mut rng = Jitter(seed | 1);
            let firsts: Vec<Duration> = (0..1000)
                .map(|_| Schedule::new(interval, 10, &mut rng).first())
                .collect();
            assert!(firsts.iter().all(|f| *f < interval), "seed {seed}");
            // Ten one-second slots: about 100 first checks each (a binomial's standard
            // deviation is 9.5; none is ever outside ±40 % here).
            let mut slots = [0u32; 10];
            for f in &firsts {
                slots[f.as_secs() as usize] += 1;
            }
            assert!(
                slots.iter().all(|n| (60..=140).contains(n)),
                "seed {seed}: {slots:?}"
            );
            // And no burst: at most 30 first checks (3 %) in any 100 ms.
            let mut tenths = [0u32; 100];
            for f in &firsts {
                tenths[(f.as_millis() / 100) as usize] += 1;
            }
            let most = tenths.iter().max().copied().unwrap_or(0);
            assert!(most <= 30, "seed {seed}: {most} first checks in 100 ms");
        }
    }
}
