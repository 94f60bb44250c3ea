//! Actor-message tests: the email actor alone.

use cart::api::CartItem;
use currency::api::Money;
use orders::api::{Order, OrderItem};
use runtime::{Empty, ServiceRef, ServiceRegistry, start_alone};
use shipping::api::Address;

use crate::api::{Email, EmailError, ListSentEmails, SendOrderConfirmation, SentEmail};
use crate::{EmailConfig, EmailModule};

async fn email(config: EmailConfig, dir: &std::path::Path) -> ServiceRef<Email> {
    start_alone::<EmailModule>(config, ServiceRegistry::new(), dir)
        .await
        .unwrap()
}

fn order() -> Order {
    Order {
        order_id: "order-1".into(),
        customer_id: "u1".into(),
        email: "someone@example.com".into(),
        shipping_tracking_id: "AB-44123-221234567".into(),
        shipping_cost: Money::new("EUR", 7, 952_233_525),
        shipping_address: Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        },
        items: vec![OrderItem {
            item: CartItem {
                product_id: "OLJCESPC7Z".into(),
                quantity: 2,
            },
            cost: Money::new("EUR", 17, 682_441_398),
            name: "Sunglasses <& co>".into(),
        }],
        total: Money::new("EUR", 43, 317_116_321),
        transaction_id: "tx".into(),
        placed_at: 1,
        cart_read_at: None,
    }
}

fn send(to: &str) -> SendOrderConfirmation {
    SendOrderConfirmation {
        email: to.into(),
        order: order(),
    }
}

/// The emails `service` lists as sent to `to` (every address if empty),
/// newest first, at most `limit`.
async fn sent(service: &ServiceRef<Email>, to: &str, limit: Option<usize>) -> Vec<SentEmail> {
    let list = ListSentEmails {
        to: to.to_owned(),
        limit,
    };
    service.call(list).await.unwrap().unwrap().emails
}

#[actix_rt::test]
async fn a_confirmation_is_rendered_and_recorded() {
    let dir = std::env::temp_dir();
    let service = email(EmailConfig::default(), &dir).await;
    assert_eq!(
        service.call(send("someone@example.com")).await.unwrap(),
        Ok(Empty {})
    );
    let sent = sent(&service, "someone@example.com", None).await;
    assert_eq!(sent.len(), 1);
    let email = &sent[0];
    assert_eq!(email.subject, "Your Boutique order order-1");
    for needle in [
        "order-1",
        "AB-44123-221234567",
        "2 x Sunglasses <& co> (OLJCESPC7Z) at €17.68",
        "€7.95",
        "€43.31",
    ] {
        assert!(
            email.text.contains(needle),
            "{needle:?} not in:\n{}",
            email.text
        );
    }
    // The HTML escapes what it shows.
    assert!(
        email.html.contains("Sunglasses &#60;&#38; co&#62;")
            || email.html.contains("Sunglasses &lt;&amp; co&gt;"),
        "{}",
        email.html
    );
    assert!(!email.html.contains("<& co>"));
}

#[actix_rt::test]
async fn bad_addresses_are_refused() {
    let service = email(EmailConfig::default(), &std::env::temp_dir()).await;
    for bad in ["", "nobody", "a@b", "a b@c.d", "@example.com"] {
        assert_eq!(
            service.call(send(bad)).await.unwrap(),
            Err(EmailError::InvalidAddress(bad.into())),
            "{bad:?}"
        );
    }
}

/// Addresses a mail server takes unquoted are taken; what a header would
/// read otherwise (two recipients, a display name), or no server could
/// reach, is not.
#[test]
fn addresses_are_checked_as_mail_servers_read_them() {
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_label = format!("a@{}.com", "b".repeat(64));
    let too_long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
    for bad in [
        "x,y@b.com",
        "<a@b.com",
        "a@b.com>",
        "a;b@c.d",
        "\"q@b.c",
        "a\"b@c.d",
        "a(b)@c.d",
        "a@b..com",
        "a@.b.com",
        "a@b.com.",
        "a@-.-",
        "a@-b.com",
        "a@b-.com",
        "a@b_c.com",
        "a@[192.0.2.1]",
        ".a@b.com",
        "a.@b.com",
        "a..b@c.d",
        "a@b@c.d",
        "a\tb@c.d",
        "a\u{2028}b@c.d",
        // Characters that show nothing: the same address to the eye.
        "ada\u{200B}@example.com",
        "\u{FEFF}ada@example.com",
        "ada@exam\u{202E}ple.com",
        "a\u{2060}da@example.com",
        "ada\u{E0041}@example.com",
        &long_local,
        &long_label,
        &too_long,
    ] {
        assert!(!crate::api::is_address(bad), "{bad:?} was taken");
    }
    let longest_local = format!("{}@example.com", "a".repeat(64));
    for good in [
        "someone@example.com",
        "first.last+shop@mail.example.co.uk",
        "o'brien@example.ie",
        "x{y}~z=1!#$%&*/?^_`|@ex-ample.org",
        "josé@exämple.es",
        "jose\u{301}@example.es",
        "i\u{307}@example.tr",
        "अनु@उदाहरण.भारत",
        "a@b.c",
        &longest_local,
    ] {
        assert!(crate::api::is_address(good), "{good:?} was refused");
    }
}

#[actix_rt::test]
async fn only_the_most_recent_emails_are_kept() {
    let config = EmailConfig {
        keep: 2,
        ..EmailConfig::default()
    };
    let service = email(config, &std::env::temp_dir()).await;
    for to in ["a@x.com", "b@x.com", "c@x.com"] {
        service.call(send(to)).await.unwrap().unwrap();
    }
    let all = sent(&service, "", None).await;
    let to: Vec<&str> = all.iter().map(|e| e.to.as_str()).collect();
    assert_eq!(to, ["c@x.com", "b@x.com"]);
    // Asked for fewer: the newest.
    let newest = sent(&service, "", Some(1)).await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].to, "c@x.com");
}

#[actix_rt::test]
async fn keep_0_sends_and_keeps_none() {
    let config = EmailConfig {
        keep: 0,
        ..EmailConfig::default()
    };
    let service = email(config, &std::env::temp_dir()).await;
    service.call(send("a@x.com")).await.unwrap().unwrap();
    let all = sent(&service, "", None).await;
    assert!(all.is_empty(), "{all:?}");
}

#[actix_rt::test]
async fn the_directory_sink_writes_files() {
    let data = storage::testing::TempDir::new("email");
    let dir = data.path().join("outbox");
    let config = EmailConfig {
        sink: "directory".into(),
        directory: Some(dir.clone()),
        keep: 10,
    };
    let service = email(config, data.path()).await;
    service
        .call(send("someone@example.com"))
        .await
        .unwrap()
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[actix_rt::test]
async fn a_sink_that_cannot_write_fails_the_email_and_does_not_remember_it() {
    // The directory is a file: it cannot be made.
    let data = storage::testing::TempDir::new("email");
    let file = data.path().join("not-a-directory");
    std::fs::write(&file, "in the way").unwrap();
    let config = EmailConfig {
        sink: "directory".into(),
        directory: Some(file.clone()),
        keep: 10,
    };
    let service = email(config, &std::env::temp_dir()).await;
    let failed = service.call(send("someone@example.com")).await.unwrap();
    assert!(
        matches!(&failed, Err(EmailError::SinkFailed(why)) if why.contains("cannot create")),
        "{failed:?}"
    );
    let sent = sent(&service, "", None).await;
    assert!(sent.is_empty(), "{sent:?}");
}

#[actix_rt::test]
async fn an_unknown_sink_stops_the_start() {
    let config = EmailConfig {
        sink: "carrier-pigeon".into(),
        ..EmailConfig::default()
    };
    let error = start_alone::<EmailModule>(config, ServiceRegistry::new(), std::env::temp_dir())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("carrier-pigeon"), "{error}");
}

#[actix_rt::test]
async fn an_order_id_that_would_break_the_subject_header_is_refused() {
    let dir = std::env::temp_dir();
    let service = email(EmailConfig::default(), &dir).await;
    let mut message = send("someone@example.com");
    message.order.order_id = "o1\r\nBcc: everyone@example.com".into();
    let refused = service.call(message).await.unwrap();
    assert!(
        matches!(&refused, Err(EmailError::Render(why)) if why.contains("control characters")),
        "{refused:?}"
    );
    let sent = sent(&service, "someone@example.com", None).await;
    assert!(sent.is_empty(), "{sent:?}");
}

#[actix_rt::test]
async fn a_line_break_in_any_text_of_the_order_is_refused_and_named() {
    let service = email(EmailConfig::default(), &std::env::temp_dir()).await;
    let mut street = send("someone@example.com");
    street.order.shipping_address.street_address = "1 Main St\nERROR forged log line".into();
    let mut name = send("someone@example.com");
    name.order.items[0].name = "Mug\u{1b}[31m".into();
    for (message, field) in [(street, "street address"), (name, "product name")] {
        let refused = service.call(message).await.unwrap();
        assert!(
            matches!(&refused, Err(EmailError::Render(why))
                if why.contains(field) && why.contains("control characters")),
            "{refused:?}"
        );
    }
    let sent = sent(&service, "someone@example.com", None).await;
    assert!(sent.is_empty(), "{sent:?}");
}

/// What is kept is bounded in bytes too, and what is listed fits in one
/// answer: the oldest go first, the newest are listed.
#[actix_rt::test]
async fn kept_and_listed_emails_are_bounded_in_bytes() {
    let service = email(EmailConfig::default(), &std::env::temp_dir()).await;
    service.call(send("first@x.com")).await.unwrap().unwrap();
    let one = crate::actor::size(&sent(&service, "first@x.com", None).await[0]);
    let more = crate::actor::MAX_KEPT_BYTES / one + 2;
    for _ in 0..more {
        service.call(send("b@x.com")).await.unwrap().unwrap();
    }
    // Dropped for room, though `keep` (1000) allows far more.
    assert!(sent(&service, "first@x.com", None).await.is_empty());
    let listed = sent(&service, "", Some(1000)).await;
    let bytes: usize = listed.iter().map(crate::actor::size).sum();
    assert!(
        !listed.is_empty() && bytes <= crate::actor::MAX_LISTED_BYTES,
        "{bytes}"
    );
    assert_eq!(listed.len(), crate::actor::MAX_LISTED_BYTES / one);
}
