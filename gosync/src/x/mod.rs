//! `golang.org/x/sync`: weighted semaphore, singleflight and errgroup.
//!
//! | Go | gosync | blocking | async |
//! |---|---|---|---|
//! | `semaphore.Weighted` | [`Semaphore`] | [`Semaphore::acquire`] | [`Semaphore::acquire_async`] |
//! | `singleflight.Group` | [`SingleFlight`] | [`SingleFlight::run`] | [`SingleFlight::run_async`] |
//! | `errgroup.Group` | [`ErrGroup`], [`ErrGroup::scope`] | [`ErrGroup::go`] | [`AsyncErrGroup`] |
//! | `context.Context` (cancellation only) | [`CancelToken`] | [`CancelToken::is_cancelled`] | [`CancelToken::cancelled`] |
//!
//! Everything here works with any async runtime: the async forms use only `std::task::Waker`,
//! and blocking threads and async tasks can share one primitive.

mod cancel;
mod errgroup;
mod semaphore;
mod singleflight;

pub use cancel::{CancelToken, Cancelled};
pub use errgroup::{AsyncErrGroup, AsyncWaitAll, ErrGroup, ScopedErrGroup};
pub use semaphore::{Acquire, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use singleflight::SingleFlight;
