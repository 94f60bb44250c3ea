//! The calls behind the pages: the other modules' refs, and what the pages
//! and the JSON API build from them (priced products, the cart with its
//! totals, recommendations, an ad).
//!
//! Every price is converted into the visitor's currency and rounded to
//! cents once, here, the same way checkout does, so what a page shows is
//! what checkout charges.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ads::api::{Ad, Ads, GetAds};
use auth::api::Auth;
use cart::api::{CartItem, CartService, GetCart};
use catalog::api::{Catalog, CatalogError, GetProduct, ListProducts, Product};
use checkout::api::Checkout;
use currency::api::{Convert, Currency, GetSupportedCurrencies, Money};
use futures_util::future::{join_all, try_join_all};
use orders::api::Orders;
use rand::seq::IndexedRandom;
use recommendation::api::{ListRecommendations, Recommendation};
use runtime::ServiceRef;
use serde::Serialize;
use shipping::api::{Address, GetQuote, Shipping};

use crate::error::{CallOutcome, ShopError};
use crate::visitor::{CURRENCIES, allow_list};

/// How long a page waits for an ad (the original's 100 ms).
const AD_WAIT: Duration = Duration::from_millis(100);
/// How many recommendations a page shows.
const RECOMMENDATIONS_SHOWN: usize = 4;

/// The services the frontend calls.
#[derive(Clone)]
pub struct Shop {
    pub catalog: ServiceRef<Catalog>,
    pub currency: ServiceRef<Currency>,
    pub cart: ServiceRef<CartService>,
    pub recommendation: ServiceRef<Recommendation>,
    pub shipping: ServiceRef<Shipping>,
    pub checkout: ServiceRef<Checkout>,
    pub ads: ServiceRef<Ads>,
    pub auth: ServiceRef<Auth>,
    pub orders: ServiceRef<Orders>,
    /// The currencies offered, once the currency service has said which
    /// it supports (see [`Shop::currencies`]).
    pub offered: Arc<OnceLock<Arc<[String]>>>,
}

/// A product priced in the visitor's currency.
#[derive(Debug, Clone, Serialize)]
pub struct PricedProduct {
    pub id: String,
    pub name: String,
    pub description: String,
    pub picture: String,
    pub categories: Vec<String>,
    /// The exact price charged.
    pub price: Money,
    /// The price as shown, e.g. `€17.68`.
    pub price_text: String,
}

/// One line of the cart, priced.
#[derive(Debug, Clone, Serialize)]
pub struct PricedLine {
    pub product: PricedProduct,
    pub quantity: i32,
    pub line_total: Money,
    pub line_total_text: String,
}

/// The cart with its totals, in the visitor's currency.
#[derive(Debug, Clone, Serialize)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    /// How many items in all (the cart badge).
    pub item_count: i64,
    pub shipping: Money,
    pub shipping_text: String,
    pub total: Money,
    pub total_text: String,
}

/// A product recommended on a page.
#[derive(Debug, Clone, Serialize)]
pub struct Recommended {
    pub id: String,
    pub name: String,
    pub picture: String,
}

fn too_large(_: currency::api::MoneyError) -> ShopError {
    ShopError::Failed("the amount is too large to show".to_owned())
}

fn catalog_error(error: CatalogError) -> ShopError {
    match error {
        CatalogError::ProductNotFound { id } => {
            ShopError::NotFound(format!("there is no product {id:?}"))
        }
    }
}

/// An address that says nothing: quotes depend only on the items.
fn no_address() -> Address {
    Address {
        street_address: String::new(),
        city: String::new(),
        state: String::new(),
        country: String::new(),
        zip_code: 0,
    }
}

impl Shop {
    /// The currencies a visitor may choose: those the currency service
    /// supports, filtered to the allow-list [`CURRENCIES`], in the
    /// service's order (spec: the selector). Asked once and kept (the
    /// service's rates are fixed when it starts); while it cannot be
    /// asked, the allow-list itself.
    pub async fn currencies(&self) -> Arc<[String]> {
        if let Some(offered) = self.offered.get() {
            return Arc::clone(offered);
        }
        match self.currency.call(GetSupportedCurrencies {}).await {
            Ok(Ok(supported)) => {
                let offered: Arc<[String]> = supported
                    .currency_codes
                    .into_iter()
                    .filter(|code| CURRENCIES.contains(&code.as_str()))
                    .collect();
                Arc::clone(self.offered.get_or_init(|| offered))
            }
            _ => self.currencies_known(),
        }
    }

    /// The currencies offered as far as known without asking: those of
    /// [`Shop::currencies`] once asked, else the allow-list (for requests
    /// that must not wait on the currency service, such as reading who is
    /// asking).
    pub fn currencies_known(&self) -> Arc<[String]> {
        match self.offered.get() {
            Some(offered) => Arc::clone(offered),
            None => allow_list(),
        }
    }

    /// `usd` in `currency`, rounded to cents.
    pub async fn price(&self, usd: &Money, currency: &str) -> Result<Money, ShopError> {
        let converted = self
            .currency
            .call(Convert {
                from: usd.clone(),
                to_code: currency.to_owned(),
            })
            .await
            .or_unavailable("currency")?
            .map_err(|e| ShopError::field("currency", e.to_string()))?;
        converted.round_to_cents().map_err(too_large)
    }

    /// `product` priced in `currency`.
    pub async fn priced(
        &self,
        product: Product,
        currency: &str,
    ) -> Result<PricedProduct, ShopError> {
        let price = self.price(&product.price_usd, currency).await?;
        Ok(PricedProduct {
            price_text: price.display(),
            price,
            id: product.id,
            name: product.name,
            description: product.description,
            picture: product.picture,
            categories: product.categories,
        })
    }

    /// Every product, priced.
    pub async fn products(&self, currency: &str) -> Result<Vec<PricedProduct>, ShopError> {
        let products = self
            .catalog
            .call(ListProducts {})
            .await
            .or_unavailable("catalog")?
            .map_err(catalog_error)?
            .products;
        try_join_all(products.into_iter().map(|p| self.priced(p, currency))).await
    }

    /// Product `id`, priced; a 404 if there is none.
    pub async fn product(&self, id: &str, currency: &str) -> Result<PricedProduct, ShopError> {
        let product = self
            .catalog
            .call(GetProduct { id: id.to_owned() })
            .await
            .or_unavailable("catalog")?
            .map_err(catalog_error)?;
        self.priced(product, currency).await
    }

    /// The cart's lines, as stored.
    pub async fn cart_items(&self, customer_id: &str) -> Result<Vec<CartItem>, ShopError> {
        Ok(self
            .cart
            .call(GetCart {
                user_id: customer_id.to_owned(),
            })
            .await
            .or_unavailable("cart")?
            .map_err(crate::actions::cart_error)?
            .items)
    }

    /// The cart, priced, with shipping and total.
    pub async fn cart(&self, customer_id: &str, currency: &str) -> Result<PricedCart, ShopError> {
        let items = self.cart_items(customer_id).await?;
        // The lines' prices and the shipping quote are asked at once.
        let lines = try_join_all(items.iter().map(|item| async move {
            let product = self
                .product(&item.product_id, currency)
                .await
                .map_err(|e| match e {
                    ShopError::NotFound(_) => ShopError::UnsoldInCart(item.product_id.clone()),
                    other => other,
                })?;
            let line_total = product
                .price
                .checked_mul(i64::from(item.quantity))
                .map_err(too_large)?;
            Ok::<_, ShopError>(PricedLine {
                line_total_text: line_total.display(),
                line_total,
                quantity: item.quantity,
                product,
            })
        }));
        let shipping = async {
            let quote = self
                .shipping
                .call(GetQuote {
                    address: no_address(),
                    items: items.clone(),
                })
                .await
                .or_unavailable("shipping")?
                .map_err(|e| ShopError::Failed(e.to_string()))?;
            self.price(&quote.cost_usd, currency).await
        };
        let (lines, shipping) = futures_util::future::try_join(lines, shipping).await?;
        let mut total = shipping.clone();
        for line in &lines {
            total = total.checked_add(&line.line_total).map_err(too_large)?;
        }
        Ok(PricedCart {
            item_count: items.iter().map(|i| i64::from(i.quantity)).sum(),
            lines,
            shipping_text: shipping.display(),
            shipping,
            total_text: total.display(),
            total,
        })
    }

    /// How many items are in the cart, for the badge; a cart that cannot
    /// be read shows none (the page itself says what failed, if it needs
    /// the cart).
    pub async fn cart_count(&self, customer_id: &str) -> i64 {
        match self.cart_items(customer_id).await {
            Ok(items) => items.iter().map(|i| i64::from(i.quantity)).sum(),
            Err(error) => {
                tracing::warn!(module = "frontend", %error, "cart badge left empty");
                0
            }
        }
    }

    /// Up to four products to recommend, none of `exclude`. Failures show
    /// no recommendations, logged.
    pub async fn recommendations(
        &self,
        customer_id: &str,
        exclude: Vec<String>,
    ) -> Vec<Recommended> {
        let asked = ListRecommendations {
            user_id: customer_id.to_owned(),
            product_ids: exclude,
        };
        let ids = match self.recommendation.call(asked).await {
            Ok(Ok(found)) => found.product_ids,
            other => {
                tracing::warn!(module = "frontend", result = ?other.err(), "no recommendations shown");
                return Vec::new();
            }
        };
        let products = join_all(
            ids.into_iter()
                .take(RECOMMENDATIONS_SHOWN)
                .map(|id| self.catalog.call(GetProduct { id })),
        )
        .await;
        products
            .into_iter()
            .filter_map(|found| match found {
                Ok(Ok(product)) => Some(Recommended {
                    id: product.id,
                    name: product.name,
                    picture: product.picture,
                }),
                _ => None,
            })
            .collect()
    }

    /// One ad for `categories`, if the ad service answers within 100 ms.
    pub async fn ad(&self, categories: Vec<String>) -> Option<Ad> {
        let asked = GetAds {
            context_keys: categories,
        };
        match self.ads.with_timeout(AD_WAIT).call(asked).await {
            Ok(Ok(found)) => found.ads.choose(&mut rand::rng()).cloned(),
            other => {
                tracing::debug!(module = "frontend", result = ?other.err(), "no ad shown");
                None
            }
        }
    }
}
