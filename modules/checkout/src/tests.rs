//! Actor-message tests: the checkout actor with the real cart, catalog,
//! currency, payment, shipping, orders and email modules on a fresh data
//! directory, and a failing orders store where a failure is the point.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, ResponseFuture};
use cart::api::{
    AddItem, CartError, CartItem, CartService, EmptyCart, GetCart, MergeCarts, RemoveOrderedLines,
    RemoveOrderedLinesResponse,
};
use cart::{CartConfig, CartModule};
use catalog::CatalogModule;
use currency::CurrencyModule;
use currency::api::{CurrencyError, Money};
use email::api::{Email, EmailError, ListSentEmails, SendOrderConfirmation};
use email::{EmailConfig, EmailModule};
use orders::OrdersModule;
use orders::api::{
    ClaimOrders, ClaimOrdersResponse, ClaimUnfinished, ClaimUnfinishedResponse, ConfirmOrder,
    ConfirmOrderResponse, FindCartsToEmpty, FindCartsToEmptyResponse, FindOrder, FindOrderResponse,
    FindSettledOrder, GetOrder, ListOrders, ListOrdersResponse, Order, Orders, OrdersError,
    RecordStepDone, SaveOrder, SaveOrderResponse,
};
use payment::PaymentModule;
use payment::api::{
    CancelCharge, Charge, ChargeRecord, ChargeResponse, ChargeStatus, CreditCardInfo, ListCharges,
    Payment, PaymentError, Refund,
};
use runtime::{Call, Module, ServiceRef, ServiceRegistry, start_alone};
use shipping::api::{Address, GetQuote, ShipOrder, ShipOrderResponse, Shipping, ShippingError};
use shipping::{ShippingConfig, ShippingModule};
use storage::testing::TempDir;

use crate::api::{ChargeLeft, Checkout, CheckoutError, KeyLeft, PlaceOrder, order_key};
use crate::{CheckoutConfig, CheckoutModule};

/// Sunglasses, $19.99.
const SUNGLASSES: &str = "OLJCESPC7Z";
/// Mug, $8.99.
const MUG: &str = "6E92ZMYYFZ";

/// A whole shop minus the frontend, on one fresh data directory.
struct Shop {
    checkout: ServiceRef<Checkout>,
    /// Orders held back by [`LateOrders`], when that is the fault.
    held: Arc<Mutex<Vec<SaveOrder>>>,
    /// Charges held back by [`LatePayment`], when that is the fault.
    held_charges: Arc<Mutex<Vec<Charge>>>,
    /// The real orders service behind [`LateOrders`].
    real_orders: Option<ServiceRef<Orders>>,
    cart: ServiceRef<CartService>,
    payment: ServiceRef<Payment>,
    orders: ServiceRef<Orders>,
    email: ServiceRef<Email>,
    /// Every service, as the checkout module was given them.
    registry: ServiceRegistry,
    /// Confirmations asked of [`FlakyEmail`], when that is the fault.
    emails_tried: Arc<std::sync::atomic::AtomicUsize>,
    _data: TempDir,
}

/// What to break.
#[derive(Default)]
struct Faults {
    shipping_fails: bool,
    /// Every `ShipOrder` takes this long (and then ships).
    shipping_slow: Option<Duration>,
    orders_refuse: bool,
    /// The orders store cannot even be read (`FindOrder` fails too).
    orders_unreadable: bool,
    /// Orders are stored late: `SaveOrder` is held and never answered.
    orders_late: bool,
    /// With `orders_late`, only the first `SaveOrder` is held; the store
    /// refuses the ones after it (it stored nothing).
    orders_refused_after_the_first: bool,
    /// This charge (1: the first) is held and never answered (payment
    /// stalled with it in hand).
    held_charge: Option<usize>,
    /// The first this many confirmations cannot be sent.
    emails_failing: usize,
    /// Every confirmation takes this long to send (and then is sent).
    email_slow: Option<Duration>,
    /// The first this many `EmptyCart`s fail.
    cart_emptyings_failing: usize,
    /// The first this many `RemoveOrderedLines` fail.
    cart_removals_failing: usize,
    /// Every `EmptyCart` takes this long (and then empties the cart).
    cart_emptying_slow: Option<Duration>,
    /// The finisher's timings.
    finishing: CheckoutConfig,
    /// Another submission's order, finished, lands under the key just
    /// before this one's is stored.
    orders_beaten: bool,
    /// The first `Charge` is recorded, but payment answers that its
    /// ledger failed (its connection lost after the COMMIT went out).
    charge_answer_lost: bool,
    /// The first `SaveOrder` is stored, but orders answers that its store
    /// failed, as above.
    save_answer_lost: bool,
    /// This `FindOrder` (1: the first) finds nothing, whatever is stored
    /// (as a lookup made just before another replica stored the order).
    lookup_missing: Option<usize>,
}

async fn started<M: Module>(
    config: M::Config,
    registry: &mut ServiceRegistry,
    dir: &TempDir,
) -> ServiceRef<M::Service> {
    let service = start_alone::<M>(config, registry.clone(), dir.path())
        .await
        .unwrap();
    registry.insert(service.clone());
    service
}

async fn shop(faults: Faults) -> Shop {
    let data = TempDir::new("checkout");
    let mut registry = ServiceRegistry::new();
    started::<CatalogModule>(Default::default(), &mut registry, &data).await;
    started::<CurrencyModule>(Default::default(), &mut registry, &data).await;
    let cart = started::<CartModule>(CartConfig::default(), &mut registry, &data).await;
    if faults.cart_emptyings_failing > 0
        || faults.cart_removals_failing > 0
        || faults.cart_emptying_slow.is_some()
    {
        let flaky = FlakyCart {
            real: cart.clone(),
            failing: faults.cart_emptyings_failing,
            removals_failing: faults.cart_removals_failing,
            delay: faults.cart_emptying_slow.unwrap_or_default(),
        };
        registry.insert(ServiceRef::local(CartService::start(flaky)));
    }
    let held_charges = Arc::new(Mutex::new(Vec::new()));
    let payment = if faults.charge_answer_lost {
        let real = start_alone::<PaymentModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        let lossy = AnswerLost {
            real: real.clone(),
            lost: true,
        };
        registry.insert(ServiceRef::local(Payment::start(lossy)));
        real
    } else if let Some(held_charge) = faults.held_charge {
        let real = start_alone::<PaymentModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        let late = LatePayment {
            real: real.clone(),
            held: Arc::clone(&held_charges),
            charges_seen: 0,
            held_charge,
        };
        // Checkout gives up on a held charge after 300 ms.
        let late = ServiceRef::local(Payment::start(late)).with_timeout(Duration::from_millis(300));
        registry.insert(late);
        real
    } else {
        started::<PaymentModule>(Default::default(), &mut registry, &data).await
    };
    let shipping = ShippingConfig {
        fail_shipments: faults.shipping_fails,
    };
    let shipping = started::<ShippingModule>(shipping, &mut registry, &data).await;
    if let Some(delay) = faults.shipping_slow {
        let slow = SlowShipping {
            real: shipping,
            delay,
        };
        registry.insert(ServiceRef::local(Shipping::start(slow)));
    }
    let email = started::<EmailModule>(EmailConfig::default(), &mut registry, &data).await;
    let emails_tried = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    if faults.emails_failing > 0 || faults.email_slow.is_some() {
        let flaky = FlakyEmail {
            real: email.clone(),
            failing: faults.emails_failing,
            delay: faults.email_slow.unwrap_or_default(),
            tried: Arc::clone(&emails_tried),
        };
        registry.insert(ServiceRef::local(Email::start(flaky)));
    }
    let held = Arc::new(Mutex::new(Vec::new()));
    let mut real_orders = None;
    let orders = if faults.orders_refuse || faults.orders_unreadable {
        let refusing = RefusingOrders {
            unreadable: faults.orders_unreadable,
        };
        let orders = Orders::start(refusing);
        let orders = ServiceRef::local(orders);
        registry.insert(orders.clone());
        orders
    } else if faults.orders_late {
        let real = start_alone::<OrdersModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        real_orders = Some(real.clone());
        let late = LateOrders {
            real,
            held: Arc::clone(&held),
            refuse_after_the_first: faults.orders_refused_after_the_first,
        };
        // Checkout gives up on a held order after 300 ms.
        let orders =
            ServiceRef::local(Orders::start(late)).with_timeout(Duration::from_millis(300));
        registry.insert(orders.clone());
        orders
    } else if faults.save_answer_lost {
        let real = start_alone::<OrdersModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        let lossy = AnswerLost { real, lost: true };
        let orders = ServiceRef::local(Orders::start(lossy));
        registry.insert(orders.clone());
        orders
    } else if let Some(miss) = faults.lookup_missing {
        let real = start_alone::<OrdersModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        let missing = LookupMissing {
            real,
            lookups: 0,
            miss,
        };
        let orders = ServiceRef::local(Orders::start(missing));
        registry.insert(orders.clone());
        orders
    } else if faults.orders_beaten {
        let real = start_alone::<OrdersModule>(Default::default(), registry.clone(), data.path())
            .await
            .unwrap();
        let beaten = BeatenOrders { real };
        let orders = ServiceRef::local(Orders::start(beaten));
        registry.insert(orders.clone());
        orders
    } else {
        started::<OrdersModule>(Default::default(), &mut registry, &data).await
    };
    let checkout = started::<CheckoutModule>(faults.finishing.clone(), &mut registry, &data).await;
    Shop {
        checkout,
        held,
        held_charges,
        real_orders,
        cart,
        payment,
        orders,
        email,
        registry,
        emails_tried,
        _data: data,
    }
}

impl Shop {
    async fn add(&self, user: &str, product: &str, quantity: i32) {
        let add = AddItem {
            user_id: user.into(),
            item: CartItem {
                product_id: product.into(),
                quantity,
            },
        };
        self.cart.call(add).await.unwrap().unwrap();
    }

    async fn cart(&self, user: &str) -> Vec<CartItem> {
        self.cart
            .call(GetCart {
                user_id: user.into(),
            })
            .await
            .unwrap()
            .unwrap()
            .items
    }

    /// The charges of `user`'s checkout `key`.
    async fn charges(&self, user: &str, key: &str) -> Vec<ChargeRecord> {
        let list = ListCharges {
            idempotency_key: order_key(user, key),
            limit: 100,
        };
        self.payment.call(list).await.unwrap().unwrap().charges
    }

    /// Stores the orders [`LateOrders`] held, late, as a stalled node that
    /// resumes would; returns how many.
    async fn store_held_orders(&self) -> usize {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        let real = self.real_orders.clone().expect("the orders are late");
        let count = held.len();
        for save in held {
            real.call(save).await.unwrap().unwrap();
        }
        count
    }

    /// The emails sent to `address`.
    async fn emails(&self, address: &str) -> Vec<email::api::SentEmail> {
        let list = ListSentEmails {
            to: address.into(),
            limit: None,
        };
        self.email.call(list).await.unwrap().unwrap().emails
    }

    /// How many emails were sent to `address`.
    async fn sent_to(&self, address: &str) -> usize {
        self.emails(address).await.len()
    }

    async fn orders(&self, user: &str) -> Vec<Order> {
        let list = ListOrders {
            customer_id: user.into(),
            before: None,
        };
        self.orders.call(list).await.unwrap().unwrap().orders
    }

    async fn place(&self, request: PlaceOrder) -> Result<Order, CheckoutError> {
        self.checkout
            .call(request)
            .await
            .unwrap()
            .map(|placed| placed.order)
    }
}

fn visa() -> CreditCardInfo {
    CreditCardInfo {
        credit_card_number: "4432-8015-6152-0454".into(),
        credit_card_cvv: 672,
        credit_card_expiration_year: 2099,
        credit_card_expiration_month: 1,
    }
}

fn request(user: &str, currency: &str, key: &str) -> PlaceOrder {
    PlaceOrder {
        user_id: user.into(),
        user_currency: currency.into(),
        address: Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        },
        email: "someone@example.com".into(),
        credit_card: visa(),
        idempotency_key: key.into(),
        expected_total: None,
    }
}

#[actix_rt::test]
async fn an_order_is_charged_shipped_stored_confirmed_and_the_cart_emptied() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 2).await;
    shop.add("u1", MUG, 1).await;

    let order = shop.place(request("u1", "USD", "k1")).await.unwrap();

    // 2 × 19.99 + 8.99 + 8.99 shipping, worked out by hand.
    assert_eq!(order.total, Money::new("USD", 57, 960_000_000));
    assert_eq!(order.shipping_cost, Money::new("USD", 8, 990_000_000));
    let names: Vec<_> = order.items.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names, ["Sunglasses", "Mug"]);
    assert!(!order.shipping_tracking_id.is_empty());

    let charges = shop.charges("u1", "k1").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount, order.total);
    assert_eq!(charges[0].status, ChargeStatus::Charged);
    assert_eq!(charges[0].transaction_id, order.transaction_id);

    assert_eq!(shop.orders("u1").await, vec![order.clone()]);
    assert_eq!(shop.cart("u1").await, vec![]);

    let sent = shop.emails("someone@example.com").await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains(&order.order_id), "{}", sent[0].text);
}

#[actix_rt::test]
async fn prices_are_converted_into_the_customers_currency() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;

    let order = shop.place(request("u1", "EUR", "k1")).await.unwrap();

    assert_eq!(order.total.currency_code, "EUR");
    assert_eq!(order.items[0].cost.currency_code, "EUR");
    assert_eq!(order.shipping_cost.currency_code, "EUR");
    // 19.99 USD is 17.682441398 EUR, shown and charged as 17.68; the
    // shipping, 8.99 USD, is 7.952233525 EUR, so 7.95.
    assert_eq!(order.items[0].cost, Money::new("EUR", 17, 680_000_000));
    assert_eq!(order.shipping_cost, Money::new("EUR", 7, 950_000_000));
    assert_eq!(order.total, Money::new("EUR", 25, 630_000_000));
    assert_eq!(shop.charges("u1", "k1").await[0].amount, order.total);
}

#[actix_rt::test]
async fn the_same_checkout_submitted_twice_at_once_or_later_is_one_order_and_one_charge() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;

    let (first, second) = futures_util::future::join(
        shop.place(request("u1", "USD", "double")),
        shop.place(request("u1", "USD", "double")),
    )
    .await;
    let first = first.unwrap();
    assert_eq!(second.unwrap(), first);
    // Later, with the cart already emptied: still the same order.
    assert_eq!(
        shop.place(request("u1", "USD", "double")).await.unwrap(),
        first
    );

    assert_eq!(shop.charges("u1", "double").await.len(), 1);
    assert_eq!(shop.orders("u1").await.len(), 1);
}

#[actix_rt::test]
async fn two_customers_who_pick_the_same_key_each_get_their_own_order_and_charge() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    shop.add("u2", MUG, 2).await;

    let (first, second) = futures_util::future::join(
        shop.place(request("u1", "USD", "same")),
        shop.place(request("u2", "USD", "same")),
    )
    .await;
    let (first, second) = (first.unwrap(), second.unwrap());

    assert_eq!(first.customer_id, "u1");
    assert_eq!(first.items[0].item.product_id, SUNGLASSES);
    assert_eq!(second.customer_id, "u2");
    assert_eq!(second.items[0].item.product_id, MUG);
    assert_ne!(first.transaction_id, second.transaction_id);
    // Later, the second customer's key again: their own order still.
    assert_eq!(
        shop.place(request("u2", "USD", "same")).await.unwrap(),
        second
    );
    for (user, order) in [("u1", &first), ("u2", &second)] {
        let charges = shop.charges(user, "same").await;
        assert_eq!(charges.len(), 1, "{user}: {charges:?}");
        assert_eq!(charges[0].transaction_id, order.transaction_id);
        assert_eq!(charges[0].amount, order.total);
        assert_eq!(shop.orders(user).await, vec![order.clone()]);
        assert_eq!(shop.cart(user).await, vec![]);
    }
}

#[actix_rt::test]
async fn different_keys_are_different_orders() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    let first = shop.place(request("u1", "USD", "a")).await.unwrap();
    shop.add("u1", MUG, 1).await;
    let second = shop.place(request("u1", "USD", "")).await.unwrap();
    assert_ne!(first.order_id, second.order_id);
    assert_eq!(shop.orders("u1").await.len(), 2);
}

#[actix_rt::test]
async fn an_empty_cart_is_refused_and_nothing_is_charged() {
    let shop = shop(Faults::default()).await;
    assert_eq!(
        shop.place(request("u1", "USD", "k")).await,
        Err(CheckoutError::EmptyCart)
    );
    assert_eq!(shop.charges("u1", "k").await, vec![]);
    assert_eq!(shop.orders("u1").await, vec![]);
}

/// The total the customer was shown is charged, or nothing: another
/// tab's add (or another currency) since is refused before any charge.
#[actix_rt::test]
async fn a_total_other_than_the_one_shown_is_refused_and_nothing_is_charged() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    // 19.99 + 8.99 shipping, as the cart page showed it.
    let shown = Money::new("USD", 28, 980_000_000);
    shop.add("u1", MUG, 1).await;
    let mut stale = request("u1", "USD", "k");
    stale.expected_total = Some(shown.clone());

    let refused = shop.place(stale.clone()).await;
    let total = Money::new("USD", 37, 970_000_000);
    assert_eq!(
        refused,
        Err(CheckoutError::TotalChanged {
            expected: shown.clone(),
            total: total.clone(),
        })
    );
    assert_eq!(shop.charges("u1", "k").await, vec![]);
    assert_eq!(shop.orders("u1").await, vec![]);
    assert_eq!(shop.cart("u1").await.len(), 2);
    // The same total in another currency is another total.
    let mut in_euros = stale.clone();
    in_euros.user_currency = "EUR".into();
    in_euros.expected_total = Some(total.clone());
    assert!(matches!(
        shop.place(in_euros).await,
        Err(CheckoutError::TotalChanged { .. })
    ));
    // Shown the new total, the same checkout goes through, charged it.
    stale.expected_total = Some(total.clone());
    let order = shop.place(stale).await.unwrap();
    assert_eq!(order.total, total);
    assert_eq!(shop.charges("u1", "k").await[0].amount, total);
}

/// A repeat whose lookup missed the order (another replica stored it just
/// after) finds the cart emptied by it: it answers that order, not "your
/// cart is empty".
#[actix_rt::test]
async fn a_repeat_that_finds_the_cart_emptied_by_its_own_order_answers_that_order() {
    let shop = shop(Faults {
        lookup_missing: Some(2),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let placed = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(shop.cart("u1").await, vec![]);

    let repeated = shop.place(request("u1", "USD", "k")).await;
    assert_eq!(repeated, Ok(placed));
    assert_eq!(shop.charges("u1", "k").await.len(), 1);
}

/// A placed order is answered once finishing it has waited FINISH_WAIT
/// (3 s), not for as long as a slow email module takes: the customer,
/// who waits only so long, is told the order is placed. The confirmation
/// goes on in the background, once.
#[actix_rt::test]
async fn a_slow_confirmation_does_not_hold_the_answer_that_the_order_is_placed() {
    let shop = shop(Faults {
        email_slow: Some(Duration::from_secs(4)),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let started = Instant::now();
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3_900), "{took:?}");
    assert_eq!(shop.orders("u1").await, vec![order.clone()]);
    assert_eq!(shop.cart("u1").await, vec![]);
    // Sent, once, and the order then confirmed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shop.confirmed("u1", "k").await {
        assert!(Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = shop.emails("someone@example.com").await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains(&order.order_id));
}

/// A checkout answered before its order is finished is not over: the
/// customer's next checkout (another key: the order page, then the cart
/// page's form, while the cart is still being emptied) waits for it, and
/// finds the cart emptied rather than paying for it again; a repeat of it
/// gets its order, and does not finish it a second time.
#[actix_rt::test]
async fn a_checkout_answered_before_its_cart_is_emptied_still_holds_the_next_one() {
    let shop = shop(Faults {
        cart_emptying_slow: Some(Duration::from_secs(4)),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let order = shop.place(request("u1", "USD", "k1")).await.unwrap();
    // Answered, with the cart not yet emptied.
    assert_eq!(shop.cart("u1").await.len(), 1);
    let (next, repeat) = tokio::join!(
        shop.place(request("u1", "USD", "k2")),
        shop.place(request("u1", "USD", "k1"))
    );
    assert_eq!(next, Err(CheckoutError::EmptyCart));
    assert_eq!(repeat, Ok(order));
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    assert_eq!(shop.cart("u1").await, vec![]);
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
}

#[actix_rt::test]
async fn a_declined_card_keeps_the_cart_and_stores_no_order() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    let mut declined = request("u1", "USD", "k");
    declined.credit_card.credit_card_number = "4432-8015-6152-0455".into(); // fails Luhn

    let result = shop.place(declined).await;

    assert_eq!(
        result,
        Err(CheckoutError::PaymentDeclined(PaymentError::InvalidCard))
    );
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert_eq!(shop.orders("u1").await, vec![]);
    assert_eq!(shop.charges("u1", "k").await, vec![]);
    // Fixing the card and trying again, with the same key, works.
    shop.place(request("u1", "USD", "k")).await.unwrap();
}

#[actix_rt::test]
async fn a_shipping_failure_after_the_charge_refunds_it_and_keeps_the_cart() {
    let shop = shop(Faults {
        shipping_fails: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let result = shop.place(request("u1", "USD", "k")).await;

    assert!(
        matches!(
            result,
            Err(CheckoutError::ShippingFailed {
                charge: ChargeLeft::Refunded,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().key_left(), KeyLeft::Settled);
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Refunded);
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert_eq!(shop.orders("u1").await, vec![]);

    // The same checkout again is used up: a 409 for a new form, and no
    // second charge.
    let again = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(
            again,
            Err(CheckoutError::CheckoutUsed(
                PaymentError::AlreadyRefunded { .. }
            ))
        ),
        "{again:?}"
    );
    assert_eq!(shop.charges("u1", "k").await.len(), 1);
}

#[actix_rt::test]
async fn an_orders_store_that_cannot_be_read_fails_the_checkout_before_any_charge() {
    let shop = shop(Faults {
        orders_unreadable: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let result = shop.place(request("u1", "USD", "k")).await;

    let Err(error @ CheckoutError::OrdersUnavailable(_)) = result else {
        panic!("{result:?}");
    };
    assert!(error.is_unavailable());
    assert!(
        error.to_string().ends_with("this attempt charged nothing"),
        "{error}"
    );
    assert_eq!(shop.charges("u1", "k").await, vec![]);
    assert_eq!(shop.cart("u1").await.len(), 1);
}

#[actix_rt::test]
async fn an_order_that_cannot_be_stored_is_refunded() {
    let shop = shop(Faults {
        orders_refuse: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let result = shop.place(request("u1", "USD", "k")).await;

    assert!(
        matches!(
            result,
            Err(CheckoutError::OrderNotStored {
                charge: ChargeLeft::Refunded,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(
        shop.charges("u1", "k").await[0].status,
        ChargeStatus::Refunded
    );
    assert_eq!(shop.cart("u1").await.len(), 1);
}

#[actix_rt::test]
async fn an_order_whose_storing_is_in_doubt_keeps_its_charge_and_the_same_checkout_finishes_it() {
    let shop = shop(Faults {
        orders_late: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    // The orders service takes the order and does not answer in time.
    let result = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(result, Err(CheckoutError::OrderOutcomeUnknown { .. })),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().key_left(), KeyLeft::Unfinished);
    // Not refunded: the order may yet be stored.
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Charged);

    // ...and it is, late, as a stalled node that resumes would store it.
    assert_eq!(shop.store_held_orders().await, 1);

    // The customer submits the same checkout again: that order, that
    // charge; and now the cart is emptied and the confirmation sent,
    // which the first submission never got to.
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert_eq!(shop.sent_to("someone@example.com").await, 0);
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(order.transaction_id, charges[0].transaction_id);
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Charged);
    assert_eq!(shop.orders("u1").await.len(), 1);
    assert_eq!(shop.cart("u1").await, vec![]);
    assert_eq!(shop.sent_to("someone@example.com").await, 1);

    // Once more: the same order, and no second email.
    assert_eq!(shop.place(request("u1", "USD", "k")).await.unwrap(), order);
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
}

#[actix_rt::test]
async fn a_charge_whose_outcome_is_unknown_is_cancelled_and_refused_if_it_comes_late() {
    let shop = shop(Faults {
        held_charge: Some(1),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    // Payment takes the charge and does not answer in time.
    let result = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(
            result,
            Err(CheckoutError::PaymentInDoubt {
                cancelled: true,
                ..
            })
        ),
        "{result:?}"
    );
    let records = shop.charges("u1", "k").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, ChargeStatus::Cancelled);
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert_eq!(shop.orders("u1").await, vec![]);

    // The charge goes through late, as a stalled node that resumes would
    // run it: refused, no money moves.
    let held = std::mem::take(&mut *shop.held_charges.lock().unwrap());
    assert_eq!(held.len(), 1);
    for charge in held {
        let late = shop.payment.call(charge).await.unwrap();
        assert!(
            matches!(late, Err(PaymentError::Cancelled { .. })),
            "{late:?}"
        );
    }
    let records = shop.charges("u1", "k").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, ChargeStatus::Cancelled);

    // The same checkout again is used up; a new one goes through.
    let again = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(
            again,
            Err(CheckoutError::CheckoutUsed(PaymentError::Cancelled { .. }))
        ),
        "{again:?}"
    );
    let order = shop.place(request("u1", "USD", "k2")).await.unwrap();
    assert_eq!(
        shop.charges("u1", "k2").await[0].transaction_id,
        order.transaction_id
    );
}

impl Shop {
    /// The one charge under `user`'s checkout `key`, which must stand.
    async fn standing_charge(&self, user: &str, key: &str) -> ChargeRecord {
        let charges = self.charges(user, key).await;
        assert_eq!(charges.len(), 1, "{charges:?}");
        assert_eq!(charges[0].status, ChargeStatus::Charged);
        charges.into_iter().next().unwrap()
    }

    /// Stores the order held back, late, then submits `u1`'s checkout `k`
    /// again, which must finish that order on `charge`, paid once.
    async fn late_order_finished_on(&self, charge: &ChargeRecord) {
        assert_eq!(self.store_held_orders().await, 1);
        let order = self.place(request("u1", "USD", "k")).await.unwrap();
        assert_eq!(order.transaction_id, charge.transaction_id);
        self.standing_charge("u1", "k").await;
        assert_eq!(self.orders("u1").await.len(), 1);
    }
}

/// Puts sunglasses in `u1`'s cart and submits checkout `k`, which is
/// charged and shipped and whose order the (late) orders store holds.
async fn first_submission_in_doubt(shop: &Shop) {
    shop.add("u1", SUNGLASSES, 1).await;
    let first = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(first, Err(CheckoutError::OrderOutcomeUnknown { .. })),
        "{first:?}"
    );
}

#[actix_rt::test]
async fn a_repeat_whose_charge_is_in_doubt_keeps_the_charge_whose_order_is_in_doubt() {
    let shop = shop(Faults {
        orders_late: true,
        held_charge: Some(2),
        ..Faults::default()
    })
    .await;
    first_submission_in_doubt(&shop).await;
    // The repeat's charge is held in turn. The charge under the key is the
    // first submission's, whose order may yet be stored: it stands.
    let second = shop.place(request("u1", "USD", "k")).await;
    assert!(
        matches!(
            second,
            Err(CheckoutError::PaymentInDoubt {
                cancelled: false,
                ..
            })
        ),
        "{second:?}"
    );
    let charge = shop.standing_charge("u1", "k").await;

    // The first order is stored late; the same checkout again finishes it,
    // paid once.
    shop.late_order_finished_on(&charge).await;
    assert_eq!(shop.cart("u1").await, vec![]);
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
}

#[actix_rt::test]
async fn a_repeat_that_cannot_store_its_order_keeps_the_charge_whose_order_is_in_doubt() {
    let shop = shop(Faults {
        orders_late: true,
        orders_refused_after_the_first: true,
        ..Faults::default()
    })
    .await;
    first_submission_in_doubt(&shop).await;
    // The repeat takes up that charge, and the store refuses its order.
    // The charge is the first submission's, whose order may yet be
    // stored: it stands, and the customer is told to submit again.
    let second = shop.place(request("u1", "USD", "k")).await;
    let Err(error @ CheckoutError::OrderNotStored { charge, .. }) = &second else {
        panic!("{second:?}");
    };
    assert_eq!(*charge, ChargeLeft::KeptForAnotherSubmission);
    assert!(error.is_unavailable());
    assert_eq!(error.key_left(), KeyLeft::Unfinished);
    assert!(
        error.to_string().contains("submit the same checkout again"),
        "{error}"
    );
    let charge = shop.standing_charge("u1", "k").await;

    // The first order lands late: the same checkout again finishes it, on
    // the charge that stood. (Had the repeat refunded it, this order
    // would stand on money given back.)
    shop.late_order_finished_on(&charge).await;
}

#[actix_rt::test]
async fn an_order_another_submission_stored_and_finished_first_is_not_finished_again() {
    let shop = shop(Faults {
        orders_beaten: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    // The answer is the other submission's order, finished by it: this
    // one neither empties the cart nor sends the confirmation again.
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(order.order_id, "the-other-submissions-order");
    assert_eq!(shop.sent_to("someone@example.com").await, 0);
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert_eq!(
        shop.standing_charge("u1", "k").await.transaction_id,
        order.transaction_id
    );
}

/// Timings that let the finisher take an order as soon as it is left
/// unfinished.
fn finishing_at_once() -> CheckoutConfig {
    CheckoutConfig {
        finish_after_ms: 1,
        finisher_every_ms: 10,
    }
}

impl Shop {
    /// Whether the order under `user`'s checkout `key` is confirmed.
    async fn confirmed(&self, user: &str, key: &str) -> bool {
        let find = FindOrder {
            idempotency_key: order_key(user, key),
        };
        self.orders.call(find).await.unwrap().unwrap().confirmed
    }

    /// Starts a second checkout module on the same services, whose
    /// finisher takes unfinished orders at once.
    async fn start_a_finisher(&self) {
        self.start_a_finisher_with(finishing_at_once()).await;
    }

    /// Starts a second checkout module on the same services, its finisher
    /// timed by `config`.
    async fn start_a_finisher_with(&self, config: CheckoutConfig) {
        start_alone::<CheckoutModule>(config, self.registry.clone(), self._data.path())
            .await
            .unwrap();
    }

    /// Waits until the order under `user`'s checkout `key` is confirmed.
    async fn until_confirmed(&self, user: &str, key: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.confirmed(user, key).await {
            assert!(
                std::time::Instant::now() < deadline,
                "the order was never finished"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[actix_rt::test]
async fn a_confirmation_that_could_not_be_sent_is_sent_later_once() {
    // The shop's own finisher waits a minute: the test's starts later.
    let shop = shop(Faults {
        emails_failing: 1,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    // The order stands, though its confirmation failed; the cart is empty.
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(shop.orders("u1").await, vec![order]);
    assert_eq!(shop.cart("u1").await, vec![]);
    assert!(!shop.confirmed("u1", "k").await);
    // The customer puts the same again in the cart, to buy it again.
    shop.add("u1", SUNGLASSES, 1).await;

    // The finisher sends the confirmation, and then the order is
    // finished; the cart, emptied already, is left alone.
    shop.start_a_finisher().await;
    shop.until_confirmed("u1", "k").await;
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
    assert_eq!(shop.cart("u1").await.len(), 1);
}

/// A submission of the checkout that comes while the finisher of its
/// module is finishing its order waits for it and gets the order: it
/// found the order unfinished too, finished it beside the finisher, and
/// the confirmation went twice.
#[actix_rt::test]
async fn a_checkout_sent_again_while_its_order_is_finished_gets_it_and_one_confirmation() {
    use std::sync::atomic::Ordering;
    let shop = shop(Faults {
        emails_failing: 1,
        email_slow: Some(Duration::from_millis(1_500)),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert!(!shop.confirmed("u1", "k").await);
    assert_eq!(shop.emails_tried.load(Ordering::SeqCst), 1);

    // A second checkout module, whose finisher takes the order up; once
    // its confirmation is being sent (1.5 s), the checkout comes again,
    // to that module.
    let second = start_alone::<CheckoutModule>(
        finishing_at_once(),
        shop.registry.clone(),
        shop._data.path(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shop.emails_tried.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "never finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let again = second
        .call(request("u1", "USD", "k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.order.order_id, order.order_id);
    shop.until_confirmed("u1", "k").await;
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
}

#[actix_rt::test]
async fn a_backlog_of_unfinished_orders_is_finished_in_one_pass() {
    let shop = shop(Faults {
        emails_failing: 30,
        ..Faults::default()
    })
    .await;
    for n in 0..30 {
        let user = format!("u{n}");
        shop.add(&user, SUNGLASSES, 1).await;
        shop.place(request(&user, "USD", "k")).await.unwrap();
        assert!(!shop.confirmed(&user, "k").await);
    }
    // One pass, at its start; the next would be an hour later. It used to
    // finish 20 orders and leave the rest to later passes.
    shop.start_a_finisher_with(CheckoutConfig {
        finish_after_ms: 1,
        finisher_every_ms: 3_600_000,
    })
    .await;
    for n in 0..30 {
        shop.until_confirmed(&format!("u{n}"), "k").await;
    }
    assert_eq!(shop.sent_to("someone@example.com").await, 30);
}

#[actix_rt::test]
async fn a_pass_that_meets_an_order_again_ends_rather_than_claim_it_over_and_over() {
    use std::sync::atomic::Ordering;
    let shop = shop(Faults {
        emails_failing: usize::MAX,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(shop.emails_tried.load(Ordering::SeqCst), 1);
    // Its claim runs out a millisecond after it is taken, before each try
    // has failed (the mail server takes 5 ms to say no); the next pass is
    // an hour away.
    shop.start_a_finisher_with(CheckoutConfig {
        finish_after_ms: 1,
        finisher_every_ms: 3_600_000,
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shop.emails_tried.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "never tried again");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Before, the pass claimed it again each time its claim ran out, for
    // the whole hour: hundreds of tries in these 300 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tried = shop.emails_tried.load(Ordering::SeqCst);
    assert!(tried <= 3, "tried {tried} times");
}

#[actix_rt::test]
async fn a_cart_that_could_not_be_emptied_is_emptied_later_unless_it_changed() {
    // The shop's own finisher waits a minute: the test's starts later.
    let shop = shop(Faults {
        cart_emptyings_failing: 3,
        ..Faults::default()
    })
    .await;
    for user in ["u1", "u2", "u3"] {
        shop.add(user, SUNGLASSES, 1).await;
    }
    let mut first = request("u1", "USD", "k");
    first.email = "one@example.com".into();
    let mut second = request("u2", "USD", "k");
    second.email = "two@example.com".into();
    let mut third = request("u3", "USD", "k");
    third.email = "three@example.com".into();

    // The orders stand with their carts full; their confirmations went.
    shop.place(first).await.unwrap();
    shop.place(second).await.unwrap();
    shop.place(third).await.unwrap();
    assert_eq!(shop.cart("u1").await.len(), 1);
    assert!(!shop.confirmed("u1", "k").await);
    // The first customer goes on shopping; the third empties the cart
    // and, a moment later, puts the same sunglasses in again, to buy
    // another pair.
    shop.add("u1", MUG, 2).await;
    let emptied_at = storage::unix_ms();
    shop.cart
        .call(EmptyCart {
            user_id: "u3".into(),
        })
        .await
        .unwrap()
        .unwrap();
    // Past the slack allowed for cart replicas' clocks.
    while storage::unix_ms() <= emptied_at + orders::api::CART_CLOCK_SLACK_MS {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shop.add("u3", SUNGLASSES, 1).await;

    shop.start_a_finisher().await;
    for user in ["u1", "u2", "u3"] {
        shop.until_confirmed(user, "k").await;
    }
    assert_eq!(
        shop.cart("u3").await,
        vec![CartItem {
            product_id: SUNGLASSES.into(),
            quantity: 1
        }],
        "the cart filled again is the next purchase"
    );
    // The ordered sunglasses are out of the changed cart; the mugs put in
    // since stay. (Before, the sunglasses stayed beside them, to be paid
    // for again.) The other emptied.
    assert_eq!(
        shop.cart("u1").await,
        vec![CartItem {
            product_id: MUG.into(),
            quantity: 2
        }],
        "the mugs stay, alone"
    );
    assert_eq!(shop.cart("u2").await, vec![]);
    // Each confirmation was sent once, not again by the finisher.
    assert_eq!(shop.sent_to("one@example.com").await, 1);
    assert_eq!(shop.sent_to("two@example.com").await, 1);
    assert_eq!(shop.sent_to("three@example.com").await, 1);
}

/// Once the card is charged, shipping and storing the order run on their
/// own time, not on what is left of the customer's: a customer whose
/// request timed out meanwhile still gets the order, charged once, and a
/// repeat finds it. (On the customer's time, the shipment failed at the
/// deadline and the charge was refunded.)
#[actix_rt::test]
async fn an_order_charged_just_before_the_customers_deadline_is_still_shipped_and_stored() {
    let shop = shop(Faults {
        shipping_slow: Some(Duration::from_millis(1500)),
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let impatient = shop
        .checkout
        .clone()
        .with_timeout(Duration::from_millis(400));
    let first = impatient.call(request("u1", "USD", "k")).await;
    assert!(
        matches!(first, Err(runtime::CallError::TimedOut { .. })),
        "{first:?}"
    );
    // The case: the card was charged before the deadline, and the order
    // is still to ship and store (else the repeat below would place it
    // afresh, and pass without showing anything).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while shop.charges("u1", "k").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first checkout never charged the card"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(shop.orders("u1").await.is_empty(), "not stored yet");
    // The same checkout again waits for the first and gets its order.
    let order = shop.place(request("u1", "USD", "k")).await.unwrap();
    assert_eq!(shop.orders("u1").await, vec![order.clone()]);
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].status, ChargeStatus::Charged, "{charges:?}");
    assert_eq!(charges[0].transaction_id, order.transaction_id);
}

#[actix_rt::test]
async fn bad_requests_are_refused_before_anything_is_called() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;

    let mut no_email = request("u1", "USD", "k");
    no_email.email = "not an address".into();
    // One the email module would refuse, so that no confirmation could go.
    let mut two_ats = request("u1", "USD", "k");
    two_ats.email = "x@y@example.com".into();
    let mut no_city = request("u1", "USD", "k");
    no_city.address.city = "  ".into();
    let unknown_currency = request("u1", "XXX", "k");
    // PostgreSQL stores no NUL in text: the order would fail to be stored
    // after the charge.
    let mut nul_street = request("u1", "USD", "k");
    nul_street.address.street_address = "1 Main St\u{0}".into();
    let mut nul_email = request("u1", "USD", "k");
    nul_email.email = "a\u{0}@example.com".into();

    assert!(matches!(
        shop.place(nul_street).await,
        Err(CheckoutError::InvalidRequest { field, .. }) if field == "street_address"
    ));
    assert!(matches!(
        shop.place(nul_email).await,
        Err(CheckoutError::InvalidRequest { field, .. }) if field == "email"
    ));
    assert!(matches!(
        shop.place(no_email).await,
        Err(CheckoutError::InvalidRequest { field, .. }) if field == "email"
    ));
    assert!(matches!(
        shop.place(two_ats).await,
        Err(CheckoutError::InvalidRequest { field, .. }) if field == "email"
    ));
    assert!(matches!(
        shop.place(no_city).await,
        Err(CheckoutError::InvalidRequest { field, .. }) if field == "city"
    ));
    // A key no index would take (a NUL, 3 KB): refused, not a charge in
    // doubt after the ledger's insert failed.
    for key in ["k\u{0}", &"k".repeat(3000), "k k"] {
        assert!(matches!(
            shop.place(request("u1", "USD", key)).await,
            Err(CheckoutError::InvalidRequest { field, .. }) if field == "idempotency_key"
        ));
    }
    assert!(matches!(
        shop.place(unknown_currency).await,
        Err(CheckoutError::Currency(CurrencyError::UnsupportedCurrency { code })) if code == "XXX"
    ));
    assert_eq!(shop.charges("u1", "k").await, vec![]);
    assert_eq!(shop.cart("u1").await.len(), 1);
}

/// An orders store that is down: it finds nothing (or, `unreadable`,
/// cannot even look) and stores nothing.
struct RefusingOrders {
    unreadable: bool,
}

impl Actor for RefusingOrders {
    type Context = Context<Self>;
}

fn down() -> OrdersError {
    OrdersError::Storage("disk full".into())
}

impl Handler<Call<SaveOrder>> for RefusingOrders {
    type Result = Result<SaveOrderResponse, OrdersError>;
    fn handle(&mut self, _: Call<SaveOrder>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

impl Handler<Call<FindOrder>> for RefusingOrders {
    type Result = Result<FindOrderResponse, OrdersError>;
    fn handle(&mut self, _: Call<FindOrder>, _: &mut Context<Self>) -> Self::Result {
        self.nothing_stored()
    }
}

impl Handler<Call<FindSettledOrder>> for RefusingOrders {
    type Result = Result<FindOrderResponse, OrdersError>;
    fn handle(&mut self, _: Call<FindSettledOrder>, _: &mut Context<Self>) -> Self::Result {
        self.nothing_stored()
    }
}

impl RefusingOrders {
    /// What a lookup finds: nothing, or a store that cannot be read.
    fn nothing_stored(&self) -> Result<FindOrderResponse, OrdersError> {
        if self.unreadable {
            return Err(down());
        }
        Ok(FindOrderResponse {
            order: None,
            confirmed: false,
            emailed: false,
            cart_emptied: false,
        })
    }
}

impl Handler<Call<ConfirmOrder>> for RefusingOrders {
    type Result = Result<ConfirmOrderResponse, OrdersError>;
    fn handle(&mut self, _: Call<ConfirmOrder>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

impl Handler<Call<GetOrder>> for RefusingOrders {
    type Result = Result<Order, OrdersError>;
    fn handle(&mut self, _: Call<GetOrder>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

impl Handler<Call<ListOrders>> for RefusingOrders {
    type Result = Result<ListOrdersResponse, OrdersError>;
    fn handle(&mut self, _: Call<ListOrders>, _: &mut Context<Self>) -> Self::Result {
        Ok(ListOrdersResponse {
            orders: vec![],
            next_before: None,
        })
    }
}

impl Handler<Call<ClaimOrders>> for RefusingOrders {
    type Result = Result<ClaimOrdersResponse, OrdersError>;
    fn handle(&mut self, _: Call<ClaimOrders>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

impl Handler<Call<ClaimUnfinished>> for RefusingOrders {
    type Result = Result<ClaimUnfinishedResponse, OrdersError>;
    fn handle(&mut self, _: Call<ClaimUnfinished>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

impl Handler<Call<FindCartsToEmpty>> for RefusingOrders {
    type Result = Result<FindCartsToEmptyResponse, OrdersError>;
    fn handle(&mut self, _: Call<FindCartsToEmpty>, _: &mut Context<Self>) -> Self::Result {
        // Nothing stored, as its lookups find, unless it cannot be read.
        self.nothing_stored()
            .map(|_| FindCartsToEmptyResponse { orders: Vec::new() })
    }
}

impl Handler<Call<RecordStepDone>> for RefusingOrders {
    type Result = Result<ConfirmOrderResponse, OrdersError>;
    fn handle(&mut self, _: Call<RecordStepDone>, _: &mut Context<Self>) -> Self::Result {
        Err(down())
    }
}

/// An orders store that takes `SaveOrder` and holds it without answering
/// (a node that stalled with the request in hand); everything else goes
/// to the real store.
struct LateOrders {
    real: ServiceRef<Orders>,
    held: Arc<Mutex<Vec<SaveOrder>>>,
    /// Hold only the first `SaveOrder`, and refuse the later ones.
    refuse_after_the_first: bool,
}

impl Actor for LateOrders {
    type Context = Context<Self>;
}

/// A service's error.
type ErrorOf<M> = <<M as runtime::Request>::Service as runtime::Service>::Error;

/// Forwards `message` to the `real` service; a call that fails becomes
/// the error `lost` makes of its text.
fn forward<M>(
    real: &ServiceRef<M::Service>,
    message: M,
    lost: fn(String) -> ErrorOf<M>,
) -> ResponseFuture<Result<M::Reply, ErrorOf<M>>>
where
    M: runtime::Request + 'static,
{
    let real = real.clone();
    Box::pin(async move {
        real.call(message)
            .await
            .unwrap_or_else(|error| Err(lost(error.to_string())))
    })
}

/// Handlers of a fake (a struct with a `real` field) that pass each of
/// `messages` on to the real service; `lost` as in [`forward`].
macro_rules! forward_to_real {
    ($fake:ty, $lost:expr, $($message:ty),+ $(,)?) => {
        $(
            impl Handler<Call<$message>> for $fake {
                type Result = ResponseFuture<
                    Result<<$message as runtime::Request>::Reply, ErrorOf<$message>>,
                >;
                fn handle(&mut self, call: Call<$message>, _: &mut Context<Self>) -> Self::Result {
                    forward(&self.real, call.into_message(), $lost)
                }
            }
        )+
    };
}

/// Handlers of an orders fake that pass every message but `SaveOrder` on
/// to the real store.
macro_rules! forward_all_but_save_order {
    ($fake:ty) => {
        forward_to_real!(
            $fake,
            OrdersError::Storage,
            FindOrder,
            FindSettledOrder,
            ConfirmOrder,
            GetOrder,
            ListOrders,
            ClaimOrders,
            ClaimUnfinished,
            RecordStepDone,
            FindCartsToEmpty,
        );
    };
}

forward_all_but_save_order!(LateOrders);

/// An orders store whose `miss`th `FindOrder` finds nothing.
struct LookupMissing {
    real: ServiceRef<Orders>,
    lookups: usize,
    miss: usize,
}

impl Actor for LookupMissing {
    type Context = Context<Self>;
}

forward_to_real!(
    LookupMissing,
    OrdersError::Storage,
    SaveOrder,
    FindSettledOrder,
    ConfirmOrder,
    GetOrder,
    ListOrders,
    ClaimOrders,
    ClaimUnfinished,
    RecordStepDone,
    FindCartsToEmpty,
);

impl Handler<Call<FindOrder>> for LookupMissing {
    type Result = ResponseFuture<Result<FindOrderResponse, OrdersError>>;
    fn handle(&mut self, call: Call<FindOrder>, _: &mut Context<Self>) -> Self::Result {
        self.lookups += 1;
        if self.lookups == self.miss {
            return Box::pin(async {
                Ok(FindOrderResponse {
                    order: None,
                    confirmed: false,
                    emailed: false,
                    cart_emptied: false,
                })
            });
        }
        forward(&self.real, call.into_message(), OrdersError::Storage)
    }
}

impl Handler<Call<SaveOrder>> for LateOrders {
    type Result = ResponseFuture<Result<SaveOrderResponse, OrdersError>>;
    fn handle(&mut self, call: Call<SaveOrder>, _: &mut Context<Self>) -> Self::Result {
        let mut held = self.held.lock().unwrap();
        if self.refuse_after_the_first && !held.is_empty() {
            return Box::pin(async { Err(down()) });
        }
        held.push(call.into_message());
        Box::pin(std::future::pending())
    }
}

/// An orders store where, just before a checkout's order is stored,
/// another submission of the same checkout (on another replica) stores
/// its own under the key and finishes it: so `SaveOrder` answers with
/// that order.
struct BeatenOrders {
    real: ServiceRef<Orders>,
}

impl Actor for BeatenOrders {
    type Context = Context<Self>;
}

forward_all_but_save_order!(BeatenOrders);

impl Handler<Call<SaveOrder>> for BeatenOrders {
    type Result = ResponseFuture<Result<SaveOrderResponse, OrdersError>>;
    fn handle(&mut self, call: Call<SaveOrder>, _: &mut Context<Self>) -> Self::Result {
        let real = self.real.clone();
        let save = call.into_message();
        Box::pin(async move {
            let mut other = save.clone();
            other.order.order_id = "the-other-submissions-order".into();
            real.call(other).await.unwrap()?;
            let confirm = ConfirmOrder {
                idempotency_key: save.idempotency_key.clone(),
            };
            real.call(confirm).await.unwrap()?;
            real.call(save).await.unwrap()
        })
    }
}

/// A payment service that takes one `Charge` and holds it without
/// answering (a node that stalled with the request in hand); everything
/// else, other charges too, goes to the real one.
struct LatePayment {
    real: ServiceRef<Payment>,
    held: Arc<Mutex<Vec<Charge>>>,
    /// Charges seen so far.
    charges_seen: usize,
    /// Which one to hold (1: the first).
    held_charge: usize,
}

impl Actor for LatePayment {
    type Context = Context<Self>;
}

forward_to_real!(
    LatePayment,
    PaymentError::Storage,
    Refund,
    ListCharges,
    CancelCharge,
);

impl Handler<Call<Charge>> for LatePayment {
    type Result = ResponseFuture<Result<ChargeResponse, PaymentError>>;
    fn handle(&mut self, call: Call<Charge>, _: &mut Context<Self>) -> Self::Result {
        self.charges_seen += 1;
        if self.charges_seen == self.held_charge {
            self.held.lock().unwrap().push(call.into_message());
            return Box::pin(std::future::pending());
        }
        forward(&self.real, call.into_message(), PaymentError::Storage)
    }
}

/// A service whose first `Charge` or `SaveOrder` does its work, but whose
/// answer says its store failed: a store that lost its connection after
/// the COMMIT went out cannot tell. Everything else goes to the real one.
struct AnswerLost<S: runtime::Service> {
    real: ServiceRef<S>,
    /// The next answer to lose.
    lost: bool,
}

impl<S: runtime::Service> Actor for AnswerLost<S> {
    type Context = Context<Self>;
}

forward_to_real!(
    AnswerLost<Payment>,
    PaymentError::Storage,
    Refund,
    ListCharges,
    CancelCharge,
);
forward_all_but_save_order!(AnswerLost<Orders>);

/// Sends `message` to `real`; if `lose`, answers `lost` instead of what
/// it answered (if that was a success).
fn answer_lost<M>(
    real: &ServiceRef<M::Service>,
    message: M,
    lose: bool,
    lost: fn(String) -> ErrorOf<M>,
) -> ResponseFuture<Result<M::Reply, ErrorOf<M>>>
where
    M: runtime::Request + 'static,
{
    let answer = forward(real, message, lost);
    Box::pin(async move {
        match answer.await {
            Ok(_) if lose => Err(lost("connection closed after the COMMIT was sent".into())),
            answer => answer,
        }
    })
}

impl Handler<Call<Charge>> for AnswerLost<Payment> {
    type Result = ResponseFuture<Result<ChargeResponse, PaymentError>>;
    fn handle(&mut self, call: Call<Charge>, _: &mut Context<Self>) -> Self::Result {
        let lose = std::mem::take(&mut self.lost);
        answer_lost(&self.real, call.into_message(), lose, PaymentError::Storage)
    }
}

impl Handler<Call<SaveOrder>> for AnswerLost<Orders> {
    type Result = ResponseFuture<Result<SaveOrderResponse, OrdersError>>;
    fn handle(&mut self, call: Call<SaveOrder>, _: &mut Context<Self>) -> Self::Result {
        let lose = std::mem::take(&mut self.lost);
        answer_lost(&self.real, call.into_message(), lose, OrdersError::Storage)
    }
}

#[actix_rt::test]
async fn a_charge_recorded_though_the_ledger_said_it_failed_is_cancelled_not_left_held() {
    let shop = shop(Faults {
        charge_answer_lost: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let result = shop.place(request("u1", "USD", "k")).await;

    // Before, "nothing was charged", and the charge stayed taken: a new
    // form (a new key) would pay again.
    assert!(
        matches!(
            result,
            Err(CheckoutError::PaymentInDoubt {
                cancelled: true,
                ..
            })
        ),
        "{result:?}"
    );
    // It was recorded, so letting go of it refunds it.
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Refunded);
    assert_eq!(shop.orders("u1").await, vec![]);
    assert_eq!(shop.cart("u1").await.len(), 1);
}

#[actix_rt::test]
async fn an_order_stored_though_the_store_said_it_failed_is_finished_not_refunded() {
    let shop = shop(Faults {
        save_answer_lost: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;

    let result = shop.place(request("u1", "USD", "k")).await;

    // Before, the charge was refunded and the customer told so, while the
    // order stood, unconfirmed, for the finisher to ship on no payment.
    let order = result.unwrap();
    let charges = shop.charges("u1", "k").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Charged);
    assert_eq!(order.transaction_id, charges[0].transaction_id);
    assert_eq!(shop.orders("u1").await.len(), 1);
    assert_eq!(shop.cart("u1").await, vec![]);
    assert_eq!(shop.sent_to("someone@example.com").await, 1);
}

/// An email service whose first `failing` confirmations fail.
struct FlakyEmail {
    real: ServiceRef<Email>,
    failing: usize,
    /// How long each confirmation that is sent takes.
    delay: Duration,
    /// Confirmations asked for, failed or not.
    tried: Arc<std::sync::atomic::AtomicUsize>,
}

impl Actor for FlakyEmail {
    type Context = Context<Self>;
}

forward_to_real!(FlakyEmail, EmailError::SinkFailed, ListSentEmails);

impl Handler<Call<SendOrderConfirmation>> for FlakyEmail {
    type Result = ResponseFuture<Result<runtime::Empty, EmailError>>;
    fn handle(&mut self, call: Call<SendOrderConfirmation>, _: &mut Context<Self>) -> Self::Result {
        self.tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.failing > 0 {
            self.failing -= 1;
            // A mail server that takes its time to say no.
            return Box::pin(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err(EmailError::SinkFailed("the mail server is down".into()))
            });
        }
        let sent = forward(&self.real, call.into_message(), EmailError::SinkFailed);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            sent.await
        })
    }
}

/// A shipping service that takes `delay` to ship (and then ships).
struct SlowShipping {
    real: ServiceRef<Shipping>,
    delay: Duration,
}

impl Actor for SlowShipping {
    type Context = Context<Self>;
}

forward_to_real!(
    SlowShipping,
    |reason| ShippingError::Unavailable { reason },
    GetQuote
);

impl Handler<Call<ShipOrder>> for SlowShipping {
    type Result = ResponseFuture<Result<ShipOrderResponse, ShippingError>>;
    fn handle(&mut self, call: Call<ShipOrder>, _: &mut Context<Self>) -> Self::Result {
        let (real, delay) = (self.real.clone(), self.delay);
        let message = call.into_message();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            real.call(message).await.unwrap_or_else(|error| {
                Err(ShippingError::Unavailable {
                    reason: error.to_string(),
                })
            })
        })
    }
}

/// A cart service whose first `failing` `EmptyCart`s fail, and first
/// `removals_failing` `RemoveOrderedLines`.
struct FlakyCart {
    real: ServiceRef<CartService>,
    failing: usize,
    removals_failing: usize,
    /// How long each `EmptyCart` that empties the cart takes.
    delay: Duration,
}

impl Actor for FlakyCart {
    type Context = Context<Self>;
}

forward_to_real!(FlakyCart, CartError::Storage, AddItem, GetCart, MergeCarts,);

impl Handler<Call<RemoveOrderedLines>> for FlakyCart {
    type Result = ResponseFuture<Result<RemoveOrderedLinesResponse, CartError>>;
    fn handle(&mut self, call: Call<RemoveOrderedLines>, _: &mut Context<Self>) -> Self::Result {
        if self.removals_failing > 0 {
            self.removals_failing -= 1;
            return Box::pin(async { Err(CartError::Storage("the disk is full".into())) });
        }
        forward(&self.real, call.into_message(), CartError::Storage)
    }
}

impl Handler<Call<EmptyCart>> for FlakyCart {
    type Result = ResponseFuture<Result<runtime::Empty, CartError>>;
    fn handle(&mut self, call: Call<EmptyCart>, _: &mut Context<Self>) -> Self::Result {
        if self.failing > 0 {
            self.failing -= 1;
            return Box::pin(async { Err(CartError::Storage("the disk is full".into())) });
        }
        let emptied = forward(&self.real, call.into_message(), CartError::Storage);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            emptied.await
        })
    }
}

#[actix_rt::test]
async fn two_checkouts_of_one_customer_at_once_charge_once() {
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    shop.add("u2", SUNGLASSES, 1).await;
    // Two forms open and submitted at once, or a client without a key
    // retrying a checkout that still runs: two keys, one cart. Another
    // customer's checkout meanwhile does not wait for them.
    let (first, second, other) = tokio::join!(
        shop.place(request("u1", "USD", "k1")),
        shop.place(request("u1", "USD", "k2")),
        shop.place(request("u2", "USD", "k1")),
    );
    assert!(first.is_ok(), "{first:?}");
    assert!(
        matches!(second, Err(CheckoutError::EmptyCart)),
        "the second found the cart emptied: {second:?}"
    );
    assert!(other.is_ok(), "{other:?}");
    assert_eq!(shop.charges("u1", "k1").await.len(), 1);
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    assert_eq!(shop.charges("u2", "k1").await.len(), 1);
}

#[actix_rt::test]
async fn a_customers_second_checkout_does_not_pay_for_lines_the_first_left_in_the_cart() {
    // The first one's order stands, but its cart could not be emptied.
    let shop = shop(Faults {
        cart_emptyings_failing: 1,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let (first, second) = tokio::join!(
        shop.place(request("u1", "USD", "k1")),
        shop.place(request("u1", "USD", "k2")),
    );
    let first = first.unwrap();
    // Before, the second read the same full cart and paid for it again.
    assert!(
        matches!(second, Err(CheckoutError::EmptyCart)),
        "the second found the first's lines taken out: {second:?}"
    );
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    assert_eq!(shop.orders("u1").await, vec![first]);
    assert_eq!(shop.cart("u1").await, vec![]);
}

#[actix_rt::test]
async fn a_customers_checkout_behind_one_in_doubt_is_refused_before_any_charge() {
    // The first one's order is in doubt: it may land with its charge.
    let shop = shop(Faults {
        orders_late: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let (first, second, third) = tokio::join!(
        shop.place(request("u1", "USD", "k1")),
        shop.place(request("u1", "USD", "k2")),
        shop.place(request("u1", "USD", "k3")),
    );
    assert!(
        matches!(first, Err(CheckoutError::OrderOutcomeUnknown { .. })),
        "{first:?}"
    );
    // Neither pays for the lines the first may have bought (the third
    // waited behind the second, refused for the first).
    for later in [second, third] {
        assert_eq!(later, Err(CheckoutError::EarlierCheckoutUnsettled));
    }
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    assert_eq!(shop.charges("u1", "k3").await, vec![]);
    assert_eq!(shop.charges("u1", "k1").await.len(), 1);
    assert_eq!(shop.cart("u1").await.len(), 1);
}

/// The checkout between the one in doubt and a third ends before it
/// settles the first (here its request is refused): the third settles the
/// first itself, and is refused. Before, it looked only at the second,
/// which had charged nothing, and paid for the lines the first may have
/// bought.
#[actix_rt::test]
async fn a_customers_third_checkout_settles_the_first_when_the_second_did_not() {
    let shop = shop(Faults {
        orders_late: true,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let mut refused = request("u1", "USD", "k2");
    refused.email = "not an address".into();
    let (first, second, third) = tokio::join!(
        shop.place(request("u1", "USD", "k1")),
        shop.place(refused),
        shop.place(request("u1", "USD", "k3")),
    );
    assert!(
        matches!(first, Err(CheckoutError::OrderOutcomeUnknown { .. })),
        "{first:?}"
    );
    assert!(
        matches!(second, Err(CheckoutError::InvalidRequest { .. })),
        "{second:?}"
    );
    assert_eq!(third, Err(CheckoutError::EarlierCheckoutUnsettled));
    assert_eq!(shop.charges("u1", "k3").await, vec![]);
    assert_eq!(shop.charges("u1", "k1").await.len(), 1);
}

/// The line a customer puts back while their checkout ships (after its
/// cart was read) is not the order's: it stays when the order's lines are
/// taken out late. The order keeps when its cart was read, by the cart's
/// clock; before, its own time (later, and on the checkout's clock) was
/// used, and the line put back was taken too.
#[actix_rt::test]
async fn a_line_put_back_while_the_checkout_ships_is_not_taken_for_the_order() {
    let shop = shop(Faults {
        shipping_slow: Some(Duration::from_millis(
            orders::api::CART_CLOCK_SLACK_MS as u64 + 1000,
        )),
        cart_emptyings_failing: 1,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    let put_back = async {
        // Charged: the cart was read. Emptied and filled again while it
        // ships, past the replicas' clock slack.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let charged_at = loop {
            if let Some(charge) = shop.charges("u1", "k1").await.first() {
                break charge.created_at;
            }
            assert!(std::time::Instant::now() < deadline, "never charged");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        while storage::unix_ms() <= charged_at + orders::api::CART_CLOCK_SLACK_MS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let emptied = shop
            .cart
            .call(EmptyCart {
                user_id: "u1".into(),
            })
            .await;
        assert!(matches!(emptied, Ok(Ok(_))), "{emptied:?}");
        shop.add("u1", SUNGLASSES, 1).await;
    };
    let (placed, ()) = tokio::join!(shop.place(request("u1", "USD", "k1")), put_back);
    let order = placed.unwrap();
    assert!(
        order
            .cart_read_at
            .is_some_and(|read| read <= order.placed_at),
        "{order:?}"
    );
    // Its cart could not be emptied (the first EmptyCart failed): the
    // finisher takes its lines out, as they were when it was read.
    shop.start_a_finisher().await;
    shop.until_confirmed("u1", "k1").await;
    assert_eq!(
        shop.cart("u1").await,
        vec![CartItem {
            product_id: SUNGLASSES.into(),
            quantity: 1
        }],
        "the line put back is the customer's"
    );
}

/// A shop with `faults` where u1's order under `k1` stands and its cart,
/// which could not be emptied, still holds its sunglasses.
async fn an_order_whose_cart_was_not_emptied(faults: Faults) -> Shop {
    let shop = shop(faults).await;
    shop.add("u1", SUNGLASSES, 1).await;
    shop.place(request("u1", "USD", "k1")).await.unwrap();
    assert_eq!(shop.cart("u1").await.len(), 1, "the cart was not emptied");
    shop
}

/// An order whose cart could not be emptied leaves its lines there for the
/// finisher (a minute later at least); the customer's next checkout, not
/// overlapping it, takes them out before it reads the cart. Before, it
/// read them and paid for them again.
#[actix_rt::test]
async fn a_checkout_after_an_order_whose_cart_was_not_emptied_does_not_pay_for_its_lines() {
    let shop = an_order_whose_cart_was_not_emptied(Faults {
        cart_emptyings_failing: 1,
        ..Faults::default()
    })
    .await;
    let second = shop.place(request("u1", "USD", "k2")).await;
    assert_eq!(second, Err(CheckoutError::EmptyCart));
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    assert_eq!(shop.cart("u1").await, vec![]);
    // Recorded: the finisher has nothing left to do with that cart.
    let found = shop
        .orders
        .call(FindOrder {
            idempotency_key: order_key("u1", "k1"),
        })
        .await
        .unwrap()
        .unwrap();
    assert!(found.cart_emptied, "{found:?}");
}

/// The same, with the cart failing still when the second checkout takes
/// the lines out: it is refused before any charge. It went on, read the
/// cart with the first order's lines, and paid for them again.
#[actix_rt::test]
async fn a_checkout_that_cannot_take_out_an_earlier_orders_lines_charges_nothing() {
    let shop = an_order_whose_cart_was_not_emptied(Faults {
        cart_emptyings_failing: 1,
        cart_removals_failing: 1,
        ..Faults::default()
    })
    .await;
    let second = shop.place(request("u1", "USD", "k2")).await;
    assert_eq!(second, Err(CheckoutError::EarlierCheckoutUnsettled));
    assert_eq!(shop.charges("u1", "k2").await, vec![]);
    // Once the cart works, the next one takes them out and finds it empty.
    let third = shop.place(request("u1", "USD", "k3")).await;
    assert_eq!(third, Err(CheckoutError::EmptyCart));
    assert_eq!(shop.charges("u1", "k3").await, vec![]);
}

#[test]
fn a_repeat_that_did_nothing_passes_on_the_earlier_submission_in_doubt() {
    use crate::place::{Before, passed_on};
    let in_doubt = Before {
        key: order_key("u1", "k1"),
        outcome: Err(CheckoutError::OrderOutcomeUnknown {
            reason: "the store did not answer".into(),
        }),
    };
    // The repeat of k1 failed before it did anything (orders down): k1's
    // first submission is still in doubt, and the next checkout must
    // settle it. It was dropped, and the next one paid beside it.
    let repeat_refused = Before {
        key: order_key("u1", "k1"),
        outcome: Err(CheckoutError::OrdersUnavailable(down())),
    };
    // Whether it settled the others or not: it settled every earlier
    // checkout but its own (it had, past the lookup of its order, and
    // then failed: the cart down).
    for settled in [false, true] {
        let left = passed_on(
            std::slice::from_ref(&in_doubt),
            repeat_refused.clone(),
            settled,
        );
        assert_eq!(
            left.iter().map(|b| b.key.as_str()).collect::<Vec<_>>(),
            vec![order_key("u1", "k1")],
            "settled: {settled}"
        );
        assert!(matches!(
            left[0].outcome,
            Err(CheckoutError::OrderOutcomeUnknown { .. })
        ));
    }
    // A repeat in doubt itself stands in its place, once.
    let repeat_in_doubt = in_doubt.clone();
    assert_eq!(
        passed_on(std::slice::from_ref(&in_doubt), repeat_in_doubt, false).len(),
        1
    );
    // A checkout that settled those before it passes on none of them.
    let other_refused = Before {
        key: order_key("u1", "k2"),
        outcome: Err(CheckoutError::EmptyCart),
    };
    assert!(passed_on(&[in_doubt], other_refused, true).is_empty());
}

impl Shop {
    /// The services as the checkout module is given them.
    fn deps(&self) -> crate::place::Deps {
        crate::place::Deps {
            cart: self.registry.get().unwrap(),
            catalog: self.registry.get().unwrap(),
            currency: self.registry.get().unwrap(),
            shipping: self.registry.get().unwrap(),
            payment: self.registry.get().unwrap(),
            email: self.registry.get().unwrap(),
            orders: self.registry.get().unwrap(),
        }
    }
}

#[actix_rt::test]
async fn lines_an_earlier_order_left_in_a_cart_changed_since_are_the_customers_to_look_at() {
    use crate::place::{Before, settle_earlier};
    let shop = shop(Faults {
        cart_emptyings_failing: 1,
        ..Faults::default()
    })
    .await;
    shop.add("u1", SUNGLASSES, 1).await;
    // Its order stands; its cart could not be emptied.
    let order = shop.place(request("u1", "USD", "k1")).await.unwrap();
    // The customer adds a mug while the next checkout waits for it.
    shop.add("u1", MUG, 1).await;
    let before = Before {
        key: order_key("u1", "k1"),
        outcome: Ok(order),
    };
    // Before, the changed cart counted as settled, and the next checkout
    // paid for the sunglasses again, with the mug. The sunglasses ordered
    // are out now; the mug, put in since, is the customer's to check out.
    assert_eq!(
        settle_earlier(&shop.deps(), "u1", &before).await,
        Err(CheckoutError::EarlierCheckoutUnsettled)
    );
    assert_eq!(
        shop.cart("u1").await,
        vec![CartItem {
            product_id: MUG.into(),
            quantity: 1
        }]
    );
}

#[actix_rt::test]
async fn a_repeat_of_a_placed_checkout_gets_its_order_whatever_the_one_before_it_left() {
    use crate::place::{Before, place};
    let shop = shop(Faults::default()).await;
    shop.add("u1", SUNGLASSES, 1).await;
    let order = shop.place(request("u1", "USD", "k1")).await.unwrap();
    // A checkout between it and its repeat was refused; the repeat is
    // answered with its own order, found before anything is settled.
    let before = Before {
        key: order_key("u1", "k2"),
        outcome: Err(CheckoutError::EarlierCheckoutUnsettled),
    };
    let key = order_key("u1", "k1");
    let mut settled = false;
    let repeated = place(
        &shop.deps(),
        &request("u1", "USD", "k1"),
        &key,
        &[before],
        &mut settled,
        &mut None,
    )
    .await;
    assert_eq!(repeated, Ok(order));
    // It did not settle the one before it: a later checkout will.
    assert!(!settled);
}
