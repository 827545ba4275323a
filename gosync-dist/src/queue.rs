//! The queue every primitive is built on: waiter keys under a prefix, ordered by their
//! create revision, each attached to its session's lease.
//!
//! An acquisition
//! 1. writes its own key (no other acquisition in progress uses its name) in a transaction
//!    that also reads what it must wait for, so an uncontended acquisition is one round
//!    trip; a session uses the name of a deleted key again ([`Session::queue_key`]), so a
//!    waiter tells its predecessor's key from a later key of the same name by its create
//!    revision;
//! 2. waits on one watch at a time, of as little as it needs, so that a release wakes one
//!    waiter, not all of them: a FIFO waiter (Mutex, RwMutex, Election) watches only the one
//!    key created right before its own that it must outlive (its predecessor), and when that
//!    key is deleted asks again; a Semaphore waiter waits as described below;
//! 3. runs in a task of its own ([`acquire`]): when the caller's future is dropped or times
//!    out, the task deletes the waiter key (after its creating request has returned, so the
//!    deletion cannot overtake it), and a lock granted after the caller left is released.
//!
//! # Weighted waiters (Semaphore)
//! Under the weighted rule a key holds once the weights of all older keys plus its own fit
//! in the capacity. The weight ahead of a key is its predecessor's weight plus the weight
//! ahead of the predecessor, so a key whose predecessor does not hold cannot hold either:
//! the keys that hold are always the oldest ones, and the oldest key that does not is the
//! head of the waiters. A waiter that does not hold reads, with the weights ahead of it, its
//! predecessor, and:
//! - if the weight ahead of it fits in the capacity (its predecessor holds, or will as soon
//!   as it notices), it is the head: it alone watches the prefix, subtracts the weight of
//!   each older key deleted, and asks again once its own would fit;
//! - otherwise it watches only its predecessor's key, for its deletion (a waiter that gave
//!   up, a lost session) or for a write to it after the read.
//!
//! A waiter that had to wait writes its key once when it holds ([`announce_held`]: same
//! value, same lease, only while the key is still its own); the waiter behind it wakes and
//! finds itself the head. A key that held from its creation is not written: every later key
//! saw it hold.
//!
//! Invariant: a waiter is woken only by a change that may let it move on: the head by the
//! deletions of older keys, any other waiter by its predecessor's admission or departure.
//! None is missed: older keys only disappear, so whether a key holds only ever turns from
//! no to yes, and a predecessor seen waiting at a revision is written or deleted after it.
//! So a release wakes the head only, and an admission the next waiter only; when one
//! release makes room for several waiters, they are admitted one after another, each woken
//! by the one before it. The write is sent after the caller has been told it holds: no
//! admission depends on it for safety (each waiter counts the weights ahead itself), and a
//! write that comes after the release is refused and changes nothing.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, DeleteOptions, Event, EventType, GetOptions, KeyValue, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::session::Session;

/// Which keys under a range an acquisition must wait for, and which key shapes are valid.
#[derive(Clone, Debug)]
pub(crate) enum Rule {
    /// Wait until no key of `range` (a prefix) older than ours exists (Mutex, Election,
    /// RwMutex writers; RwMutex readers with `range` = the writers' prefix).
    Fifo {
        range: String,
        /// Which keys may appear in `range`.
        shape: Shape,
    },
    /// Wait until the weights of the older keys plus ours fit in `capacity` (Semaphore).
    Weighted {
        range: String,
        capacity: u64,
        weight: u64,
    },
}

impl Rule {
    fn range(&self) -> &str {
        match self {
            Rule::Fifo { range, .. } | Rule::Weighted { range, .. } => range,
        }
    }
}

/// A held key: the result of an acquisition.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) session: Session,
    pub(crate) key: String,
    /// The key's create revision: the fencing token.
    pub(crate) rev: i64,
    /// The session slot the key name came from ([`Session::queue_key`]), given back once
    /// the key is deleted.
    pub(crate) slot: Option<u64>,
}

/// How long an acquisition may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Forever,
    /// Fail with [`Error::Timeout`] after this long.
    For(Duration),
    /// Do not wait at all: `Ok(None)` if it cannot be had at once.
    Not,
}

/// Checks a primitive name and returns its key prefix (`name/`).
pub(crate) fn prefix_of(name: &str, what: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "the {what} name is empty: an empty name would share its keys with every other \
             name; give it a non-empty name such as \"locks/orders\""
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "the {what} name {name:?} contains a NUL byte"
        )));
    }
    Ok(format!("{name}/"))
}

/// Acquires `key` (with `value`) under `rule`: the detached, cancel-safe acquisition
/// described in the module docs.
///
/// `key` comes from [`Session::queue_key`] with its `slot` (given back once the key is
/// deleted), or from [`Session::unique_key`] with `slot` = `None`.
pub(crate) async fn acquire(
    session: &Session,
    key: String,
    slot: Option<u64>,
    value: Vec<u8>,
    rule: Rule,
    wait: Wait,
) -> Result<Option<Held>> {
    session.check()?;
    let (result_tx, mut result_rx) = oneshot::channel::<Result<Option<Held>>>();
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    let s = session.clone();
    session.handle().spawn(async move {
        let try_only = matches!(wait, Wait::Not);
        let r = run(&s, &key, slot, value, &rule, try_only, cancel_rx).await;
        let announce = match &r {
            Ok(Some(g)) if g.announce => Some(g.held.rev),
            _ => None,
        };
        match result_tx.send(r.map(|g| g.map(|g| g.held))) {
            // Granted after the caller went away: give it back (which wakes the next
            // waiter too).
            Err(Ok(Some(held))) => {
                let _ = release(&held).await;
            }
            _ => {
                if let Some(rev) = announce {
                    // The caller may use the hold already: this only wakes the next
                    // waiter, and is a no-op once the hold is released.
                    let _ = announce_held(&s, &key, rev).await;
                }
            }
        }
    });
    let r = match wait {
        Wait::For(d) => match tokio::time::timeout(d, &mut result_rx).await {
            Ok(r) => r,
            Err(_) => {
                // Ask the task to give up and wait for it, so that the waiter key is gone
                // when the caller sees the timeout. A grant that raced the timeout is given
                // back: the caller was promised an answer within `d`.
                let _ = cancel_tx.send(());
                if let Ok(Ok(Some(held))) = (&mut result_rx).await {
                    let _ = release(&held).await;
                }
                return Err(Error::Timeout(d));
            }
        },
        _ => result_rx.await,
    };
    drop(cancel_tx);
    r.unwrap_or(Err(Error::SessionLost))
}

/// A hold as [`run`] grants it.
struct Grant {
    held: Held,
    /// Whether the hold must be announced ([`announce_held`]): a weighted key that did not
    /// hold when it was created, so the key behind it may be waiting for it to hold.
    announce: bool,
}

/// The acquisition proper (runs in its own task). `cancel` resolves when the caller gave up.
async fn run(
    session: &Session,
    key: &str,
    slot: Option<u64>,
    value: Vec<u8>,
    rule: &Rule,
    try_only: bool,
    mut cancel: oneshot::Receiver<()>,
) -> Result<Option<Grant>> {
    let (rev, first_wait, at_creation) = match create(session, key, &value, rule).await {
        Ok(v) => v,
        Err(e) => {
            // The key may exist (e.g. a foreign key was found after ours was written). Its
            // revision is unknown, so its slot is not given back: a late attempt to create
            // it could still land.
            let _ = tokio::time::timeout(session.ttl(), delete(session, key)).await;
            return Err(e);
        }
    };
    let held = Held {
        session: session.clone(),
        key: key.to_string(),
        rev,
        slot,
    };
    // The caller may have left while the key was being created.
    if matches!(
        cancel.try_recv(),
        Ok(()) | Err(oneshot::error::TryRecvError::Closed)
    ) {
        let _ = delete_unheld(&held).await;
        return Err(Error::Timeout(Duration::ZERO));
    }
    let weighted = matches!(rule, Rule::Weighted { .. });
    let Some(first_wait) = first_wait else {
        return Ok(Some(Grant {
            held,
            announce: weighted && !at_creation,
        }));
    };
    if try_only {
        delete_unheld(&held).await?;
        return Ok(None);
    }
    let lost = session.lost();
    let outcome = tokio::select! {
        r = wait_turn(session, key, rev, rule, first_wait) => r,
        _ = &mut cancel => Err(Error::Timeout(Duration::ZERO)),
        _ = lost => Err(Error::SessionLost),
    };
    match outcome {
        Ok(()) => Ok(Some(Grant {
            held,
            announce: weighted,
        })),
        Err(e) => {
            // Leave nothing behind (if the lease is gone, the key went with it).
            let _ = tokio::time::timeout(session.ttl(), delete_unheld(&held)).await;
            Err(e)
        }
    }
}

/// What a key that does not hold yet waits for before it asks again.
#[derive(Debug)]
enum Pending {
    /// FIFO: the deletion of its predecessor, the key created at `rev` (the name may be
    /// used again by a later acquisition of the same session: see [`Session::queue_key`]).
    Predecessor { key: String, rev: i64 },
    /// Weighted, at the head of the waiters (its predecessor holds): deletions of older keys
    /// until the weight still `ahead` of it plus its own fits, watched from `from_rev`.
    Weight { ahead: u64, from_rev: i64 },
    /// Weighted, behind another waiter: the deletion of its predecessor, or the write that
    /// announces that the predecessor holds ([`announce_held`]) after `read_rev`, the
    /// revision the predecessor was seen waiting at.
    Behind { key: String, read_rev: i64 },
}

/// Creates `key` unless an earlier attempt did (idempotent, so transient failures can be
/// retried) and reads, in the same transaction, what the acquisition must wait for.
/// Returns the key's create revision, `None` if it holds, and whether that was decided at
/// the revision the key was created at (false when an earlier attempt had created it).
async fn create(
    session: &Session,
    key: &str,
    value: &[u8],
    rule: &Rule,
) -> Result<(i64, Option<Pending>, bool)> {
    let lease = session.lease_id();
    let range = rule.range().to_string();
    let resp = session
        .request(|mut c| {
            let read = match rule {
                // The two newest keys of the range: ours (just written) and its predecessor.
                Rule::Fifo { .. } => GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Descend)
                    .with_limit(2),
                // Everything: the weights ahead of ours.
                Rule::Weighted { .. } => GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend),
            };
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([
                    TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease))),
                    TxnOp::get(range.as_str(), Some(read)),
                ])
                .or_else([TxnOp::get(key, None)]);
            async move { c.txn(txn).await }
        })
        .await?;
    let header_rev = resp.header().map_or(0, |h| h.revision());
    let ops = resp.op_responses();
    if !resp.succeeded() {
        // An earlier attempt created the key: take its revision and look up the queue.
        let Some(TxnOpResponse::Get(g)) = ops.first() else {
            return Err(Error::SessionLost);
        };
        let Some(kv) = g.kvs().first() else {
            return Err(Error::SessionLost);
        };
        let rev = kv.create_revision();
        return Ok((rev, check_turn(session, key, rev, rule).await?, false));
    }
    let rev = header_rev;
    let kvs = match ops.get(1) {
        Some(TxnOpResponse::Get(g)) => g.kvs().to_vec(),
        _ => Vec::new(),
    };
    Ok((rev, pending_from(rule, key, rev, &kvs, header_rev)?, true))
}

/// Decides from the keys of the range (as read at `header_rev`) whether `key` (created at
/// `rev`) holds, and if not what to wait for.
fn pending_from(
    rule: &Rule,
    key: &str,
    rev: i64,
    kvs: &[KeyValue],
    header_rev: i64,
) -> Result<Option<Pending>> {
    match rule {
        Rule::Fifo { shape, .. } => {
            let pred = kvs
                .iter()
                .filter(|kv| kv.create_revision() < rev && kv.key() != key.as_bytes())
                .max_by_key(|kv| kv.create_revision());
            match pred {
                None => Ok(None),
                Some(kv) => {
                    shape.check(kv)?;
                    Ok(Some(Pending::Predecessor {
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        rev: kv.create_revision(),
                    }))
                }
            }
        }
        Rule::Weighted {
            range,
            capacity,
            weight,
        } => {
            // The weight of every older key, and the newest of them (the predecessor): the
            // weight ahead is also the predecessor's own weight plus the weight ahead of it.
            let mut ahead = 0u64;
            let mut pred: Option<&KeyValue> = None;
            for kv in kvs.iter().filter(|kv| kv.create_revision() < rev) {
                ahead = ahead.saturating_add(weight_of(range, *capacity, kv)?);
                if pred.is_none_or(|p| kv.create_revision() > p.create_revision()) {
                    pred = Some(kv);
                }
            }
            if ahead.saturating_add(*weight) <= *capacity {
                return Ok(None);
            }
            match pred {
                // The predecessor waits too: this key cannot hold before it does.
                Some(p) if ahead > *capacity => Ok(Some(Pending::Behind {
                    key: String::from_utf8_lossy(p.key()).into_owned(),
                    read_rev: header_rev,
                })),
                // The predecessor holds (or will as soon as it notices): this key is the
                // head of the waiters and counts the weight released ahead of it.
                _ => Ok(Some(Pending::Weight {
                    ahead,
                    from_rev: header_rev + 1,
                })),
            }
        }
    }
}

/// One round trip: does our key still exist, and what must it still wait for?
async fn check_turn(
    session: &Session,
    key: &str,
    rev: i64,
    rule: &Rule,
) -> Result<Option<Pending>> {
    let range = rule.range().to_string();
    let resp = session
        .request(|mut c| {
            let read = match rule {
                Rule::Fifo { .. } => GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Descend)
                    .with_max_create_revision(rev - 1)
                    .with_limit(1),
                Rule::Weighted { .. } => GetOptions::new()
                    .with_prefix()
                    .with_max_create_revision(rev - 1),
            };
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, rev)])
                .and_then([TxnOp::get(range.as_str(), Some(read))]);
            async move { c.txn(txn).await }
        })
        .await?;
    if !resp.succeeded() {
        // Our own key is gone: the lease ended (or someone deleted it by hand).
        return Err(Error::SessionLost);
    }
    let header_rev = resp.header().map_or(0, |h| h.revision());
    let kvs = match resp.op_responses().into_iter().next() {
        Some(TxnOpResponse::Get(g)) => g.kvs().to_vec(),
        _ => Vec::new(),
    };
    pending_from(rule, key, rev, &kvs, header_rev)
}

/// Waits until `key` (created at `rev`) holds under `rule`.
async fn wait_turn(
    session: &Session,
    key: &str,
    rev: i64,
    rule: &Rule,
    first: Pending,
) -> Result<()> {
    let mut pending = Some(first);
    loop {
        match pending.take() {
            None => return Ok(()),
            Some(Pending::Predecessor { key: pred, rev }) => {
                let change = Change::Deleted(Some(rev));
                wait_for(session, Awaited::Key { key: &pred, change }).await?;
            }
            Some(Pending::Behind {
                key: pred,
                read_rev,
            }) => {
                let change = Change::DeletedOrWrittenAfter(read_rev);
                wait_for(session, Awaited::Key { key: &pred, change }).await?;
            }
            Some(Pending::Weight { ahead, from_rev }) => {
                let Rule::Weighted {
                    range,
                    capacity,
                    weight,
                } = rule
                else {
                    unreachable!("a weight is only pending under a weighted rule")
                };
                let room = Awaited::Room {
                    range,
                    capacity: *capacity,
                    weight: *weight,
                    rev,
                    need: ahead.saturating_add(*weight),
                    from_rev,
                };
                wait_for(session, room).await?;
            }
        }
        pending = check_turn(session, key, rev, rule).await?;
    }
}

/// What [`wait_for`] waits for to happen to a key.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Its deletion; with `Some(rev)`, the deletion of the key created at `rev`, so that the
    /// same name created again counts as deleted.
    Deleted(Option<i64>),
    /// Its deletion, or a write to it after the given revision (the one the caller read it
    /// at).
    DeletedOrWrittenAfter(i64),
}

impl Change {
    /// Whether the key as read (`None`: absent) shows that the change happened.
    fn seen_in(self, kv: Option<&KeyValue>) -> bool {
        match (self, kv) {
            (_, None) => true,
            (Change::Deleted(created), Some(kv)) => {
                created.is_some_and(|rev| kv.create_revision() != rev)
            }
            (Change::DeletedOrWrittenAfter(rev), Some(kv)) => kv.mod_revision() > rev,
        }
    }

    /// Whether a watch event on the key is the change.
    fn seen_in_event(self, e: &Event) -> bool {
        match e.event_type() {
            EventType::Delete => true,
            EventType::Put => matches!(
                (self, e.kv()),
                (Change::DeletedOrWrittenAfter(rev), Some(kv)) if kv.mod_revision() > rev
            ),
        }
    }
}

/// What a waiter waits for on its one watch ([`wait_for`]).
#[derive(Debug)]
enum Awaited<'a> {
    /// `change` to `key` (the predecessor's key).
    Key { key: &'a str, change: Change },
    /// Room for `weight` in a weighted `range`: deletions of keys older than `rev` (counted
    /// from `from_rev`, the revision after the one the weights were read at) until `need`,
    /// the weight still ahead plus `weight`, fits in `capacity`.
    Room {
        range: &'a str,
        capacity: u64,
        weight: u64,
        rev: i64,
        need: u64,
        from_rev: i64,
    },
}

impl Awaited<'_> {
    /// The watch: one key from the current revision, or the range from `from_rev`.
    fn watch(&self) -> (&str, WatchOptions) {
        match *self {
            Awaited::Key {
                key,
                change: Change::Deleted(_),
            } => (
                key,
                WatchOptions::new().with_filters([WatchFilterType::NoPut]),
            ),
            Awaited::Key { key, .. } => (key, WatchOptions::new()),
            Awaited::Room {
                range, from_rev, ..
            } => (
                range,
                WatchOptions::new()
                    .with_prefix()
                    .with_prev_key()
                    .with_start_revision(from_rev)
                    .with_filters([WatchFilterType::NoPut]),
            ),
        }
    }

    /// Reads the watched state once (`serializable`: from whichever member answers, which
    /// may lag) and says whether the wait is over, with the revision it was read at.
    async fn probe(&self, session: &Session, serializable: bool) -> Result<(bool, i64)> {
        let mut opts = GetOptions::new();
        if serializable {
            opts = opts.with_serializable();
        }
        let (at, opts) = match *self {
            // Keys only: the revisions are what matters.
            Awaited::Key { key, .. } => (key, opts.with_keys_only()),
            Awaited::Room { range, rev, .. } => {
                (range, opts.with_prefix().with_max_create_revision(rev - 1))
            }
        };
        let r = session
            .request(|mut c| {
                let opts = opts.clone();
                async move { c.get(at, Some(opts)).await }
            })
            .await?;
        let read_at = r.header().map_or(0, |h| h.revision());
        let over = match *self {
            Awaited::Key { change, .. } => change.seen_in(r.kvs().first()),
            Awaited::Room {
                range,
                capacity,
                weight,
                ..
            } => {
                let mut ahead = 0u64;
                for kv in r.kvs() {
                    ahead = ahead.saturating_add(weight_of(range, capacity, kv)?);
                }
                ahead.saturating_add(weight) <= capacity
            }
        };
        Ok((over, read_at))
    }

    /// Whether the events of one watch response end the wait (a `Room` wait counts the
    /// weight they release).
    fn on_events(&mut self, events: &[Event]) -> Result<bool> {
        match self {
            Awaited::Key { change, .. } => Ok(events.iter().any(|e| change.seen_in_event(e))),
            Awaited::Room {
                range,
                capacity,
                rev,
                need,
                ..
            } => {
                for e in events {
                    match e.prev_kv() {
                        Some(prev) if prev.create_revision() < *rev => {
                            *need = need.saturating_sub(weight_of(range, *capacity, prev)?);
                        }
                        Some(_) => {}
                        // No previous value (compacted away): count again from scratch.
                        None => return Ok(true),
                    }
                }
                Ok(*need <= *capacity)
            }
        }
    }
}

/// Returns once what `awaited` describes has happened, or when the watch ended for another
/// reason (compaction, a member change): the caller checks again either way.
///
/// A key is watched without a start revision, so that etcd normally serves the watch from
/// its "synced" set and delivers the change at once (a watch that starts at an older
/// revision waits for etcd's catch-up loop, which runs every 100 ms). The gap before the
/// watch exists is closed by reading the key once the watch is registered: a key already
/// gone (or already written after the caller's read) by then returns at once. A range is
/// watched from the revision after the caller's read instead (its events are counted, so
/// none may be missed), which is synced when nothing was written in between.
///
/// etcd (3.4 and later) turns "no start revision" into "the store's revision + 1" before it
/// registers the watch; a write that lands between the two makes the watch start behind the
/// store, i.e. unsynced, and its events then wait for the catch-up loop (up to 100 ms). The
/// watch's `created` response carries the store's revision when etcd took the watch; when
/// the store has moved past the watch's start (as the read after it shows for a key, or as
/// that revision itself shows for a range), the watch may be unsynced, and the state is read
/// again every [`POLL_EVERY`] until the catch-up loop must have run ([`CATCH_UP`]).
async fn wait_for(session: &Session, mut awaited: Awaited<'_>) -> Result<()> {
    session.count_watch();
    let (watched, opts) = awaited.watch();
    let mut stream = session
        .request(|mut c| {
            let opts = opts.clone();
            async move { c.watch(watched, Some(opts)).await }
        })
        .await?;
    let mut checked = false;
    // While the watch may be unsynced: when to poll next, and until when.
    let mut poll: Option<(tokio::time::Instant, tokio::time::Instant)> = None;
    loop {
        let msg = match poll {
            Some((next, until)) => tokio::select! {
                m = stream.message() => m,
                _ = tokio::time::sleep_until(next) => {
                    if awaited.probe(session, true).await?.0 {
                        // (A lagging member may show too little: the caller's linearizable
                        // check decides.)
                        return Ok(());
                    }
                    let next = next + POLL_EVERY;
                    poll = (next <= until).then_some((next, until));
                    continue;
                }
            },
            None => stream.message().await,
        };
        match msg {
            Ok(Some(resp)) => {
                session.count_watch_response(&resp);
                if resp.canceled() || awaited.on_events(resp.events())? {
                    return Ok(());
                }
                if !checked && resp.created() {
                    checked = true;
                    let created = tokio::time::Instant::now();
                    let taken_at = resp.header().map_or(0, |h| h.revision());
                    let behind = match awaited {
                        Awaited::Key { .. } => {
                            // The watch is registered: from now on the change cannot be
                            // missed. Did it happen before?
                            let (over, read_at) = awaited.probe(session, false).await?;
                            if over {
                                return Ok(());
                            }
                            read_at > taken_at
                        }
                        Awaited::Room { from_rev, .. } => taken_at >= from_rev,
                    };
                    if behind {
                        poll = Some((created + POLL_EVERY, created + CATCH_UP));
                    }
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                let e = Error::from(e);
                if crate::error::is_transient(&e) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
}

/// How often the state behind a possibly unsynced watch is read (see [`wait_for`]).
const POLL_EVERY: Duration = Duration::from_millis(5);

/// How long etcd may take to catch an unsynced watch up: its catch-up loop runs every
/// 100 ms; the margin covers a loaded server.
const CATCH_UP: Duration = Duration::from_millis(120);

/// The keys a primitive's range may hold; any other key there belongs to a primitive whose
/// name overlaps (e.g. `locks/a` and `locks/a/b`).
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// Direct children of the prefix: `name/<id>`.
    Flat(String),
    /// `name/r/<id>` and `name/w/<id>` (RwMutex).
    ReadWrite(String),
}

impl Shape {
    pub(crate) fn check(&self, kv: &KeyValue) -> Result<()> {
        let k = kv.key();
        let (prefix, ok) = match self {
            Shape::Flat(p) => (
                p,
                k.starts_with(p.as_bytes()) && !k[p.len()..].contains(&b'/'),
            ),
            Shape::ReadWrite(p) => {
                let rest = k.strip_prefix(p.as_bytes()).unwrap_or(b"/");
                let ok = (rest.starts_with(b"r/") || rest.starts_with(b"w/"))
                    && !rest[2..].contains(&b'/');
                (p, ok)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::OverlappingName {
                prefix: prefix.clone(),
                found: String::from_utf8_lossy(k).into_owned(),
            })
        }
    }
}

/// The weight a semaphore key carries (its value: `weight/capacity`).
fn weight_of(range: &str, capacity: u64, kv: &KeyValue) -> Result<u64> {
    let v = std::str::from_utf8(kv.value()).unwrap_or("");
    let parsed = v
        .split_once('/')
        .and_then(|(w, c)| Some((w.parse::<u64>().ok()?, c.parse::<u64>().ok()?)));
    let Some((w, cap)) = parsed else {
        return Err(Error::OverlappingName {
            prefix: range.to_string(),
            found: String::from_utf8_lossy(kv.key()).into_owned(),
        });
    };
    if kv.key()[range.len()..].contains(&b'/') {
        return Err(Error::OverlappingName {
            prefix: range.to_string(),
            found: String::from_utf8_lossy(kv.key()).into_owned(),
        });
    }
    if cap != capacity {
        return Err(Error::InvalidArgument(format!(
            "semaphore {range:?}: key {:?} was created with capacity {cap}, this handle has \
             capacity {capacity}; every process must use the same capacity",
            String::from_utf8_lossy(kv.key())
        )));
    }
    Ok(w)
}

/// Announces that the weighted key `key` (created at `rev`), which had to wait, holds now:
/// writes it again with its own value and lease, which changes nothing but its mod
/// revision, and only while it is still this hold's key. The waiter right behind it
/// watches for this write ([`Pending::Behind`]), then finds itself at the head.
async fn announce_held(session: &Session, key: &str, rev: i64) -> Result<()> {
    session
        .request(|mut c| {
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, rev)])
                .and_then([TxnOp::put(
                    key,
                    Vec::new(),
                    Some(PutOptions::new().with_ignore_value().with_ignore_lease()),
                )]);
            async move { c.txn(txn).await }
        })
        .await
        .map(|_| ())
}

/// Deletes `key` (whatever its revision). Used for waiter keys that never held.
pub(crate) async fn delete(session: &Session, key: &str) -> Result<()> {
    session
        .request(|mut c| async move { c.delete(key, None).await })
        .await
        .map(|_| ())
}

/// Deletes the key of an acquisition, held or not, by name (one plain delete, which etcd
/// applies faster than a transaction that compares first), and returns whether the key it
/// deleted was this acquisition's (its create revision, returned with the deletion); if so,
/// gives the slot back.
///
/// The name belongs to this acquisition's session and slot, and no other acquisition writes
/// it while this one has the slot, so the delete cannot touch another holder's key. A key
/// that was not there (gone with the lease, or deleted by hand) keeps its slot out of use.
async fn delete_own(held: &Held) -> Result<bool> {
    let (key, rev) = (held.key.as_str(), held.rev);
    let r = held
        .session
        .request(|mut c| async move {
            c.delete(key, Some(DeleteOptions::new().with_prev_key()))
                .await
        })
        .await?;
    let own = r.prev_kvs().iter().any(|kv| kv.create_revision() == rev);
    if let (true, Some(slot)) = (own, held.slot) {
        held.session.free_slot(slot);
    }
    Ok(own)
}

/// Deletes the key of an acquisition that did not hold (it gave up, or only tried).
async fn delete_unheld(held: &Held) -> Result<()> {
    delete_own(held).await.map(|_| ())
}

/// Releases a held key ([`delete_own`]), and reports a hold whose key was already gone as
/// [`Error::LockLost`].
pub(crate) async fn release(held: &Held) -> Result<()> {
    let token = held.rev as u64;
    if held.session.is_lost() {
        // The lease may be gone already; try once, briefly, and report the loss either way.
        let key = held.key.as_str();
        let mut c = held.session.client().clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), c.delete(key, None)).await;
        return Err(Error::LockLost { token });
    }
    match delete_own(held).await {
        Ok(true) => Ok(()),
        Ok(false) | Err(Error::SessionLost) => Err(Error::LockLost { token }),
        Err(e) => Err(e),
    }
}

/// Spawns [`release`] on the session's runtime (for guards dropped without `unlock`).
pub(crate) fn release_in_background(held: Held) {
    let handle = held.session.handle().clone();
    // Detached: the JoinHandle is not needed.
    drop(handle.spawn(async move {
        let _ = release(&held).await;
    }));
}

/// Runs `f` with the session's runtime (blocking forms).
pub(crate) fn blocking<F: Future>(f: F) -> F::Output {
    crate::rt::block_on(f)
}

/// Waits until `key` is written (`put`) or deleted (`!put`) at or after `from_rev`, or the
/// watch ends for another reason; the caller checks again either way.
pub(crate) async fn wait_key_event(
    session: &Session,
    key: &str,
    from_rev: i64,
    put: bool,
) -> Result<()> {
    if !put {
        // (A watch from the current revision and a read make `from_rev` unnecessary; the
        // key names given here are never used again.)
        let change = Change::Deleted(None);
        return wait_for(session, Awaited::Key { key, change }).await;
    }
    session.count_watch();
    let opts = WatchOptions::new()
        .with_start_revision(from_rev)
        .with_filters([WatchFilterType::NoDelete]);
    let mut stream = session
        .request(|mut c| {
            let opts = opts.clone();
            async move { c.watch(key, Some(opts)).await }
        })
        .await?;
    loop {
        match stream.message().await {
            Ok(Some(resp)) => {
                session.count_watch_response(&resp);
                if resp.canceled() || !resp.events().is_empty() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                let e = Error::from(e);
                if crate::error::is_transient(&e) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
}
