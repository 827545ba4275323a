//! The small runtime behind the `blocking_*` methods.
//!
//! A blocking call runs the async form to completion on the calling thread with
//! `Runtime::block_on` of one process-wide tokio runtime with a single worker thread (named
//! `gosync-dist`). That worker drives the network I/O, the timers and the background tasks
//! (lease keep-alive, acquisitions, best-effort unlocks on drop) of every session opened from
//! plain threads. Sessions opened from inside an async runtime use that runtime instead.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gosync-dist")
            .enable_all()
            .build()
            .expect("gosync-dist: could not start its background runtime thread")
    })
}

/// The runtime to spawn background tasks on: the caller's if there is one, else the internal one.
pub(crate) fn handle() -> Handle {
    Handle::try_current().unwrap_or_else(|_| runtime().handle().clone())
}

/// Runs `f` to completion on the calling thread (see the module docs).
///
/// # Panics
/// When called from inside an async runtime, where blocking the thread would stall other
/// tasks (and tokio refuses nested runtimes): use the async form there.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    assert!(
        Handle::try_current().is_err(),
        "gosync-dist: a blocking_* method was called from inside an async runtime; \
         use the async form with `.await` there (or call it inside spawn_blocking)"
    );
    runtime().block_on(f)
}
