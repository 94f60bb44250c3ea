//! A scripted shopper: an HTTP client with a cookie jar, speaking to the
//! shop the way a browser's plain form posts do (no redirects followed, so
//! every status is seen).

use std::collections::BTreeMap;
use std::time::Duration;

use awc::http::header::{HeaderName, HeaderValue};

/// What the shop answered.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// Every `Set-Cookie` header, as sent.
    pub set_cookies: Vec<String>,
    pub content_type: String,
    /// The `X-Trace-Id` header: the trace the request started.
    pub trace_id: Option<String>,
    /// The `Cache-Control` header.
    pub cache_control: Option<String>,
    pub body: String,
}

impl Page {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Panics unless the body contains `text`.
    #[track_caller]
    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page:\n{}",
            self.body
        );
    }

    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The text of the element with `id` (up to its closing tag).
    pub fn by_id(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\"");
        let at = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in:\n{}", self.body));
        let start = self.body[at..].find('>').unwrap() + at + 1;
        let end = self.body[start..].find('<').unwrap() + start;
        self.body[start..end].trim().to_owned()
    }
}

/// One shopper: one cookie jar.
pub struct Shopper {
    client: awc::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// The checkout form as the shop's own form fills it in.
pub fn checkout_form(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("email", "someone@example.com".to_owned()),
        ("street_address", "1600 Amphitheatre Parkway".to_owned()),
        ("zip_code", "94043".to_owned()),
        ("city", "Mountain View".to_owned()),
        ("state", "CA".to_owned()),
        ("country", "United States".to_owned()),
        ("credit_card_number", "4432801561520454".to_owned()),
        ("credit_card_expiration_month", "1".to_owned()),
        ("credit_card_expiration_year", "2099".to_owned()),
        ("credit_card_cvv", "672".to_owned()),
        ("idempotency_key", key.to_owned()),
    ]
}

impl Shopper {
    /// A shopper with no cookies, at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Shopper {
        let client = awc::Client::builder()
            .disable_redirects()
            .timeout(Duration::from_secs(30))
            .finish();
        Shopper {
            client,
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    /// The value of cookie `name`, if the shop set it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The customer id the shop keeps this shopper's cart and orders
    /// under while they are not signed in: `guest:` and their session id.
    pub fn guest_id(&self) -> String {
        let session = self
            .cookie("shop_session-id")
            .expect("the shop set no session cookie");
        format!("guest:{session}")
    }

    /// Sets a cookie as if the shop had.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    fn request(
        &self,
        method: awc::http::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> awc::ClientRequest {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.insert_header(("Cookie", jar.join("; ")));
        }
        for (name, value) in headers {
            request = request.insert_header((
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            ));
        }
        request
    }

    async fn read(
        &mut self,
        mut response: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
        >,
    ) -> Page {
        let headers = response.headers();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let trace_id = headers
            .get("x-trace-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let cache_control = headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in &set_cookies {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = set
                .split(';')
                .any(|attr| attr.trim().eq_ignore_ascii_case("Max-Age=0"));
            if expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let body = response.body().limit(16 * 1024 * 1024).await.unwrap();
        Page {
            status: response.status().as_u16(),
            location,
            set_cookies,
            content_type,
            trace_id,
            cache_control,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    /// GET `path` with extra headers.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let response = self
            .request(awc::http::Method::GET, path, headers)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// POST a form, as a browser's plain form post does.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, String)]) -> Page {
        self.post_form_with(path, fields, &[]).await
    }

    /// POST a form with extra headers.
    pub async fn post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, String)],
        headers: &[(&str, &str)],
    ) -> Page {
        let response = self
            .request(awc::http::Method::POST, path, headers)
            .send_form(&fields)
            .await
            .unwrap();
        self.read(response).await
    }

    /// Sends `body` as JSON with `method`.
    pub async fn json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Page {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let request = self.request(method, path, headers);
        let response = match body {
            Some(body) => request.send_json(&body).await.unwrap(),
            None => request.send().await.unwrap(),
        };
        self.read(response).await
    }

    /// Adds `quantity` of `product` through the product page's form.
    pub async fn add_to_cart(&mut self, product: &str, quantity: u32) {
        let added = self
            .post_form(
                "/cart",
                &[
                    ("product_id", product.to_owned()),
                    ("quantity", quantity.to_string()),
                ],
            )
            .await;
        assert_eq!(
            (added.status, added.location.as_deref()),
            (302, Some("/cart")),
            "{}",
            added.body
        );
    }

    /// Checks out the cart with the form the cart page shows; returns the
    /// order id.
    pub async fn check_out(&mut self) -> String {
        let cart = self.get("/cart").await;
        assert_eq!(cart.status, 200);
        let key = cart.hidden("idempotency_key");
        let mut form = checkout_form(&key);
        // The total the button shows, as a browser sends it.
        form.push(("expected_total", cart.hidden("expected_total")));
        let placed = self.post_form("/cart/checkout", &form).await;
        assert_eq!(placed.status, 303, "{}", placed.body);
        let location = placed.location.unwrap();
        location.strip_prefix("/order/").unwrap().to_owned()
    }

    /// Signs up through the form.
    pub async fn sign_up(&mut self, name: &str, email: &str, password: &str) {
        let fields = [
            ("name", name.to_owned()),
            ("email", email.to_owned()),
            ("password", password.to_owned()),
        ];
        let signed = self.post_form("/signup", &fields).await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        // Named `__Host-shop_auth` behind HTTPS (`secure_cookies`).
        let auth = ["shop_auth", "__Host-shop_auth"];
        assert!(auth.iter().any(|name| self.cookie(name).is_some()));
    }

    /// Signs in through the form.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        let fields = [
            ("email", email.to_owned()),
            ("password", password.to_owned()),
        ];
        let signed = self.post_form("/signin", &fields).await;
        assert_eq!(signed.status, 303, "{}", signed.body);
    }
}
