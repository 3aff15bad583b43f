//! Updates racing configuration reloads: a sender of UPDATEs that does not pause while
//! the test reloads the configuration in turn, and the checks every such race must pass —
//! each update answered NOERROR or refused whole, both answers seen (the reloads landed
//! among the updates), none unanswered, and afterwards every acknowledged one served.
//!
//! What the updates and the reloads are (a grant narrowed and widened, a zone removed and
//! added) is the test's; this module owns only the race and its bookkeeping.

use std::collections::BTreeSet;
use std::future::Future;

use hickory_proto::op::ResponseCode;

/// What came of a race: the updates acknowledged and how many reloads ran beside them.
pub struct Raced {
    /// The values of the updates answered NOERROR.
    pub acknowledged: BTreeSet<String>,
    /// How many reloads were done (at least two).
    pub reloads: usize,
}

impl Raced {
    /// Asserts that `served` (what the server gives for an owner the updates wrote) is
    /// exactly the acknowledged values: nothing acknowledged was lost, nothing refused
    /// was applied.
    pub fn assert_served(&self, owner: &str, served: BTreeSet<String>) {
        assert_eq!(
            served, self.acknowledged,
            "{owner} after {} reloads",
            self.reloads
        );
    }
}

/// Sends `count` updates one after another from a spawned task — `send(value)` with the
/// values `v0`, `v1`, ... — while this task calls `reload(i)` for the i-th reload (a
/// blocking call, such as a SIGHUP awaited in the log, that returns the reload's outcome
/// line), until every update is answered and at least two reloads ran.
///
/// Asserts that every reload applied, every update was answered NOERROR or `refusal`,
/// and both answers occurred. Needs a multi-threaded runtime (the reloads block).
pub async fn updates_racing_reloads<S, F>(
    count: usize,
    refusal: ResponseCode,
    send: S,
    mut reload: impl FnMut(usize) -> String,
) -> Raced
where
    S: Fn(String) -> F + Send + 'static,
    F: Future<Output = ResponseCode> + Send,
{
    let sender = tokio::spawn(async move {
        let mut acknowledged = BTreeSet::new();
        let mut refused = 0;
        for n in 0..count {
            let value = format!("v{n}");
            match send(value.clone()).await {
                ResponseCode::NoError => {
                    acknowledged.insert(value);
                }
                rcode if rcode == refusal => refused += 1,
                other => panic!("update {n}: {other:?}"),
            }
        }
        (acknowledged, refused)
    });
    let mut reloads = 0;
    while !sender.is_finished() || reloads < 2 {
        let line = tokio::task::block_in_place(|| reload(reloads));
        assert!(line.contains("configuration reloaded"), "{line}");
        reloads += 1;
    }
    let (acknowledged, refused) = sender.await.expect("sender");
    // Both outcomes decided some: the reloads landed among the updates.
    assert!(
        !acknowledged.is_empty() && refused > 0,
        "{} acknowledged, {refused} refused, {reloads} reloads",
        acknowledged.len()
    );
    assert_eq!(acknowledged.len() + refused, count);
    Raced {
        acknowledged,
        reloads,
    }
}
