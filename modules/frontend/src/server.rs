//! The web server: every route, and the layers each request passes through.
//!
//! ```text
//! request ─▶ security headers ─▶ secure cookies (if configured) ─▶ measure (metrics)
//!         ─▶ visitor (session cookie) ─▶ error renderer (HTML, or JSON under /api/v1)
//!         ─▶ guard (cross-site posts) ─▶ handler
//! ```
//!
//! Every response says how a browser may use it: scripts, styles, images
//! and form posts from this origin only, no inline script (the one script
//! is `/static/shop.js`), never inside another site's frame (where a
//! click could place an order the visitor did not mean), no content-type
//! sniffing, and no Referer sent to other sites.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, guard, web};
use runtime::http_metrics::HttpMetrics;

use crate::FrontendConfig;
use crate::error::{render_html_errors, render_json_errors};
use crate::guard::refuse_cross_site;
use crate::shop::Shop;
use crate::{assets, json_api, pages};

/// The most a form or JSON body may be.
const BODY_LIMIT: usize = 64 * 1024;

/// What the pages may load and do (see the file's comment). `data:` images
/// for the empty favicon the pages name.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
     object-src 'none'";

/// The headers every response carries.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        // For browsers that predate `frame-ancestors`.
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
}

/// A started server: its address, a handle to stop it, and the future that
/// runs it.
pub struct Running {
    pub address: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
}

/// Starts serving the shop on `listener` as `config` says (its threads,
/// its cookies).
pub fn start(
    shop: Shop,
    metrics: HttpMetrics,
    listener: TcpListener,
    config: &FrontendConfig,
) -> std::io::Result<Running> {
    let secure_cookies = config.secure_cookies;
    let address = listener.local_addr()?;
    let shop = web::Data::new(shop);
    let metrics = web::Data::new(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shop.clone())
            .app_data(metrics.clone())
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            // Inside `sessions`, which gives every request its session id.
            .wrap(from_fn(crate::adoption::adopt_later))
            .wrap(from_fn(crate::visitor::sessions))
            .wrap(from_fn(crate::measure::measure))
            .wrap(Condition::new(
                secure_cookies,
                from_fn(crate::visitor::secure_cookies),
            ))
            .wrap(security_headers())
            .service(
                web::scope("/api/v1")
                    .wrap(from_fn(refuse_cross_site))
                    .wrap(from_fn(render_json_errors))
                    .configure(json_api::routes),
            )
            .service(
                web::scope("")
                    .wrap(from_fn(refuse_cross_site))
                    .wrap(from_fn(render_html_errors))
                    .configure(routes),
            )
    })
    .workers(config.workers)
    .disable_signals()
    .shutdown_timeout(3)
    .listen(listener)?
    .run();
    Ok(Running {
        address,
        handle: server.handle(),
        server,
    })
}

/// GET and HEAD.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The HTML routes: the original's, then this shop's own.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", get().to(pages::home::page))
        .route("/product/{id}", get().to(pages::product::page))
        .route("/cart", get().to(pages::cart::page))
        .route("/cart", web::post().to(pages::cart::add))
        .route("/cart/empty", web::post().to(pages::cart::empty))
        .route("/setCurrency", web::post().to(pages::currency::set))
        .route("/cart/checkout", web::post().to(pages::checkout::place))
        .route("/logout", get().to(pages::account::sign_out))
        .route("/logout", web::post().to(pages::account::sign_out))
        .route("/order/{id}", get().to(pages::orders::one))
        .route("/orders", get().to(pages::orders::list))
        .route("/signup", get().to(pages::account::sign_up_form))
        .route("/signup", web::post().to(pages::account::sign_up))
        .route("/signin", get().to(pages::account::sign_in_form))
        .route("/signin", web::post().to(pages::account::sign_in))
        .route("/static/{path:.*}", get().to(assets::serve))
        .route("/robots.txt", get().to(assets::robots))
        .route("/_healthz", get().to(assets::healthz))
        .default_service(web::to(pages::not_found));
}
