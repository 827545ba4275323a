//! [`Election`]: one leader at a time among campaigners, and observers of the leadership.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    WatchOptions,
};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::guard::held_guard;
use crate::queue::{self, Rule, Shape, Wait};
use crate::session::Session;

/// A leader election (Go: `concurrency.Election`).
///
/// Campaigners queue like [`Mutex`](crate::Mutex) waiters, each key carrying the
/// campaigner's proposal value; the oldest key is the leader. [`campaign`] returns a
/// [`Leadership`] once this campaigner leads: it can [`proclaim`](Leadership::proclaim) a new
/// value and [`resign`](Leadership::resign). [`leader`](Election::leader) reads the current
/// leader, [`observe`](Election::observe) follows every change of leader or value in order.
///
/// # Differences from Go
/// - `campaign` returns a guard; proclaim and resign are its methods, so a campaigner that
///   is not the leader cannot call them (Go returns `ErrElectionNotLeader` at run time).
/// - Each campaign has its own key, so two campaigns through one session compete.
/// - `observe` derives the leader from every event under the election's prefix, so a leader
///   that held only briefly is still reported, in order.
///
/// [`campaign`]: Election::campaign
#[doc(alias = "concurrency.Election")]
#[derive(Clone)]
pub struct Election {
    session: Session,
    prefix: String,
}

impl fmt::Debug for Election {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Election")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A leader as observed: its key, its current value and its fencing token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's key.
    pub key: String,
    /// The value it proclaimed (or campaigned with).
    pub value: Vec<u8>,
    /// Its key's create revision: grows with every new leader.
    pub token: u64,
}

impl Election {
    /// An election named `name` (keys under `name/`).
    #[doc(alias = "NewElection")]
    pub fn new(session: &Session, name: impl AsRef<str>) -> Result<Election> {
        Ok(Election {
            session: session.clone(),
            prefix: queue::prefix_of(name.as_ref(), "election")?,
        })
    }

    fn rule(&self) -> Rule {
        Rule::Fifo {
            range: self.prefix.clone(),
            shape: Shape::Flat(self.prefix.clone()),
        }
    }

    async fn campaign_with(&self, value: Vec<u8>, wait: Wait) -> Result<Leadership> {
        let key = self.session.unique_key(&self.prefix);
        let held = queue::acquire(&self.session, key, None, value, self.rule(), wait)
            .await?
            .expect("a waiting acquisition returns a hold");
        Ok(Leadership::from_held(held))
    }

    /// Waits until this campaigner leads, proposing `value`.
    #[doc(alias = "Campaign")]
    pub async fn campaign(&self, value: impl Into<Vec<u8>>) -> Result<Leadership> {
        self.campaign_with(value.into(), Wait::Forever).await
    }

    /// Campaigns for at most `timeout` ([`Error::Timeout`] after, nothing left behind).
    pub async fn campaign_timeout(
        &self,
        value: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Leadership> {
        self.campaign_with(value.into(), Wait::For(timeout)).await
    }

    /// Blocking [`campaign`](Election::campaign).
    pub fn blocking_campaign(&self, value: impl Into<Vec<u8>>) -> Result<Leadership> {
        queue::blocking(self.campaign(value))
    }

    /// The current leader, if any.
    #[doc(alias = "Leader")]
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let prefix = self.prefix.as_str();
        let r = self
            .session
            .request(|mut c| async move {
                c.get(
                    prefix,
                    Some(
                        GetOptions::new()
                            .with_prefix()
                            .with_sort(SortTarget::Create, SortOrder::Ascend)
                            .with_limit(1),
                    ),
                )
                .await
            })
            .await?;
        Ok(r.kvs().first().map(|kv| LeaderInfo {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: kv.value().to_vec(),
            token: kv.create_revision() as u64,
        }))
    }

    /// Follows the leadership: yields the current leader, then every change of leader or
    /// of its value, in order. `None` from [`Observer::next`] means "no leader" only as an
    /// item (`Some(Ok(None))`); the stream ends when the session ends.
    #[doc(alias = "Observe")]
    pub fn observe(&self) -> Observer {
        let (tx, rx) = mpsc::unbounded_channel();
        let session = self.session.clone();
        let prefix = self.prefix.clone();
        drop(self.session.handle().spawn(async move {
            let lost = session.lost();
            tokio::select! {
                _ = observe_task(&session, &prefix, &tx) => {}
                _ = tx.closed() => {}
                _ = lost => { let _ = tx.send(Err(Error::SessionLost)); }
            }
        }));
        Observer { rx }
    }
}

async fn observe_task(
    session: &Session,
    prefix: &str,
    tx: &mpsc::UnboundedSender<Result<Option<LeaderInfo>>>,
) {
    let mut last: Option<Option<LeaderInfo>> = None;
    loop {
        // (Re)read every key, then follow the events from there.
        let all = session
            .request(|mut c| async move {
                c.get(
                    prefix,
                    Some(
                        GetOptions::new()
                            .with_prefix()
                            .with_sort(SortTarget::Create, SortOrder::Ascend),
                    ),
                )
                .await
            })
            .await;
        let all = match all {
            Ok(a) => a,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut keys: BTreeMap<i64, LeaderInfo> = all
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.create_revision(),
                    LeaderInfo {
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        value: kv.value().to_vec(),
                        token: kv.create_revision() as u64,
                    },
                )
            })
            .collect();
        let mut emit = |keys: &BTreeMap<i64, LeaderInfo>| {
            let now = keys.values().next().cloned();
            if last.as_ref() != Some(&now) {
                last = Some(now.clone());
                tx.send(Ok(now)).is_ok()
            } else {
                true
            }
        };
        if !emit(&keys) {
            return;
        }
        let from = all.header().map_or(0, |h| h.revision()) + 1;
        session.count_watch();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(from);
        let stream = session
            .request(|mut c| {
                let opts = opts.clone();
                async move { c.watch(prefix, Some(opts)).await }
            })
            .await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        while let Ok(Some(resp)) = stream.message().await {
            session.count_watch_response(&resp);
            if resp.canceled() {
                break;
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => {
                        keys.insert(
                            kv.create_revision(),
                            LeaderInfo {
                                key: String::from_utf8_lossy(kv.key()).into_owned(),
                                value: kv.value().to_vec(),
                                token: kv.create_revision() as u64,
                            },
                        );
                    }
                    EventType::Delete => match ev.prev_kv() {
                        Some(prev) => {
                            keys.remove(&prev.create_revision());
                        }
                        None => keys.retain(|_, v| v.key.as_bytes() != kv.key()),
                    },
                }
                if !emit(&keys) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stream of [`Election::observe`] (Go's `Observe` channel): each item is the leadership
/// state after a change, `Ok(None)` meaning "no leader"; an `Err` (the session was lost) is
/// the last item.
///
/// Read it with [`next`](Self::next), as a [`futures_core::Stream`] (so `StreamExt`
/// combinators from `futures` or `tokio-stream` apply), or from a thread with
/// [`blocking_next`](Self::blocking_next). Dropping it stops the observation.
#[derive(Debug)]
pub struct Observer {
    rx: mpsc::UnboundedReceiver<Result<Option<LeaderInfo>>>,
}

impl Observer {
    /// The next leadership state (`Ok(None)`: no leader), or `None` when observing ended.
    pub async fn next(&mut self) -> Option<Result<Option<LeaderInfo>>> {
        self.rx.recv().await
    }

    /// Blocking [`next`](Self::next), for a thread outside the runtime.
    ///
    /// # Panics
    /// If called from inside an async runtime (it would block one of its threads), as
    /// `tokio`'s blocking receive does.
    pub fn blocking_next(&mut self) -> Option<Result<Option<LeaderInfo>>> {
        self.rx.blocking_recv()
    }
}

impl futures_core::Stream for Observer {
    type Item = Result<Option<LeaderInfo>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

held_guard!(
    /// Leadership of an [`Election`]. Dropping it resigns in the background.
    #[must_use = "dropping the leadership resigns at once"]
    Leadership,
    resign,
    blocking_resign,
    "Resign"
);

impl Leadership {
    /// Replaces the leader's value, only while still leader ([`Error::NotLeader`] otherwise).
    #[doc(alias = "Proclaim")]
    pub async fn proclaim(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        let value = value.into();
        let (key, rev) = (self.key().to_string(), self.token().get() as i64);
        let session = self.session().clone();
        let lease = session.lease_id();
        let r = session
            .request(|mut c| {
                let txn = Txn::new()
                    .when([Compare::create_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        rev,
                    )])
                    .and_then([TxnOp::put(
                        key.as_str(),
                        value.clone(),
                        Some(PutOptions::new().with_lease(lease)),
                    )]);
                async move { c.txn(txn).await }
            })
            .await;
        match r {
            Ok(r) if r.succeeded() => Ok(()),
            Ok(_) | Err(Error::SessionLost) => Err(Error::NotLeader),
            Err(e) => Err(e),
        }
    }
}
