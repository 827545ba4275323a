//! [`Barrier`]: etcd's double barrier: `count` processes enter together and leave together.

use std::fmt;

use etcd_client::{GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse};

use crate::error::{Error, Result};
use crate::queue;
use crate::session::Session;

/// A double barrier shared by processes (etcd's `recipes.DoubleBarrier`): [`enter`] waits
/// until `count` participants have entered; [`Entered::leave`] waits until all of them have
/// left. It is the distributed counterpart of a `WaitGroup` used as a start-and-finish gate.
///
/// Keys: `name/waiters/<id>` per participant (attached to its session's lease, so a dead
/// participant leaves by itself) and `name/ready`, written by the participant that completes
/// the count and deleted by the last to leave, so the barrier can be used again.
///
/// [`enter`]: Barrier::enter
#[doc(alias = "DoubleBarrier")]
#[doc(alias = "WaitGroup")]
#[derive(Clone)]
pub struct Barrier {
    session: Session,
    prefix: String,
    count: usize,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("prefix", &self.prefix)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Barrier {
    /// A barrier named `name` for `count` participants. Fails on an empty name or a zero
    /// count.
    #[doc(alias = "NewDoubleBarrier")]
    pub fn new(session: &Session, name: impl AsRef<str>, count: usize) -> Result<Barrier> {
        if count == 0 {
            return Err(Error::InvalidArgument(
                "barrier count is zero: give the number of participants".into(),
            ));
        }
        Ok(Barrier {
            session: session.clone(),
            prefix: queue::prefix_of(name.as_ref(), "barrier")?,
            count,
        })
    }

    fn ready_key(&self) -> String {
        format!("{}ready", self.prefix)
    }

    /// Enters, and waits until `count` participants have entered.
    #[doc(alias = "Enter")]
    pub async fn enter(&self) -> Result<Entered> {
        let waiters = format!("{}waiters/", self.prefix);
        let key = self.session.unique_key(&waiters);
        let ready = self.ready_key();
        let lease = self.session.lease_id();
        let r = self
            .session
            .request(|mut c| {
                let txn = Txn::new().and_then([
                    TxnOp::put(key.as_str(), "", Some(PutOptions::new().with_lease(lease))),
                    TxnOp::get(
                        waiters.as_str(),
                        Some(GetOptions::new().with_prefix().with_count_only()),
                    ),
                    TxnOp::get(ready.as_str(), None),
                ]);
                async move { c.txn(txn).await }
            })
            .await?;
        let header = r.header().map_or(0, |h| h.revision());
        let ops = r.op_responses();
        let count = match ops.get(1) {
            Some(TxnOpResponse::Get(g)) => g.count() as usize,
            _ => 0,
        };
        let is_ready = matches!(ops.get(2), Some(TxnOpResponse::Get(g)) if !g.kvs().is_empty());
        let entered = Entered {
            barrier: self.clone(),
            key,
        };
        if is_ready {
            return Ok(entered);
        }
        if count >= self.count {
            self.session
                .request(|mut c| {
                    let ready = ready.clone();
                    async move {
                        c.put(ready, "", Some(PutOptions::new().with_lease(lease)))
                            .await
                    }
                })
                .await?;
            return Ok(entered);
        }
        let lost = self.session.lost();
        tokio::select! {
            r = queue::wait_key_event(&self.session, &ready, header + 1, true) => r?,
            _ = lost => return Err(Error::SessionLost),
        }
        Ok(entered)
    }

    /// Blocking [`enter`](Barrier::enter).
    pub fn blocking_enter(&self) -> Result<Entered> {
        queue::blocking(self.enter())
    }
}

/// A participant inside a [`Barrier`]; [`leave`](Entered::leave) waits for the others.
#[derive(Debug)]
#[must_use = "leave() the barrier: the others wait for it"]
pub struct Entered {
    barrier: Barrier,
    key: String,
}

impl Entered {
    /// Leaves, and waits until every participant has left.
    #[doc(alias = "Leave")]
    pub async fn leave(self) -> Result<()> {
        let b = &self.barrier;
        let waiters = format!("{}waiters/", b.prefix);
        let ready = b.ready_key();
        loop {
            let r = b
                .session
                .request(|mut c| {
                    let waiters = waiters.clone();
                    async move {
                        c.get(
                            waiters,
                            Some(
                                GetOptions::new()
                                    .with_prefix()
                                    .with_sort(SortTarget::Create, SortOrder::Ascend),
                            ),
                        )
                        .await
                    }
                })
                .await?;
            let header = r.header().map_or(0, |h| h.revision());
            let keys: Vec<String> = r
                .kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .collect();
            let Some(mine) = keys.iter().position(|k| *k == self.key) else {
                // Our key is gone: either we deleted it (and wait for the lowest below) and
                // everyone is gone, or the lease ended.
                if keys.is_empty() {
                    return Ok(());
                }
                b.session.check()?;
                let lowest = keys[0].clone();
                queue::wait_key_event(&b.session, &lowest, header + 1, false).await?;
                continue;
            };
            if keys.len() == 1 {
                // The last one out deletes its key and the ready flag together.
                let (key, ready) = (self.key.clone(), ready.clone());
                b.session
                    .request(|mut c| {
                        let txn = Txn::new().and_then([
                            TxnOp::delete(key.as_str(), None),
                            TxnOp::delete(ready.as_str(), None),
                        ]);
                        async move { c.txn(txn).await }
                    })
                    .await?;
                return Ok(());
            }
            if mine == 0 {
                // The lowest waits for the highest to go.
                let highest = keys[keys.len() - 1].clone();
                queue::wait_key_event(&b.session, &highest, header + 1, false).await?;
            } else {
                queue::delete(&b.session, &self.key).await?;
                queue::wait_key_event(&b.session, &keys[0], header + 1, false).await?;
            }
        }
    }

    /// Blocking [`leave`](Entered::leave).
    pub fn blocking_leave(self) -> Result<()> {
        queue::blocking(self.leave())
    }
}
