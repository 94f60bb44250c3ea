//! # Boutique
//!
//! Online Boutique as one binary of actor modules. This library half of the
//! package holds what the binary and the tests share: the [`catalogue`] of
//! modules this build contains, and the [`handoff`] of a listening socket
//! from `boutique up` to a node. The binary (`src/main.rs`) adds the
//! command line.

#![warn(missing_docs)]

pub mod handoff;

use runtime::Catalogue;

/// Every module of the shop, in the order `boutique plan` lists them.
pub fn catalogue() -> Catalogue {
    Catalogue::new()
        .with::<catalog::CatalogModule>()
        .with::<currency::CurrencyModule>()
        .with::<cart::CartModule>()
        .with::<recommendation::RecommendationModule>()
        .with::<ads::AdsModule>()
        .with::<shipping::ShippingModule>()
        .with::<payment::PaymentModule>()
        .with::<email::EmailModule>()
        .with::<orders::OrdersModule>()
        .with::<auth::AuthModule>()
        .with::<checkout::CheckoutModule>()
        .with::<frontend::FrontendModule>()
}
