//! The shipping actor: quotes by rule, tracking ids by [`tracking_id`].

use actix::{Actor, Context, Handler};
use cart::api::CartItem;
use currency::api::Money;
use runtime::{Call, Module, Outcome, StartContext, StartError};
use serde::Deserialize;

use crate::api::{
    GetQuote, GetQuoteResponse, ShipOrder, ShipOrderResponse, Shipping, ShippingError,
};
use crate::tracking::tracking_id;

/// `[modules.shipping]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShippingConfig {
    /// Make every `ShipOrder` fail (fault injection).
    pub fail_shipments: bool,
}

/// The shipping module.
pub struct ShippingModule;

impl Module for ShippingModule {
    type Service = Shipping;
    type Config = ShippingConfig;

    async fn start(config: ShippingConfig, _: StartContext) -> Result<Shipping, StartError> {
        if config.fail_shipments {
            tracing::warn!(
                module = "shipping",
                "fail_shipments is on: every shipment will fail"
            );
        }
        Ok(Shipping::start(ShippingActor { config }))
    }
}

struct ShippingActor {
    config: ShippingConfig,
}

impl Actor for ShippingActor {
    type Context = Context<Self>;
}

/// The flat rate: USD 8.99.
fn flat_rate() -> Money {
    Money::new("USD", 8, 990_000_000)
}

fn total_quantity(items: &[CartItem]) -> Result<i64, ShippingError> {
    let mut total = 0i64;
    for item in items {
        if item.quantity < 1 {
            return Err(ShippingError::InvalidQuantity {
                product_id: item.product_id.clone(),
                quantity: item.quantity,
            });
        }
        total += i64::from(item.quantity);
    }
    Ok(total)
}

impl Handler<Call<GetQuote>> for ShippingActor {
    type Result = Outcome<GetQuote>;

    fn handle(&mut self, call: Call<GetQuote>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        let cost_usd = match total_quantity(&call.items)? {
            0 => Money::zero("USD"),
            _ => flat_rate(),
        };
        Ok(GetQuoteResponse { cost_usd })
    }
}

impl Handler<Call<ShipOrder>> for ShippingActor {
    type Result = Outcome<ShipOrder>;

    fn handle(&mut self, call: Call<ShipOrder>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        if self.config.fail_shipments {
            tracing::warn!("shipment refused: fail_shipments is on");
            return Err(ShippingError::Unavailable {
                reason: "shipments are switched off (fail_shipments)".to_owned(),
            });
        }
        if total_quantity(&call.items)? == 0 {
            return Err(ShippingError::NothingToShip);
        }
        let tracking_id = tracking_id(&call.address, &call.idempotency_key);
        tracing::info!(%tracking_id, "shipped");
        Ok(ShipOrderResponse { tracking_id })
    }
}
