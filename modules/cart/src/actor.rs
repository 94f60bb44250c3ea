//! The cart actor: every cart in a map from user id to lines.

use std::collections::HashMap;

use actix::{Actor, Context, Handler};
use runtime::{Call, Empty, Module, StartContext, StartError};
use serde::Deserialize;

use crate::api::{AddItem, Cart, CartError, CartItem, CartService, EmptyCart, GetCart};

/// The longest user or product id accepted, in bytes.
const MAX_ID_BYTES: usize = 256;

/// `[modules.cart]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartConfig {
    /// The most different products one cart may hold.
    pub max_lines: usize,
}

impl Default for CartConfig {
    fn default() -> Self {
        CartConfig { max_lines: 100 }
    }
}

/// The cart module.
pub struct CartModule;

impl Module for CartModule {
    type Service = CartService;
    type Config = CartConfig;

    async fn start(config: CartConfig, _ctx: StartContext) -> Result<CartService, StartError> {
        if config.max_lines == 0 {
            return Err(StartError::Config(
                "max_lines must be at least 1".to_owned(),
            ));
        }
        let actor = CartActor {
            carts: HashMap::new(),
            max_lines: config.max_lines,
        };
        Ok(CartService::from_addr(&actor.start()))
    }
}

struct CartActor {
    carts: HashMap<String, Vec<CartItem>>,
    max_lines: usize,
}

fn check_id(id: &str, error: CartError) -> Result<(), CartError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        Err(error)
    } else {
        Ok(())
    }
}

impl Actor for CartActor {
    type Context = Context<Self>;
}

impl Handler<Call<AddItem>> for CartActor {
    type Result = Result<Empty, CartError>;

    fn handle(&mut self, call: Call<AddItem>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        let AddItem { user_id, item } = call.into_message();
        check_id(&user_id, CartError::InvalidUserId { max: MAX_ID_BYTES })?;
        check_id(
            &item.product_id,
            CartError::InvalidProductId { max: MAX_ID_BYTES },
        )?;
        if item.quantity < 1 {
            return Err(CartError::InvalidQuantity {
                quantity: item.quantity,
            });
        }
        let max_lines = self.max_lines;
        let lines = self.carts.entry(user_id).or_default();
        match lines
            .iter()
            .position(|line| line.product_id == item.product_id)
        {
            Some(index) => {
                let line = &mut lines[index];
                line.quantity = line.quantity.checked_add(item.quantity).ok_or_else(|| {
                    CartError::QuantityTooLarge {
                        product_id: item.product_id.clone(),
                        max: i32::MAX,
                    }
                })?;
            }
            None if lines.len() >= max_lines => {
                return Err(CartError::TooManyItems { max: max_lines });
            }
            None => lines.push(item),
        }
        tracing::debug!(lines = lines.len(), "item added");
        Ok(Empty {})
    }
}

impl Handler<Call<GetCart>> for CartActor {
    type Result = Result<Cart, CartError>;

    fn handle(&mut self, call: Call<GetCart>, _: &mut Context<Self>) -> Self::Result {
        let GetCart { user_id } = call.into_message();
        check_id(&user_id, CartError::InvalidUserId { max: MAX_ID_BYTES })?;
        let items = self.carts.get(&user_id).cloned().unwrap_or_default();
        Ok(Cart { user_id, items })
    }
}

impl Handler<Call<EmptyCart>> for CartActor {
    type Result = Result<Empty, CartError>;

    fn handle(&mut self, call: Call<EmptyCart>, _: &mut Context<Self>) -> Self::Result {
        let EmptyCart { user_id } = call.into_message();
        check_id(&user_id, CartError::InvalidUserId { max: MAX_ID_BYTES })?;
        self.carts.remove(&user_id);
        Ok(Empty {})
    }
}
