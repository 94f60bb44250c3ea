//! # The Boutique runtime
//!
//! Typed actor modules on [actix] that run in one process or split across
//! nodes by configuration alone.
//!
//! A *module* is an actix actor behind a typed message API. Its public face is
//! a [`Service`]: a name plus the messages it handles, declared once with the
//! [`service!`] macro. Every other module reaches it through a
//! [`ServiceRef<S>`](ServiceRef), which is either
//!
//! - **local**: an actix mailbox, no serialization; per call, only what
//!   actix does plus a call id, a trace id, a deadline and a count in the
//!   metrics; or
//! - **remote**: the message is encoded (serde + bincode, behind
//!   [`codec`]) and sent over one multiplexed, authenticated TCP connection
//!   to the node that hosts the service.
//!
//! Which one you get is decided when a [`Node`] starts, from the
//! deployment config ([`config`]). Module code never changes.
//!
//! The pieces, smallest first:
//!
//! | file | concept |
//! |---|---|
//! | [`service`](mod@service) | `Service`, `Request`, the `service!` declaration |
//! | [`endpoint`] | `Endpoint<M>`: one message's way into a local actor |
//! | [`call`] | `Call<M>`: a message plus its call id and deadline |
//! | [`deadline`] | deadlines on a coarse clock, enforced without a timer per call |
//! | [`error`] | `CallError`: what can go wrong with a call, typed |
//! | [`codec`] | the one place that knows the wire encoding |
//! | [`service_ref`] | `ServiceRef<S>`: the only way to reach another module |
//! | [`module`] | `Module`: how a module starts, its config and dependencies |
//! | [`catalogue`] | the list of modules a binary knows |
//! | [`fingerprint`] | a structural hash of the whole API, checked at handshake |
//! | [`config`] | the deployment config and its validation into a [`Plan`] |
//! | [`transport`] | frames, handshake, connections, peers |
//! | [`node`] | start the modules placed here and connect to the rest |

#![warn(missing_docs)]

pub mod call;
mod call_metrics;
pub mod catalogue;
pub mod codec;
pub mod config;
pub mod deadline;
mod decode_budget;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod fingerprint;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod health;
pub mod http_metrics;
mod id_map;
pub mod json;
mod log_limit;
mod metrics;
pub mod module;
pub mod node;
pub mod panics;
pub mod pulse;
pub mod registry;
pub mod service;
pub mod service_ref;
pub mod shutdown_hold;
pub mod spans;
pub mod stats;
mod supervise;
pub mod text;
pub mod transport;
pub mod wall_clock;

pub use call::{
    Call, CallId, CallMeta, Origin, Scoped, TraceId, current_trace, detached, new_trace,
};
pub use catalogue::Catalogue;
pub use config::{DeploymentConfig, Plan};
pub use deadline::Deadline;
pub use endpoint::Endpoint;
pub use error::{CallError, CallErrorKind, Rejection};
pub use module::{
    ConfigRefused, Module, NoConfig, StartContext, StartError, Storage, data_file, start_alone,
};
pub use node::{Node, NodeBuilder, NodeError};
pub use registry::ServiceRegistry;
pub use service::{Empty, MethodId, Outcome, Request, Service};
pub use service_ref::{CallFuture, ServiceRef};
pub use shutdown_hold::{ShutdownHold, ShutdownHolder};
pub use stats::NodeStats;

/// Re-exports used by the code that [`service!`] generates. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use actix;
    pub use serde;
}
