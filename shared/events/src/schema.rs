//! JSON Schemas of every event's `detail`, generated from the types.

use serde_json::{Value, json};

use crate::{DomainEvent, Envelope};
use crate::{basket::*, catalog::*, inventory::*, ordering::*, payment::*, shipping::*};

/// The schema of one event's EventBridge `detail`, titled with its detail-type.
pub fn detail_schema<T: DomainEvent>() -> Value {
    let mut schema = schemars::schema_for!(Envelope<T>).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".into(),
            json!(format!(
                "urn:shop:event:{}:v{}",
                T::DETAIL_TYPE,
                T::SCHEMA_VERSION
            )),
        );
        object.insert("title".into(), json!(T::DETAIL_TYPE));
        object.insert(
            "description".into(),
            json!(format!(
                "EventBridge detail of {} (source {}, schema version {}).",
                T::DETAIL_TYPE,
                T::SOURCE,
                T::SCHEMA_VERSION
            )),
        );
    }
    schema
}

/// One published event: its detail-type, source and detail schema.
pub struct EventContract {
    pub detail_type: &'static str,
    pub source: &'static str,
    pub carries_secret: bool,
    pub schema: Value,
}

fn contract<T: DomainEvent>() -> EventContract {
    EventContract {
        detail_type: T::DETAIL_TYPE,
        source: T::SOURCE,
        carries_secret: T::CARRIES_SECRET,
        schema: detail_schema::<T>(),
    }
}

/// Every event of DESIGN §2, in the order of the table there.
pub fn all_contracts() -> Vec<EventContract> {
    vec![
        contract::<ProductCreated>(),
        contract::<ProductUpdated>(),
        contract::<ProductDeleted>(),
        contract::<StockReserved>(),
        contract::<StockReservationFailed>(),
        contract::<StockReleased>(),
        contract::<CheckoutRequested>(),
        contract::<OrderSubmitted>(),
        contract::<OrderStockConfirmed>(),
        contract::<OrderPaid>(),
        contract::<OrderCancellationRequested>(),
        contract::<OrderCancelled>(),
        contract::<OrderShipped>(),
        contract::<OrderDelivered>(),
        contract::<PaymentSucceeded>(),
        contract::<PaymentFailed>(),
        contract::<PaymentRefunded>(),
        contract::<ShipmentDispatched>(),
        contract::<ShipmentDelivered>(),
        contract::<ShipmentCancelled>(),
        contract::<ShipmentCancellationRefused>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new event that starts carrying the token would otherwise sit in its outbox for
    /// the whole replay window.
    #[test]
    fn exactly_the_events_with_a_payment_token_are_forgotten_once_published() {
        for contract in all_contracts() {
            let has_token = contract.schema.to_string().contains("\"paymentToken\"");
            assert_eq!(
                contract.carries_secret, has_token,
                "{} carries a payment token: {has_token}",
                contract.detail_type
            );
        }
    }
}
