//! The user mix of Online Boutique's load generator (the spec's section
//! 2.11): what each task requests, and a shopper with its own cookies to
//! run them.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::seq::IndexedRandom;

/// The currencies `setCurrency` picks from.
const CURRENCIES: [&str; 6] = ["EUR", "USD", "JPY", "CAD", "GBP", "TRY"];
/// How long one request may take before it counts as failed.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One task of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    BrowseProduct,
    ViewCart,
    SetCurrency,
    AddToCart,
    Index,
    Checkout,
}

impl Task {
    /// Every task with its weight (19 in all).
    pub const MIX: [(Task, u32); 6] = [
        (Task::BrowseProduct, 10),
        (Task::ViewCart, 3),
        (Task::SetCurrency, 2),
        (Task::AddToCart, 2),
        (Task::Index, 1),
        (Task::Checkout, 1),
    ];

    /// A task drawn by weight.
    pub fn pick() -> Task {
        let total: u32 = Task::MIX.iter().map(|(_, w)| w).sum();
        let mut draw = rand::rng().random_range(0..total);
        for (task, weight) in Task::MIX {
            if draw < weight {
                return task;
            }
            draw -= weight;
        }
        Task::Index
    }

    /// The name the original gives it.
    pub fn name(self) -> &'static str {
        match self {
            Task::BrowseProduct => "browseProduct",
            Task::ViewCart => "viewCart",
            Task::SetCurrency => "setCurrency",
            Task::AddToCart => "addToCart",
            Task::Index => "index",
            Task::Checkout => "checkout",
        }
    }
}

/// A shopper: one cookie jar, one connection pool, and the products the
/// shop sells (asked of the shop once, so any catalogue works).
pub struct Shopper {
    client: awc::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    products: Rc<[String]>,
    /// When the next request was due, if before it is sent (the first
    /// request of a task in the fixed-rate mode).
    due: Option<Instant>,
    /// The requests made since the last task or home page ended.
    requests: Vec<Request>,
}

/// What a request ended with: an HTTP status, or 0 if none came.
pub type Status = u16;

/// One HTTP request: how it ended and how long it took (from when it was
/// due, for the first request of a task on a schedule).
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub status: Status,
    pub took: Duration,
}

/// A task done: the status of its last request, and every request it made.
#[derive(Debug)]
pub struct TaskDone {
    pub status: Status,
    pub requests: Vec<Request>,
}

impl Shopper {
    /// A shopper with no cookies, at `base` (`http://HOST:PORT`), who
    /// buys among `products`.
    pub fn new(base: &str, products: Rc<[String]>) -> Shopper {
        Shopper {
            client: awc::Client::builder()
                .disable_redirects()
                .timeout(REQUEST_TIMEOUT)
                .finish(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            products,
            due: None,
            requests: Vec::new(),
        }
    }

    /// The ids of the products the shop at `base` sells (its JSON API's
    /// list); an error that says why if it cannot be had.
    pub async fn products(base: &str) -> anyhow::Result<Rc<[String]>> {
        let client = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
        let url = format!("{base}/api/v1/products");
        let response = client.get(&url).send().await.map_err(|e| {
            anyhow::anyhow!("the shop at {base} does not answer ({e}): is it running?")
        })?;
        if !response.status().is_success() {
            anyhow::bail!(
                "{base} is not a Boutique shop: GET {url} answered {} (--target is the shop's own \
                 address, e.g. http://127.0.0.1:8080)",
                response.status()
            );
        }
        let listed: serde_json::Value = response
            .timeout(REQUEST_TIMEOUT)
            .json()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| anyhow::anyhow!("{url} did not answer a product list: {e}"))?;
        let ids: Rc<[String]> = listed["products"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|product| product["id"].as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            anyhow::bail!("{url} lists no products: there is nothing to buy");
        }
        Ok(ids)
    }

    /// GET `/`; the request it made.
    pub async fn home(&mut self) -> Vec<Request> {
        self.get("/").await;
        std::mem::take(&mut self.requests)
    }

    /// Runs `task`, whose first request was due at `due` (its latency
    /// counts from then); the status of its last request (0: no answer)
    /// and each request's.
    pub async fn run(&mut self, task: Task, due: Instant) -> TaskDone {
        self.due = Some(due);
        self.requests.clear();
        let status = self.run_requests(task).await;
        TaskDone {
            status,
            requests: std::mem::take(&mut self.requests),
        }
    }

    async fn run_requests(&mut self, task: Task) -> Status {
        let products = Rc::clone(&self.products);
        let random_product = || {
            products
                .choose(&mut rand::rng())
                .map_or(String::new(), String::clone)
        };
        match task {
            Task::BrowseProduct => self.get(&format!("/product/{}", random_product())).await,
            Task::ViewCart => self.get("/cart").await,
            Task::Index => self.get("/").await,
            Task::SetCurrency => {
                let currency = CURRENCIES.choose(&mut rand::rng()).unwrap_or(&"USD");
                self.post("/setCurrency", &[("currency_code", (*currency).to_owned())])
                    .await
            }
            Task::AddToCart => self.add_to_cart(&random_product()).await,
            Task::Checkout => {
                let added = self.add_to_cart(&random_product()).await;
                if !succeeded(added) {
                    return added;
                }
                self.post("/cart/checkout", &checkout_fields()).await
            }
        }
    }

    async fn add_to_cart(&mut self, product: &str) -> Status {
        let page = self.get(&format!("/product/{product}")).await;
        if !succeeded(page) {
            return page;
        }
        let quantity = rand::rng().random_range(1..=10).to_string();
        self.post(
            "/cart",
            &[("product_id", product.to_owned()), ("quantity", quantity)],
        )
        .await
    }

    async fn get(&mut self, path: &str) -> Status {
        let began = self.due.take().unwrap_or_else(Instant::now);
        let request = self.with_cookies(self.client.get(format!("{}{path}", self.base)));
        let sent = Instant::now();
        let answer = request.send().await;
        let status = self.read(answer, sent).await;
        self.done(status, began)
    }

    async fn post(&mut self, path: &str, fields: &[(&str, String)]) -> Status {
        let began = self.due.take().unwrap_or_else(Instant::now);
        let request = self.with_cookies(self.client.post(format!("{}{path}", self.base)));
        let sent = Instant::now();
        let answer = request.send_form(&fields).await;
        let status = self.read(answer, sent).await;
        self.done(status, began)
    }

    /// Notes a request that `began` and ended with `status`.
    fn done(&mut self, status: Status, began: Instant) -> Status {
        self.requests.push(Request {
            status,
            took: began.elapsed(),
        });
        status
    }

    fn with_cookies(&self, mut request: awc::ClientRequest) -> awc::ClientRequest {
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.insert_header(("Cookie", jar.join("; ")));
        }
        request
    }

    /// Keeps the cookies the answer sets and reads its body; its status.
    /// The request was `sent` then: head and body together get
    /// [`REQUEST_TIMEOUT`].
    async fn read<S>(
        &mut self,
        answer: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
        sent: Instant,
    ) -> Status
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    {
        let Ok(response) = answer else { return 0 };
        for set in response.headers().get_all("set-cookie") {
            let Ok(set) = set.to_str() else { continue };
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let expired = set
                .split(';')
                .any(|attribute| attribute.trim().eq_ignore_ascii_case("Max-Age=0"));
            if expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let status = response.status().as_u16();
        // awc's timeout covers the head only: a shop that stalls in the
        // middle of a body would hold this shopper for ever. The body gets
        // what the head left of the request's time.
        let mut response = response.timeout(REQUEST_TIMEOUT.saturating_sub(sent.elapsed()));
        match response.body().limit(16 * 1024 * 1024).await {
            Ok(_) => status,
            Err(_) => 0,
        }
    }
}

/// True for 2xx and 3xx.
pub fn succeeded(status: Status) -> bool {
    (200..400).contains(&status)
}

/// The checkout form, filled in with fake data as the original's Faker
/// does: a Luhn-valid 16-digit Visa number, an expiry 1 to 71 years ahead.
fn checkout_fields() -> Vec<(&'static str, String)> {
    let mut rng = rand::rng();
    let year_now = 1970
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 31_556_952);
    let mut digits: Vec<u32> = vec![4];
    digits.extend((0..14).map(|_| rng.random_range(0..10)));
    digits.push(luhn_check_digit(&digits));
    let number: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
    vec![
        (
            "email",
            format!("shopper{}@example.com", rng.random_range(0..1_000_000)),
        ),
        ("street_address", "1600 Amphitheatre Parkway".to_owned()),
        ("zip_code", rng.random_range(10000..99999).to_string()),
        ("city", "Mountain View".to_owned()),
        ("state", "CA".to_owned()),
        ("country", "United States".to_owned()),
        ("credit_card_number", number),
        (
            "credit_card_expiration_month",
            rng.random_range(1..=12).to_string(),
        ),
        (
            "credit_card_expiration_year",
            (year_now + rng.random_range(1..=71)).to_string(),
        ),
        ("credit_card_cvv", rng.random_range(100..1000).to_string()),
    ]
}

/// The digit that makes `digits` plus it pass the Luhn check.
fn luhn_check_digit(digits: &[u32]) -> u32 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                *d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_cards_pass_the_shops_luhn_check_and_the_mix_weighs_19() {
        for _ in 0..100 {
            let fields = checkout_fields();
            let number = &fields
                .iter()
                .find(|(k, _)| *k == "credit_card_number")
                .unwrap()
                .1;
            assert_eq!(number.len(), 16);
            assert!(number.starts_with('4'));
            assert!(payment::api::passes_luhn(number), "{number}");
        }
        assert_eq!(Task::MIX.iter().map(|(_, w)| w).sum::<u32>(), 19);
    }
}
