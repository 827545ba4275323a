//! The state machine shared by the blocking, async and keyed pools.
//!
//! Everything that decides *who gets which connection* lives here, behind one mutex; the
//! front-ends only connect, validate and close connections, always outside the lock.
//!
//! # Algorithm
//!
//! `State::open` counts every connection that exists or is being created (Go's `numOpen`
//! is incremented before dialling, so `max_open` also bounds concurrent connects).
//! Checked-out connections are not tracked individually: `in_use = open - idle.len()`.
//!
//! A caller first tries, under the lock, to pop the most recently returned idle connection
//! (LIFO, as `database/sql` does, so the rest can age out) or, if `open < max_open`, to
//! reserve a slot and dial. Otherwise it joins the FIFO `waiters` queue.
//!
//! Releasing a connection while callers wait works like Go's `sync.Mutex`:
//!
//! * **normal mode** — the connection goes back to the idle list and the first waiter is
//!   *woken* (moved out of the queue with a `Grant::Wake`). Arriving callers may take the
//!   connection first (barging); that keeps the releasing thread running instead of paying
//!   a context switch per checkout. At most as many waiters are woken as there are
//!   connections or slots available (`woken`), so a release while a woken waiter is still
//!   on its way wakes nobody else, yet a burst of releases never leaves connections idle
//!   behind a chain of one-at-a-time wake-ups. A woken waiter that finds nothing goes back
//!   to the *front* of the queue with its original start time; one that succeeds wakes
//!   more waiters if more is available.
//! * **starvation mode** — if the first waiter has waited longer than [`STARVATION`]
//!   (1 ms, Go's `starvationThresholdNs`), or the idle list is full, the released
//!   connection is handed to it directly (`Grant::Conn`), so nobody waits unboundedly.
//!
//! Invariant (no lost wake-ups): whenever `waiters` is non-empty and a connection is idle
//! or a slot is free, at least one woken waiter is on its way (`woken > 0`), and it
//! re-checks the state under the lock before it sleeps again.
//!
//! Cancellation (a timed-out blocking get, a dropped future) removes the waiter from the
//! queue, or, if it was already granted something, gives the grant back: a granted
//! connection is released again (and so reaches the next waiter), a wake-up is passed on.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::{Config, Stats};

/// How long the first waiter may wait before released connections are handed to it
/// directly instead of being left for whoever comes first (Go's starvation threshold).
pub(crate) const STARVATION: Duration = Duration::from_millis(1);

/// A connection with the times the pool needs for its lifetime rules.
pub(crate) struct Conn<C> {
    pub(crate) conn: C,
    /// When the connection was opened (for `max_lifetime`).
    pub(crate) created: Instant,
    /// When it was last put back (for `max_idle_time`); `None` when no idle limit was set
    /// at the time (the cleaner then stamps it on first sight).
    pub(crate) returned: Option<Instant>,
}

/// What a caller leaves the lock with.
pub(crate) enum Got<C> {
    /// An idle connection (validate it if the pool tests on checkout).
    Conn(Conn<C>),
    /// A reserved slot: dial a new connection, then call [`Core::opened`] or
    /// [`Core::open_failed`] (an [`OpenSlot`] guard does the latter if dropped).
    Open,
}

/// Why a caller got no connection from the core.
pub(crate) enum Fail {
    Closed,
    Timeout {
        waited: Duration,
        last_connect_error: Option<String>,
        open: usize,
        max_open: usize,
    },
}

/// How to wake a waiter.
pub(crate) enum Wake {
    Thread(Thread),
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(t) => t.unpark(),
            Wake::Task(w) => w.wake(),
        }
    }
}

struct Waiter {
    id: u64,
    since: Instant,
    wake: Wake,
}

enum Grant<C> {
    /// A connection handed over directly (starvation mode, or idle list full).
    Conn(Conn<C>),
    /// Woken to re-check; the waiter is out of the queue and counted in `woken`.
    Wake,
}

/// Why a connection is closed (for the DBStats counters).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CloseReason {
    Broken,
    MaxIdle,
    MaxIdleTime,
    MaxLifetime,
    Invalid,
    Excess,
    PoolClosed,
}

struct State<C> {
    idle: Vec<Conn<C>>,
    open: usize,
    waiters: VecDeque<Waiter>,
    grants: Vec<(u64, Grant<C>)>,
    /// Waiters holding a `Grant::Wake` they have not acted on yet.
    woken: usize,
    next_id: u64,
    closed: bool,
    last_connect_error: Option<String>,
    /// Whether a cleaner thread is running, and its handle once it has started.
    cleaner_running: bool,
    cleaner: Option<Thread>,
    // Configuration that setters may change at run time.
    max_open: usize,
    max_idle: usize,
    max_lifetime: Option<Duration>,
    max_idle_time: Option<Duration>,
    wait_timeout: Option<Duration>,
    // Counters (Go's DBStats plus a few of bb8's).
    wait_count: u64,
    wait_duration: Duration,
    max_idle_closed: u64,
    max_idle_time_closed: u64,
    max_lifetime_closed: u64,
    broken_closed: u64,
    invalid_closed: u64,
    connections_created: u64,
    connect_errors: u64,
    timeouts: u64,
}

/// The shared pool state. `C` is the connection type.
pub(crate) struct Core<C> {
    state: Mutex<State<C>>,
    /// Whether to validate idle connections on checkout (read without the lock).
    pub(crate) test_on_checkout: bool,
}

/// Things to do once the lock is released: wake-ups and connections to close.
pub(crate) struct After<C> {
    wake: Option<Wake>,
    wake_more: Vec<Wake>,
    doomed: Vec<C>,
}

impl<C> After<C> {
    fn new() -> Self {
        After {
            wake: None,
            wake_more: Vec::new(),
            doomed: Vec::new(),
        }
    }
    fn push_wake(&mut self, w: Wake) {
        if self.wake.is_none() {
            self.wake = Some(w);
        } else {
            self.wake_more.push(w);
        }
    }

    /// Closes the doomed connections and delivers the wake-ups. Call without the lock.
    pub(crate) fn run(self) {
        drop(self.doomed);
        if let Some(w) = self.wake {
            w.wake();
        }
        for w in self.wake_more {
            w.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under this lock (connects, validation and drops of connections all
    // happen outside it), so a poisoned lock still holds consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C> State<C> {
    fn has_capacity(&self) -> bool {
        self.max_open == 0 || self.open < self.max_open
    }

    fn count_close(&mut self, reason: CloseReason) {
        self.open -= 1;
        match reason {
            CloseReason::Broken => self.broken_closed += 1,
            CloseReason::MaxIdle => self.max_idle_closed += 1,
            CloseReason::MaxIdleTime => self.max_idle_time_closed += 1,
            CloseReason::MaxLifetime => self.max_lifetime_closed += 1,
            CloseReason::Invalid => self.invalid_closed += 1,
            CloseReason::Excess | CloseReason::PoolClosed => {}
        }
    }

    /// Whether `c` must not be reused any more at `now`.
    fn expiry(&self, c: &Conn<C>, now: Instant) -> Option<CloseReason> {
        if let Some(l) = self.max_lifetime {
            if now.saturating_duration_since(c.created) >= l {
                return Some(CloseReason::MaxLifetime);
            }
        }
        if let (Some(l), Some(r)) = (self.max_idle_time, c.returned) {
            if now.saturating_duration_since(r) >= l {
                return Some(CloseReason::MaxIdleTime);
            }
        }
        None
    }

    /// Pops the most recently returned idle connection that has not expired.
    fn pop_idle(&mut self, after: &mut After<C>) -> Option<Conn<C>> {
        let timed = self.max_lifetime.is_some() || self.max_idle_time.is_some();
        let now = if timed { Some(Instant::now()) } else { None };
        while let Some(c) = self.idle.pop() {
            if let Some(now) = now {
                if let Some(reason) = self.expiry(&c, now) {
                    self.count_close(reason);
                    after.doomed.push(c.conn);
                    continue;
                }
            }
            return Some(c);
        }
        None
    }

    /// One checkout attempt: an idle connection, a slot to dial, or `None` (wait).
    fn acquire(&mut self, after: &mut After<C>) -> Option<Got<C>> {
        if let Some(c) = self.pop_idle(after) {
            return Some(Got::Conn(c));
        }
        if self.has_capacity() {
            self.open += 1;
            return Some(Got::Open);
        }
        None
    }

    /// Connections and slots a waiter could take right now.
    fn available(&self) -> usize {
        let free = if self.max_open == 0 {
            usize::MAX
        } else {
            self.max_open.saturating_sub(self.open)
        };
        self.idle.len().saturating_add(free)
    }

    /// Wakes waiters, oldest first, until as many are on their way as there are
    /// connections or slots available.
    fn wake_next(&mut self, after: &mut After<C>) {
        while self.woken < self.available() {
            let Some(w) = self.waiters.pop_front() else {
                return;
            };
            self.woken += 1;
            self.grants.push((w.id, Grant::Wake));
            after.push_wake(w.wake);
        }
    }

    fn enqueue(&mut self, front: bool, id: u64, since: Instant, wake: Wake) {
        let w = Waiter { id, since, wake };
        if front {
            self.waiters.push_front(w);
        } else {
            self.waiters.push_back(w);
        }
    }

    fn take_grant(&mut self, id: u64) -> Option<Grant<C>> {
        let i = self.grants.iter().position(|(g, _)| *g == id)?;
        Some(self.grants.swap_remove(i).1)
    }

    fn release(&mut self, mut c: Conn<C>, broken: bool, after: &mut After<C>) {
        let timed = self.max_lifetime.is_some() || self.max_idle_time.is_some();
        let now = if timed { Some(Instant::now()) } else { None };
        let reason = if broken {
            Some(CloseReason::Broken)
        } else if self.closed {
            Some(CloseReason::PoolClosed)
        } else if self.max_open != 0 && self.open > self.max_open {
            Some(CloseReason::Excess)
        } else {
            match (self.max_lifetime, now) {
                (Some(l), Some(now)) if now.saturating_duration_since(c.created) >= l => {
                    Some(CloseReason::MaxLifetime)
                }
                _ => None,
            }
        };
        c.returned = now.filter(|_| self.max_idle_time.is_some());
        if let Some(reason) = reason {
            self.count_close(reason);
            after.doomed.push(c.conn);
            self.wake_next(after);
            return;
        }
        if let Some(front) = self.waiters.front() {
            let starving = front.since.elapsed() >= STARVATION;
            if starving || self.idle.len() >= self.max_idle {
                let w = self.waiters.pop_front().expect("front exists");
                self.grants.push((w.id, Grant::Conn(c)));
                after.push_wake(w.wake);
                return;
            }
        }
        if self.idle.len() < self.max_idle {
            self.idle.push(c);
            self.wake_next(after);
        } else {
            self.count_close(CloseReason::MaxIdle);
            after.doomed.push(c.conn);
        }
    }

    /// Enforces `max_idle` after a change (closes the oldest excess idle connections).
    fn trim_idle(&mut self, after: &mut After<C>) {
        let excess = self.idle.len().saturating_sub(self.max_idle);
        if excess > 0 {
            for c in self.idle.drain(..excess) {
                after.doomed.push(c.conn);
            }
            self.open -= excess;
            self.max_idle_closed += excess as u64;
        }
    }
}

/// Result of polling a registered waiter.
pub(crate) enum Poll<C> {
    Ready(Got<C>),
    Pending,
}

impl<C> Core<C> {
    pub(crate) fn new(config: &Config) -> Self {
        let mut max_idle = config.max_idle;
        if config.max_open != 0 && max_idle > config.max_open {
            max_idle = config.max_open;
        }
        Core {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiters: VecDeque::new(),
                grants: Vec::new(),
                woken: 0,
                next_id: 0,
                closed: false,
                last_connect_error: None,
                cleaner_running: false,
                cleaner: None,
                max_open: config.max_open,
                max_idle,
                max_lifetime: config.max_lifetime,
                max_idle_time: config.max_idle_time,
                wait_timeout: config.wait_timeout,
                wait_count: 0,
                wait_duration: Duration::ZERO,
                max_idle_closed: 0,
                max_idle_time_closed: 0,
                max_lifetime_closed: 0,
                broken_closed: 0,
                invalid_closed: 0,
                connections_created: 0,
                connect_errors: 0,
                timeouts: 0,
            }),
            test_on_checkout: config.test_on_checkout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        lock(&self.state)
    }

    /// The configured default wait timeout.
    pub(crate) fn wait_timeout(&self) -> Option<Duration> {
        self.lock().wait_timeout
    }

    /// One attempt without waiting. `Ok(None)` means nothing is available now.
    pub(crate) fn try_acquire(&self) -> Result<Option<Got<C>>, Fail> {
        let mut after = After::new();
        let r = {
            let mut st = self.lock();
            if st.closed {
                return Err(Fail::Closed);
            }
            st.acquire(&mut after)
        };
        after.run();
        Ok(r)
    }

    /// Like [`try_acquire`](Self::try_acquire) but only takes idle connections (never
    /// reserves a slot to dial).
    pub(crate) fn try_acquire_idle(&self) -> Result<Option<Conn<C>>, Fail> {
        let mut after = After::new();
        let r = {
            let mut st = self.lock();
            if st.closed {
                return Err(Fail::Closed);
            }
            st.pop_idle(&mut after)
        };
        after.run();
        Ok(r)
    }

    /// Tries once more and, if nothing is available, queues the caller with `wake`.
    /// Returns the result or the waiter id.
    pub(crate) fn acquire_or_enqueue(
        &self,
        since: Instant,
        wake: Wake,
    ) -> Result<Result<Got<C>, u64>, Fail> {
        let mut after = After::new();
        let r = {
            let mut st = self.lock();
            if st.closed {
                return Err(Fail::Closed);
            }
            match st.acquire(&mut after) {
                Some(g) => Ok(g),
                None => {
                    st.next_id += 1;
                    let id = st.next_id;
                    st.wait_count += 1;
                    st.enqueue(false, id, since, wake);
                    Err(id)
                }
            }
        };
        after.run();
        Ok(r)
    }

    /// Checks on waiter `id`. `waker` (async callers) replaces its wake handle if it is
    /// still queued; blocking callers pass `None` and are woken by thread handle. On a
    /// wake-up grant it retries and re-queues at the front if it still finds nothing.
    pub(crate) fn poll_waiter(
        &self,
        id: u64,
        since: Instant,
        waker: Option<&Waker>,
    ) -> Result<Poll<C>, Fail> {
        let mut after = After::new();
        let r = {
            let mut st = self.lock();
            match st.take_grant(id) {
                Some(Grant::Conn(c)) => {
                    st.wait_duration += since.elapsed();
                    Ok(Poll::Ready(Got::Conn(c)))
                }
                Some(Grant::Wake) => {
                    st.woken -= 1;
                    if st.closed {
                        st.wait_duration += since.elapsed();
                        Err(Fail::Closed)
                    } else if let Some(g) = st.acquire(&mut after) {
                        st.wait_duration += since.elapsed();
                        st.wake_next(&mut after);
                        Ok(Poll::Ready(g))
                    } else {
                        let wake = match waker {
                            Some(w) => Wake::Task(w.clone()),
                            None => Wake::Thread(std::thread::current()),
                        };
                        st.enqueue(true, id, since, wake);
                        Ok(Poll::Pending)
                    }
                }
                None => {
                    if let (Some(new), Some(w)) =
                        (waker, st.waiters.iter_mut().find(|w| w.id == id))
                    {
                        match &w.wake {
                            Wake::Task(old) if old.will_wake(new) => {}
                            _ => w.wake = Wake::Task(new.clone()),
                        }
                    }
                    Ok(Poll::Pending)
                }
            }
        };
        after.run();
        r
    }

    /// Gives up waiting (a timeout, or a cancelled future). Whatever the waiter had already
    /// been granted goes back to the pool (and so on to the next waiter). Returns the
    /// failure to report.
    pub(crate) fn cancel(&self, id: u64, since: Instant, timed_out: bool) -> Fail {
        let mut after = After::new();
        let fail = {
            let mut st = self.lock();
            if let Some(i) = st.waiters.iter().position(|w| w.id == id) {
                st.waiters.remove(i);
            } else {
                match st.take_grant(id) {
                    Some(Grant::Conn(c)) => st.release(c, false, &mut after),
                    Some(Grant::Wake) => {
                        st.woken -= 1;
                        st.wake_next(&mut after);
                    }
                    None => {}
                }
            }
            let waited = since.elapsed();
            st.wait_duration += waited;
            if st.closed {
                Fail::Closed
            } else {
                st.timeouts += u64::from(timed_out);
                Fail::Timeout {
                    waited,
                    last_connect_error: st.last_connect_error.clone(),
                    open: st.open,
                    max_open: st.max_open,
                }
            }
        };
        after.run();
        fail
    }

    /// Puts a checked-out connection back (or closes it if `broken`).
    pub(crate) fn release(&self, c: Conn<C>, broken: bool) {
        let mut after = After::new();
        self.lock().release(c, broken, &mut after);
        after.run();
    }

    /// Closes a checked-out connection for `reason` (e.g. it failed validation).
    pub(crate) fn discard(&self, c: C, reason: CloseReason) {
        let mut after = After::new();
        {
            let mut st = self.lock();
            st.count_close(reason);
            st.wake_next(&mut after);
        }
        drop(c);
        after.run();
    }

    /// A reserved slot produced a connection.
    pub(crate) fn opened(&self) {
        let mut st = self.lock();
        st.connections_created += 1;
        st.last_connect_error = None;
    }

    /// A reserved slot failed to produce a connection (`error` = why, if known).
    pub(crate) fn open_failed(&self, error: Option<String>) {
        let mut after = After::new();
        {
            let mut st = self.lock();
            st.open -= 1;
            if let Some(e) = error {
                st.connect_errors += 1;
                st.last_connect_error = Some(e);
            }
            st.wake_next(&mut after);
        }
        after.run();
    }

    /// Closes expired idle connections (the cleaner's tick). Returns the interval to the
    /// next tick, or `None` when no time limit is set or the pool is closed.
    pub(crate) fn clean(&self) -> Option<Duration> {
        let mut after = After::new();
        let next = {
            let mut st = self.lock();
            let now = Instant::now();
            let mut i = 0;
            while i < st.idle.len() {
                if st.max_idle_time.is_some() && st.idle[i].returned.is_none() {
                    st.idle[i].returned = Some(now);
                }
                if let Some(reason) = st.expiry(&st.idle[i], now) {
                    let c = st.idle.remove(i);
                    st.count_close(reason);
                    after.doomed.push(c.conn);
                } else {
                    i += 1;
                }
            }
            st.wake_next(&mut after);
            let next = if st.closed {
                None
            } else {
                match (st.max_lifetime, st.max_idle_time) {
                    (None, None) => None,
                    (a, b) => {
                        let d = a.unwrap_or(Duration::MAX).min(b.unwrap_or(Duration::MAX));
                        // Go's cleaner never ticks faster than once a second.
                        Some(d.max(Duration::from_secs(1)))
                    }
                }
            };
            if next.is_none() {
                st.cleaner_running = false;
                st.cleaner = None;
            }
            next
        };
        after.run();
        next
    }

    /// Claims the right to start the cleaner thread: true when a time limit is set, the
    /// pool is open and no cleaner runs. The caller must then spawn one.
    pub(crate) fn claim_cleaner(&self) -> bool {
        let mut st = self.lock();
        let needed = !st.closed && (st.max_lifetime.is_some() || st.max_idle_time.is_some());
        if needed && !st.cleaner_running {
            st.cleaner_running = true;
            true
        } else {
            if let Some(t) = &st.cleaner {
                // Limits may have been shortened: let it recompute its interval now.
                t.unpark();
            }
            false
        }
    }

    /// Records the running cleaner's thread so it can be woken early.
    pub(crate) fn set_cleaner_thread(&self, t: Thread) {
        let mut st = self.lock();
        if st.cleaner_running {
            st.cleaner = Some(t);
        }
    }

    /// Wakes the cleaner (on close and when the pool is dropped) so it can exit.
    pub(crate) fn wake_cleaner(&self) {
        if let Some(t) = &self.lock().cleaner {
            t.unpark();
        }
    }

    /// Closes the pool: idle connections close now, in-use ones when returned, waiters and
    /// later callers get `Error::Closed`.
    pub(crate) fn close(&self) {
        let mut after = After::new();
        {
            let mut st = self.lock();
            st.closed = true;
            let n = st.idle.len();
            st.open -= n;
            after.doomed.extend(st.idle.drain(..).map(|c| c.conn));
            if let Some(t) = &st.cleaner {
                t.unpark();
            }
            let waiters: Vec<Waiter> = st.waiters.drain(..).collect();
            for w in waiters {
                st.grants.push((w.id, Grant::Wake));
                st.woken += 1;
                after.push_wake(w.wake);
            }
        }
        after.run();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn stats(&self) -> Stats {
        let st = self.lock();
        Stats {
            max_open: st.max_open,
            open: st.open,
            in_use: st.open - st.idle.len(),
            idle: st.idle.len(),
            wait_count: st.wait_count,
            wait_duration: st.wait_duration,
            max_idle_closed: st.max_idle_closed,
            max_idle_time_closed: st.max_idle_time_closed,
            max_lifetime_closed: st.max_lifetime_closed,
            broken_closed: st.broken_closed,
            invalid_closed: st.invalid_closed,
            connections_created: st.connections_created,
            connect_errors: st.connect_errors,
            timeouts: st.timeouts,
            waiting: st.waiters.len(),
        }
    }

    /// Go's `SetMaxOpenConns`: `0` = unlimited; lowers `max_idle` to match.
    pub(crate) fn set_max_open(&self, n: usize) {
        let mut after = After::new();
        {
            let mut st = self.lock();
            st.max_open = n;
            if n != 0 && st.max_idle > n {
                st.max_idle = n;
                st.trim_idle(&mut after);
            }
            st.wake_next(&mut after);
        }
        after.run();
    }

    /// Go's `SetMaxIdleConns`: `0` = keep none; clamped to `max_open`.
    pub(crate) fn set_max_idle(&self, n: usize) {
        let mut after = After::new();
        {
            let mut st = self.lock();
            st.max_idle = if st.max_open != 0 {
                n.min(st.max_open)
            } else {
                n
            };
            st.trim_idle(&mut after);
        }
        after.run();
    }

    /// Go's `SetConnMaxLifetime` (`None` = forever). Returns whether a cleaner is needed.
    pub(crate) fn set_max_lifetime(&self, d: Option<Duration>) {
        self.lock().max_lifetime = d;
    }

    /// Go's `SetConnMaxIdleTime` (`None` = forever).
    pub(crate) fn set_max_idle_time(&self, d: Option<Duration>) {
        self.lock().max_idle_time = d;
    }

    /// Sets the default wait timeout for `get()`.
    pub(crate) fn set_wait_timeout(&self, d: Option<Duration>) {
        self.lock().wait_timeout = d;
    }
}

/// A reserved slot being dialled. Dropping it without [`OpenSlot::done`] (an error, a
/// panic in `connect`, a cancelled future) frees the slot and wakes a waiter.
pub(crate) struct OpenSlot<'a, C> {
    pub(crate) core: &'a Core<C>,
    pub(crate) error: Option<String>,
}

impl<C> OpenSlot<'_, C> {
    /// The connection was created: the slot now belongs to it.
    pub(crate) fn done(self) {
        self.core.opened();
        std::mem::forget(self);
    }
}

impl<C> Drop for OpenSlot<'_, C> {
    fn drop(&mut self) {
        self.core.open_failed(self.error.take());
    }
}
