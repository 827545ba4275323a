//! The one error type of the crate.

use std::fmt;

use std::time::Duration;
use tonic::Code;

/// What went wrong, and what to do about it.
///
/// Every variant's message says what happened and what the caller can do; none of the
/// operations of this crate hang on bad input or an unreachable cluster: they fail with one of
/// these instead.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting or argument is unusable (empty endpoint list, TTL of zero, empty or
    /// malformed name, a weight larger than a semaphore's capacity, ...). The message names it.
    InvalidArgument(String),
    /// No endpoint answered within the connect timeout.
    Unreachable {
        /// The endpoints that were tried.
        endpoints: Vec<String>,
        /// How long the connection was given.
        timeout: Duration,
        /// The last error seen, if any (a timeout leaves none).
        last_error: Option<String>,
    },
    /// The session's lease expired, was revoked, or the session was closed: nothing that
    /// belongs to it (locks, waiter keys, leadership) exists any more. Open a new session.
    SessionLost,
    /// `unlock` (or `resign`, `release`) found the key gone: the session's lease ended before
    /// the unlock, so the lock was released by the cluster, and another holder may already
    /// have it. Work done under the lock after that point was not protected.
    LockLost {
        /// The fencing token of the lost hold.
        token: u64,
    },
    /// A timed acquisition did not succeed within its timeout (its waiter key is removed).
    Timeout(Duration),
    /// The key space under this primitive's name holds keys that do not belong to it: another
    /// primitive's name is a prefix of this one (or this one's of another's), e.g. `locks/a`
    /// and `locks/a/b`. Use names of which none is a prefix of another followed by `/`.
    OverlappingName {
        /// This primitive's key prefix.
        prefix: String,
        /// The foreign key that was found under it.
        found: String,
    },
    /// `proclaim` or `resign` was called by a campaigner that is not the leader.
    NotLeader,
    /// An error from etcd or the transport that retrying did not cure.
    Etcd(etcd_client::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Unreachable {
                endpoints,
                timeout,
                last_error,
            } => {
                write!(
                    f,
                    "no etcd endpoint of {endpoints:?} answered within {timeout:?}"
                )?;
                if let Some(e) = last_error {
                    write!(f, " (last error: {e})")?;
                }
                write!(
                    f,
                    "; check that etcd runs there or raise the connect timeout"
                )
            }
            Error::SessionLost => write!(
                f,
                "the session's lease has expired or was revoked (or the session was closed); \
                 open a new session"
            ),
            Error::LockLost { token } => write!(
                f,
                "the lock (fencing token {token}) was already gone when it was released: the \
                 session's lease ended while it was held, so another holder may have had it"
            ),
            Error::Timeout(d) => write!(f, "not acquired within {d:?}"),
            Error::OverlappingName { prefix, found } => write!(
                f,
                "key {found:?} under prefix {prefix:?} belongs to another primitive: two \
                 names overlap (one is a prefix of the other followed by '/'); choose names \
                 of which none contains another"
            ),
            Error::NotLeader => write!(f, "this campaigner is not the leader"),
            Error::Etcd(e) => write!(f, "etcd: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Etcd(e) => Some(e),
            _ => None,
        }
    }
}

impl From<etcd_client::Error> for Error {
    fn from(e: etcd_client::Error) -> Self {
        if is_lease_not_found(&e) {
            return Error::SessionLost;
        }
        Error::Etcd(e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether etcd said the lease does not exist (expired or revoked).
pub(crate) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == Code::NotFound && s.message().contains("lease not found")
        }
        etcd_client::Error::LeaseKeepAliveError(m) => m.contains("lease not found"),
        _ => false,
    }
}

/// Whether an error may pass by itself (no leader during an election, a member restarting,
/// a connection reset, a request timeout): such errors are retried while the session lives.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::Etcd(etcd_client::Error::GRpcStatus(s)) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Aborted
                | Code::Internal
                | Code::Cancelled
        ),
        Error::Etcd(etcd_client::Error::TransportError(_))
        | Error::Etcd(etcd_client::Error::IoError(_))
        | Error::Etcd(etcd_client::Error::WatchError(_)) => true,
        _ => false,
    }
}
