//! The email actor: renders, sends through the sink, remembers.

use std::collections::VecDeque;
use std::path::PathBuf;

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture};
use runtime::{Call, ConfigRefused, Empty, Module, StartContext, StartError};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    Email, EmailError, ListSentEmails, ListSentEmailsResponse, SendOrderConfirmation, SentEmail,
};
use crate::render;
use crate::sink::{DirectorySink, LogSink, Sink};

/// `[modules.email]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `"log"` or `"directory"`.
    pub sink: String,
    /// For the `directory` sink: where to write (default: `outbox` in the
    /// data directory).
    pub directory: Option<PathBuf>,
    /// How many recent emails to keep in memory (0: none, and
    /// `ListSentEmails` lists nothing).
    pub keep: usize,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            sink: "log".to_owned(),
            directory: None,
            keep: 1000,
        }
    }
}

/// The email module.
pub struct EmailModule;

impl Module for EmailModule {
    type Service = Email;
    type Config = EmailConfig;

    fn check(config: &EmailConfig) -> Result<(), ConfigRefused> {
        // Making a sink does no I/O: its directory is made at the first send.
        sink(config, std::path::Path::new(""))
            .map(drop)
            .map_err(ConfigRefused)
    }

    async fn start(config: EmailConfig, ctx: StartContext) -> Result<Email, StartError> {
        let sink = sink(&config, ctx.data_dir()).map_err(StartError::Config)?;
        let actor = EmailActor {
            sink,
            sent: VecDeque::new(),
            keep: config.keep,
            kept_bytes: 0,
        };
        Ok(Email::start(actor))
    }
}

/// The sink `config` names; a directory one defaults to `outbox` in the
/// node's data directory.
fn sink(config: &EmailConfig, data_dir: &std::path::Path) -> Result<Box<dyn Sink>, String> {
    match config.sink.as_str() {
        // A directory that would be passed over: the operator meant the
        // emails to go there.
        "log" if config.directory.is_some() => Err(
            "directory is where the \"directory\" sink writes, and sink = \"log\": \
             set sink = \"directory\" too, or leave directory out"
                .to_owned(),
        ),
        "log" => Ok(Box::new(LogSink)),
        "directory" => Ok(Box::new(DirectorySink {
            directory: config
                .directory
                .clone()
                .unwrap_or_else(|| data_dir.join("outbox")),
            written: 0,
        })),
        other => Err(format!(
            "sink = \"{other}\" is not a sink; use \"log\" or \"directory\""
        )),
    }
}

/// The first text of `order` that holds a control character (a line
/// break, an escape), named as the email would show it.
fn field_with_control_characters(order: &orders::api::Order) -> Option<&'static str> {
    let address = &order.shipping_address;
    let texts = [
        ("order id", order.order_id.as_str()),
        ("tracking id", &order.shipping_tracking_id),
        ("street address", &address.street_address),
        ("city", &address.city),
        ("state", &address.state),
        ("country", &address.country),
        ("currency", &order.total.currency_code),
        ("shipping currency", &order.shipping_cost.currency_code),
    ];
    let lines = order.items.iter().flat_map(|line| {
        [
            ("product id", line.item.product_id.as_str()),
            ("product name", &line.name),
            ("currency", &line.cost.currency_code),
        ]
    });
    texts
        .into_iter()
        .chain(lines)
        .find(|(_, text)| text.chars().any(char::is_control))
        .map(|(name, _)| name)
}

struct EmailActor {
    sink: Box<dyn Sink>,
    sent: VecDeque<SentEmail>,
    keep: usize,
    /// The bytes of the emails in `sent` ([`size`]).
    kept_bytes: usize,
}

/// The most bytes of emails kept, whatever `keep` says: a thousand emails
/// of long orders (their text escaped into HTML) held gigabytes. (Less
/// under test, to be reached.)
pub(crate) const MAX_KEPT_BYTES: usize = if cfg!(test) {
    64 * 1024
} else {
    64 * 1024 * 1024
};

/// The most bytes of emails one `ListSentEmails` answer holds, newest
/// first: well within a frame between nodes (4 MiB by default), which a
/// hundred long ones passed, and the whole answer failed.
pub(crate) const MAX_LISTED_BYTES: usize = if cfg!(test) {
    16 * 1024
} else {
    2 * 1024 * 1024
};

/// An email's size, as [`MAX_KEPT_BYTES`] counts it.
pub(crate) fn size(email: &SentEmail) -> usize {
    email.to.len() + email.subject.len() + email.text.len() + email.html.len()
}

impl Actor for EmailActor {
    type Context = Context<Self>;
}

impl Handler<Call<SendOrderConfirmation>> for EmailActor {
    type Result = ResponseActFuture<Self, Result<Empty, EmailError>>;

    fn handle(&mut self, call: Call<SendOrderConfirmation>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let entered = span.clone().entered();
        let SendOrderConfirmation { email, order } = call.into_message();
        let refused = |error| Box::pin(actix::fut::ready(Err(error)));
        if !crate::api::is_address(&email) {
            return refused(EmailError::InvalidAddress(email));
        }
        // The order id goes into the Subject header, where a line break
        // would start headers of the caller's choosing; every text goes
        // into the body, which the log sink writes as one log line.
        if let Some(field) = field_with_control_characters(&order) {
            return refused(EmailError::Render(format!(
                "the order's {field} holds control characters"
            )));
        }
        let rendered = match render::confirmation(&order) {
            Ok(rendered) => rendered,
            Err(e) => return refused(EmailError::Render(e.to_string())),
        };
        let sent = SentEmail {
            to: email,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            sent_at: runtime::wall_clock::unix_ms(),
        };
        let delivery = self.sink.send(&sent);
        drop(entered);
        // Remembered once delivered, in the order deliveries end.
        Box::pin(actix::fut::wrap_future(delivery.instrument(span)).map(
            move |delivered, actor: &mut Self, _| {
                delivered.map_err(EmailError::SinkFailed)?;
                if actor.keep > 0 {
                    actor.kept_bytes += size(&sent);
                    actor.sent.push_front(sent);
                    // The newest stays, whatever its size.
                    while actor.sent.len() > actor.keep
                        || (actor.kept_bytes > MAX_KEPT_BYTES && actor.sent.len() > 1)
                    {
                        if let Some(oldest) = actor.sent.pop_back() {
                            actor.kept_bytes -= size(&oldest);
                        }
                    }
                }
                Ok(Empty {})
            },
        ))
    }
}

impl Handler<Call<ListSentEmails>> for EmailActor {
    type Result = Result<ListSentEmailsResponse, EmailError>;

    fn handle(&mut self, call: Call<ListSentEmails>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        let to = &call.to;
        let limit = call.limit.unwrap_or(crate::api::DEFAULT_LISTED);
        let mut budget = MAX_LISTED_BYTES;
        let emails = self
            .sent
            .iter()
            .filter(|email| to.is_empty() || email.to.eq_ignore_ascii_case(to))
            // One too large for what is left is passed over, not the end
            // of the list (the newest, kept whatever its size, would have
            // hidden every other).
            .filter(|email| {
                let bytes = size(email);
                let fits = bytes <= budget;
                if fits {
                    budget -= bytes;
                }
                fits
            })
            .take(limit)
            .cloned()
            .collect();
        Ok(ListSentEmailsResponse { emails })
    }
}
