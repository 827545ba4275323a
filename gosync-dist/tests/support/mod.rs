//! Shared test support.
pub mod etcd;
