//! `golang.org/x/sync`: weighted semaphore, singleflight and errgroup.
