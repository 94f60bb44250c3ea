//! Actor-message tests: the payment actor alone, on every storage backend.

use currency::api::Money;
use runtime::{Empty, ServiceRef, ServiceRegistry, start_alone};
use storage::testing::{TempDir, TestBackend, backends};

use crate::api::{
    CancelCharge, Cancellation, Charge, ChargeResponse, ChargeStatus, CreditCardInfo, ListCharges,
    Payment, PaymentError, Refund,
};
use crate::{PaymentConfig, PaymentModule};

async fn payment(backend: &TestBackend, dir: &TempDir) -> ServiceRef<Payment> {
    let config = PaymentConfig {
        database: backend.database_url().await,
    };
    start_alone::<PaymentModule>(config, ServiceRegistry::new(), dir.path())
        .await
        .unwrap()
}

fn visa() -> CreditCardInfo {
    CreditCardInfo {
        credit_card_number: "4432-8015-6152-0454".into(),
        credit_card_cvv: 672,
        credit_card_expiration_year: 2099,
        credit_card_expiration_month: 1,
    }
}

/// A charge of `units`.50 EUR under `key`, by attempt a1.
fn charge(key: &str, units: i64) -> Charge {
    charge_by("a1", key, units)
}

/// [`charge`], by `attempt`.
fn charge_by(attempt: &str, key: &str, units: i64) -> Charge {
    Charge {
        amount: Money::new("EUR", units, 500_000_000),
        credit_card: visa(),
        idempotency_key: key.into(),
        attempt: attempt.into(),
    }
}

async fn charges(payment: &ServiceRef<Payment>, key: &str) -> Vec<crate::api::ChargeRecord> {
    let list = ListCharges {
        idempotency_key: key.into(),
        limit: 100,
    };
    payment.call(list).await.unwrap().unwrap().charges
}

#[actix_rt::test]
async fn the_same_key_charges_once() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let first = payment.call(charge("order-1", 20)).await.unwrap().unwrap();
        let again = payment.call(charge("order-1", 20)).await.unwrap().unwrap();
        assert_eq!(first, again, "{}", backend.name());
        // Concurrent repeats too.
        let calls: Vec<_> = (0..10)
            .map(|_| payment.call(charge("order-2", 5)))
            .collect();
        let mut ids = std::collections::HashSet::new();
        for call in calls {
            ids.insert(call.await.unwrap().unwrap().transaction_id);
        }
        assert_eq!(ids.len(), 1, "{}", backend.name());
        let recorded = charges(&payment, "").await;
        assert_eq!(recorded.len(), 2, "{}", backend.name());
        let one = charges(&payment, "order-1").await;
        assert_eq!(one[0].amount, Money::new("EUR", 20, 500_000_000));
        assert_eq!(one[0].card_last4, "0454");
        assert_eq!(one[0].card_type, "visa");
    }
}

#[actix_rt::test]
async fn a_key_cannot_charge_another_amount() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        payment.call(charge("k", 20)).await.unwrap().unwrap();
        let reply = payment.call(charge("k", 21)).await.unwrap();
        assert!(
            matches!(reply, Err(PaymentError::KeyReused { .. })),
            "{}: {reply:?}",
            backend.name()
        );
    }
}

#[actix_rt::test]
async fn declined_cards_say_why_and_record_nothing() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let mut amex = charge("a", 1);
        amex.credit_card.credit_card_number = "378282246310005".into();
        assert_eq!(
            payment.call(amex).await.unwrap(),
            Err(PaymentError::UnsupportedCard {
                card_type: "amex".into()
            })
        );
        let mut expired = charge("b", 1);
        expired.credit_card.credit_card_expiration_year = 2001;
        let reply = payment.call(expired).await.unwrap();
        assert!(
            matches!(reply, Err(PaymentError::Expired { ref last4, month: 1, year: 2001 }) if last4 == "0454")
        );
        let mut negative = charge("c", 1);
        negative.amount = Money::new("EUR", -1, 0);
        assert_eq!(
            payment.call(negative).await.unwrap(),
            Err(PaymentError::NegativeAmount)
        );
        assert!(charges(&payment, "").await.is_empty(), "{}", backend.name());
    }
}

#[actix_rt::test]
async fn a_repeated_charge_stands_though_its_card_has_expired_since() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let first = payment.call(charge("order-1", 20)).await.unwrap().unwrap();
        // The checkout, in doubt, is submitted again after the card's last
        // month has ended: its charge is the one that stands, not a
        // decline (which left it held with no order).
        let mut again = charge("order-1", 20);
        again.credit_card.credit_card_expiration_year = 2020;
        let repeated = payment.call(again).await.unwrap();
        assert_eq!(repeated, Ok(first), "{}", backend.name());
        // A new key with that card is declined.
        let mut fresh = charge("order-2", 20);
        fresh.credit_card.credit_card_expiration_year = 2020;
        assert!(matches!(
            payment.call(fresh).await.unwrap(),
            Err(PaymentError::Expired { .. })
        ));
    }
}

#[actix_rt::test]
async fn a_refund_is_recorded_and_the_key_stays_spent() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let charged = payment.call(charge("k", 3)).await.unwrap().unwrap();
        let refund = Refund {
            transaction_id: charged.transaction_id.clone(),
            reason: "shipping failed".into(),
        };
        assert_eq!(payment.call(refund.clone()).await.unwrap(), Ok(Empty {}));
        assert_eq!(
            payment.call(refund).await.unwrap(),
            Ok(Empty {}),
            "refunding twice is fine"
        );
        assert_eq!(
            charges(&payment, "k").await[0].status,
            ChargeStatus::Refunded
        );
        assert_eq!(
            payment.call(charge("k", 3)).await.unwrap(),
            Err(PaymentError::AlreadyRefunded { key: "k".into() })
        );
        let unknown = Refund {
            transaction_id: "nope".into(),
            reason: String::new(),
        };
        assert!(matches!(
            payment.call(unknown).await.unwrap(),
            Err(PaymentError::UnknownTransaction { .. })
        ));
    }
}

#[actix_rt::test]
async fn charges_survive_a_restart() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let url = backend.database_url().await;
        let start = || {
            let config = PaymentConfig {
                database: url.clone(),
            };
            start_alone::<PaymentModule>(config, ServiceRegistry::new(), dir.path())
        };
        let first = start().await.unwrap();
        let charged = first.call(charge("k", 9)).await.unwrap().unwrap();
        drop(first);
        let second = start().await.unwrap();
        assert_eq!(
            second.call(charge("k", 9)).await.unwrap().unwrap(),
            charged,
            "{}",
            backend.name()
        );
    }
}

#[test]
fn card_numbers_never_show_in_debug_output() {
    let shown = format!("{:?}", visa());
    assert!(!shown.contains("4432"), "{shown}");
    assert!(shown.contains("0454"), "{shown}");
}

/// Cancels attempt `a1`'s charge (the attempt [`charge`] makes).
fn cancel(key: &str, units: i64) -> CancelCharge {
    cancel_by("a1", key, units)
}

/// [`cancel`], by `attempt`.
fn cancel_by(attempt: &str, key: &str, units: i64) -> CancelCharge {
    CancelCharge {
        idempotency_key: key.into(),
        attempt: attempt.into(),
        amount: Money::new("EUR", units, 500_000_000),
        reason: "the charge call was lost".into(),
    }
}

/// a1 charges 10.50 EUR under `k`, and a2 (the same checkout submitted
/// again) gets the same charge back, taking it up: both hold it.
async fn charged_and_taken_up(payment: &ServiceRef<Payment>) -> ChargeResponse {
    let first = payment.call(charge("k", 10)).await.unwrap().unwrap();
    let repeat = charge_by("a2", "k", 10);
    assert_eq!(payment.call(repeat).await.unwrap().unwrap(), first);
    first
}

#[actix_rt::test]
async fn a_charge_cancelled_before_it_came_is_refused_when_it_comes() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;

        let cancelled = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(
            cancelled.outcome,
            Cancellation::NeverCharged,
            "{}",
            backend.name()
        );
        // The charge arrives late: refused, and no money moves.
        assert_eq!(
            payment.call(charge("k", 10)).await.unwrap(),
            Err(PaymentError::Cancelled { key: "k".into() })
        );
        // Another amount under the key: still "cancelled", not "reused".
        assert_eq!(
            payment.call(charge("k", 11)).await.unwrap(),
            Err(PaymentError::Cancelled { key: "k".into() })
        );
        let records = charges(&payment, "k").await;
        assert_eq!(records.len(), 1, "{}", backend.name());
        assert_eq!(records[0].status, ChargeStatus::Cancelled);
        // Cancelling again says the same.
        let again = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(again.outcome, Cancellation::NeverCharged);
    }
}

#[actix_rt::test]
async fn a_charge_cancelled_after_it_was_made_is_refunded() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        payment.call(charge("k", 10)).await.unwrap().unwrap();

        let cancelled = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(
            cancelled.outcome,
            Cancellation::Refunded,
            "{}",
            backend.name()
        );
        let records = charges(&payment, "k").await;
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].status,
            ChargeStatus::Refunded,
            "{}",
            backend.name()
        );
        let again = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(again.outcome, Cancellation::Refunded);
        assert_eq!(
            payment.call(charge("k", 10)).await.unwrap(),
            Err(PaymentError::AlreadyRefunded { key: "k".into() })
        );
    }
}

#[actix_rt::test]
async fn a_charge_another_attempt_made_is_not_cancelled() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        // Attempt a1 charges; a2 repeats it (the same charge comes back)
        // and, not knowing that, cancels its own.
        let first = charged_and_taken_up(&payment).await;

        let kept = payment
            .call(cancel_by("a2", "k", 10))
            .await
            .unwrap()
            .unwrap();

        assert_eq!(
            kept.outcome,
            Cancellation::KeptForAnotherAttempt,
            "{}",
            backend.name()
        );
        let records = charges(&payment, "k").await;
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].status,
            ChargeStatus::Charged,
            "{}",
            backend.name()
        );
        assert_eq!(records[0].transaction_id, first.transaction_id);
    }
}

#[actix_rt::test]
async fn a_charge_another_attempt_took_up_is_not_cancelled_by_the_one_that_made_it() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        // Attempt a1 charges, but its answer is lost; a2 (the same
        // checkout submitted again, on another replica say) gets the same
        // charge back and may store its order on it; then a1, in doubt,
        // cancels.
        charged_and_taken_up(&payment).await;

        let kept = payment.call(cancel("k", 10)).await.unwrap().unwrap();

        assert_eq!(
            kept.outcome,
            Cancellation::KeptForAnotherAttempt,
            "{}",
            backend.name()
        );
        let records = charges(&payment, "k").await;
        assert_eq!(
            records[0].status,
            ChargeStatus::Charged,
            "{}",
            backend.name()
        );
    }
}

#[actix_rt::test]
async fn a_charge_is_refunded_once_every_attempt_holding_it_lets_go() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let name = backend.name();
        // a1 charges and a2 takes the charge up (two replicas racing one
        // checkout); both then fail for certain (shipping refuses both).
        charged_and_taken_up(&payment).await;

        // a2 lets go: a1 may still store an order on it.
        let by_a2 = cancel_by("a2", "k", 10);
        let kept = payment.call(by_a2.clone()).await.unwrap().unwrap();
        assert_eq!(kept.outcome, Cancellation::KeptForAnotherAttempt, "{name}");
        // Letting go twice changes nothing.
        let kept = payment.call(by_a2).await.unwrap().unwrap();
        assert_eq!(kept.outcome, Cancellation::KeptForAnotherAttempt, "{name}");
        // a1 lets go too: nobody holds it, and the money goes back.
        let refunded = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(refunded.outcome, Cancellation::Refunded, "{name}");
        assert_eq!(
            charges(&payment, "k").await[0].status,
            ChargeStatus::Refunded
        );
        // A third attempt coming late finds it refunded.
        assert_eq!(
            payment.call(charge_by("a3", "k", 10)).await.unwrap(),
            Err(PaymentError::AlreadyRefunded { key: "k".into() })
        );
    }
}

#[actix_rt::test]
async fn a_charge_refused_for_another_amount_holds_nothing() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let name = backend.name();
        payment.call(charge("k", 10)).await.unwrap().unwrap();
        // a2 comes with another total (the cart changed): refused.
        assert!(matches!(
            payment.call(charge_by("a2", "k", 11)).await.unwrap(),
            Err(PaymentError::KeyReused { .. })
        ));
        // a1 lets go, and nobody else holds it.
        let refunded = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(refunded.outcome, Cancellation::Refunded, "{name}");
    }
}

#[actix_rt::test]
async fn an_attempt_that_let_go_takes_nothing_up_when_its_charge_comes_late() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let name = backend.name();
        payment.call(charge("k", 10)).await.unwrap().unwrap();
        // a2's Charge is lost on the way, so it cancels: a1 holds the
        // charge, which stands.
        let kept = payment
            .call(cancel_by("a2", "k", 10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.outcome, Cancellation::KeptForAnotherAttempt, "{name}");
        // a2's Charge arrives late: refused, holding nothing.
        assert_eq!(
            payment.call(charge_by("a2", "k", 10)).await.unwrap(),
            Err(PaymentError::Cancelled { key: "k".into() }),
            "{name}"
        );
        // So when a1 lets go, the money goes back.
        let refunded = payment.call(cancel("k", 10)).await.unwrap().unwrap();
        assert_eq!(refunded.outcome, Cancellation::Refunded, "{name}");
    }
}

/// A key needs an attempt: two callers that both left it out would hold
/// the charge as one, and either's cancellation would refund the other's.
/// A cancellation needs a key, and an amount by the rules.
#[actix_rt::test]
async fn calls_under_a_key_name_their_attempt_and_cancellations_are_checked() {
    for backend in backends() {
        let dir = TempDir::new("payment");
        let payment = payment(&backend, &dir).await;
        let name = backend.name();
        assert_eq!(
            payment.call(charge_by("", "k", 10)).await.unwrap(),
            Err(PaymentError::AttemptMissing { key: "k".into() }),
            "{name}"
        );
        // A one-off charge (no key) needs none.
        payment.call(charge_by("", "", 10)).await.unwrap().unwrap();
        assert_eq!(
            payment.call(cancel_by("", "k", 10)).await.unwrap(),
            Err(PaymentError::AttemptMissing { key: "k".into() }),
            "{name}"
        );
        assert_eq!(
            payment.call(cancel_by("a1", "", 10)).await.unwrap(),
            Err(PaymentError::KeyMissing),
            "{name}"
        );
        let mut bad_amount = cancel("k", 10);
        bad_amount.amount = Money::new("EUR", 1, -5);
        assert!(
            matches!(
                payment.call(bad_amount).await.unwrap(),
                Err(PaymentError::InvalidAmount(_))
            ),
            "{name}"
        );
        let mut negative = cancel("k", 10);
        negative.amount = Money::new("EUR", -1, 0);
        assert_eq!(
            payment.call(negative).await.unwrap(),
            Err(PaymentError::NegativeAmount),
            "{name}"
        );
        // None of them recorded anything under the key: it still charges.
        assert!(charges(&payment, "k").await.is_empty(), "{name}");
        payment.call(charge("k", 10)).await.unwrap().unwrap();
    }
}
