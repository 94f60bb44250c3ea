//! The frontend module: binds the web server when the module starts, stops
//! it when the node stops, and answers where it listens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::{Actor, Context, Handler};
use ads::api::Ads;
use auth::api::Auth;
use cart::api::CartService;
use catalog::api::Catalog;
use checkout::api::Checkout;
use currency::api::Currency;
use orders::api::Orders;
use recommendation::api::Recommendation;
use runtime::{Call, ConfigRefused, Module, Service, StartContext, StartError};
use serde::Deserialize;
use shipping::api::Shipping;

use crate::api::{Frontend, FrontendError, FrontendStatus, GetStatus};
use crate::server;
use crate::shop::Shop;

/// How long a checkout may take, all its steps included.
const CHECKOUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// `[modules.frontend]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendConfig {
    /// Where the shop's web server listens. Port 0 picks a free port; the
    /// node prints the address it got.
    pub listen: String,
    /// Threads serving HTTP requests.
    pub workers: usize,
    /// Mark every cookie `Secure` (sent back over HTTPS only) and name it
    /// `__Host-` (settable by this host only, over HTTPS; see
    /// `https_cookies`): on when the shop is served to browsers over HTTPS
    /// (behind a TLS proxy); off by default, since the shop itself speaks
    /// plain HTTP.
    pub secure_cookies: bool,
    /// The longest a request may take, from its head read to its answer,
    /// in milliseconds (default a minute; a checkout takes 15 s at most):
    /// past it, the client is answered 408 and its connection closed. The
    /// server's own timeout covers the head only, and a client sending its
    /// body a byte at a time would hold a connection and a handler for as
    /// long as it liked.
    pub request_timeout_ms: u64,
    /// Show visitors what exactly failed when a module is down (the call
    /// error, with node names, addresses and database messages) in a
    /// folded "What failed" on the error page and `detail` in the API's
    /// errors. Off by default: those are the operator's to read, in the
    /// log line every failure writes (with its trace id, which the
    /// response's `X-Trace-Id` gives the visitor to quote).
    pub show_error_details: bool,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            listen: "127.0.0.1:8080".to_owned(),
            workers: 2,
            secure_cookies: false,
            request_timeout_ms: 60_000,
            show_error_details: false,
        }
    }
}

/// The frontend module. Depends on every service a page shows.
pub struct FrontendModule;

/// Where the shop is served: `listen`, an IP address and a port (not a
/// host name: the shop binds it, and `plan` checks it against every other
/// listener).
fn listen_address(config: &FrontendConfig) -> Result<SocketAddr, String> {
    config.listen.parse().map_err(|_| {
        format!(
            "listen = {:?} is not an address like 127.0.0.1:8080",
            config.listen
        )
    })
}

impl Module for FrontendModule {
    type Service = Frontend;
    type Config = FrontendConfig;

    fn listen_addresses(config: &FrontendConfig) -> Vec<SocketAddr> {
        listen_address(config).into_iter().collect()
    }

    fn check(config: &FrontendConfig) -> Result<(), ConfigRefused> {
        listen_address(config)?;
        if config.workers == 0 || config.workers > 256 {
            return Err("workers must be 1 to 256".into());
        }
        if !(1..=3_600_000).contains(&config.request_timeout_ms) {
            return Err("request_timeout_ms must be 1 to 3600000 (an hour)".into());
        }
        Ok(())
    }

    fn dependencies() -> Vec<&'static str> {
        vec![
            Catalog::NAME,
            Currency::NAME,
            CartService::NAME,
            Recommendation::NAME,
            Shipping::NAME,
            Checkout::NAME,
            Ads::NAME,
            Auth::NAME,
            Orders::NAME,
        ]
    }

    async fn start(config: FrontendConfig, ctx: StartContext) -> Result<Frontend, StartError> {
        // Checked already (`check`).
        let addr = listen_address(&config).map_err(StartError::Config)?;
        let shop = Shop {
            catalog: ctx.service()?,
            currency: ctx.service()?,
            cart: ctx.service()?,
            recommendation: ctx.service()?,
            shipping: ctx.service()?,
            // Checkout makes several calls in a row (charge, ship, store):
            // it gets longer than a page's other calls.
            checkout: ctx.service::<Checkout>()?.with_timeout(CHECKOUT_TIMEOUT),
            ads: ctx.service()?,
            auth: ctx.service()?,
            orders: ctx.service()?,
            offered: Default::default(),
        };
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            StartError::failed(format!(
                "cannot listen on {addr}: {e} (set [modules.frontend] listen to a free address)"
            ))
        })?;
        let asking = shop.clone();
        let running = server::start(shop, ctx.http_metrics(), listener, &config)
            .map_err(|e| StartError::failed(format!("cannot start the web server: {e}")))?;
        let address = running.address;
        // Which currencies to offer, asked as soon as the currency service
        // answers (until then the allow-list stands in: see
        // `Shop::currencies_known`), not left to the first page that shows
        // the selector (priced pages and the JSON API price first); given
        // up when the node stops.
        let node_stopping = ctx.stopped();
        actix::spawn(async move {
            let asked = async {
                let mut wait = std::time::Duration::from_millis(100);
                loop {
                    asking.currencies().await;
                    if asking.offered.get().is_some() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
            };
            tokio::select! {
                () = asked => {}
                () = node_stopping => {}
            }
        });

        tracing::info!(module = "frontend", %address, "shop open at http://{address}");

        let stopped = Arc::new(AtomicBool::new(false));
        let handle = running.handle;
        let stop_flag = Arc::clone(&stopped);
        let node_stopped = ctx.stopped();
        // The node's graceful shutdown waits until the requests in flight
        // are answered (the server's own shutdown timeout bounds that).
        let hold = ctx.hold_shutdown();
        actix::spawn(async move {
            node_stopped.await;
            stop_flag.store(true, Ordering::Release);
            tracing::info!(module = "frontend", "stopping the web server");
            handle.stop(true).await;
            drop(hold);
        });
        actix::spawn(async move {
            if let Err(error) = running.server.await {
                tracing::error!(module = "frontend", %error, "the web server failed");
            }
        });
        Ok(Frontend::start(FrontendActor { address, stopped }))
    }
}

struct FrontendActor {
    address: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Actor for FrontendActor {
    type Context = Context<Self>;
}

impl Handler<Call<GetStatus>> for FrontendActor {
    type Result = Result<FrontendStatus, FrontendError>;

    fn handle(&mut self, call: Call<GetStatus>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        if self.stopped.load(Ordering::Acquire) {
            return Err(FrontendError::Stopped);
        }
        Ok(FrontendStatus {
            address: self.address.to_string(),
            url: format!("http://{}", self.address),
        })
    }
}
