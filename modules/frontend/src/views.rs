//! The pages' templates (in `templates/`) and the values they show.
//!
//! Every page extends `base.html`, whose header shows the [`Chrome`]: the
//! currency selector, the cart badge and who is signed in.

use ads::api::Ad;
use askama::Template;
use orders::api::Order;
use runtime::wall_clock::{UtcDate, unix_ms, utc_date};

use crate::error::FieldError;
use crate::shop::{PricedCart, PricedProduct, Recommended, Shop};
use crate::visitor::Visitor;

/// The header every page shows.
pub struct Chrome {
    pub currency: String,
    pub currencies: std::sync::Arc<[String]>,
    pub cart_count: i64,
    pub user_name: Option<String>,
    /// Whether the header offers the currency selector: not on an order's
    /// page, whose amounts are the order's (spec 2.10).
    pub currency_selector: bool,
}

impl Chrome {
    /// True if `code` is the visitor's currency.
    pub fn is_current(&self, code: &str) -> bool {
        self.currency == code
    }

    /// The header for `visitor` (asks the cart for the badge).
    pub async fn of(shop: &Shop, visitor: &Visitor) -> Chrome {
        let (chrome, cart_count) = futures_util::future::join(
            Chrome::with_count(shop, visitor, 0),
            shop.cart_count(visitor.customer_id()),
        )
        .await;
        Chrome {
            cart_count,
            ..chrome
        }
    }

    /// The header for `visitor` whose cart holds `cart_count` items, for a
    /// page that has read the cart already (the cart page).
    pub async fn with_count(shop: &Shop, visitor: &Visitor, cart_count: i64) -> Chrome {
        Chrome {
            currency: visitor.currency.clone(),
            // Asked of the currency service (once; see `Shop::currencies`).
            currencies: shop.currencies().await,
            cart_count,
            user_name: visitor.user.as_ref().map(|u| u.name.clone()),
            currency_selector: true,
        }
    }

    /// The same header without the currency selector.
    pub fn without_currency_selector(self) -> Chrome {
        Chrome {
            currency_selector: false,
            ..self
        }
    }
}

/// `/`: every product.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub chrome: Chrome,
    pub products: Vec<PricedProduct>,
}

/// `/product/{id}`.
#[derive(Template)]
#[template(path = "product.html")]
pub struct ProductPage {
    pub chrome: Chrome,
    pub product: PricedProduct,
    pub quantities: &'static [u32],
    pub recommendations: Vec<Recommended>,
    pub ad: Option<Ad>,
}

/// The checkout form's choices.
pub struct CheckoutForm {
    /// Identifies this checkout: submitting the form twice is one order.
    pub idempotency_key: String,
    /// True if this is a checkout submitted before that may be unfinished
    /// (the page says that submitting it finishes it).
    pub finishing: bool,
    pub months: Vec<(u32, &'static str)>,
    /// `(year, preselected)`: this year to four years on, next year chosen.
    pub years: Vec<(i32, bool)>,
}

impl CheckoutForm {
    /// A fresh form (a new idempotency key).
    pub fn new() -> CheckoutForm {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let year = current_year();
        CheckoutForm {
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            finishing: false,
            months: (1..).zip(MONTHS).collect(),
            years: (year..=year + 4).map(|y| (y, y == year + 1)).collect(),
        }
    }
}

impl CheckoutForm {
    /// The form of checkout `key`, submitted before and possibly
    /// unfinished: submitting it again finishes it, charged once.
    pub fn finishing(key: String) -> CheckoutForm {
        CheckoutForm {
            idempotency_key: key,
            finishing: true,
            ..CheckoutForm::new()
        }
    }
}

/// `/cart`.
#[derive(Template)]
#[template(path = "cart.html")]
pub struct CartPage {
    pub chrome: Chrome,
    pub cart: PricedCart,
    /// The form's `expected_total` (see `forms::amount_text`): the total
    /// shown, which the checkout charges or fails; none for an empty cart.
    pub expected_total: Option<String>,
    pub form: CheckoutForm,
    /// The order an earlier checkout placed, if the page is to say so
    /// (see `pages::cart`).
    pub placed: Option<String>,
    pub recommendations: Vec<Recommended>,
}

/// One line of an order, as shown.
pub struct OrderLine {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit_text: String,
    pub total_text: String,
}

/// An order, as shown.
pub struct OrderView {
    pub order_id: String,
    pub tracking_id: String,
    pub placed_at: String,
    pub email: String,
    pub address: String,
    pub lines: Vec<OrderLine>,
    pub item_count: i64,
    pub shipping_text: String,
    pub total_text: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> OrderView {
        let a = &order.shipping_address;
        OrderView {
            order_id: order.order_id.clone(),
            tracking_id: order.shipping_tracking_id.clone(),
            placed_at: format_time(order.placed_at),
            email: order.email.clone(),
            address: format!(
                "{}, {} {}, {} {}",
                a.street_address, a.city, a.state, a.zip_code, a.country
            ),
            lines: order
                .items
                .iter()
                .map(|line| OrderLine {
                    product_id: line.item.product_id.clone(),
                    name: line.name.clone(),
                    quantity: line.item.quantity,
                    unit_text: line.cost.display(),
                    total_text: line
                        .cost
                        .checked_mul(i64::from(line.item.quantity))
                        .map(|m| m.display())
                        .unwrap_or_default(),
                })
                .collect(),
            item_count: order.items.iter().map(|l| i64::from(l.item.quantity)).sum(),
            shipping_text: order.shipping_cost.display(),
            total_text: order.total.display(),
        }
    }
}

/// `/order/{id}`.
#[derive(Template)]
#[template(path = "order.html")]
pub struct OrderPage {
    pub chrome: Chrome,
    pub order: OrderView,
    pub recommendations: Vec<Recommended>,
}

/// `/orders`.
#[derive(Template)]
#[template(path = "orders.html")]
pub struct OrdersPage {
    pub chrome: Chrome,
    pub orders: Vec<OrderView>,
    /// This is not the first page (the newest orders).
    pub paged: bool,
    /// The link to the page of older orders, if the visitor has any.
    pub older: Option<String>,
}

/// `/signup` and `/signin`: the form, with what was typed and what is wrong.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
    /// True for sign-up, false for sign-in.
    pub sign_up: bool,
    pub name: String,
    pub email: String,
    pub message: Option<String>,
    pub errors: Vec<FieldError>,
}

impl AccountPage {
    /// The reason `field` is wrong, if it is.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.reason.as_str())
    }
}

/// This year, in UTC.
pub fn current_year() -> i32 {
    let year = utc_date(unix_ms()).year;
    i32::try_from(year).unwrap_or(i32::MAX)
}

/// `ms` since the epoch as `2026-11-26 21:04 UTC`.
pub fn format_time(ms: i64) -> String {
    let UtcDate { year, month, day } = utc_date(ms);
    let minutes = ms.rem_euclid(86_400_000) / 60_000;
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(format_time(1_709_210_096_000), "2024-02-29 12:34 UTC");
        assert_eq!(format_time(1_798_761_599_000), "2026-12-31 23:59 UTC");
    }
}
