//! The queue every primitive is built on: waiter keys under a prefix, ordered by their
//! create revision, each attached to its session's lease.
//!
//! An acquisition
//! 1. writes its own key (unique per acquisition) in a transaction that also reads what it
//!    must wait for, so an uncontended acquisition is one round trip;
//! 2. waits: a FIFO waiter (Mutex, RwMutex, Election) watches only the one key created right
//!    before its own that it must outlive (its predecessor), and when that key is deleted
//!    asks again, so a release wakes one waiter, not all of them; a Semaphore waiter watches
//!    the prefix and counts the weight released ahead of it;
//! 3. runs in a task of its own ([`acquire`]): when the caller's future is dropped or times
//!    out, the task deletes the waiter key (after its creating request has returned, so the
//!    deletion cannot overtake it), and a lock granted after the caller left is released.

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
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
pub(crate) async fn acquire(
    session: &Session,
    key: String,
    value: Vec<u8>,
    rule: Rule,
    wait: Wait,
) -> Result<Option<Held>> {
    session.check()?;
    let (result_tx, mut result_rx) = oneshot::channel::<Result<Option<Held>>>();
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    let s = session.clone();
    session.handle().spawn(async move {
        let r = run(&s, &key, value, &rule, matches!(wait, Wait::Not), cancel_rx).await;
        if let Err(Ok(Some(held))) = result_tx.send(r) {
            // Granted after the caller went away: give it back.
            let _ = release(&held).await;
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

/// The acquisition proper (runs in its own task). `cancel` resolves when the caller gave up.
async fn run(
    session: &Session,
    key: &str,
    value: Vec<u8>,
    rule: &Rule,
    try_only: bool,
    mut cancel: oneshot::Receiver<()>,
) -> Result<Option<Held>> {
    let (rev, first_wait) = match create(session, key, &value, rule).await {
        Ok(v) => v,
        Err(e) => {
            // The key may exist (e.g. a foreign key was found after ours was written).
            let _ = tokio::time::timeout(session.ttl(), delete(session, key)).await;
            return Err(e);
        }
    };
    let held = Held {
        session: session.clone(),
        key: key.to_string(),
        rev,
    };
    // The caller may have left while the key was being created.
    if matches!(
        cancel.try_recv(),
        Ok(()) | Err(oneshot::error::TryRecvError::Closed)
    ) {
        let _ = delete(session, key).await;
        return Err(Error::Timeout(Duration::ZERO));
    }
    let Some(first_wait) = first_wait else {
        return Ok(Some(held));
    };
    if try_only {
        delete(session, key).await?;
        return Ok(None);
    }
    let lost = session.lost();
    let outcome = tokio::select! {
        r = wait_turn(session, key, rev, rule, first_wait) => r,
        _ = &mut cancel => Err(Error::Timeout(Duration::ZERO)),
        _ = lost => Err(Error::SessionLost),
    };
    match outcome {
        Ok(()) => Ok(Some(held)),
        Err(e) => {
            // Leave nothing behind (if the lease is gone, the key went with it).
            let _ = tokio::time::timeout(session.ttl(), delete(session, key)).await;
            Err(e)
        }
    }
}

/// What to wait for after creating the key: a predecessor key to outlive (and the revision
/// to watch from) or, for a weighted rule, the weight ahead.
#[derive(Debug)]
enum Pending {
    Predecessor { key: String, from_rev: i64 },
    Weight { ahead: u64, from_rev: i64 },
}

/// Creates `key` unless an earlier attempt did (idempotent, so transient failures can be
/// retried) and reads, in the same transaction, what the acquisition must wait for.
/// Returns the key's create revision and `None` if it holds at once.
async fn create(
    session: &Session,
    key: &str,
    value: &[u8],
    rule: &Rule,
) -> Result<(i64, Option<Pending>)> {
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
        return match check_turn(session, key, rev, rule).await? {
            None => Ok((rev, None)),
            Some(p) => Ok((rev, Some(p))),
        };
    }
    let rev = header_rev;
    let kvs = match ops.get(1) {
        Some(TxnOpResponse::Get(g)) => g.kvs().to_vec(),
        _ => Vec::new(),
    };
    Ok((rev, pending_from(rule, key, rev, &kvs, header_rev)?))
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
                        from_rev: header_rev + 1,
                    }))
                }
            }
        }
        Rule::Weighted {
            range,
            capacity,
            weight,
        } => {
            let mut ahead = 0u64;
            for kv in kvs.iter().filter(|kv| kv.create_revision() < rev) {
                ahead = ahead.saturating_add(weight_of(range, *capacity, kv)?);
            }
            if ahead + weight <= *capacity {
                Ok(None)
            } else {
                Ok(Some(Pending::Weight {
                    ahead,
                    from_rev: header_rev + 1,
                }))
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
            Some(Pending::Predecessor {
                key: pred,
                from_rev,
            }) => {
                wait_deleted(session, &pred, from_rev).await?;
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
                wait_weight(session, range, *capacity, rev, ahead + weight, from_rev).await?;
            }
        }
        pending = check_turn(session, key, rev, rule).await?;
    }
}

/// Returns once `key` has been deleted, or when the watch ended for another reason
/// (compaction, a member change): the caller checks again either way.
///
/// The watch is created without a start revision, so that etcd normally serves it from its
/// "synced" set and delivers the deletion at once (a watch that starts at an older revision
/// waits for etcd's catch-up loop, which runs every 100 ms). The gap before the watch exists
/// is closed by reading the key once the watch is registered: a key already gone by then
/// returns at once. `_from_rev` is the revision the caller read the key at; that read
/// supersedes it.
///
/// etcd (3.4 and later) turns "no start revision" into "the store's revision + 1" before it
/// registers the watch; a write that lands between the two makes the watch start behind the
/// store, i.e. unsynced, and its events then wait for the catch-up loop (up to 100 ms). The
/// watch's `created` response carries the revision etcd started from; when the read after it
/// shows that the store has moved on since, the watch may be unsynced, and the key is polled
/// every [`POLL_EVERY`] until the catch-up loop must have run ([`CATCH_UP`]).
async fn wait_deleted(session: &Session, key: &str, _from_rev: i64) -> Result<()> {
    session.count_watch();
    let opts = WatchOptions::new().with_filters([WatchFilterType::NoPut]);
    let mut stream = session
        .request(|mut c| {
            let opts = opts.clone();
            async move { c.watch(key, Some(opts)).await }
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
                    let r = session
                        .request(|mut c| async move {
                            c.get(key, Some(GetOptions::new().with_count_only().with_serializable()))
                                .await
                        })
                        .await?;
                    if r.count() == 0 {
                        // (A lagging member may not have the key yet: the caller's
                        // linearizable check decides.)
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
                if resp.canceled()
                    || resp
                        .events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                {
                    return Ok(());
                }
                if !checked && resp.created() {
                    checked = true;
                    let created = tokio::time::Instant::now();
                    let start = resp.header().map_or(0, |h| h.revision());
                    // The watch is registered: from now on the deletion cannot be missed.
                    // Was the key deleted before?
                    let r = session
                        .request(|mut c| async move {
                            c.get(key, Some(GetOptions::new().with_count_only())).await
                        })
                        .await?;
                    if r.count() == 0 {
                        return Ok(());
                    }
                    if r.header().map_or(0, |h| h.revision()) > start {
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

/// How often a possibly unsynced watch's key is polled (see [`wait_deleted`]).
const POLL_EVERY: Duration = Duration::from_millis(5);

/// How long etcd may take to catch an unsynced watch up: its catch-up loop runs every
/// 100 ms; the margin covers a loaded server.
const CATCH_UP: Duration = Duration::from_millis(120);

/// Watches the whole range for deletions of keys older than `rev` until the weight still
/// ahead plus ours (`need`) fits in `capacity`, then returns (the caller re-checks).
async fn wait_weight(
    session: &Session,
    range: &str,
    capacity: u64,
    rev: i64,
    mut need: u64,
    from_rev: i64,
) -> Result<()> {
    session.count_watch();
    let opts = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(from_rev)
        .with_filters([WatchFilterType::NoPut]);
    let mut stream = session
        .request(|mut c| {
            let opts = opts.clone();
            async move { c.watch(range, Some(opts)).await }
        })
        .await?;
    loop {
        match stream.message().await {
            Ok(Some(resp)) => {
                session.count_watch_response(&resp);
                if resp.canceled() {
                    return Ok(());
                }
                for e in resp.events() {
                    match e.prev_kv() {
                        Some(prev) if prev.create_revision() < rev => {
                            need = need.saturating_sub(weight_of(range, capacity, prev)?);
                        }
                        Some(_) => {}
                        // No previous value (compacted away): count again from scratch.
                        None => return Ok(()),
                    }
                }
                if need <= capacity {
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

/// Deletes `key` (whatever its revision). Used for waiter keys that never held.
pub(crate) async fn delete(session: &Session, key: &str) -> Result<()> {
    session
        .request(|mut c| async move { c.delete(key, None).await })
        .await
        .map(|_| ())
}

/// Releases a held key: deletes it only if it is still the key this hold created (so a lost
/// hold never deletes anything of another holder), and reports a hold whose key was already
/// gone as [`Error::LockLost`].
pub(crate) async fn release(held: &Held) -> Result<()> {
    let token = held.rev as u64;
    let key = held.key.as_str();
    let rev = held.rev;
    let attempt = |mut c: etcd_client::Client| {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, rev)])
            .and_then([TxnOp::delete(key, None)]);
        async move { c.txn(txn).await }
    };
    if held.session.is_lost() {
        // The lease may be gone already; try once, briefly, and report the loss either way.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            attempt(held.session.client().clone()),
        )
        .await;
        return Err(Error::LockLost { token });
    }
    match held.session.request(attempt).await {
        Ok(r) if r.succeeded() => Ok(()),
        Ok(_) | Err(Error::SessionLost) => Err(Error::LockLost { token }),
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
        return wait_deleted(session, key, from_rev).await;
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
