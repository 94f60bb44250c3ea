//! What can go wrong with a call, as opposed to what the called module says.
//!
//! A call returns `Result<Result<Reply, DomainError>, CallError>`. The inner
//! result is the module's answer; the outer [`CallError`] says the answer never
//! came, and tells the caller what that means for retrying:
//!
//! | kind | did it run? | safe to retry? |
//! |---|---|---|
//! | [`NotDelivered`](CallError::NotDelivered) | no | yes |
//! | [`OutcomeUnknown`](CallError::OutcomeUnknown) | maybe | only if idempotent |
//! | [`Rejected`](CallError::Rejected) | no: the peer refused it | no, it will be refused again |
//! | [`TimedOut`](CallError::TimedOut) | maybe | only if idempotent |
//! | [`Overloaded`](CallError::Overloaded) | no: there was no room for it | yes, later |
//!
//! Both the error and its reasons are serde types, so a module can carry a
//! dependency's `CallError` inside its own domain error, across the network.

use serde::{Deserialize, Serialize};

/// Why a call produced no answer from the called module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CallError {
    /// The message never reached the service: it did not run. Safe to retry.
    #[error("call to {service} not delivered: {reason} (it did not run; safe to retry)")]
    NotDelivered {
        /// The service called.
        service: String,
        /// Why, for people.
        reason: String,
    },
    /// The message was sent but no answer came back (the connection was lost
    /// or the actor stopped): it may or may not have run.
    #[error("call to {service} has an unknown outcome: {reason} (it may have run)")]
    OutcomeUnknown {
        /// The service called.
        service: String,
        /// Why, for people.
        reason: String,
    },
    /// The receiving node refused the call without running it.
    #[error("call to {service} rejected by the peer: {reason}")]
    Rejected {
        /// The service called.
        service: String,
        /// What the peer refused, typed.
        reason: Rejection,
    },
    /// There was no room for the call before its deadline (the peer's
    /// limit of calls in flight was reached), or the receiving node had no
    /// room for it: it did not run. Safe to retry, later.
    #[error("call to {service} refused, overloaded: {reason} (it did not run; retry later)")]
    Overloaded {
        /// The service called.
        service: String,
        /// Why, for people.
        reason: String,
    },
    /// The deadline passed before an answer came: it may or may not have run.
    #[error("call to {service} timed out after {after_ms} ms (it may have run)")]
    TimedOut {
        /// The service called.
        service: String,
        /// The time the caller waited, in milliseconds.
        after_ms: u64,
    },
}

/// The kind of a [`CallError`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallErrorKind {
    /// See [`CallError::NotDelivered`].
    NotDelivered,
    /// See [`CallError::OutcomeUnknown`].
    OutcomeUnknown,
    /// See [`CallError::Rejected`].
    Rejected,
    /// See [`CallError::TimedOut`].
    TimedOut,
    /// See [`CallError::Overloaded`].
    Overloaded,
}

impl CallError {
    /// The kind of error.
    pub fn kind(&self) -> CallErrorKind {
        match self {
            CallError::NotDelivered { .. } => CallErrorKind::NotDelivered,
            CallError::OutcomeUnknown { .. } => CallErrorKind::OutcomeUnknown,
            CallError::Rejected { .. } => CallErrorKind::Rejected,
            CallError::TimedOut { .. } => CallErrorKind::TimedOut,
            CallError::Overloaded { .. } => CallErrorKind::Overloaded,
        }
    }

    /// The service that was called.
    pub fn service(&self) -> &str {
        match self {
            CallError::NotDelivered { service, .. }
            | CallError::OutcomeUnknown { service, .. }
            | CallError::Rejected { service, .. }
            | CallError::TimedOut { service, .. }
            | CallError::Overloaded { service, .. } => service,
        }
    }

    /// True when the call certainly did not run: not delivered, refused
    /// by the peer, or no room for it.
    pub fn did_not_run(&self) -> bool {
        self.is_safe_to_retry() || matches!(self, CallError::Rejected { .. })
    }

    /// True when the call certainly did not run and sending it again may
    /// work, so any message may be sent again (a call the peer rejected
    /// did not run either, but would be rejected again).
    pub fn is_safe_to_retry(&self) -> bool {
        matches!(
            self,
            CallError::NotDelivered { .. } | CallError::Overloaded { .. }
        )
    }

    pub(crate) fn not_delivered(service: &str, reason: impl Into<String>) -> Self {
        CallError::NotDelivered {
            service: service.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn outcome_unknown(service: &str, reason: impl Into<String>) -> Self {
        CallError::OutcomeUnknown {
            service: service.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn overloaded(service: &str, reason: impl Into<String>) -> Self {
        CallError::Overloaded {
            service: service.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn rejected(service: &str, reason: Rejection) -> Self {
        CallError::Rejected {
            service: service.to_owned(),
            reason,
        }
    }

    pub(crate) fn timed_out(service: &str, after: std::time::Duration) -> Self {
        CallError::TimedOut {
            service: service.to_owned(),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Why a node refused to run a call it received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// No service of this build has a message with this id.
    #[error("unknown method {method:#018x}")]
    UnknownMethod {
        /// The method id that was asked for.
        method: u64,
    },
    /// The service exists but does not run on the node that received the call.
    #[error("service {service} does not run on node {node}")]
    NotHosted {
        /// The service asked for.
        service: String,
        /// The node that received the call.
        node: String,
    },
    /// The calling module may not call this service (`[access]` in the
    /// config of the node that received the call).
    #[error("{caller} may not call {service} (see [access] in the config)")]
    NotAllowed {
        /// The calling module, or "a client".
        caller: String,
        /// The service.
        service: String,
    },
    /// The message could not be decoded as the type the method expects.
    #[error("message {message} could not be decoded: {detail}")]
    Undecodable {
        /// The message name.
        message: String,
        /// What the decoder said.
        detail: String,
    },
    /// The peer refused the call, and why could not be read (made by the
    /// caller from a rejection whose reason does not decode; never sent).
    #[error("refused, for a reason that could not be read: {detail}")]
    Unreadable {
        /// What the decoder said.
        detail: String,
    },
}
