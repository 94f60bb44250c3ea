//! A small WebDriver client (the W3C protocol, JSON over HTTP) for driving
//! headless Chromium through `chromedriver`: just the commands the browser
//! test uses.
//!
//! `chromedriver` is started on a free port (`--port=0`; it prints the port
//! it got) and killed when the [`Driver`] is dropped.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The W3C key for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session.
pub struct Driver {
    client: awc::Client,
    session: String,
    base: String,
    _chromedriver: Child,
}

/// Where chromedriver and chromium are; `None`, with a note on stderr,
/// if they are not installed, which fails the test `test` when
/// `BOUTIQUE_TEST_BROWSER=required` (as in CI).
pub fn browser_or_skip(test: &str) -> Option<(&'static str, &'static str)> {
    let found = find_browser();
    if found.is_none() {
        let required = std::env::var("BOUTIQUE_TEST_BROWSER").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "BOUTIQUE_TEST_BROWSER=required, but chromium or chromedriver is not installed"
        );
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped, chromium and chromedriver are not installed \
             (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// Where chromedriver and chromium are, if installed.
pub fn find_browser() -> Option<(&'static str, &'static str)> {
    let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    Some((chromedriver, chromium))
}

impl Driver {
    /// Starts chromedriver and a headless browser whose profile lives in
    /// `profile`.
    pub async fn start(chromedriver: &str, chromium: &str, profile: &Path) -> Driver {
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, port)) = line.split_once("started successfully on port ") {
                    return port.trim().trim_end_matches('.').parse::<u16>().unwrap();
                }
            }
            panic!("chromedriver exited before it listened");
        })
        .await
        .expect("chromedriver did not start within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1400", format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let created = post(&client, &format!("{base}/session"), capabilities).await;
        let session = created["sessionId"]
            .as_str()
            .expect("no session id")
            .to_owned();
        let driver = Driver {
            client,
            session,
            base,
            _chromedriver: child,
        };
        // Finding an element waits up to 10 s for it to appear.
        driver
            .command(
                "POST",
                "timeouts",
                json!({"implicit": 10_000, "pageLoad": 30_000}),
            )
            .await;
        driver
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        match method {
            "GET" => get(&self.client, &url).await,
            _ => post(&self.client, &url, body).await,
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn go(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.command("GET", "url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching the CSS selector (waiting for it).
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .command(
                "POST",
                "element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        Element { driver: self, id }
    }

    /// The visible text of the first element matching `css` (waiting for
    /// it). Found and read again if the page replaced the element between
    /// the two (a page that redraws itself, as the dashboard does every
    /// two seconds), for up to 10 s.
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(css).await;
            let url = format!(
                "{}/session/{}/element/{}/text",
                self.base, self.session, element.id
            );
            let (status, body) = get_raw(&self.client, &url).await;
            if status < 300 {
                return body["value"].as_str().unwrap().to_owned();
            }
            let stale = body["value"]["error"] == "stale element reference";
            assert!(
                stale && tokio::time::Instant::now() < deadline,
                "WebDriver {url} answered {status}: {body}"
            );
        }
    }

    /// Waits (up to 10 s) until the page is at a URL whose path is `path`:
    /// a click that submits a form returns before the next page loads.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            let at = url.split_once("://").map_or("", |(_, rest)| rest);
            let current = at.find('/').map_or("/", |i| &at[i..]);
            if current == path {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {url}, not {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot of the page as a PNG at `path`.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self.command("GET", "screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the browser session.
    pub async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.client.delete(url).send().await;
    }
}

/// An element of the current page.
pub struct Element<'a> {
    driver: &'a Driver,
    id: String,
}

impl Element<'_> {
    /// Clicks it.
    pub async fn click(&self) {
        self.driver
            .command("POST", &format!("element/{}/click", self.id), json!({}))
            .await;
    }

    /// Empties it and types `text`.
    pub async fn type_text(&self, text: &str) {
        self.driver
            .command("POST", &format!("element/{}/clear", self.id), json!({}))
            .await;
        self.driver
            .command(
                "POST",
                &format!("element/{}/value", self.id),
                json!({ "text": text }),
            )
            .await;
    }

    /// Its visible text.
    pub async fn text(&self) -> String {
        let text = self
            .driver
            .command("GET", &format!("element/{}/text", self.id), Value::Null)
            .await;
        text.as_str().unwrap().to_owned()
    }
}

async fn post(client: &awc::Client, url: &str, body: Value) -> Value {
    let mut response = client.post(url).send_json(&body).await.unwrap();
    answer(
        url,
        response.status().as_u16(),
        response.json::<Value>().limit(64 << 20).await.unwrap(),
    )
}

async fn get(client: &awc::Client, url: &str) -> Value {
    let (status, body) = get_raw(client, url).await;
    answer(url, status, body)
}

/// GETs `url`: the status and the body, whatever the status.
async fn get_raw(client: &awc::Client, url: &str) -> (u16, Value) {
    let mut response = client.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json::<Value>().limit(64 << 20).await.unwrap(),
    )
}

fn answer(url: &str, status: u16, body: Value) -> Value {
    assert!(status < 300, "WebDriver {url} answered {status}: {body}");
    body["value"].clone()
}
