//! Actor-message tests: the frontend module with every module it calls
//! started for real on a fresh data directory; its service says where the
//! shop listens, and the shop answers there.

use runtime::{Module, ServiceRef, ServiceRegistry, StartError, start_alone};
use storage::testing::TempDir;

use crate::api::{Frontend, GetStatus};
use crate::{FrontendConfig, FrontendModule};

async fn started<M: Module>(config: M::Config, registry: &mut ServiceRegistry, dir: &TempDir) {
    let service = start_alone::<M>(config, registry.clone(), dir.path())
        .await
        .unwrap();
    registry.insert(service);
}

/// Every module the frontend calls, started in `dir`.
async fn dependencies(dir: &TempDir) -> ServiceRegistry {
    let mut registry = ServiceRegistry::new();
    started::<catalog::CatalogModule>(Default::default(), &mut registry, dir).await;
    started::<currency::CurrencyModule>(Default::default(), &mut registry, dir).await;
    started::<cart::CartModule>(Default::default(), &mut registry, dir).await;
    started::<recommendation::RecommendationModule>(Default::default(), &mut registry, dir).await;
    started::<shipping::ShippingModule>(Default::default(), &mut registry, dir).await;
    started::<payment::PaymentModule>(Default::default(), &mut registry, dir).await;
    started::<email::EmailModule>(Default::default(), &mut registry, dir).await;
    started::<orders::OrdersModule>(Default::default(), &mut registry, dir).await;
    started::<ads::AdsModule>(Default::default(), &mut registry, dir).await;
    started::<auth::AuthModule>(Default::default(), &mut registry, dir).await;
    started::<checkout::CheckoutModule>(Default::default(), &mut registry, dir).await;
    registry
}

fn listening_on(listen: &str) -> FrontendConfig {
    FrontendConfig {
        listen: listen.to_owned(),
        ..FrontendConfig::default()
    }
}

async fn frontend(
    config: FrontendConfig,
    dir: &TempDir,
) -> Result<ServiceRef<Frontend>, StartError> {
    start_alone::<FrontendModule>(config, dependencies(dir).await, dir.path()).await
}

#[actix_rt::test]
async fn the_service_says_where_the_shop_answers() {
    let dir = TempDir::new("frontend");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();

    let status = frontend.call(GetStatus {}).await.unwrap().unwrap();

    assert_ne!(status.address, "127.0.0.1:0", "the real port is reported");
    assert_eq!(status.url, format!("http://{}", status.address));
    let mut health = awc::Client::new()
        .get(format!("{}/_healthz", status.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body().await.unwrap(), "ok");
}

#[actix_rt::test]
async fn a_bad_or_taken_address_is_a_start_error_that_says_what_to_do() {
    let dir = TempDir::new("frontend");
    let error = frontend(listening_on("port 8080"), &dir).await.unwrap_err();
    assert!(matches!(error, StartError::Config(_)), "{error}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let error = frontend(listening_on(&address), &dir).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&format!("cannot listen on {address}")),
        "{text}"
    );
    assert!(text.contains("[modules.frontend] listen"), "{text}");

    let none = FrontendConfig {
        workers: 0,
        ..listening_on("127.0.0.1:0")
    };
    assert!(matches!(
        frontend(none, &dir).await,
        Err(StartError::Config(_))
    ));
}

/// A checkout whose first submission ends in doubt (its order's outcome
/// unknown, as when the orders node stalls) and whose second fails before
/// it could do anything (the orders store down); later ones go to the
/// real checkout.
struct InDoubtThenDown {
    real: ServiceRef<checkout::api::Checkout>,
    submissions: usize,
}

impl actix::Actor for InDoubtThenDown {
    type Context = actix::Context<Self>;
}

impl actix::Handler<runtime::Call<checkout::api::PlaceOrder>> for InDoubtThenDown {
    type Result = actix::ResponseFuture<
        Result<checkout::api::PlaceOrderResponse, checkout::api::CheckoutError>,
    >;

    fn handle(
        &mut self,
        call: runtime::Call<checkout::api::PlaceOrder>,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        use checkout::api::CheckoutError;
        self.submissions += 1;
        match self.submissions {
            1 => Box::pin(async {
                Err(CheckoutError::OrderOutcomeUnknown {
                    reason: "the orders node stalled".to_owned(),
                })
            }),
            2 => Box::pin(async {
                Err(CheckoutError::OrdersUnavailable(
                    orders::api::OrdersError::Storage("the disk is full".to_owned()),
                ))
            }),
            _ => {
                let real = self.real.clone();
                Box::pin(async move {
                    real.call(call.into_message())
                        .await
                        .unwrap_or_else(|error| {
                            panic!("the real checkout could not be called: {error}")
                        })
                })
            }
        }
    }
}

/// The shop in `dir`, its checkout [`InDoubtThenDown`]: its address, and
/// its orders service.
async fn shop_with_a_scripted_checkout(dir: &TempDir) -> (String, ServiceRef<orders::api::Orders>) {
    let mut registry = dependencies(dir).await;
    let real = registry.get::<checkout::api::Checkout>().unwrap();
    let orders = registry.get::<orders::api::Orders>().unwrap();
    let scripted = checkout::api::Checkout::start(InDoubtThenDown {
        real,
        submissions: 0,
    });
    registry.insert(ServiceRef::local(scripted));
    let frontend = start_alone::<FrontendModule>(listening_on("127.0.0.1:0"), registry, dir.path())
        .await
        .unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    (url, orders)
}

/// A cookie `response` sets, by name.
fn set_cookie<B>(
    response: &awc::ClientResponse<B>,
    name: &str,
) -> Option<actix_web::cookie::Cookie<'static>> {
    response
        .headers()
        .get_all(actix_web::http::header::SET_COOKIE)
        .filter_map(|value| value.to_str().ok())
        .filter_map(|text| actix_web::cookie::Cookie::parse(text.to_owned()).ok())
        .find(|cookie| cookie.name() == name)
}

/// Asserts that `cookie` removes itself.
fn assert_removed(cookie: Option<actix_web::cookie::Cookie<'static>>) {
    let cookie = cookie.expect("the cookie removed");
    assert_eq!(cookie.value(), "");
    assert_eq!(
        cookie.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
}

/// A `Cookie` header that sends `cookies`.
fn cookie_header(cookies: &[&actix_web::cookie::Cookie<'static>]) -> (&'static str, String) {
    let pairs: Vec<String> = cookies
        .iter()
        .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
        .collect();
    ("cookie", pairs.join("; "))
}

/// The checkout form's idempotency key on a cart page.
fn form_key(page: &str) -> Option<String> {
    let after = page.split(r#"name="idempotency_key" value=""#).nth(1)?;
    Some(after.split('"').next()?.to_owned())
}

/// A browser's session at the shop at `url`, with one sunglasses in its
/// cart.
async fn visitor_with_a_cart(
    client: &awc::Client,
    url: &str,
) -> actix_web::cookie::Cookie<'static> {
    let home = client.get(format!("{url}/")).send().await.unwrap();
    let session = set_cookie(&home, "shop_session-id").expect("a session");
    add_sunglasses(client, url, &session).await;
    session
}

/// Signs the browser of `session` up as Ada; her sign-in cookie.
async fn sign_up_ada(
    client: &awc::Client,
    url: &str,
    session: &actix_web::cookie::Cookie<'static>,
) -> actix_web::cookie::Cookie<'static> {
    let signed = client
        .post(format!("{url}/signup"))
        .insert_header(cookie_header(&[session]))
        .send_form(&[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", "a long enough password"),
        ])
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 303);
    set_cookie(&signed, crate::visitor::AUTH_COOKIE).expect("signed in")
}

/// Puts one sunglasses in the cart of `session`.
async fn add_sunglasses(
    client: &awc::Client,
    url: &str,
    session: &actix_web::cookie::Cookie<'static>,
) {
    let added = client
        .post(format!("{url}/cart"))
        .insert_header(cookie_header(&[session]))
        .send_form(&[("product_id", "OLJCESPC7Z"), ("quantity", "1")])
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 302);
}

/// The cart page with `cookies`: the `shop_checkout` cookie it sets, if
/// any, and its body.
async fn cart_page(
    client: &awc::Client,
    url: &str,
    cookies: &[&actix_web::cookie::Cookie<'static>],
) -> (Option<actix_web::cookie::Cookie<'static>>, String) {
    let mut response = client
        .get(format!("{url}/cart"))
        .insert_header(cookie_header(cookies))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set = set_cookie(&response, "shop_checkout");
    let body = response.body().await.unwrap();
    (set, String::from_utf8(body.to_vec()).unwrap())
}

#[actix_rt::test]
async fn a_checkout_in_doubt_is_finished_from_the_cart_page_by_the_same_key() {
    let dir = TempDir::new("frontend");
    let (url, _) = shop_with_a_scripted_checkout(&dir).await;
    let client = awc::Client::builder().disable_redirects().finish();

    // A visitor with something in the cart, and the cart page's form.
    let session = visitor_with_a_cart(&client, &url).await;
    let (_, page) = cart_page(&client, &url, &[&session]).await;
    let key = form_key(&page).expect("a checkout form");
    assert!(!page.contains("may not have finished"), "{page}");
    let mut form = checkout_fields();
    form.push(("idempotency_key", key.clone()));
    let submit = |cookies: &[&actix_web::cookie::Cookie<'static>]| {
        client
            .post(format!("{url}/cart/checkout"))
            .insert_header(cookie_header(cookies))
            .send_form(&form)
    };

    // The checkout ends in doubt: a 503, and the cookie names its key.
    let first = submit(&[&session]).await.unwrap();
    assert_eq!(first.status().as_u16(), 503);
    let pending = set_cookie(&first, "shop_checkout").expect("the unfinished checkout's cookie");
    assert!(pending.value().starts_with(&format!("{key}.")), "{pending}");
    assert_eq!(pending.http_only(), Some(true));

    // The cart page's form is that checkout again, and says so.
    let (_, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert_eq!(form_key(&page).as_deref(), Some(key.as_str()));
    assert!(page.contains("may not have finished"), "{page}");

    // Another visitor (another customer) sent that cookie does not get
    // that checkout; the cookie stays, for its customer (this browser
    // signed out, say, to sign in again: before, it went, and that
    // customer was offered a new checkout that paid a second time).
    let stranger = visitor_with_a_cart(&client, &url).await;
    let (set, page) = cart_page(&client, &url, &[&stranger, &pending]).await;
    assert_ne!(form_key(&page).as_deref(), Some(key.as_str()));
    assert!(!page.contains("may not have finished"), "{page}");
    assert!(set.is_none(), "{set:?}");
    let (_, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert_eq!(form_key(&page).as_deref(), Some(key.as_str()));

    // Submitted again, it fails before anything could be done: the money
    // from before still stands, so the cookie stays.
    let second = submit(&[&session, &pending]).await.unwrap();
    assert_eq!(second.status().as_u16(), 503);
    assert!(set_cookie(&second, "shop_checkout").is_none());

    // Submitted once more, it places the order and removes the cookie.
    let third = submit(&[&session, &pending]).await.unwrap();
    assert_eq!(third.status().as_u16(), 303);
    let location = third.headers().get("location").unwrap().to_str().unwrap();
    let order_id = location.trim_start_matches("/order/").to_owned();
    assert_removed(set_cookie(&third, "shop_checkout"));

    // A browser that kept the cookie is told, on the cart page, which
    // order its checkout placed, and the cookie goes; the next form is a
    // new checkout.
    let (set, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert!(page.contains(&format!("order {order_id}")), "{page}");
    assert_removed(set);
    add_sunglasses(&client, &url, &session).await;
    let (_, page) = cart_page(&client, &url, &[&session]).await;
    let fresh = form_key(&page).expect("a checkout form");
    assert_ne!(fresh, key);
    assert!(!page.contains("may not have finished"), "{page}");
}

/// An order of one sunglasses for `customer`, as checkout stores it.
fn sunglasses_order(customer: &str) -> orders::api::Order {
    let usd = |units| currency::api::Money::new("USD", units, 0);
    orders::api::Order {
        order_id: "the-stored-order".to_owned(),
        customer_id: customer.to_owned(),
        email: "someone@example.com".to_owned(),
        shipping_tracking_id: "TRACK".to_owned(),
        shipping_cost: usd(9),
        shipping_address: shipping::api::Address {
            street_address: "1600 Amphitheatre Parkway".to_owned(),
            city: "Mountain View".to_owned(),
            state: "CA".to_owned(),
            country: "United States".to_owned(),
            zip_code: 94043,
        },
        items: vec![orders::api::OrderItem {
            item: cart::api::CartItem {
                product_id: "OLJCESPC7Z".to_owned(),
                quantity: 1,
            },
            cost: usd(20),
            name: "Sunglasses".to_owned(),
        }],
        total: usd(29),
        transaction_id: "tx".to_owned(),
        placed_at: 1,
        cart_read_at: None,
    }
}

#[actix_rt::test]
async fn a_stored_but_unfinished_order_keeps_its_checkout_only_while_the_cart_is_what_it_ordered() {
    let dir = TempDir::new("frontend");
    let (url, orders) = shop_with_a_scripted_checkout(&dir).await;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;
    let (_, page) = cart_page(&client, &url, &[&session]).await;
    let key = form_key(&page).expect("a checkout form");
    let mut form = checkout_fields();
    form.push(("idempotency_key", key.clone()));

    // The checkout ends in doubt, and its order lands late (stored, not
    // finished).
    let first = client
        .post(format!("{url}/cart/checkout"))
        .insert_header(cookie_header(&[&session]))
        .send_form(&form)
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 503);
    let pending = set_cookie(&first, "shop_checkout").expect("the unfinished checkout's cookie");
    let customer = crate::visitor::guest_id(session.value());
    let save = orders::api::SaveOrder {
        order: sunglasses_order(&customer),
        idempotency_key: checkout::api::order_key(&customer, &key),
    };
    orders.call(save).await.unwrap().unwrap();

    // The cart is what it ordered: the page names the order and offers
    // its checkout, which finishes it.
    let (set, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert!(page.contains("order the-stored-order"), "{page}");
    assert_eq!(form_key(&page).as_deref(), Some(key.as_str()));
    assert!(set.is_none());

    // The cart emptied meanwhile: the page still offers that checkout,
    // to finish the stored order (it showed no form at all).
    let emptied = client
        .post(format!("{url}/cart/empty"))
        .insert_header(cookie_header(&[&session]))
        .send()
        .await
        .unwrap();
    assert_eq!(emptied.status().as_u16(), 302);
    let (set, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert!(page.contains("Your shopping cart is empty!"), "{page}");
    assert!(page.contains("order the-stored-order"), "{page}");
    assert_eq!(form_key(&page).as_deref(), Some(key.as_str()));
    assert!(page.contains("Finish the earlier checkout"), "{page}");
    assert!(set.is_none());

    // The cart changed (two sunglasses, where the order has one): the
    // page still names the order, but offers a new checkout, and the
    // cookie goes.
    add_sunglasses(&client, &url, &session).await;
    add_sunglasses(&client, &url, &session).await;
    let (set, page) = cart_page(&client, &url, &[&session, &pending]).await;
    assert!(page.contains("order the-stored-order"), "{page}");
    assert_ne!(form_key(&page).as_deref(), Some(key.as_str()));
    assert_removed(set);
}

/// The checkout form's fields, but its key.
fn checkout_fields() -> Vec<(&'static str, String)> {
    [
        ("email", "someone@example.com"),
        ("street_address", "1600 Amphitheatre Parkway"),
        ("zip_code", "94043"),
        ("city", "Mountain View"),
        ("state", "CA"),
        ("country", "United States"),
        ("credit_card_number", "4432801561520454"),
        ("credit_card_expiration_month", "1"),
        ("credit_card_expiration_year", "2099"),
        ("credit_card_cvv", "672"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect()
}

/// A service whose store is down: every call fails with the storage
/// error `error` makes (the service's own error type).
struct StoreDown<E>(fn() -> E);

impl<E: 'static> actix::Actor for StoreDown<E> {
    type Context = actix::Context<Self>;
}

impl<M, E> actix::Handler<runtime::Call<M>> for StoreDown<E>
where
    M: runtime::Request,
    M::Service: runtime::Service<Error = E>,
    E: 'static,
{
    type Result = Result<M::Reply, E>;

    fn handle(&mut self, _: runtime::Call<M>, _: &mut actix::Context<Self>) -> Self::Result {
        Err((self.0)())
    }
}

/// What a database that is locked says.
const LOCKED: &str = "error returned from database: database is locked";

#[actix_rt::test]
async fn a_store_that_is_down_is_a_503_naming_its_service_not_a_500() {
    let dir = TempDir::new("frontend-stores-down");
    let mut registry = dependencies(&dir).await;
    registry.insert(ServiceRef::local(cart::api::CartService::start(StoreDown(
        || cart::api::CartError::Storage(LOCKED.to_owned()),
    ))));
    registry.insert(ServiceRef::local(auth::api::Auth::start(StoreDown(|| {
        auth::api::AuthError::Storage(LOCKED.to_owned())
    }))));
    let frontend = start_alone::<FrontendModule>(listening_on("127.0.0.1:0"), registry, dir.path())
        .await
        .unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();

    // The cart page reads the cart: its store is down, so try again later.
    let mut cart = client.get(format!("{url}/cart")).send().await.unwrap();
    let page = String::from_utf8_lossy(&cart.body().await.unwrap()).into_owned();
    assert_eq!(cart.status().as_u16(), 503, "{page}");
    assert!(
        page.contains("the cart service is unavailable right now"),
        "{page}"
    );

    // A request with a token asks auth whose it is: the same.
    let mut session = client
        .get(format!("{url}/api/v1/session"))
        .insert_header(("Authorization", "Bearer some-token"))
        .send()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&session.body().await.unwrap()).into_owned();
    assert_eq!(session.status().as_u16(), 503, "{body}");
    assert!(
        body.contains("the auth service is unavailable right now"),
        "{body}"
    );
}

/// Header `name` of a response, as text ("" if it has none).
fn header_text(headers: &actix_web::http::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[actix_rt::test]
async fn every_response_says_scripts_come_from_the_shop_only_and_no_other_site_may_frame_it() {
    let dir = TempDir::new("frontend-headers");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();
    // A page, an API answer, and an error of each kind.
    for (path, status) in [
        ("/", 200),
        ("/api/v1/products", 200),
        ("/product/NO-SUCH-THING", 404),
        ("/api/v1/nothing-here", 404),
    ] {
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let header = |name: &str| header_text(response.headers(), name);
        let policy = header("content-security-policy");
        for directive in [
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy:?}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
    }
    // The pages load their one script from the shop; none is inline.
    let mut home = client.get(format!("{url}/")).send().await.unwrap();
    let page = String::from_utf8_lossy(&home.body().await.unwrap()).into_owned();
    assert!(
        page.contains(r#"<script src="/static/shop.js" defer></script>"#),
        "{page}"
    );
    assert!(!page.contains("onchange="), "{page}");
    let mut script = client
        .get(format!("{url}/static/shop.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);
    let body = String::from_utf8_lossy(&script.body().await.unwrap()).into_owned();
    assert!(body.contains("currency_code"), "{body}");
}

/// The static files, public and cached for a day, never carry a session
/// cookie, whatever the path's escapes (`/%73tatic/` got a fresh one: a
/// shared cache could hand it to the next visitor, who would shop in a
/// session the first knew); error pages are not to be cached (a 404 may
/// be by default, with its session cookie).
#[actix_rt::test]
async fn no_cacheable_answer_carries_a_session() {
    let dir = TempDir::new("frontend-cacheable");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();
    for path in [
        "/static/style.css",
        "/%73tatic/style.css",
        "/st%61tic/shop.js",
    ] {
        let file = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(file.status().as_u16(), 200, "{path}");
        assert!(
            header_text(file.headers(), "cache-control").contains("public"),
            "{path}: {:?}",
            file.headers()
        );
        assert!(
            set_cookie(&file, "shop_session-id").is_none(),
            "{path}: {:?}",
            file.headers()
        );
    }
    // Nobody's either: no session for a health probe or a crawler.
    for path in ["/_healthz", "/robots.txt", "/%5Fhealthz"] {
        let answer = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{path}");
        assert!(
            set_cookie(&answer, "shop_session-id").is_none(),
            "{path}: {:?}",
            answer.headers()
        );
    }
    let missing = client
        .get(format!("{url}/product/NOPE"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(header_text(missing.headers(), "cache-control"), "no-store");
}

#[actix_rt::test]
async fn a_guest_order_stored_after_the_sign_in_is_found_in_the_account() {
    let dir = TempDir::new("frontend");
    let (url, orders) = shop_with_a_scripted_checkout(&dir).await;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;

    // The guest signs up while a checkout of theirs still runs: the move
    // at the sign-in finds no order yet.
    let auth = sign_up_ada(&client, &url, &session).await;
    // Then the checkout stores its order, under the guest.
    let guest = crate::visitor::guest_id(session.value());
    let save = orders::api::SaveOrder {
        order: sunglasses_order(&guest),
        idempotency_key: checkout::api::order_key(&guest, "late"),
    };
    orders.call(save).await.unwrap().unwrap();

    // The account finds it, by its id (where checkout sends the browser)
    // and among its orders.
    for path in ["/order/the-stored-order", "/orders"] {
        let mut page = client
            .get(format!("{url}{path}"))
            .insert_header(cookie_header(&[&session, &auth]))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let page = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
        assert!(page.contains("the-stored-order"), "{path}: {page}");
    }
}

/// A line another tab added as a guest after this one's sign-in merged
/// the guest cart lands in the session's guest cart, out of the signed-in
/// visitor's sight: the cart page moves it into their cart before showing
/// it, so it is neither lost nor bought unseen.
#[actix_rt::test]
async fn a_line_added_as_a_guest_after_the_sign_in_shows_in_the_users_cart() {
    let dir = TempDir::new("frontend-late-guest-line");
    let registry = dependencies(&dir).await;
    let carts = registry.get::<cart::api::CartService>().unwrap();
    let frontend = start_alone::<FrontendModule>(listening_on("127.0.0.1:0"), registry, dir.path())
        .await
        .unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;
    let auth = sign_up_ada(&client, &url, &session).await;
    // The other tab's add, made as a guest, after the merge.
    let guest = crate::visitor::guest_id(session.value());
    carts
        .call(cart::api::AddItem {
            user_id: guest.clone(),
            item: cart::api::CartItem {
                product_id: "1YMWWN1N4O".into(),
                quantity: 3,
            },
        })
        .await
        .unwrap()
        .unwrap();

    let mut page = client
        .get(format!("{url}/cart"))
        .insert_header(cookie_header(&[&session, &auth]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert!(page.contains("/product/1YMWWN1N4O"), "{page}");
    assert!(page.contains("/product/OLJCESPC7Z"), "{page}");
    let left = carts
        .call(cart::api::GetCart { user_id: guest })
        .await
        .unwrap()
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
}

#[actix_rt::test]
async fn a_method_an_address_does_not_take_is_a_405_naming_those_it_does() {
    let dir = TempDir::new("frontend-methods");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::builder().disable_redirects().finish();
    for (method, path, allowed, content_type) in [
        ("GET", "/cart/checkout", "POST", "text/html"),
        ("GET", "/setCurrency", "POST", "text/html"),
        ("POST", "/product/OLJCESPC7Z", "GET, HEAD", "text/html"),
        ("PUT", "/cart", "GET, HEAD, POST", "text/html"),
        // A HEAD must not sign anyone out.
        ("HEAD", "/logout", "GET, POST", ""),
        (
            "DELETE",
            "/api/v1/products",
            "GET, HEAD",
            "application/json",
        ),
        (
            "POST",
            "/api/v1/cart",
            "GET, HEAD, DELETE",
            "application/json",
        ),
    ] {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut response = client
            .request(method.clone(), format!("{url}{path}"))
            .insert_header(("Cookie", "shop_session-id=s1; shop_currency=EUR"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        let header = |name: &str| header_text(response.headers(), name);
        assert_eq!(header("allow"), allowed, "{method} {path}");
        assert!(
            header("content-type").starts_with(content_type),
            "{method} {path}: {}",
            header("content-type")
        );
        assert_eq!(
            response.headers().get_all("set-cookie").count(),
            0,
            "{method} {path} set cookies"
        );
        if method != actix_web::http::Method::HEAD {
            let body = String::from_utf8_lossy(&response.body().await.unwrap()).into_owned();
            assert!(
                body.contains(&format!(
                    "{path} does not take {method}; it takes {allowed}"
                )),
                "{method} {path}: {body}"
            );
        }
    }
    // An address that does not exist is still a 404.
    let response = client.get(format!("{url}/nowhere")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[actix_rt::test]
async fn an_api_add_that_was_stored_is_a_201_even_if_the_cart_cannot_be_priced_then() {
    let dir = TempDir::new("frontend-add-unpriced");
    let mut registry = dependencies(&dir).await;
    registry.insert(ServiceRef::local(shipping::api::Shipping::start(
        StoreDown(|| shipping::api::ShippingError::Unavailable {
            reason: "no carrier answers".to_owned(),
        }),
    )));
    let carts = registry.get::<cart::api::CartService>().unwrap();
    let frontend = start_alone::<FrontendModule>(listening_on("127.0.0.1:0"), registry, dir.path())
        .await
        .unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let mut added = awc::Client::new()
        .post(format!("{url}/api/v1/cart/items"))
        .insert_header(("Cookie", "shop_session-id=s1"))
        .content_type("application/json")
        .send_body(r#"{"product_id":"OLJCESPC7Z","quantity":2}"#)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&added.body().await.unwrap()).unwrap();
    assert_eq!(added.status().as_u16(), 201, "{body}");
    assert_eq!(
        added.headers().get("location").unwrap().to_str().unwrap(),
        "/api/v1/cart"
    );
    assert_eq!(
        body["added"],
        serde_json::json!({"product_id": "OLJCESPC7Z", "quantity": 2})
    );
    assert!(
        body["cart_error"]
            .as_str()
            .unwrap()
            .contains("no carrier answers"),
        "{body}"
    );
    // It is stored, once.
    let cart = carts
        .call(cart::api::GetCart {
            user_id: crate::visitor::guest_id("s1"),
        })
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<(&str, i32)> = cart
        .items
        .iter()
        .map(|item| (item.product_id.as_str(), item.quantity))
        .collect();
    assert_eq!(lines, vec![("OLJCESPC7Z", 2)]);
}

/// A program's sign-out (its Bearer token) from a browser signed in
/// otherwise (another session in the cookie) ends the program's session
/// and leaves the browser's: the cookie was removed, and its session
/// stayed valid, unseen, until it expired.
#[actix_rt::test]
async fn a_bearer_sign_out_leaves_the_browsers_other_sign_in_alone() {
    let dir = TempDir::new("frontend-bearer-sign-out");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;
    let browsers = sign_up_ada(&client, &url, &session).await;
    // The program's own session, signed in without the browser's cookie.
    let mut signed_in = client
        .post(format!("{url}/api/v1/sessions"))
        .send_json(
            &serde_json::json!({"email": "ada@example.com", "password": "a long enough password"}),
        )
        .await
        .unwrap();
    let body: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 200, "{body}");
    let programs = body["token"].as_str().expect("a token").to_owned();

    let signed_out = client
        .delete(format!("{url}/api/v1/session"))
        .insert_header(("Authorization", format!("Bearer {programs}")))
        .insert_header(cookie_header(&[&session, &browsers]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status().as_u16(), 204);
    assert!(
        set_cookie(&signed_out, crate::visitor::AUTH_COOKIE).is_none(),
        "{:?}",
        signed_out.headers()
    );
    let seen = |header: (&'static str, String)| {
        client
            .get(format!("{url}/api/v1/cart"))
            .insert_header(header)
            .send()
    };
    // The browser is still signed in; the program's token is ended.
    let browser = seen(cookie_header(&[&session, &browsers])).await.unwrap();
    assert_eq!(browser.status().as_u16(), 200);
    let program = seen(("Authorization", format!("Bearer {programs}")))
        .await
        .unwrap();
    assert_eq!(program.status().as_u16(), 401);
    // Signed out by its cookie, the browser's cookie goes.
    let signed_out = client
        .delete(format!("{url}/api/v1/session"))
        .insert_header(cookie_header(&[&session, &browsers]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status().as_u16(), 204);
    assert_removed(set_cookie(&signed_out, crate::visitor::AUTH_COOKIE));
}

#[actix_rt::test]
async fn a_sign_in_cookie_of_a_session_that_ended_is_removed() {
    let dir = TempDir::new("frontend-stale-auth");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();
    let removals = |response: &awc::ClientResponse<_>| -> Vec<String> {
        response
            .headers()
            .get_all("set-cookie")
            .filter_map(|value| value.to_str().ok())
            .filter(|value| value.starts_with("shop_auth=;") && value.contains("Max-Age=0"))
            .map(str::to_owned)
            .collect()
    };
    // The page is a guest's, and the browser is told to forget the token.
    let mut page = client
        .get(format!("{url}/"))
        .insert_header(("Cookie", "shop_session-id=s1; shop_auth=ended-long-ago"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(removals(&page).len(), 1, "{:?}", page.headers());
    let body = String::from_utf8_lossy(&page.body().await.unwrap()).into_owned();
    assert!(body.contains("Sign in"), "shown as a guest");
    // A program's token that ended is a 401 (it meant to act as its
    // user, not as a guest), and its own to drop: no cookie is touched.
    let mut api = client
        .get(format!("{url}/api/v1/cart"))
        .insert_header(("Cookie", "shop_session-id=s1"))
        .insert_header(("Authorization", "Bearer ended-long-ago"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    assert!(removals(&api).is_empty(), "{:?}", api.headers());
    let body = String::from_utf8_lossy(&api.body().await.unwrap()).into_owned();
    assert!(body.contains("sign in again"), "{body}");
    // So is one that cannot be a token at all (taken for a guest before),
    // and the scheme's name is read in any case.
    for header in [
        format!("Bearer {}", "a".repeat(300)),
        "Bearer".to_owned(),
        "bearer ended-long-ago".to_owned(),
        "BEARER ended-long-ago".to_owned(),
    ] {
        let api = client
            .get(format!("{url}/api/v1/cart"))
            .insert_header(("Cookie", "shop_session-id=s1"))
            .insert_header(("Authorization", header.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status().as_u16(), 401, "{header:.20}");
    }
    // Every 401 says how to authenticate.
    assert_eq!(
        header_text(api.headers(), "www-authenticate"),
        "Bearer realm=\"boutique\""
    );
    // A valid guest request sets nothing of the sort either.
    let guest = client
        .get(format!("{url}/"))
        .insert_header(("Cookie", "shop_session-id=s1"))
        .send()
        .await
        .unwrap();
    assert_eq!(guest.status().as_u16(), 200, "answered");
    assert!(removals(&guest).is_empty(), "{:?}", guest.headers());
}

#[actix_rt::test]
async fn a_request_whose_body_trickles_in_is_answered_408_at_its_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("frontend");
    let config = FrontendConfig {
        request_timeout_ms: 300,
        ..listening_on("127.0.0.1:0")
    };
    let frontend = frontend(config, &dir).await.unwrap();
    let status = frontend.call(GetStatus {}).await.unwrap().unwrap();
    // Sends `head` (a body of 100 bytes announced, a few sent, and then
    // nothing); the answer, and how long it took.
    let trickle = async |head: &[u8]| {
        let mut stream = tokio::net::TcpStream::connect(&status.address)
            .await
            .unwrap();
        stream.write_all(head).await.unwrap();
        let sent = std::time::Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        assert!(read.is_ok(), "no answer, the connection still open");
        (
            String::from_utf8_lossy(&answer).into_owned(),
            sent.elapsed(),
        )
    };
    let (answer, took) = trickle(
        b"POST /cart HTTP/1.1\r\nHost: shop\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nproduct_id=",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // With the headers every response has (the timeout answered outside
    // them before), and its trace, as every answer.
    let lowercase = answer.to_ascii_lowercase();
    assert!(lowercase.contains("content-security-policy: "), "{answer}");
    assert!(lowercase.contains("x-frame-options: deny"), "{answer}");
    assert!(lowercase.contains("x-trace-id: "), "{answer}");
    assert!(lowercase.contains("cache-control: no-store"), "{answer}");
    // The shop's 300 ms, not actix-web's own 5 s request timeout.
    assert!(
        took < std::time::Duration::from_secs(3),
        "answered after {took:?}"
    );

    // The API's is JSON, in the shape of its errors.
    let (answer, _) = trickle(
        b"POST /api/v1/cart/items HTTP/1.1\r\nHost: shop\r\n\
          Content-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"product_id\"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lowercase = answer.to_ascii_lowercase();
    assert!(
        lowercase.contains("content-type: application/json"),
        "{answer}"
    );
    assert!(lowercase.contains("x-trace-id: "), "{answer}");
    assert!(answer.contains(r#""status":408"#), "{answer}");
    assert!(answer.contains(r#""fields":[]"#), "{answer}");
}

/// A visitor with more than 200 orders pages through them: the JSON
/// API's `next` and the page's "Older orders" link lead to the rest, and
/// a `before` that is not one of theirs is a 404.
#[actix_rt::test]
async fn orders_past_the_newest_200_are_a_page_away() {
    let dir = TempDir::new("frontend-order-pages");
    let (url, orders) = shop_with_a_scripted_checkout(&dir).await;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;
    let guest = crate::visitor::guest_id(session.value());
    for at in 1..=201 {
        let mut order = sunglasses_order(&guest);
        order.order_id = format!("order-{at:03}");
        order.placed_at = at;
        let save = orders::api::SaveOrder {
            order,
            idempotency_key: checkout::api::order_key(&guest, &format!("k{at}")),
        };
        orders.call(save).await.unwrap().unwrap();
    }
    let get = |path: String| {
        let request = client
            .get(format!("{url}{path}"))
            .insert_header(cookie_header(&[&session]));
        async move {
            let mut response = request.send().await.unwrap();
            let body = response.body().limit(1 << 24).await.unwrap();
            (
                response.status().as_u16(),
                String::from_utf8(body.to_vec()).unwrap(),
            )
        }
    };

    let (status, body) = get("/api/v1/orders".to_owned()).await;
    assert_eq!(status, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["orders"].as_array().map(Vec::len), Some(200));
    assert_eq!(first["orders"][0]["order_id"], "order-201");
    assert_eq!(first["more"], true);
    assert_eq!(first["next"], "/api/v1/orders?before=order-002");
    let (status, body) = get("/api/v1/orders?before=order-002".to_owned()).await;
    assert_eq!(status, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = second["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|order| order["order_id"].as_str())
        .collect();
    assert_eq!(ids, ["order-001"]);
    assert_eq!(second["more"], false);
    assert!(second["next"].is_null(), "{second}");

    let (status, page) = get("/orders".to_owned()).await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/orders?before=order-002\""), "{page}");
    assert!(!page.contains("order-001"), "{page}");
    let (status, page) = get("/orders?before=order-002".to_owned()).await;
    assert_eq!(status, 200);
    assert!(page.contains("order-001"), "{page}");
    assert!(page.contains("href=\"/orders\">Newest orders"), "{page}");
    assert!(!page.contains("Older orders"), "{page}");

    for path in ["/orders?before=nope", "/api/v1/orders?before=nope"] {
        let (status, body) = get(path.to_owned()).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
}

/// While a checkout may be unfinished (its cookie set), a form another tab
/// showed before (another key) is refused, 409, and reaches no checkout:
/// it could pay for the cart beside the money that stands. The same
/// checkout again goes through to checkout.
#[actix_rt::test]
async fn a_new_checkout_is_refused_while_an_earlier_one_may_be_unfinished() {
    let dir = TempDir::new("frontend-two-tabs");
    let (url, _orders) = shop_with_a_scripted_checkout(&dir).await;
    let client = awc::Client::builder().disable_redirects().finish();
    let session = visitor_with_a_cart(&client, &url).await;
    // Two tabs show the cart: two forms, two keys.
    let (_, first_tab) = cart_page(&client, &url, &[&session]).await;
    let (_, second_tab) = cart_page(&client, &url, &[&session]).await;
    let first_key = form_key(&first_tab).expect("a checkout form");
    let second_key = form_key(&second_tab).expect("a checkout form");
    assert_ne!(first_key, second_key);
    let submit = |key: &str, cookies: Vec<actix_web::cookie::Cookie<'static>>| {
        let mut form = checkout_fields();
        form.push(("idempotency_key", key.to_owned()));
        let request = client
            .post(format!("{url}/cart/checkout"))
            .insert_header(cookie_header(&cookies.iter().collect::<Vec<_>>()));
        async move { request.send_form(&form).await.unwrap() }
    };

    // The first ends in doubt (the scripted checkout's first answer).
    let first = submit(&first_key, vec![session.clone()]).await;
    assert_eq!(first.status().as_u16(), 503);
    let pending = set_cookie(&first, "shop_checkout").expect("the unfinished checkout's cookie");

    // The second tab's form: refused here, before any checkout.
    let mut second = submit(&second_key, vec![session.clone(), pending.clone()]).await;
    assert_eq!(second.status().as_u16(), 409);
    let body = String::from_utf8(second.body().await.unwrap().to_vec()).unwrap();
    assert!(
        body.contains("an earlier checkout of yours may not have finished"),
        "{body}"
    );
    assert!(set_cookie(&second, "shop_checkout").is_none());

    // The first again reaches checkout (its second scripted answer: the
    // orders store down before any charge, so a 503).
    let again = submit(&first_key, vec![session.clone(), pending]).await;
    assert_eq!(again.status().as_u16(), 503);
}

/// A program whose old token ended signs in (or up) with it still in its
/// headers: it gets a new one. Before, the ended token was a 401 that
/// told it to sign in, with the very call it was making.
#[actix_rt::test]
async fn a_program_signs_in_over_its_ended_token() {
    let dir = TempDir::new("frontend-sign-in-over-ended");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{url}{path}"))
            .insert_header(("Authorization", "Bearer ended-long-ago"))
            .send_json(&body)
    };
    let mut up = post(
        "/api/v1/users",
        serde_json::json!({"name": "Ann", "email": "ann@example.com", "password": "correct horse"}),
    )
    .await
    .unwrap();
    let first: serde_json::Value = up.json().await.unwrap();
    assert_eq!(up.status().as_u16(), 201, "{first}");
    let first = first["token"].as_str().expect("a token").to_owned();
    // Signed in again from a browser-based program that holds the first
    // session's cookie: that session ends, as any sign-in ends the one it
    // replaces in its browser.
    let mut signed_in = client
        .post(format!("{url}/api/v1/sessions"))
        .insert_header(("Authorization", "Bearer ended-long-ago"))
        .insert_header(("Cookie", format!("shop_auth={first}")))
        .send_json(&serde_json::json!({"email": "ann@example.com", "password": "correct horse"}))
        .await
        .unwrap();
    let session: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 200, "{session}");
    let token = session["token"].as_str().expect("a token").to_owned();
    // The new token works; the ended one is still refused elsewhere.
    let cart = |authorization: String| {
        client
            .get(format!("{url}/api/v1/cart"))
            .insert_header(("Authorization", authorization))
            .send()
    };
    assert_eq!(
        cart(format!("Bearer {token}"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        cart("Bearer ended-long-ago".to_owned())
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        cart(format!("Bearer {first}"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401,
        "the replaced session ended"
    );
}

/// A JSON API request whose `Authorization` header is not a Bearer token
/// is refused, 401: it meant to act as a user, and taken for a guest (as
/// it was) it filled a cart and placed orders nobody found again. The
/// schemes a browser sends for a proxy in front (`Basic`, `Digest`,
/// `Negotiate`, `NTLM`) are no token, and no mistake: a guest's request.
/// Pages do not look.
#[actix_rt::test]
async fn an_api_request_with_another_authorization_scheme_is_refused() {
    let dir = TempDir::new("frontend-other-scheme");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::new();
    let get = |path: &str, authorization: &str| {
        client
            .get(format!("{url}{path}"))
            .insert_header(("Authorization", authorization))
            .send()
    };
    for header in ["Token abc", "abc", "Bearer:abc"] {
        let mut refused = get("/api/v1/cart", header).await.unwrap();
        let body = String::from_utf8_lossy(&refused.body().await.unwrap()).into_owned();
        assert_eq!(refused.status().as_u16(), 401, "{header}: {body}");
        assert!(body.contains("must be `Bearer TOKEN`"), "{body}");
        assert_eq!(
            header_text(refused.headers(), "www-authenticate"),
            "Bearer realm=\"boutique\""
        );
        assert_eq!(get("/cart", header).await.unwrap().status().as_u16(), 200);
    }
    for proxys in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"a\"",
        "Negotiate YII=",
        "NTLM TlRM",
    ] {
        let passed = get("/api/v1/cart", proxys).await.unwrap();
        assert_eq!(passed.status().as_u16(), 200, "{proxys}");
    }
}

/// Signing out expires the cookies the browser sent but the one that
/// names a checkout that may be unfinished (its customer may sign in
/// again, and must be offered it then); a cookie whose name cannot go
/// back in a header is skipped (it made sign-out a 500).
#[actix_rt::test]
async fn signing_out_keeps_the_unfinished_checkout_and_survives_odd_cookie_names() {
    let dir = TempDir::new("frontend-sign-out-cookies");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    let client = awc::Client::builder().disable_redirects().finish();
    let out = client
        .get(format!("{url}/logout"))
        .insert_header((
            "Cookie",
            "shop_session-id=s1; shop_currency=EUR; shop_checkout=k.0123456789abcdef; a%0Ab=1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 302, "{:?}", out.headers());
    assert_removed(set_cookie(&out, "shop_session-id"));
    assert_removed(set_cookie(&out, "shop_currency"));
    assert!(
        set_cookie(&out, "shop_checkout").is_none(),
        "{:?}",
        out.headers()
    );
}

/// A sign-up is told every problem at once, auth's rules too: a short
/// password beside a missing name and a bad email. Before, auth's
/// problems came one at a time, after the form's, and the password,
/// never sent back to the form, was typed again for each.
#[actix_rt::test]
async fn a_sign_up_is_told_every_problem_at_once() {
    let dir = TempDir::new("frontend-sign-up-problems");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();
    let url = frontend.call(GetStatus {}).await.unwrap().unwrap().url;
    // The fields a sign-up with `body` is refused for, in order.
    let refused_fields = |body: serde_json::Value| {
        let url = url.clone();
        async move {
            let mut answer = awc::Client::new()
                .post(format!("{url}/api/v1/users"))
                .send_json(&body)
                .await
                .unwrap();
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(answer.status().as_u16(), 422, "{body}");
            body["error"]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .filter_map(|field| field["field"].as_str().map(str::to_owned))
                .collect::<Vec<String>>()
        }
    };
    let fields =
        refused_fields(serde_json::json!({"name": " ", "email": "nobody", "password": "short"}))
            .await;
    assert_eq!(fields, ["name", "email", "password"]);
    let too_long = "n".repeat(101);
    let fields = refused_fields(serde_json::json!({
        "name": too_long, "email": "a@example.com", "password": "p".repeat(129)
    }))
    .await;
    assert_eq!(fields, ["password", "name"]);
}
