//! The cart actor: checks requests, hands storage to [`Store`].

use actix::{Actor, Context, Handler, ResponseFuture};
use runtime::{Call, ConfigRefused, Empty, Module, StartContext, StartError, Storage};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    AddItem, Cart, CartError, CartService, EmptyCart, GetCart, MergeCarts, RemoveOrderedLines,
    RemoveOrderedLinesResponse,
};
use crate::cache::CartCache;
use crate::store::{Added, Store};

/// The longest user or product id accepted, in bytes.
const MAX_ID_BYTES: usize = 256;

/// `[modules.cart]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartConfig {
    /// The carts' database: a `postgres://` URL, or a `sqlite:` path; by
    /// default `cart.db` in the data directory.
    pub database: Option<String>,
    /// The most different products one cart may hold.
    pub max_lines: usize,
    /// How many carts to keep in memory as well, so that reading one is not
    /// a database round trip (0: none). Only used when the module runs on
    /// one node: replicas share the database, so none may trust a copy.
    pub cached_carts: usize,
}

impl Default for CartConfig {
    fn default() -> Self {
        CartConfig {
            database: None,
            max_lines: 100,
            cached_carts: 10_000,
        }
    }
}

/// The cache the store reads through, if any: none when asked for none,
/// or when other replicas may write to the same database.
fn cache_for(config: &CartConfig, replicas: usize) -> Option<CartCache> {
    (config.cached_carts > 0 && replicas <= 1).then(|| CartCache::new(config.cached_carts))
}

/// The cart module.
pub struct CartModule;

impl Module for CartModule {
    type Service = CartService;
    type Config = CartConfig;

    fn storage(config: &CartConfig) -> Storage {
        Storage::database("cart", config.database.as_deref())
    }

    fn check(config: &CartConfig) -> Result<(), ConfigRefused> {
        storage::check_url(config.database.as_deref()).map_err(|e| ConfigRefused(e.to_string()))?;
        if config.max_lines == 0 {
            return Err("max_lines must be at least 1".into());
        }
        Ok(())
    }

    async fn start(config: CartConfig, ctx: StartContext) -> Result<CartService, StartError> {
        let cache = cache_for(&config, ctx.replicas());
        let store = Store::open(config.database.as_deref(), ctx.data_dir(), cache)
            .await
            .map_err(|e| StartError::failed(e.to_string()))?;
        let actor = CartActor {
            store,
            max_lines: i64::try_from(config.max_lines).unwrap_or(i64::MAX),
        };
        Ok(CartService::start(actor))
    }
}

struct CartActor {
    store: Store,
    max_lines: i64,
}

/// An id is 1 to [`MAX_ID_BYTES`] bytes with no control character
/// (PostgreSQL stores no NUL in text: taken, it would be a storage failure
/// there and a stored line on SQLite).
fn check_id(id: &str, error: CartError) -> Result<(), CartError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        Err(error)
    } else {
        Ok(())
    }
}

fn check_user(id: &str) -> Result<(), CartError> {
    check_id(id, CartError::InvalidUserId { max: MAX_ID_BYTES })
}

impl Actor for CartActor {
    type Context = Context<Self>;
}

impl Handler<Call<AddItem>> for CartActor {
    type Result = ResponseFuture<Result<Empty, CartError>>;

    fn handle(&mut self, call: Call<AddItem>, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        let max_lines = self.max_lines;
        let span = call.span();
        let AddItem { user_id, item } = call.into_message();
        Box::pin(
            async move {
                check_user(&user_id)?;
                check_id(
                    &item.product_id,
                    CartError::InvalidProductId { max: MAX_ID_BYTES },
                )?;
                if item.quantity < 1 {
                    return Err(CartError::InvalidQuantity {
                        quantity: item.quantity,
                    });
                }
                let (lines, has_product) = store.lines(&user_id, &item.product_id).await?;
                if !has_product && lines >= max_lines {
                    return Err(CartError::TooManyItems {
                        max: usize::try_from(max_lines).unwrap_or(usize::MAX),
                    });
                }
                match store.add(&user_id, &item.product_id, item.quantity).await? {
                    Added::Done => {
                        tracing::debug!(product_id = %item.product_id, "item added");
                        Ok(Empty {})
                    }
                    Added::Overflow => Err(CartError::QuantityTooLarge {
                        product_id: item.product_id,
                        max: i32::MAX,
                    }),
                }
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<GetCart>> for CartActor {
    type Result = ResponseFuture<Result<Cart, CartError>>;

    fn handle(&mut self, call: Call<GetCart>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let GetCart { user_id } = call.into_message();
        Box::pin(
            async move {
                check_user(&user_id)?;
                // Taken before the read: a line changed meanwhile counts
                // as changed after it (left in the cart late, not taken).
                let read_at_ms = storage::unix_ms();
                let items = store.get(&user_id).await?;
                Ok(Cart {
                    user_id,
                    items,
                    read_at_ms,
                })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<EmptyCart>> for CartActor {
    type Result = ResponseFuture<Result<Empty, CartError>>;

    fn handle(&mut self, call: Call<EmptyCart>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let EmptyCart { user_id } = call.into_message();
        Box::pin(
            async move {
                check_user(&user_id)?;
                store.empty(&user_id).await?;
                Ok(Empty {})
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<RemoveOrderedLines>> for CartActor {
    type Result = ResponseFuture<Result<RemoveOrderedLinesResponse, CartError>>;

    fn handle(&mut self, call: Call<RemoveOrderedLines>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let RemoveOrderedLines {
            user_id,
            items,
            unchanged_since_ms,
        } = call.into_message();
        Box::pin(
            async move {
                check_user(&user_id)?;
                store
                    .remove_ordered_lines(&user_id, &items, unchanged_since_ms)
                    .await
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<MergeCarts>> for CartActor {
    type Result = ResponseFuture<Result<Empty, CartError>>;

    fn handle(&mut self, call: Call<MergeCarts>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let store = self.store.clone();
        let MergeCarts {
            from_user_id,
            into_user_id,
        } = call.into_message();
        Box::pin(
            async move {
                check_user(&from_user_id)?;
                check_user(&into_user_id)?;
                if from_user_id != into_user_id {
                    store.merge(&from_user_id, &into_user_id).await?;
                }
                Ok(Empty {})
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod cache_choice_tests {
    use super::{CartConfig, cache_for};

    #[test]
    fn carts_are_cached_only_by_a_lone_replica_that_asks_for_it() {
        let config = CartConfig::default();
        assert!(cache_for(&config, 1).is_some());
        assert!(
            cache_for(&config, 2).is_none(),
            "replicas share the database"
        );
        let off = CartConfig {
            cached_carts: 0,
            ..CartConfig::default()
        };
        assert!(cache_for(&off, 1).is_none());
    }
}
