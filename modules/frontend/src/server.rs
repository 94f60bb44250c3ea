//! The web server: every route, and the layers each request passes through.
//!
//! ```text
//! request ─▶ measure (metrics) ─▶ request timeout ─▶ security headers
//!         ─▶ `__Host-` cookies (behind HTTPS) ─▶ visitor (session cookie)
//!         ─▶ adoption ─▶ error renderer (HTML, or JSON under /api/v1)
//!         ─▶ guard (cross-site posts) ─▶ handler
//! ```
//!
//! Every response says how a browser may use it: scripts, styles, images
//! and form posts from this origin only, no inline script (the one script
//! is `/static/shop.js`), never inside another site's frame (where a
//! click could place an order the visitor did not mean), no content-type
//! sniffing, and no Referer sent to other sites.

use std::net::{SocketAddr, TcpListener};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, DefaultHeaders, Next, from_fn};
use actix_web::{
    App, FromRequest, Handler, HttpRequest, HttpResponse, HttpServer, Resource, Responder, Route,
    guard, web,
};
use runtime::http_metrics::HttpMetrics;

use crate::FrontendConfig;
use crate::error::{ShopError, render_html_errors, render_json_errors};
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
    SECURITY_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |headers, header| {
            headers.add(*header)
        })
}

/// The headers of [`security_headers`].
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    // For browsers that predate `frame-ancestors`.
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
];

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
    let request_timeout = web::Data::new(RequestTimeout(std::time::Duration::from_millis(
        config.request_timeout_ms,
    )));
    let error_details = web::Data::new(crate::error::ErrorDetails(config.show_error_details));
    let address = listener.local_addr()?;
    let shop = web::Data::new(shop);
    let metrics = web::Data::new(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shop.clone())
            .app_data(metrics.clone())
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            // A query a route does not take is the client's mistake (400),
            // said in the shop's error shape.
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                ShopError::BadRequest(format!("the query is not one this address takes: {error}"))
                    .into()
            }))
            // Inside `sessions`, which gives every request its session id.
            .wrap(from_fn(crate::adoption::adopt_later))
            .wrap(from_fn(crate::visitor::sessions))
            .wrap(Condition::new(
                secure_cookies,
                from_fn(crate::https_cookies::host_only_cookies),
            ))
            .wrap(security_headers())
            .wrap(from_fn(within_the_request_timeout))
            // Outside the timeout: a request it cuts off (408) is
            // counted, timed and traced like any other.
            .wrap(from_fn(crate::measure::measure))
            .app_data(request_timeout.clone())
            .app_data(error_details.clone())
            .service(
                web::scope("/api/v1")
                    // Personal (a cart, orders, a token), as the pages are.
                    .wrap(
                        DefaultHeaders::new()
                            .add((actix_web::http::header::CACHE_CONTROL, "no-store")),
                    )
                    .wrap(from_fn(refuse_cross_site))
                    .wrap(from_fn(render_json_errors))
                    .configure(json_api::routes),
            )
            .service(
                web::scope("")
                    .wrap(from_fn(crate::forms::refuse_multipart))
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

/// How long a request may take ([`FrontendConfig::request_timeout_ms`]).
#[derive(Clone, Copy)]
struct RequestTimeout(std::time::Duration);

/// The layer inside `measure`: a request not answered within its time (its
/// body trickling in, say) is answered 408, and its connection closed
/// (counted and timed by `measure`, under the route its path matches).
async fn within_the_request_timeout(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = request
        .app_data::<web::Data<RequestTimeout>>()
        .map_or(std::time::Duration::from_secs(60), |timeout| timeout.0);
    // By the path as routed, escapes decoded (`/%61pi/` is the API too).
    let api = request.match_info().as_str().starts_with("/api/");
    match tokio::time::timeout(limit, next.call(request)).await {
        Ok(answered) => answered,
        Err(_) => {
            const SAID: &str = "the request took too long to arrive or to answer";
            let mut answer = HttpResponse::RequestTimeout();
            answer.insert_header((actix_web::http::header::CONNECTION, "close"));
            answer.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
            // An error, not a response: the layers inside, which add these
            // to every response, never see it.
            for header in SECURITY_HEADERS {
                answer.insert_header(header);
            }
            // Nor `measure`, which names the trace of every response.
            if let Some(trace) = runtime::current_trace() {
                answer.insert_header((crate::measure::TRACE_HEADER, trace.to_string()));
            }
            // The API's errors are JSON, in its shape.
            let answer = if api {
                answer.json(serde_json::json!({
                    "error": {"status": 408, "message": SAID, "fields": []}
                }))
            } else {
                answer.body(format!("{SAID}\n"))
            };
            Err(actix_web::error::InternalError::from_response(SAID, answer).into())
        }
    }
}

/// A method's name (as `Allow` lists it) and its route.
pub type Method = (&'static str, Route);

/// Makes the function `$name`, which gives a handler's route for one
/// method (or two), with the method's name as `Allow` lists it.
macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $method:literal, $route:expr) => {
        $(#[$doc])*
        pub fn $name<F, Args>(handler: F) -> Method
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            ($method, $route.to(handler))
        }
    };
}

method!(
    /// GET and HEAD: a page.
    page,
    "GET, HEAD",
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
);
method!(
    /// GET alone (not HEAD: for what must not run on a HEAD).
    get,
    "GET",
    web::get()
);
method!(
    /// POST.
    post,
    "POST",
    web::post()
);
method!(
    /// DELETE.
    delete,
    "DELETE",
    web::delete()
);

/// The address `path`, taking `methods`; any other method is answered
/// 405, with `Allow` naming the methods it takes (not 404: the address
/// exists).
pub fn resource(path: &str, methods: Vec<Method>) -> Resource {
    let allowed = methods
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let resource = methods
        .into_iter()
        .fold(web::resource(path), |resource, (_, route)| {
            resource.route(route)
        });
    resource.default_service(web::to(move |request: HttpRequest| {
        let error = ShopError::MethodNotAllowed {
            method: request.method().to_string(),
            path: request.path().to_owned(),
            allowed: allowed.clone(),
        };
        async move { Err::<HttpResponse, _>(error) }
    }))
}

/// The HTML routes: the original's, then this shop's own.
fn routes(config: &mut web::ServiceConfig) {
    use pages::{account, cart, checkout, currency, home, orders, product};
    config
        .service(resource("/", vec![page(home::page)]))
        .service(resource("/product/{id}", vec![page(product::page)]))
        .service(resource("/cart", vec![page(cart::page), post(cart::add)]))
        .service(resource("/cart/empty", vec![post(cart::empty)]))
        .service(resource("/setCurrency", vec![post(currency::set)]))
        .service(resource("/cart/checkout", vec![post(checkout::place)]))
        // Not HEAD: a HEAD must not change anything.
        .service(resource(
            "/logout",
            vec![get(account::sign_out), post(account::sign_out)],
        ))
        .service(resource("/order/{id}", vec![page(orders::one)]))
        .service(resource("/orders", vec![page(orders::list)]))
        .service(resource(
            "/signup",
            vec![page(account::sign_up_form), post(account::sign_up)],
        ))
        .service(resource(
            "/signin",
            vec![page(account::sign_in_form), post(account::sign_in)],
        ))
        .service(resource("/static/{path:.*}", vec![page(assets::serve)]))
        .service(resource("/robots.txt", vec![page(assets::robots)]))
        .service(resource("/_healthz", vec![page(assets::healthz)]))
        .default_service(web::to(pages::not_found));
}
