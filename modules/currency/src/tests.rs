//! Actor-message tests: the currency actor alone, through its messages.

use runtime::{ServiceRef, ServiceRegistry, start_alone};

use crate::api::{Convert, Currency, CurrencyError, GetSupportedCurrencies, Money};
use crate::{CurrencyConfig, CurrencyModule};

async fn currency() -> ServiceRef<Currency> {
    start_alone::<CurrencyModule>(
        CurrencyConfig::default(),
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap()
}

#[actix_rt::test]
async fn lists_currencies_in_table_order() {
    let reply = currency()
        .await
        .call(GetSupportedCurrencies {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.currency_codes.len(), 33);
    assert_eq!(reply.currency_codes[0], "EUR");
    assert!(reply.currency_codes.contains(&"TRY".to_owned()));
}

#[actix_rt::test]
async fn converts_usd_to_jpy() {
    let reply = currency()
        .await
        .call(Convert {
            from: Money::new("USD", 19, 990_000_000),
            to_code: "JPY".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply, Ok(Money::new("JPY", 2235, 60_592_707)));
}

#[actix_rt::test]
async fn unknown_codes_are_a_typed_error() {
    let reply = currency()
        .await
        .call(Convert {
            from: Money::new("USD", 1, 0),
            to_code: "CHX".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        reply,
        Err(CurrencyError::UnsupportedCurrency { code: "CHX".into() })
    );
}

#[actix_rt::test]
async fn a_missing_rates_file_stops_the_start() {
    let config = CurrencyConfig {
        rates_file: Some("/nonexistent/rates.json".into()),
    };
    let error = start_alone::<CurrencyModule>(config, ServiceRegistry::new(), std::env::temp_dir())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/rates.json"),
        "{error}"
    );
}

#[actix_rt::test]
async fn a_rates_file_that_is_no_table_stops_the_start_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("boutique-currency-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rates.json");
    std::fs::write(&path, "{\"EUR\": \"1.0\", \"USD\": \"x\"}").unwrap();
    let config = CurrencyConfig {
        rates_file: Some(path.clone()),
    };
    let error = start_alone::<CurrencyModule>(config, ServiceRegistry::new(), std::env::temp_dir())
        .await
        .unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    let named = format!("rates_file {}: the rate of USD ('x')", path.display());
    assert!(error.to_string().contains(&named), "{error}");
}
