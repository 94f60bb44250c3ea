//! The currency actor: holds the rates table, answers from it.

use std::path::PathBuf;

use actix::{Actor, Context, Handler};
use runtime::{Call, Module, StartContext, StartError};
use serde::Deserialize;

use crate::api::{
    Convert, Currency, CurrencyError, GetSupportedCurrencies, GetSupportedCurrenciesResponse, Money,
};
use crate::rates::Rates;

/// The rates built into the binary.
const BUILT_IN_RATES: &str = include_str!("../data/currency_conversion.json");

/// `[modules.currency]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurrencyConfig {
    /// A rates table to use instead of the built-in one (same JSON format).
    pub rates_file: Option<PathBuf>,
}

/// The currency module.
pub struct CurrencyModule;

impl Module for CurrencyModule {
    type Service = Currency;
    type Config = CurrencyConfig;

    fn data_files(config: &CurrencyConfig) -> Vec<(&'static str, PathBuf)> {
        config
            .rates_file
            .iter()
            .map(|path| ("rates_file", path.clone()))
            .collect()
    }

    async fn start(config: CurrencyConfig, _ctx: StartContext) -> Result<Currency, StartError> {
        let text = runtime::data_file("rates_file", config.rates_file.as_deref(), BUILT_IN_RATES)?;
        // What the file says is wrong: not mended by starting again.
        // Which file: the config's, or the built-in one.
        let rates = Rates::parse(&text).map_err(|e| {
            StartError::Config(match &config.rates_file {
                Some(path) => format!("rates_file {}: {e}", path.display()),
                None => format!("the built-in rates: {e}"),
            })
        })?;
        Ok(Currency::start(CurrencyActor { rates }))
    }
}

struct CurrencyActor {
    rates: Rates,
}

impl Actor for CurrencyActor {
    type Context = Context<Self>;
}

impl Handler<Call<GetSupportedCurrencies>> for CurrencyActor {
    type Result = Result<GetSupportedCurrenciesResponse, CurrencyError>;

    fn handle(
        &mut self,
        call: Call<GetSupportedCurrencies>,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let _span = call.span().entered();
        Ok(GetSupportedCurrenciesResponse {
            currency_codes: self.rates.codes().to_vec(),
        })
    }
}

impl Handler<Call<Convert>> for CurrencyActor {
    type Result = Result<Money, CurrencyError>;

    fn handle(&mut self, call: Call<Convert>, _: &mut Context<Self>) -> Self::Result {
        let result = self.rates.convert(&call.from, &call.to_code);
        if let Err(error) = &result {
            let _span = call.span().entered();
            tracing::debug!(%error, "conversion refused");
        }
        result
    }
}
