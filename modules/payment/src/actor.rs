//! The payment actor: checks cards, charges them once per idempotency key.

use actix::{Actor, Context, Handler, ResponseFuture};
use currency::api::Money;
use runtime::{Call, ConfigRefused, Empty, Module, StartContext, StartError, Storage};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    CancelCharge, CancelChargeResponse, Charge, ChargeRecord, ChargeResponse, ChargeStatus,
    ListCharges, ListChargesResponse, Payment, PaymentError, Refund,
};
use crate::card;
use crate::ledger::Ledger;

/// `[modules.payment]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentConfig {
    /// The ledger's database: a `postgres://` URL, or a `sqlite:` path;
    /// by default `payment.db` in the data directory.
    pub database: Option<String>,
}

/// The payment module.
pub struct PaymentModule;

impl Module for PaymentModule {
    type Service = Payment;
    type Config = PaymentConfig;

    fn storage(config: &PaymentConfig) -> Storage {
        Storage::database("payment", config.database.as_deref())
    }

    fn check(config: &PaymentConfig) -> Result<(), ConfigRefused> {
        storage::check_url(config.database.as_deref()).map_err(|e| ConfigRefused(e.to_string()))
    }

    async fn start(config: PaymentConfig, ctx: StartContext) -> Result<Payment, StartError> {
        let ledger = Ledger::open(config.database.as_deref(), ctx.data_dir())
            .await
            .map_err(|e| StartError::failed(e.to_string()))?;
        Ok(Payment::start(PaymentActor { ledger }))
    }
}

struct PaymentActor {
    ledger: Ledger,
}

impl Actor for PaymentActor {
    type Context = Context<Self>;
}

impl Handler<Call<Charge>> for PaymentActor {
    type Result = ResponseFuture<Result<ChargeResponse, PaymentError>>;

    fn handle(&mut self, call: Call<Charge>, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        let span = call.span();
        let Charge {
            amount,
            credit_card,
            idempotency_key,
            attempt,
        } = call.into_message();
        // Instrumented, not entered: the future waits on the ledger, and
        // another call's lines would be logged in this call's span while it
        // waits (and this call's in whichever span came last).
        Box::pin(
            async move {
            if !idempotency_key.is_empty() && attempt.is_empty() {
                return Err(PaymentError::AttemptMissing { key: idempotency_key });
            }
            let transaction_id = uuid::Uuid::new_v4().to_string();
            let key = if idempotency_key.is_empty() {
                format!("one-off:{transaction_id}")
            } else {
                idempotency_key
            };
            // A charge already under the key had its card checked when it
            // was made: a repeat is not checked again. Before, a checkout
            // in doubt submitted again after the card's last month ended
            // was declined as expired, and the charge it held stood with
            // no order.
            let recorded = match ledger.find(&key).await? {
                Some(existing) => {
                    valid_amount(&amount)?;
                    existing
                }
                None => {
                    let checked = card::check(&credit_card, card::today());
                    if let Err(error) = &checked {
                        tracing::info!(%error, "card declined");
                    }
                    let checked = checked?;
                    valid_amount(&amount)?;
                    let wanted = ChargeRecord {
                        transaction_id: transaction_id.clone(),
                        idempotency_key: key.clone(),
                        amount: amount.clone(),
                        card_type: checked.card_type.to_owned(),
                        card_last4: checked.last4,
                        status: ChargeStatus::Charged,
                        created_at: storage::unix_ms(),
                    };
                    ledger.insert(&wanted, &attempt).await?
                }
            };
            // A key used up says so first, whatever the amount; then a key
            // used for another amount, before this attempt takes anything
            // up (a refused charge holds nothing).
            used_up(&recorded, &key)?;
            if recorded.amount != amount {
                return Err(PaymentError::KeyReused {
                    key,
                    charged: recorded.amount,
                });
            }
            // A charge that was there already (another attempt's, or this
            // one's sent twice) is taken up: this attempt holds it too,
            // and it is not refunded while it does, since this one may
            // store an order on it. Unless this attempt let go of the key
            // already (it cancelled, this Charge arriving late), or a
            // cancellation refunded it first.
            let recorded = if recorded.transaction_id == transaction_id {
                recorded
            } else {
                let taken = ledger.take_up(&key, &attempt).await?;
                if taken.let_go_before {
                    return Err(PaymentError::Cancelled { key });
                }
                used_up(&taken.charge, &key)?;
                taken.charge
            };
            if recorded.transaction_id == transaction_id {
                tracing::info!(transaction_id = %recorded.transaction_id, amount = %amount, "charged");
            } else {
                tracing::info!(transaction_id = %recorded.transaction_id, "repeated charge: the first one stands");
            }
            Ok(ChargeResponse {
                transaction_id: recorded.transaction_id,
            })
            }
            .instrument(span),
        )
    }
}

/// `amount` if it keeps the money rules and is not negative: what a
/// charge, or a cancellation recorded for one, may be for.
fn valid_amount(amount: &Money) -> Result<(), PaymentError> {
    amount.validate().map_err(PaymentError::InvalidAmount)?;
    if amount.is_negative() {
        return Err(PaymentError::NegativeAmount);
    }
    Ok(())
}

/// The error for a key whose charge was refunded or cancelled, if it was.
fn used_up(charge: &ChargeRecord, key: &str) -> Result<(), PaymentError> {
    let key = key.to_owned();
    match charge.status {
        ChargeStatus::Refunded => Err(PaymentError::AlreadyRefunded { key }),
        ChargeStatus::Cancelled => Err(PaymentError::Cancelled { key }),
        ChargeStatus::Charged => Ok(()),
    }
}

impl Handler<Call<Refund>> for PaymentActor {
    type Result = ResponseFuture<Result<Empty, PaymentError>>;

    fn handle(&mut self, call: Call<Refund>, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        let span = call.span();
        let Refund {
            transaction_id,
            reason,
        } = call.into_message();
        Box::pin(
            async move {
                ledger.refund(&transaction_id, &reason).await?;
                tracing::info!(%transaction_id, %reason, "refunded");
                Ok(Empty {})
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<CancelCharge>> for PaymentActor {
    type Result = ResponseFuture<Result<CancelChargeResponse, PaymentError>>;

    fn handle(&mut self, call: Call<CancelCharge>, _: &mut Context<Self>) -> Self::Result {
        let ledger = self.ledger.clone();
        let span = call.span();
        let CancelCharge {
            idempotency_key,
            attempt,
            amount,
            reason,
        } = call.into_message();
        Box::pin(
            async move {
                // What is recorded for a key no charge can take any more is
                // a key, an attempt and an amount by the rules.
                if idempotency_key.is_empty() {
                    return Err(PaymentError::KeyMissing);
                }
                if attempt.is_empty() {
                    return Err(PaymentError::AttemptMissing {
                        key: idempotency_key,
                    });
                }
                valid_amount(&amount)?;
                let outcome = ledger
                    .cancel(&idempotency_key, &attempt, &amount, &reason)
                    .await?;
                let key = runtime::text::without_guest_sessions(&idempotency_key);
                tracing::info!(key, %reason, ?outcome, "charge cancelled");
                Ok(CancelChargeResponse { outcome })
            }
            .instrument(span),
        )
    }
}

impl Handler<Call<ListCharges>> for PaymentActor {
    type Result = ResponseFuture<Result<ListChargesResponse, PaymentError>>;

    fn handle(&mut self, call: Call<ListCharges>, _: &mut Context<Self>) -> Self::Result {
        let span = call.span();
        let ledger = self.ledger.clone();
        let ListCharges {
            idempotency_key,
            limit,
        } = call.into_message();
        Box::pin(
            async move {
                Ok(ListChargesResponse {
                    charges: ledger.list(&idempotency_key, limit).await?,
                })
            }
            .instrument(span),
        )
    }
}
