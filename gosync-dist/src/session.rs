//! [`Session`]: a lease kept alive in the background, the lifetime of everything built on it.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::error::{is_transient, Error, Result};
use crate::rt;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The lease was not renewed before its TTL ran out (the cluster was unreachable, or
    /// the process was paused), or etcd reported it expired.
    Expired,
    /// etcd no longer knows the lease: someone revoked it.
    Revoked,
    /// [`Session::close`] was called (or the last handle was dropped).
    Closed,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostReason::Expired => "the lease expired (not renewed within its TTL)",
            LostReason::Revoked => "the lease was revoked",
            LostReason::Closed => "the session was closed",
        })
    }
}

/// How to reach etcd and how long a session's lease lives.
///
/// ```
/// use std::time::Duration;
/// let opts = gosync_dist::SessionOptions::new(["127.0.0.1:2379"])
///     .ttl(Duration::from_secs(10))
///     .connect_timeout(Duration::from_secs(3));
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct SessionOptions {
    endpoints: Vec<String>,
    ttl: Duration,
    connect_timeout: Duration,
}

impl SessionOptions {
    /// Endpoints (`host:port` or `http://host:port`), TTL 60 s (Go's default), connect
    /// timeout 5 s.
    pub fn new<S: AsRef<str>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        SessionOptions {
            endpoints: endpoints
                .into_iter()
                .map(|e| e.as_ref().to_string())
                .collect(),
            ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The lease's time to live: how long after the last renewal the cluster releases
    /// everything the session holds when this process dies or is cut off. Rounded up to whole
    /// seconds (etcd's unit); zero is rejected. etcd may raise a very short TTL to its minimum.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`Session::connect`] waits for a first answer before it fails with
    /// [`Error::Unreachable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// Counters of one session (for tests and benchmarks: they show the herd-free waiting).
#[derive(Debug, Default)]
struct Counters {
    watches: AtomicU64,
    watch_events: AtomicU64,
}

/// What the keep-alive task and every handle share.
struct State {
    /// `Some(reason)` once the session has ended; never goes back to `None`.
    lost: watch::Sender<Option<LostReason>>,
    /// The instant before which the lease is certainly still alive on the server: the send
    /// time of the last acknowledged renewal plus the TTL. Only moves forward.
    valid_until: StdMutex<Instant>,
    counters: Counters,
}

impl State {
    fn set_lost(&self, reason: LostReason) {
        self.lost.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(reason);
                true
            } else {
                false
            }
        });
    }
    fn valid_until(&self) -> Instant {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Inner {
    client: Client,
    lease: i64,
    ttl: Duration,
    handle: Handle,
    state: Arc<State>,
    /// Stops the keep-alive task (dropped or sent on close / drop).
    stop: StdMutex<Option<oneshot::Sender<()>>>,
    /// Makes every key this session creates unique.
    seq: AtomicU64,
    /// Sequence numbers of queue keys known to be deleted, free to be used again
    /// ([`Session::queue_key`]).
    free_slots: StdMutex<Vec<u64>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone (guards hold handles, so nothing is held any more):
        // stop renewing and revoke the lease so the cluster forgets it now, not after its TTL.
        if self.state.lost.borrow().is_none() {
            self.state.set_lost(LostReason::Closed);
            let mut client = self.client.clone();
            let lease = self.lease;
            drop(self.handle.spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), client.lease_revoke(lease)).await;
            }));
        }
    }
}

/// A lease kept alive in the background: the lifetime of every lock, waiter key and
/// leadership created through it (Go: `concurrency.Session`).
///
/// A session grants one etcd lease and renews it every third of its TTL from a background
/// task. Everything the primitives write is attached to that lease, so if this process dies,
/// hangs or is cut off from the cluster, etcd deletes it all once the TTL has run out since the
/// last renewal, and the other processes go on.
///
/// [`lost`](Session::lost) resolves (and [`is_lost`](Session::is_lost) turns true) as soon as
/// that may have happened: when etcd reports the lease gone, or when the TTL has passed since
/// the *sending* of the last renewal the cluster acknowledged ([`valid_until`]). The local
/// signal therefore never comes later than the cluster's expiry: work that checks it before
/// acting does not act on a lock that another process may already hold (use the fencing token
/// for the writes themselves: a pause can strike between the check and the write).
///
/// Cloning a `Session` gives another handle to the same lease. The lease is revoked when
/// [`close`](Session::close) is called or the last handle (including those held by guards)
/// is dropped.
///
/// # Differences from Go
/// - `lost()` fires from the local clock too, not only when the keep-alive channel closes, so
///   a process cut off from the cluster learns it no later than the cluster expires its lease.
/// - Every operation of the primitives retries transient failures (no leader during an
///   election, a member restarting) while the session lives, so a failover is invisible to
///   callers except as latency; a session that cannot be renewed ends in
///   [`Error::SessionLost`] after at most one TTL, so nothing waits for ever.
///
/// [`valid_until`]: Session::valid_until
#[doc(alias = "concurrency.Session")]
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("lease", &format_args!("{:x}", self.inner.lease))
            .field("ttl", &self.inner.ttl)
            .field("lost", &*self.inner.state.lost.borrow())
            .finish()
    }
}

impl Session {
    /// Connects to `opts`' endpoints and grants a lease.
    ///
    /// Fails with [`Error::InvalidArgument`] for an empty endpoint list, a malformed endpoint
    /// or a TTL of zero, and with [`Error::Unreachable`] when no endpoint answers within the
    /// connect timeout.
    #[doc(alias = "NewSession")]
    pub async fn connect(opts: SessionOptions) -> Result<Session> {
        if opts.endpoints.is_empty() {
            return Err(Error::InvalidArgument(
                "no etcd endpoints given (expected at least one host:port)".into(),
            ));
        }
        check_ttl(opts.ttl)?;
        if opts.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "the connect timeout is zero; give it at least a few hundred milliseconds".into(),
            ));
        }
        let unreachable = |last: Option<String>| Error::Unreachable {
            endpoints: opts.endpoints.clone(),
            timeout: opts.connect_timeout,
            last_error: last,
        };
        let connect_opts = ConnectOptions::new()
            .with_connect_timeout(opts.connect_timeout)
            // Detect a frozen or vanished member within seconds, so requests move to another.
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            // A member cut off from the quorum refuses instead of serving stale reads/watches.
            .with_require_leader(true);
        let deadline = tokio::time::Instant::now() + opts.connect_timeout;
        let client = match tokio::time::timeout_at(
            deadline,
            Client::connect(&opts.endpoints, Some(connect_opts)),
        )
        .await
        {
            Err(_) => return Err(unreachable(None)),
            Ok(Err(etcd_client::Error::InvalidUri(e))) => {
                return Err(Error::InvalidArgument(format!(
                    "malformed etcd endpoint in {:?}: {e}",
                    opts.endpoints
                )))
            }
            Ok(Err(e)) => return Err(unreachable(Some(e.to_string()))),
            Ok(Ok(c)) => c,
        };
        // The connection is lazy: the lease grant is the first request, so it is what the
        // connect timeout bounds. Transient failures are retried until then.
        let mut last = None;
        loop {
            let mut c = client.clone();
            match tokio::time::timeout_at(deadline, c.lease_grant(ttl_secs(opts.ttl), None)).await {
                Err(_) => return Err(unreachable(last)),
                Ok(Ok(grant)) => {
                    return Ok(Session::start(
                        client,
                        grant.id(),
                        Duration::from_secs(grant.ttl().max(1) as u64),
                    ))
                }
                Ok(Err(e)) => {
                    let e = Error::from(e);
                    if !is_transient(&e) {
                        return Err(e);
                    }
                    last = Some(e.to_string());
                    if tokio::time::timeout_at(
                        deadline,
                        tokio::time::sleep(Duration::from_millis(100)),
                    )
                    .await
                    .is_err()
                    {
                        return Err(unreachable(last));
                    }
                }
            }
        }
    }

    /// The blocking form of [`connect`](Session::connect) (see the crate docs on blocking
    /// forms). Panics if called from inside an async runtime.
    pub fn blocking_connect(opts: SessionOptions) -> Result<Session> {
        rt::block_on(Session::connect(opts))
    }

    /// Grants a lease with `ttl` on a client you configured yourself (TLS, authentication,
    /// your own timeouts). The client's requests should carry timeouts or keep-alives: a
    /// request that never returns blocks only until the session's TTL runs out.
    pub async fn with_client(client: Client, ttl: Duration) -> Result<Session> {
        check_ttl(ttl)?;
        let mut c = client.clone();
        let grant = c.lease_grant(ttl_secs(ttl), None).await?;
        Ok(Session::start(
            client,
            grant.id(),
            Duration::from_secs(grant.ttl().max(1) as u64),
        ))
    }

    fn start(client: Client, lease: i64, ttl: Duration) -> Session {
        let handle = rt::handle();
        // The grant was sent before now; counting the TTL from now would be later than the
        // cluster's expiry, so start a little earlier. Renewals then measure it exactly.
        let granted_at = Instant::now() - Duration::from_millis(50).min(ttl / 4);
        let (lost, _) = watch::channel(None);
        let state = Arc::new(State {
            lost,
            valid_until: StdMutex::new(granted_at + ttl),
            counters: Counters::default(),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        handle.spawn(keep_alive(
            client.clone(),
            lease,
            ttl,
            Arc::clone(&state),
            stop_rx,
        ));
        Session {
            inner: Arc::new(Inner {
                client,
                lease,
                ttl,
                handle,
                state,
                stop: StdMutex::new(Some(stop_tx)),
                seq: AtomicU64::new(0),
                free_slots: StdMutex::new(Vec::new()),
            }),
        }
    }

    /// The lease ID (what `etcdctl lease list` shows, in hex).
    #[doc(alias = "Lease")]
    pub fn lease_id(&self) -> i64 {
        self.inner.lease
    }

    /// The lease's TTL as granted by etcd.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The etcd client the session uses (for your own requests, e.g. fenced writes).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Resolves with the reason once the session has ended (see the type's docs for when).
    /// The future is `'static`: keep it in a `select!` beside the work a lock protects.
    #[doc(alias = "Done")]
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        let mut rx = self.inner.state.lost.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(LostReason::Closed),
                Err(_) => LostReason::Closed,
            }
        }
    }

    /// Whether the session has ended, or its lease may have expired on the cluster by now
    /// (the check is exact against [`valid_until`](Session::valid_until), not just a flag
    /// set by the background task).
    pub fn is_lost(&self) -> bool {
        self.inner.state.lost.borrow().is_some() || Instant::now() >= self.valid_until()
    }

    /// Why the session ended, if it has.
    pub fn lost_reason(&self) -> Option<LostReason> {
        let r = *self.inner.state.lost.borrow();
        r.or_else(|| (Instant::now() >= self.valid_until()).then_some(LostReason::Expired))
    }

    /// The instant before which the lease is certainly alive on the cluster: the sending time
    /// of the last acknowledged renewal plus the TTL. A holder that must not overlap another
    /// can stop its work at this instant.
    pub fn valid_until(&self) -> Instant {
        self.inner.state.valid_until()
    }

    /// Revokes the lease: every key of this session (locks, waiters, leadership) is deleted
    /// at once and [`lost`](Session::lost) fires with [`LostReason::Closed`] on every handle.
    /// An error means the revocation did not reach the cluster; the lease then ends by itself
    /// after its TTL, since renewals have stopped.
    #[doc(alias = "Close")]
    pub async fn close(&self) -> Result<()> {
        self.stop_keep_alive();
        let was_lost = self.inner.state.lost.borrow().is_some();
        self.inner.state.set_lost(LostReason::Closed);
        if was_lost {
            return Ok(());
        }
        let mut c = self.inner.client.clone();
        match tokio::time::timeout(self.inner.ttl, c.lease_revoke(self.inner.lease)).await {
            Err(_) => Err(Error::Timeout(self.inner.ttl)),
            Ok(Err(e)) => match Error::from(e) {
                Error::SessionLost => Ok(()),
                e => Err(e),
            },
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// The blocking form of [`close`](Session::close).
    pub fn blocking_close(&self) -> Result<()> {
        rt::block_on(self.close())
    }

    /// How many watches this session has opened (each waiter opens one at a time: this
    /// counter shows that waiting does not wake a herd).
    pub fn watches_opened(&self) -> u64 {
        self.inner.state.counters.watches.load(Ordering::Relaxed)
    }

    /// How many watch responses carrying events this session's watches have received (those
    /// of the waiters of every primitive and of [`Election::observe`](crate::Election::observe)).
    /// Each such response wakes the waiter that receives it: this counter shows which waiters
    /// a release wakes.
    pub fn watch_events(&self) -> u64 {
        self.inner
            .state
            .counters
            .watch_events
            .load(Ordering::Relaxed)
    }

    fn stop_keep_alive(&self) {
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = stop {
            let _ = s.send(());
        }
    }

    // ---- crate-internal helpers

    pub(crate) fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    pub(crate) fn count_watch(&self) {
        self.inner
            .state
            .counters
            .watches
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a watch response received by one of this session's watches, if it carries
    /// events.
    pub(crate) fn count_watch_response(&self, resp: &etcd_client::WatchResponse) {
        if !resp.events().is_empty() {
            self.inner
                .state
                .counters
                .watch_events
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A key name no other acquisition of any session uses: `prefix` + lease + sequence.
    pub(crate) fn unique_key(&self, prefix: &str) -> String {
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{:x}_{n:x}", self.inner.lease)
    }

    /// A key name no acquisition in progress uses, `prefix` + lease + slot, and its slot:
    /// the slot of a key known to be deleted is used again ([`free_slot`](Session::free_slot)).
    ///
    /// etcd keeps a deleted key in its index until the next compaction, and every read of a
    /// prefix steps over it: a lock that made a new key for each acquisition would make its
    /// own reads slower with every acquisition, for as long as compaction does not run (etcd
    /// does not compact by default). With slots, a session that locks and unlocks in turn
    /// uses one key name again and again. Whoever watches such a key for its deletion must
    /// tell its generations apart (the create revision): the name may be back by the time
    /// the watch is registered.
    pub(crate) fn queue_key(&self, prefix: &str) -> (String, u64) {
        let reused = self.free_slots().pop();
        let n = reused.unwrap_or_else(|| self.inner.seq.fetch_add(1, Ordering::Relaxed));
        (format!("{prefix}{:x}_{n:x}", self.inner.lease), n)
    }

    /// Gives back the slot of a [`queue_key`](Session::queue_key) whose key a request that
    /// succeeded has deleted (the key cannot come back: only its acquisition writes it).
    pub(crate) fn free_slot(&self, slot: u64) {
        self.free_slots().push(slot);
    }

    fn free_slots(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        // (A panic cannot leave the list half-changed: push and pop only.)
        self.inner
            .free_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Fails with [`Error::SessionLost`] if the session has ended.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_lost() {
            Err(Error::SessionLost)
        } else {
            Ok(())
        }
    }

    /// Runs a request, retrying transient failures with backoff while the session lives.
    /// Each attempt is bounded (a frozen member must not hold a request for ever), so `f`
    /// must be idempotent: every request of this crate is (compare-guarded transactions).
    pub(crate) async fn request<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let attempt = (self.inner.ttl / 3).max(Duration::from_secs(1));
        let mut backoff = Duration::from_millis(10);
        loop {
            self.check()?;
            let lost = self.lost();
            let r = tokio::select! {
                r = tokio::time::timeout(attempt, f(self.inner.client.clone())) => r,
                _ = lost => return Err(Error::SessionLost),
            };
            let e = match r {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => Error::from(e),
                Err(_) => Error::Timeout(attempt),
            };
            if !(is_transient(&e) || matches!(e, Error::Timeout(_))) {
                return Err(e);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(250));
        }
    }
}

fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() {
        return Err(Error::InvalidArgument(
            "session TTL is zero: a lease must live at least 1 second (Go's default is 60 s)"
                .into(),
        ));
    }
    Ok(())
}

fn ttl_secs(ttl: Duration) -> i64 {
    let s = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    s.min(i64::MAX as u64) as i64
}

/// Renews the lease every third of its TTL until stopped, or marks the session lost.
///
/// Invariant: `valid_until` is only set from a renewal the cluster acknowledged, measured from
/// the instant the renewal was *sent* (the cluster restarts the TTL when it receives it, which
/// is later), so it never exceeds the cluster's expiry time.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
) {
    let period = (ttl / 3).max(Duration::from_millis(300));
    let expired = |state: &State| tokio::time::Instant::from_std(state.valid_until());
    'reconnect: loop {
        let sent = Instant::now();
        let mut lease_client = client.lease_client();
        let opened = tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(expired(&state)) => {
                state.set_lost(LostReason::Expired);
                return;
            }
            r = lease_client.keep_alive(lease) => r,
        };
        let (mut keeper, mut stream) = match opened {
            Ok(ks) => {
                advance(&state, sent + ttl);
                ks
            }
            Err(e) => {
                if crate::error::is_lease_not_found(&e) {
                    state.set_lost(LostReason::Revoked);
                    return;
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue 'reconnect,
                }
            }
        };
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(period) => {}
            }
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                continue 'reconnect;
            }
            let answer = tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep_until(expired(&state)) => {
                    state.set_lost(LostReason::Expired);
                    return;
                }
                m = stream.message() => m,
            };
            match answer {
                Ok(Some(resp)) if resp.ttl() > 0 => {
                    advance(&state, sent + Duration::from_secs(resp.ttl() as u64));
                }
                Ok(Some(_)) => {
                    // TTL 0: the cluster no longer has the lease.
                    state.set_lost(LostReason::Expired);
                    return;
                }
                Ok(None) | Err(_) => continue 'reconnect,
            }
        }
    }
}

fn advance(state: &State, until: Instant) {
    let mut v = state.valid_until.lock().unwrap_or_else(|e| e.into_inner());
    if until > *v {
        *v = until;
    }
}
