//! Headless Chromium driven through chromedriver with fantoccini.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use url::Url;

use super::{free_port, require};

/// Chromium binary (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// chromedriver binary (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(20);

/// A browser session with a fresh profile; chromedriver (and the Chromium
/// it started) are killed on drop.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. `None` (test skipped)
    /// when either is missing.
    pub async fn start() -> Option<Self> {
        super::init();
        if !require("chromium (/usr/bin/chromium)", Path::new(CHROMIUM).exists())
            || !require("chromedriver (/usr/bin/chromedriver)", Path::new(CHROMEDRIVER).exists())
        {
            return None;
        }
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // Own process group, so Chromium's processes go down with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().expect("spawn chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser_guard = DriverGuard(Some(driver));
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reqwest::get(format!("{webdriver}/status")).await.is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let caps = caps.as_object().unwrap().clone();
        let client = ClientBuilder::rustls()
            .expect("rustls WebDriver client")
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("WebDriver session with Chromium");
        Some(Self { client, driver: browser_guard.0.take().unwrap(), _profile: profile })
    }

    /// Navigates and waits for the page load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Waits for an element and returns its text.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.expect("element text")
    }

    /// Waits for an element to appear.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Whether an element is on the current page (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Clicks an element once it is there.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Saves a PNG of the current page as `target/screenshots/<name>.png`
    /// (for a person to look at; never committed) and returns its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        self.client.set_window_size(900, 1000).await.expect("window size");
        let png = self.client.screenshot().await.expect("WebDriver screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// An attribute of an element, once it is there.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.element(css).await.attr(name).await.expect("element attribute")
    }

    /// Fills in the OP's login form and submits it.
    pub async fn sign_in_at_op(&self, user: &str) {
        let login = match self.client.wait().at_most(WAIT).for_element(Locator::Css(r#"input[name="login"]"#)).await {
            Ok(el) => el,
            Err(e) => panic!("no OP login form (at {}): {e}", self.url().await),
        };
        login.send_keys(user).await.expect("type login");
        self.client
            .find(Locator::Css(r#"input[name="password"]"#))
            .await
            .expect("password field")
            .send_keys("any-password")
            .await
            .expect("type password");
        self.client
            .find(Locator::Css(r#"button[type="submit"].login-submit"#))
            .await
            .expect("submit button")
            .click()
            .await
            .expect("submit");
    }

    /// Waits until the URL satisfies `pred`.
    pub async fn wait_for_url(&self, what: &str, pred: impl Fn(&Url) -> bool) -> Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if pred(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The echo upstream's report on the current page.
    pub async fn echo(&self) -> Value {
        let text = self.text("pre#echo").await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("echo is not JSON ({e}): {text}"))
    }

    /// Runs `fetch(path, init)` in the page and returns `{status, type, body}`.
    pub async fn fetch(&self, path: &str, init: Value) -> Value {
        let script = r#"
            const [path, init, done] = arguments;
            fetch(path, init)
              .then(async r => done({status: r.status, type: r.type, body: await r.text()}))
              .catch(e => done({error: String(e)}));
        "#;
        self.client.execute_async(script, vec![json!(path), init]).await.expect("fetch in page")
    }

    /// Names of the cookies the browser holds for the current page.
    pub async fn cookie_names(&self) -> Vec<String> {
        self.client.get_all_cookies().await.expect("cookies").iter().map(|c| c.name().to_owned()).collect()
    }

    /// Ends the WebDriver session (closing Chromium).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Kills chromedriver's process group if `Browser::start` fails midway.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_group(child);
        }
    }
}

fn kill_group(child: &mut Child) {
    // The group was created for this chromedriver (process_group(0)), so
    // its id is the driver's pid: this ends exactly what we started.
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
