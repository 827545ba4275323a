//! Go's `sync` package: locks, WaitGroup, Cond and the Once family.
//!
//! Everything here is re-exported at the crate root (`gosync::Mutex`, ...).

// -- Mutex family: Mutex, ReentrantMutex, TokenMutex --------------------------------------

// -- RwMutex and Cond -------------------------------------------------------------------

// -- WaitGroup and the Once family --------------------------------------------------------

// -- end of sync ------------------------------------------------------------------------
