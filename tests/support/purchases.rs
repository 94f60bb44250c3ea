//! Shoppers buying through the shop's web pages while faults happen, and
//! the audit afterwards: every acknowledged order is stored, and every
//! purchase was charged exactly once.
//!
//! Each shopper buys one thing at a time, as a person would: puts it in a
//! fresh cart, then submits the checkout form until the shop confirms the
//! order. After a 5xx the same form (the same idempotency key) is sent
//! again, since the first try may or may not have gone through; after a
//! 409 (this checkout is used up: its charge was refunded, or cancelled
//! when its outcome was unknown) the cart page is loaded again for a new
//! form. Anything else ends the purchase as an error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use checkout::api::order_key;
use orders::api::{FindOrder, Orders};
use payment::api::{ChargeStatus, ListCharges, Payment};
use runtime::ServiceRef;

use super::shopper::{Shopper, checkout_form};

/// What the shoppers buy.
const PRODUCT: &str = "OLJCESPC7Z";

/// A shopper's pause before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One purchase, confirmed.
#[derive(Debug, Clone)]
pub struct Purchase {
    /// Who bought (a guest's customer id: the shoppers do not sign in).
    pub customer: String,
    /// Every idempotency key (checkout form) it used.
    pub keys: Vec<String>,
    /// The order the shop confirmed.
    pub order_id: String,
    /// Checkout submissions it took.
    pub attempts: u32,
}

/// What the shoppers did.
#[derive(Debug, Default)]
pub struct Report {
    /// Confirmed purchases.
    pub purchases: Vec<Purchase>,
    /// Every answer that was not the one hoped for, by status.
    pub statuses: BTreeMap<u16, usize>,
}

/// Shoppers at work in the background.
pub struct Shoppers {
    stop: Arc<AtomicBool>,
    confirmed: Arc<AtomicUsize>,
    handles: Vec<tokio::task::JoinHandle<Result<Report, String>>>,
}

impl Shoppers {
    /// Starts `count` shoppers at the shop at `url`.
    pub fn start(url: &str, count: usize) -> Shoppers {
        let stop = Arc::new(AtomicBool::new(false));
        let confirmed = Arc::new(AtomicUsize::new(0));
        let handles = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let confirmed = Arc::clone(&confirmed);
                let url = url.to_owned();
                actix_rt::spawn(async move {
                    let mut report = Report::default();
                    while !stop.load(Ordering::Acquire) {
                        let purchase = buy(&url, &mut report.statuses).await?;
                        report.purchases.push(purchase);
                        confirmed.fetch_add(1, Ordering::AcqRel);
                    }
                    Ok(report)
                })
            })
            .collect();
        Shoppers {
            stop,
            confirmed,
            handles,
        }
    }

    /// Waits until `count` more purchases are confirmed than now.
    pub async fn confirm_more(&self, count: usize) {
        let target = self.confirmed.load(Ordering::Acquire) + count;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        while self.confirmed.load(Ordering::Acquire) < target {
            poll.tick().await;
            assert!(
                std::time::Instant::now() < deadline,
                "no {count} purchases confirmed within 60 s"
            );
        }
    }

    /// Lets each shopper finish the purchase it is making, then stops them.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Release);
        let mut all = Report::default();
        for handle in self.handles {
            let report = tokio::time::timeout(Duration::from_secs(120), handle)
                .await
                .expect("a shopper could not finish a purchase within 120 s")
                .unwrap()
                .unwrap_or_else(|error| panic!("a purchase went wrong: {error}"));
            all.purchases.extend(report.purchases);
            for (status, count) in report.statuses {
                *all.statuses.entry(status).or_default() += count;
            }
        }
        all
    }
}

/// Buys one thing, retrying as a person would, until the shop confirms.
async fn buy(url: &str, statuses: &mut BTreeMap<u16, usize>) -> Result<Purchase, String> {
    let mut shopper = Shopper::new(url);
    loop {
        let fields = [
            ("product_id", PRODUCT.to_owned()),
            ("quantity", "1".to_owned()),
        ];
        let added = shopper.post_form("/cart", &fields).await;
        if added.status == 302 {
            break;
        }
        expect_unavailable(added.status, "adding to the cart", &added.body)?;
        *statuses.entry(added.status).or_default() += 1;
        tokio::time::sleep(RETRY_AFTER).await;
    }
    let mut keys = vec![fresh_form(&mut shopper, statuses).await?];
    let mut attempts = 0;
    loop {
        attempts += 1;
        let key = keys.last().unwrap().clone();
        let placed = shopper
            .post_form("/cart/checkout", &checkout_form(&key))
            .await;
        match placed.status {
            303 => {
                let location = placed.location.unwrap_or_default();
                let order_id = location
                    .strip_prefix("/order/")
                    .ok_or_else(|| format!("303 to {location:?}"))?
                    .to_owned();
                let customer = shopper.guest_id();
                return Ok(Purchase {
                    customer,
                    keys,
                    order_id,
                    attempts,
                });
            }
            409 => {
                *statuses.entry(409).or_default() += 1;
                keys.push(fresh_form(&mut shopper, statuses).await?);
            }
            status => {
                expect_unavailable(status, "checking out", &placed.body)?;
                *statuses.entry(status).or_default() += 1;
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// The cart page's checkout form: its idempotency key.
async fn fresh_form(
    shopper: &mut Shopper,
    statuses: &mut BTreeMap<u16, usize>,
) -> Result<String, String> {
    loop {
        let cart = shopper.get("/cart").await;
        if cart.status == 200 {
            return Ok(cart.hidden("idempotency_key"));
        }
        expect_unavailable(cart.status, "showing the cart", &cart.body)?;
        *statuses.entry(cart.status).or_default() += 1;
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// A fault may make the shop unavailable (503) for a while; any other
/// answer means something is wrong.
fn expect_unavailable(status: u16, doing: &str, body: &str) -> Result<(), String> {
    if status == 503 {
        Ok(())
    } else {
        Err(format!("{doing}: {status}: {body}"))
    }
}

/// Checks, through the services themselves, that every confirmed purchase
/// has its order stored and exactly one charge standing (the order's,
/// for its total), and that no other key of the purchase has an order or
/// a standing charge. Returns how many charges were refunded on the way.
pub async fn audit(
    purchases: &[Purchase],
    orders: &ServiceRef<Orders>,
    payment: &ServiceRef<Payment>,
) -> usize {
    let mut refunded = 0;
    for purchase in purchases {
        let mut stored = Vec::new();
        let mut standing = Vec::new();
        for key in &purchase.keys {
            let key = order_key(&purchase.customer, key);
            let found = orders
                .call(FindOrder {
                    idempotency_key: key.clone(),
                })
                .await
                .unwrap()
                .unwrap();
            stored.extend(found.order);
            let charges = payment
                .call(ListCharges {
                    idempotency_key: key.clone(),
                    limit: 1000,
                })
                .await
                .unwrap()
                .unwrap()
                .charges;
            for charge in charges {
                match charge.status {
                    ChargeStatus::Charged => standing.push(charge),
                    ChargeStatus::Refunded => refunded += 1,
                    // Cancelled before it was made: no money moved.
                    ChargeStatus::Cancelled => {}
                }
            }
        }
        assert_eq!(
            stored
                .iter()
                .map(|o| o.order_id.as_str())
                .collect::<Vec<_>>(),
            [purchase.order_id.as_str()],
            "purchase {purchase:?}: the confirmed order, and only it, must be stored"
        );
        let order = &stored[0];
        assert_eq!(
            standing
                .iter()
                .map(|c| c.transaction_id.as_str())
                .collect::<Vec<_>>(),
            [order.transaction_id.as_str()],
            "purchase {purchase:?}: exactly one charge must stand, the order's"
        );
        assert_eq!(standing[0].amount, order.total, "purchase {purchase:?}");
    }
    refunded
}
