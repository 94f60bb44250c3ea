//! The shop in a real browser: headless Chromium, driven over WebDriver,
//! signs up, buys two products and finds the order in "My orders", with
//! the shop in one process and split over three nodes. Screenshots of the
//! pages are saved under `target/browser/<runner>/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the test says so and passes, unless
//! `BOUTIQUE_TEST_BROWSER=required` (as in CI), when it fails.

mod support;

use std::io::Write;
use std::path::PathBuf;

use storage::testing::TempDir;
use support::webdriver::{Driver, browser_or_skip};
use support::{App, Runner};

/// Where screenshots go: `target/browser/<runner>/`.
fn screenshots(runner: Runner) -> PathBuf {
    let name = format!("{runner:?}").to_lowercase();
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser")
        .join(name)
}

#[actix_rt::test]
async fn local_a_person_signs_up_buys_two_products_and_finds_the_order() {
    signs_up_buys_two_products_and_finds_the_order(Runner::Local).await;
}

#[actix_rt::test]
async fn split_a_person_signs_up_buys_two_products_and_finds_the_order() {
    signs_up_buys_two_products_and_finds_the_order(Runner::Split).await;
}

async fn signs_up_buys_two_products_and_finds_the_order(runner: Runner) {
    let Some((chromedriver, chromium)) = browser_or_skip("browser test") else {
        return;
    };
    let app = App::start(runner).await;
    let screenshots = || screenshots(runner);
    let shop = app.shop_url().await;
    let profile = TempDir::new("chromium");
    let browser = Driver::start(chromedriver, chromium, profile.path()).await;

    // Sign up.
    browser.go(&format!("{shop}/signup")).await;
    browser
        .find("input[name=name]")
        .await
        .type_text("Ada Lovelace")
        .await;
    browser
        .find("input[name=email]")
        .await
        .type_text("ada@example.com")
        .await;
    browser
        .find("input[name=password]")
        .await
        .type_text("correct horse battery")
        .await;
    browser.find("form button[type=submit]").await.click().await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.find(".who").await.text().await, "Hi, Ada Lovelace");
    browser.screenshot(&screenshots().join("home.png")).await;

    // Two sunglasses, from the home page's grid.
    browser
        .find("a[href='/product/OLJCESPC7Z']")
        .await
        .click()
        .await;
    browser
        .find("#quantity option[value='2']")
        .await
        .click()
        .await;
    browser.find("form.add button").await.click().await;
    browser.wait_for_path("/cart").await;
    assert_eq!(browser.find("#cart-count").await.text().await, "2");
    // And a mug.
    browser.go(&format!("{shop}/product/6E92ZMYYFZ")).await;
    browser.find("form.add button").await.click().await;
    browser.wait_for_path("/cart").await;
    assert_eq!(browser.find("#cart-count").await.text().await, "3");
    // 2 × $19.99 + $8.99 + $8.99 shipping.
    assert_eq!(browser.find("#total").await.text().await, "$57.96");
    browser.screenshot(&screenshots().join("cart.png")).await;

    // Check out with the form's defaults.
    browser
        .find("#checkout button[type=submit]")
        .await
        .click()
        .await;
    let order_id = browser.find("#order-id").await.text().await;
    browser.wait_for_path(&format!("/order/{order_id}")).await;
    assert_eq!(
        browser.find("h1").await.text().await,
        "Your order is complete!"
    );
    assert_eq!(browser.find("#total-paid").await.text().await, "$57.96");
    let shot = screenshots().join("order-page.png");
    browser.screenshot(&shot).await;
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "the screenshot is empty"
    );

    // My orders.
    browser.find("a[href='/orders']").await.click().await;
    browser.wait_for_path("/orders").await;
    let link = browser.find(&format!("a[href='/order/{order_id}']")).await;
    assert_eq!(link.text().await, order_id);
    assert_eq!(browser.find("#cart-count").await.text().await, "0");

    // Euros, picked in the header: the select submits its form by itself
    // (through /static/shop.js: the pages allow no inline script), and the
    // page comes back priced in euros with EUR chosen.
    browser.go(&format!("{shop}/")).await;
    browser
        .find("#currency_code option[value='EUR']")
        .await
        .click()
        .await;
    browser
        .find("#currency_code option[value='EUR'][selected]")
        .await;
    let price = browser.find(".price").await.text().await;
    assert!(price.starts_with('€'), "{price}");
    browser.quit().await;
    let _ = writeln!(
        std::io::stderr(),
        "browser test: screenshots in {}",
        screenshots().display()
    );
}
