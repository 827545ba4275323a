//! The guard types: each wraps one held key (see `queue::Held`).

/// Defines a guard type over a held key: fencing token, key, session, ownership compare,
/// loss signal, an async release method with a blocking twin, release on drop.
macro_rules! held_guard {
    (
        $(#[$meta:meta])*
        $name:ident, $release:ident, $blocking_release:ident, $alias:literal
    ) => {
        $(#[$meta])*
        pub struct $name {
            /// `None` once released.
            held: Option<crate::queue::Held>,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("key", &self.key())
                    .field("token", &self.token())
                    .finish()
            }
        }

        impl $name {
            #[allow(dead_code)]
            pub(crate) fn from_held(held: crate::queue::Held) -> Self {
                $name { held: Some(held) }
            }

            fn held(&self) -> &crate::queue::Held {
                self.held.as_ref().expect("held until consumed")
            }

            /// The fencing token of this hold (the key's create revision): it grows with
            /// every acquisition under the same name, in acquisition order.
            pub fn token(&self) -> crate::FencingToken {
                crate::FencingToken::new(self.held().rev as u64)
            }

            /// The key that represents this hold.
            pub fn key(&self) -> &str {
                &self.held().key
            }

            /// The session the hold belongs to.
            pub fn session(&self) -> &crate::Session {
                &self.held().session
            }

            /// The etcd comparison "this hold still exists" (Go: `IsOwner`): put it in the
            /// `when` of a transaction to make a write conditional on it.
            #[doc(alias = "IsOwner")]
            pub fn owner_compare(&self) -> etcd_client::Compare {
                let h = self.held();
                etcd_client::Compare::create_revision(
                    h.key.as_str(),
                    etcd_client::CompareOp::Equal,
                    h.rev,
                )
            }

            /// Resolves when the session ends (the hold may then belong to another process).
            pub fn lost(
                &self,
            ) -> impl std::future::Future<Output = crate::LostReason> + Send + 'static {
                self.held().session.lost()
            }

            /// Whether the session has ended or its lease may have expired (exact, see
            /// [`Session::is_lost`](crate::Session::is_lost)).
            pub fn is_lost(&self) -> bool {
                self.held().session.is_lost()
            }

            /// Releases the hold. Fails with [`Error::LockLost`](crate::Error::LockLost) if
            /// the lease ended while it was held (nothing of another holder is deleted then).
            #[doc(alias = $alias)]
            pub async fn $release(mut self) -> crate::Result<()> {
                let held = self.held.take().expect("held until consumed");
                crate::queue::release(&held).await
            }

            /// The blocking form of the release (see the crate docs on blocking forms).
            pub fn $blocking_release(self) -> crate::Result<()> {
                crate::queue::blocking(self.$release())
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                if let Some(held) = self.held.take() {
                    crate::queue::release_in_background(held);
                }
            }
        }
    };
}

pub(crate) use held_guard;
