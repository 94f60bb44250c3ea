//! Services and their messages: the typed API of a module.
//!
//! A module's public face is one [`Service`] and the [`Request`]s it handles,
//! declared together with [`service!`](crate::service!). The declaration is
//! the single source of truth: it ties each message to its reply type and to
//! the service's domain error, names it on the wire, and produces the struct
//! that holds the service's local endpoints (one [`Endpoint`](crate::Endpoint)
//! per message). A message of one service cannot be sent to another: the bound
//! `M: Request<Service = S>` on [`ServiceRef::call`](crate::ServiceRef::call)
//! is checked at compile time.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dispatch::{Dispatch, Dispatcher};
use crate::fingerprint::{SchemaError, SchemaTracer};
use crate::json::{self, JsonCall};
use crate::supervise::Slot;

/// A service: a name and the messages it handles.
///
/// A value of the service type holds the local endpoints of an actor that
/// implements it; the runtime keeps it inside a [`ServiceRef`](crate::ServiceRef) when the
/// service runs in this process. Implemented by [`service!`](crate::service!).
pub trait Service: Clone + Send + Sync + Sized + 'static {
    /// The service's name: the module's name, used in config and on the wire.
    const NAME: &'static str;
    /// The service's domain error, returned inside a reply.
    type Error: Serialize
        + DeserializeOwned
        + std::error::Error
        + fmt::Debug
        + Clone
        + Send
        + 'static;
    /// The messages this service handles, in declaration order.
    fn messages() -> Vec<MessageInfo<Self>>;
    /// True while the actor behind these endpoints is alive.
    fn is_running(&self) -> bool;
}

/// A message of one service.
///
/// Implemented by [`service!`](crate::service!); `Reply` is what a successful
/// call returns, and a failed one returns the service's `Error`.
pub trait Request: Serialize + DeserializeOwned + Send + 'static {
    /// The service that handles this message.
    type Service: Service;
    /// The successful reply.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// The message's name: its type's name as declared (`GetProduct`),
    /// which is also its name on the wire, in `boutique call` and in the
    /// JSON API's errors.
    const NAME: &'static str;
    /// The message's id on the wire.
    const METHOD: MethodId;
    /// Its position among the service's messages (as
    /// [`Service::messages`] lists them), for tables indexed by message.
    const INDEX: usize;
    /// The actor endpoint for this message in the service's local endpoints.
    fn endpoint(service: &Self::Service) -> &crate::Endpoint<Self>;
    /// True if running the message twice does what running it once does
    /// (declared `[idempotent]`): only such calls fail over to another
    /// replica when the outcome of the first attempt is unknown (any call
    /// may, under least-loaded routing, when the first surely did not run
    /// it).
    const IDEMPOTENT: bool = false;
    /// True if the message is declared with a routing key
    /// (`[key = field]`).
    const KEYED: bool = false;
    /// The routing key of this call (declared `[key = field]`), for
    /// replicas routed by key.
    fn routing_key(&self) -> Option<u64> {
        None
    }
}

/// A routing key: a stable hash of a message field (FNV-1a of its `Hash`
/// bytes, then MurmurHash3's 64-bit finaliser), the same in every process.
///
/// The finaliser spreads every input bit over the whole key. FNV alone
/// barely stirs its last bytes, and replicas rank keys by the hash of the
/// key and their name, whose last byte is where names like `store-1` and
/// `store-2` differ: without it, of four such replicas one took half the
/// keys and two an eighth each.
pub fn routing_key<T: std::hash::Hash + ?Sized>(field: &T) -> u64 {
    struct Fnv(u64);
    impl std::hash::Hasher for Fnv {
        fn finish(&self) -> u64 {
            let mut h = self.0;
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^ (h >> 33)
        }
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 ^= u64::from(*byte);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    field.hash(&mut hasher);
    std::hash::Hasher::finish(&hasher)
}

/// A reply with no fields (`{}` in JSON), like protobuf's `Empty`. A
/// message with no fields is a struct of the module's own
/// (`pub struct ListProducts {}`, as catalog's): a message belongs to one
/// service, and `Request` is implemented for it by that service's
/// declaration.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The result of a call as the handler produced it: the reply or the
/// service's domain error. A handler's `type Result` says it once, as the
/// declaration has it: `type Result = Outcome<GetQuote>;` (or
/// `ResponseFuture<Outcome<GetQuote>>`), not the two types again.
pub type Outcome<M> = Result<<M as Request>::Reply, <<M as Request>::Service as Service>::Error>;

/// The position of `method` in `methods` (for [`Request::INDEX`]; the
/// declaration lists each message once, so it is found).
#[doc(hidden)]
pub const fn index_of(method: MethodId, methods: &[MethodId]) -> usize {
    let mut i = 0;
    while i < methods.len() {
        if methods[i].0 == method.0 {
            return i;
        }
        i += 1;
    }
    panic!("a message missing from its own service's declaration")
}

/// True for a name a service may have: a lower-case letter, then
/// lower-case letters, digits and single `_`s, not ending with one. The
/// name is a config key (`[modules.<name>]`, `--set modules.<name>.x=`)
/// and part of an environment variable's (`BOUTIQUE__MODULES__<NAME>__X`,
/// read lower-cased, split at `__`): anything else could not be
/// configured. `service!` checks it at compile time.
pub const fn is_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() || bytes[bytes.len() - 1] == b'_' {
        return false;
    }
    let mut i = 1;
    while i < bytes.len() {
        let byte = bytes[i];
        let allowed = byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_';
        if !allowed || (byte == b'_' && bytes[i - 1] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Identifies a message on the wire: a 64-bit FNV-1a hash of
/// `"<service>.<message>"`, computed at compile time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodId(pub u64);

impl MethodId {
    /// The id of `message` of `service`.
    pub const fn of(service: &str, message: &str) -> MethodId {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let parts = [service.as_bytes(), b".", message.as_bytes()];
        let mut p = 0;
        while p < parts.len() {
            let bytes = parts[p];
            let mut i = 0;
            while i < bytes.len() {
                hash ^= bytes[i] as u64;
                hash = hash.wrapping_mul(PRIME);
                i += 1;
            }
            p += 1;
        }
        MethodId(hash)
    }
}

impl fmt::Debug for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MethodId({:#018x})", self.0)
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// What the runtime needs to know about one message of service `S`, with the
/// message's type erased: its name and id, and the monomorphized functions
/// that dispatch it, trace its schema and call it from JSON.
pub struct MessageInfo<S: Service> {
    /// The message's name.
    pub name: &'static str,
    /// Its id on the wire.
    pub method: MethodId,
    /// Whether it is declared with a routing key (`[key = field]`).
    pub keyed: bool,
    pub(crate) dispatcher: fn(&Arc<Slot<S>>) -> Arc<dyn Dispatch>,
    pub(crate) trace: fn(&mut SchemaTracer) -> Result<(), SchemaError>,
    pub(crate) json: JsonCall<S>,
    /// Whether JSON is this message (without calling anything).
    pub(crate) check_json: fn(&serde_json::Value) -> Result<(), json::JsonCallError>,
    /// Decodes bytes as the message and as its outcome; whether each
    /// worked (for fuzzing).
    pub(crate) decode: fn(&[u8]) -> (bool, bool),
}

impl<S: Service> MessageInfo<S> {
    /// The description of message `M`.
    pub fn of<M: Request<Service = S>>() -> Self {
        MessageInfo {
            name: M::NAME,
            method: M::METHOD,
            keyed: M::KEYED,
            dispatcher: |slot| Arc::new(Dispatcher::<M>::new(Arc::clone(slot))),
            trace: |tracer| {
                tracer.trace::<M>()?;
                tracer.trace::<M::Reply>()
            },
            json: json::call::<M>,
            check_json: json::check::<M>,
            decode: |bytes| {
                (
                    crate::codec::decode::<M>(bytes).is_ok(),
                    crate::codec::decode::<Outcome<M>>(bytes).is_ok(),
                )
            },
        }
    }
}

impl<S: Service> fmt::Debug for MessageInfo<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInfo")
            .field("service", &S::NAME)
            .field("name", &self.name)
            .field("method", &self.method)
            .finish()
    }
}

/// Declares a service: its name, its domain error, and each message with its
/// reply type.
///
/// ```ignore
/// runtime::service! {
///     /// Product listings.
///     pub Catalog = "catalog", error CatalogError {
///         ListProducts -> ListProductsResponse,
///         GetProduct -> Product,
///     }
/// }
/// ```
///
/// A message may carry flags in brackets after its reply type:
/// `GetProduct -> Product [idempotent]` (safe to run twice: calls fail over
/// between replicas), `AddItem -> Empty [key = user_id]` (replicas routed
/// by key send all calls with the same `user_id` to one replica), or both,
/// `[idempotent, key = id]`.
///
/// This defines `pub struct Catalog`, the service's local endpoints, which
/// `Catalog::start(actor)` makes by starting the actor on the current
/// arbiter; the actor must implement `Handler<Call<M>>` for every message
/// `M`, or that line does not compile. Each message type must be
/// `Serialize + Deserialize`; each gets a [`Request`] impl tying it to its
/// reply and to the service.
///
/// What the declaration fixes for every node and client: the service's
/// name (the string, `"catalog"`) is the module's name in the config
/// (`[modules.catalog]`, `nodes.*.modules`, `[access]`) and in `boutique
/// call`; each message's type name is its name on the wire. Both go into
/// every method id and into the API fingerprint, with the shape of every
/// message, reply and error: renaming either, or changing a field, makes a
/// new API, and nodes of the old one refuse nodes of the new (deploy the
/// same binary everywhere). Messages take `#[serde(deny_unknown_fields)]`
/// by convention, so a client's misspelt field is refused, not dropped;
/// `#[serde(untagged)]`, `flatten` and `skip_serializing_if` do not go
/// through the codec (the fingerprint refuses the first two; the third
/// encodes but fails to decode, which the serialized test runner catches).
///
/// A message of one service cannot be sent to another. With two services,
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
/// # #[error("never")]
/// # pub struct Never;
/// #[derive(Serialize, Deserialize)]
/// pub struct Ping {}
/// #[derive(Serialize, Deserialize)]
/// pub struct Pong {}
/// runtime::service! {
///     /// Service A.
///     pub A = "a", error Never { Ping -> () }
/// }
/// runtime::service! {
///     /// Service B.
///     pub B = "b", error Never { Pong -> () }
/// }
/// fn send(a: runtime::ServiceRef<A>) {
///     let _ = a.call(Ping {});
/// }
/// ```
///
/// sending B's message to A does not compile:
///
/// ```compile_fail,E0271
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
/// # #[error("never")]
/// # pub struct Never;
/// # #[derive(Serialize, Deserialize)]
/// # pub struct Ping {}
/// # #[derive(Serialize, Deserialize)]
/// # pub struct Pong {}
/// # runtime::service! {
/// #     /// Service A.
/// #     pub A = "a", error Never { Ping -> () }
/// # }
/// # runtime::service! {
/// #     /// Service B.
/// #     pub B = "b", error Never { Pong -> () }
/// # }
/// fn send(a: runtime::ServiceRef<A>) {
///     let _ = a.call(Pong {});
/// }
/// ```
///
/// A name no config could give settings to ([`is_service_name`]) does not
/// compile either:
///
/// ```compile_fail,E0080
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
/// # #[error("never")]
/// # pub struct Never;
/// # #[derive(Serialize, Deserialize)]
/// # pub struct Ping {}
/// runtime::service! {
///     /// Named with a capital and a dash.
///     pub Gift = "Gift-Cards", error Never { Ping -> () }
/// }
/// ```
#[macro_export]
macro_rules! service {
    (@idempotent) => { false };
    (@idempotent idempotent $($rest:tt)*) => { true };
    (@idempotent key = $field:ident $(, $($rest:tt)*)?) => {
        $crate::service!(@idempotent $($($rest)*)?)
    };
    (@keyed) => { false };
    (@keyed key = $field:ident $($rest:tt)*) => { true };
    (@keyed idempotent $(, $($rest:tt)*)?) => {
        $crate::service!(@keyed $($($rest)*)?)
    };
    (@key $this:ident) => { ::std::option::Option::None };
    (@key $this:ident key = $field:ident $($rest:tt)*) => {
        ::std::option::Option::Some($crate::service::routing_key(&$this.$field))
    };
    (@key $this:ident idempotent $(, $($rest:tt)*)?) => {
        $crate::service!(@key $this $($($rest)*)?)
    };
    (
        $(#[$meta:meta])*
        $vis:vis $service:ident = $name:literal, error $error:ty {
            $($message:ident -> $reply:ty $([$($flag:tt)*])?),+ $(,)?
        }
    ) => {
        const _: () = ::std::assert!(
            $crate::service::is_service_name($name),
            "a service's name is a lower-case letter, then lower-case letters, digits and \
             single '_'s (it is a config key and part of environment variables' names)"
        );

        $(#[$meta])*
        #[derive(Clone)]
        #[allow(non_snake_case)]
        $vis struct $service {
            $($message: $crate::Endpoint<$message>,)+
        }

        impl $service {
            #[doc(hidden)]
            /// The method ids of the messages, in declaration order.
            pub const __METHODS: &'static [$crate::MethodId] =
                &[$($crate::MethodId::of($name, ::std::stringify!($message)),)+];

            /// Starts `actor` on the current arbiter and returns its endpoints:
            /// how a module's `start` hands its actor to the runtime.
            pub fn start<__Actor>(actor: __Actor) -> Self
            where
                __Actor: $crate::__private::actix::Actor<
                    Context = $crate::__private::actix::Context<__Actor>,
                >,
                $(
                    __Actor: $crate::__private::actix::Handler<$crate::Call<$message>>,
                )+
            {
                Self::create(|_| actor)
            }

            /// Starts the actor `make` returns, given the actor's context
            /// first (as actix's `Actor::create`), and returns its endpoints.
            pub fn create<__Actor>(
                make: impl FnOnce(&mut $crate::__private::actix::Context<__Actor>) -> __Actor,
            ) -> Self
            where
                __Actor: $crate::__private::actix::Actor<
                    Context = $crate::__private::actix::Context<__Actor>,
                >,
                $(
                    __Actor: $crate::__private::actix::Handler<$crate::Call<$message>>,
                )+
            {
                let sender = $crate::endpoint::start_actor(make);
                $service {
                    $($message: $crate::Endpoint::of(&sender),)+
                }
            }
        }

        impl ::std::fmt::Debug for $service {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}(local endpoints)", $name)
            }
        }

        impl $crate::Service for $service {
            const NAME: &'static str = $name;
            type Error = $error;
            fn messages() -> ::std::vec::Vec<$crate::service::MessageInfo<Self>> {
                ::std::vec![$($crate::service::MessageInfo::of::<$message>(),)+]
            }
            fn is_running(&self) -> bool {
                true $(&& self.$message.connected())+
            }
        }

        $(
            impl $crate::Request for $message {
                type Service = $service;
                type Reply = $reply;
                const NAME: &'static str = ::std::stringify!($message);
                const METHOD: $crate::MethodId =
                    $crate::MethodId::of($name, ::std::stringify!($message));
                const INDEX: usize = $crate::service::index_of(
                    <Self as $crate::Request>::METHOD,
                    $service::__METHODS,
                );
                fn endpoint(
                    service: &$service,
                ) -> &$crate::Endpoint<Self> {
                    &service.$message
                }
                const IDEMPOTENT: bool = $crate::service!(@idempotent $($($flag)*)?);
                const KEYED: bool = $crate::service!(@keyed $($($flag)*)?);
                fn routing_key(&self) -> ::std::option::Option<u64> {
                    $crate::service!(@key self $($($flag)*)?)
                }
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::{MethodId, is_service_name};

    #[test]
    fn service_names_are_what_a_config_key_and_a_variable_can_say() {
        for good in ["cart", "gift_cards", "a", "v2", "a_b_c"] {
            assert!(is_service_name(good), "{good}");
        }
        for bad in [
            "",
            "Cart",
            "gift-cards",
            "gift.cards",
            "2fa",
            "_a",
            "a_",
            "a__b",
            "é",
        ] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn method_ids_depend_on_service_and_message() {
        let a = MethodId::of("catalog", "GetProduct");
        assert_eq!(a, MethodId::of("catalog", "GetProduct"));
        assert_ne!(a, MethodId::of("cart", "GetProduct"));
        assert_ne!(a, MethodId::of("catalog", "ListProducts"));
        // The separator keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(MethodId::of("ab", "c"), MethodId::of("a", "bc"));
    }
}
