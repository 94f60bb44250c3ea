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

#[cfg(test)]
mod tests {
    /// The crates under `modules/` that are libraries the modules share,
    /// not modules: a new one goes here.
    const LIBRARIES: [&str; 2] = ["runtime", "storage"];

    /// A module crate left out of [`super::catalogue`] would be missing
    /// from the binary without a word (`modules = ["*"]` runs what the
    /// catalogue has): every directory under `modules/` is a module in it,
    /// under its own name, or a library named above.
    #[test]
    fn every_module_crate_is_in_the_catalogue() {
        let catalogue = super::catalogue();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if !entry.path().join("Cargo.toml").exists() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if LIBRARIES.contains(&name.as_str()) {
                continue;
            }
            assert!(
                catalogue.entry(&name).is_some(),
                "modules/{name} is not in boutique::catalogue() (src/lib.rs): add it there, \
                 or to LIBRARIES if it is no module"
            );
            checked += 1;
        }
        assert_eq!(checked, catalogue.modules().len());
    }
}
