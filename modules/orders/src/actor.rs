//! The orders actor: checks orders, hands storage to [`Store`].

use actix::{Actor, Context, Handler, ResponseFuture};
use runtime::{Call, ConfigRefused, Module, StartContext, StartError, Storage};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    CARTS_TO_EMPTY, ClaimOrders, ClaimOrdersResponse, ClaimUnfinished, ClaimUnfinishedResponse,
    ConfirmOrder, ConfirmOrderResponse, FindCartsToEmpty, FindCartsToEmptyResponse, FindOrder,
    FindOrderResponse, FindSettledOrder, GetOrder, ListOrders, ListOrdersResponse, Order, Orders,
    OrdersError, RecordStepDone, SaveOrder, SaveOrderResponse, UnfinishedOrder,
};
use crate::store::Store;

/// `[modules.orders]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// The store's database: a `postgres://` URL, or a `sqlite:` path; by
    /// default `orders.db` in the data directory.
    pub database: Option<String>,
}

/// The orders module.
pub struct OrdersModule;

impl Module for OrdersModule {
    type Service = Orders;
    type Config = OrdersConfig;

    fn storage(config: &OrdersConfig) -> Storage {
        Storage::database("orders", config.database.as_deref())
    }

    fn check(config: &OrdersConfig) -> Result<(), ConfigRefused> {
        storage::check_url(config.database.as_deref()).map_err(|e| ConfigRefused(e.to_string()))
    }

    async fn start(config: OrdersConfig, ctx: StartContext) -> Result<Orders, StartError> {
        let store = Store::open(config.database.as_deref(), ctx.data_dir())
            .await
            .map_err(|e| StartError::failed(e.to_string()))?;
        Ok(Orders::start(OrdersActor { store }))
    }
}

struct OrdersActor {
    store: Store,
}

impl Actor for OrdersActor {
    type Context = Context<Self>;
}

fn check(order: &Order, key: &str) -> Result<(), OrdersError> {
    let invalid = |what: &str| Err(OrdersError::InvalidOrder(what.to_owned()));
    if key.is_empty() {
        return invalid("the idempotency key is empty");
    }
    if order.order_id.is_empty() || order.customer_id.is_empty() {
        return invalid("the order or customer id is empty");
    }
    if order.items.is_empty() {
        return invalid("the order has no items");
    }
    order
        .total
        .validate()
        .map_err(|e| OrdersError::InvalidOrder(e.to_string()))?;
    Ok(())
}

impl Handler<Call<SaveOrder>> for OrdersActor {
    type Result = ResponseFuture<Result<SaveOrderResponse, OrdersError>>;

    fn handle(&mut self, call: Call<SaveOrder>, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        let span = call.span();
        let SaveOrder {
            order,
            idempotency_key,
        } = call.into_message();
        Box::pin(async move {
            check(&order, &idempotency_key)?;
            let (order, created) = store.save(&order, &idempotency_key).await?;
            if created {
                tracing::info!(order_id = %order.order_id, total = %order.total, "order stored");
            } else {
                tracing::info!(order_id = %order.order_id, "order already stored under this key");
            }
            Ok(SaveOrderResponse { order, created })
        }
        .instrument(span))
    }
}

impl Handler<Call<GetOrder>> for OrdersActor {
    type Result = ResponseFuture<Result<Order, OrdersError>>;

    fn handle(&mut self, call: Call<GetOrder>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let GetOrder {
            customer_id,
            order_id,
        } = call.into_message();
        Box::pin(async move { store.get(&customer_id, &order_id).await }.instrument(span))
    }
}

impl Handler<Call<ListOrders>> for OrdersActor {
    type Result = ResponseFuture<Result<ListOrdersResponse, OrdersError>>;

    fn handle(&mut self, call: Call<ListOrders>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let ListOrders {
            customer_id,
            before,
        } = call.into_message();
        Box::pin(
            async move {
                let (orders, next_before) = store.list(&customer_id, before.as_deref()).await?;
                Ok(ListOrdersResponse {
                    orders,
                    next_before,
                })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<FindOrder>> for OrdersActor {
    type Result = ResponseFuture<Result<FindOrderResponse, OrdersError>>;

    fn handle(&mut self, call: Call<FindOrder>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let FindOrder { idempotency_key } = call.into_message();
        Box::pin(
            async move { Ok(found(store.find_with_state(&idempotency_key).await?)) }
                .instrument(span),
        )
    }
}

impl Handler<Call<FindSettledOrder>> for OrdersActor {
    type Result = ResponseFuture<Result<FindOrderResponse, OrdersError>>;

    fn handle(&mut self, call: Call<FindSettledOrder>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let FindSettledOrder { idempotency_key } = call.into_message();
        Box::pin(
            async move { Ok(found(store.find_settled(&idempotency_key).await?)) }.instrument(span),
        )
    }
}

/// What [`FindOrder`] and [`FindSettledOrder`] answer.
fn found(stored: Option<crate::store::Stored>) -> FindOrderResponse {
    match stored {
        Some(stored) => FindOrderResponse {
            order: Some(stored.order),
            confirmed: stored.confirmed,
            emailed: stored.emailed,
            cart_emptied: stored.cart_emptied,
        },
        None => FindOrderResponse {
            order: None,
            confirmed: false,
            emailed: false,
            cart_emptied: false,
        },
    }
}

impl Handler<Call<ConfirmOrder>> for OrdersActor {
    type Result = ResponseFuture<Result<ConfirmOrderResponse, OrdersError>>;

    fn handle(&mut self, call: Call<ConfirmOrder>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let ConfirmOrder { idempotency_key } = call.into_message();
        Box::pin(
            async move {
                Ok(ConfirmOrderResponse {
                    found: store.confirm(&idempotency_key).await?,
                })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<ClaimOrders>> for OrdersActor {
    type Result = ResponseFuture<Result<ClaimOrdersResponse, OrdersError>>;

    fn handle(&mut self, call: Call<ClaimOrders>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let ClaimOrders {
            from_customer_id,
            to_customer_id,
        } = call.into_message();
        Box::pin(
            async move {
                if from_customer_id.is_empty()
                    || to_customer_id.is_empty()
                    || from_customer_id == to_customer_id
                {
                    return Ok(ClaimOrdersResponse { moved: 0 });
                }
                Ok(ClaimOrdersResponse {
                    moved: store.claim(&from_customer_id, &to_customer_id).await?,
                })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<ClaimUnfinished>> for OrdersActor {
    type Result = ResponseFuture<Result<ClaimUnfinishedResponse, OrdersError>>;

    fn handle(&mut self, call: Call<ClaimUnfinished>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let ClaimUnfinished {
            unfinished_for_ms,
            not_older_than_ms,
            lease_ms,
            limit,
        } = call.into_message();
        Box::pin(
            async move {
                let claimed = store
                    .claim_unfinished(unfinished_for_ms, not_older_than_ms, lease_ms, limit)
                    .await?;
                Ok(ClaimUnfinishedResponse {
                    orders: unfinished(claimed),
                })
            }
            .instrument(span),
        )
    }
}

/// Orders as the store found them, with their keys, as answered.
fn unfinished(found: Vec<(String, crate::store::Stored)>) -> Vec<UnfinishedOrder> {
    found
        .into_iter()
        .map(|(idempotency_key, stored)| UnfinishedOrder {
            idempotency_key,
            order: stored.order,
            emailed: stored.emailed,
            cart_emptied: stored.cart_emptied,
        })
        .collect()
}

impl Handler<Call<FindCartsToEmpty>> for OrdersActor {
    type Result = ResponseFuture<Result<FindCartsToEmptyResponse, OrdersError>>;

    fn handle(&mut self, call: Call<FindCartsToEmpty>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let FindCartsToEmpty {
            customer_id,
            not_older_than_ms,
        } = call.into_message();
        Box::pin(
            async move {
                let found = store
                    .carts_to_empty(&customer_id, not_older_than_ms, CARTS_TO_EMPTY)
                    .await?;
                Ok(FindCartsToEmptyResponse {
                    orders: unfinished(found),
                })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<RecordStepDone>> for OrdersActor {
    type Result = ResponseFuture<Result<ConfirmOrderResponse, OrdersError>>;

    fn handle(&mut self, call: Call<RecordStepDone>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let RecordStepDone {
            idempotency_key,
            step,
        } = call.into_message();
        Box::pin(
            async move {
                Ok(ConfirmOrderResponse {
                    found: store.record_step(&idempotency_key, step).await?,
                })
            }
            .instrument(span),
        )
    }
}
