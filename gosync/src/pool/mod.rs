//! Object and buffer pools: Go's `sync.Pool` and the buffer pools built on its lessons.
