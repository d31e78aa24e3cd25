//! The event contracts of the shop (DESIGN §2 and §4), shared by every capability.
//!
//! Every event travels on the bus as `{"metadata": {...}, "data": {...}}` in the
//! EventBridge `detail`, with `source` `shop.<capability>` and the event's name as
//! `detail-type`. Each event type here has a JSON Schema checked in under `schemas/`,
//! generated from the type and tested against it, so a contract change is always visible
//! in review.

mod envelope;
mod model;
mod spelling;

pub mod basket;
pub mod catalog;
pub mod inventory;
pub mod limits;
pub mod ordering;
pub mod payment;
pub mod schema;
pub mod shipping;

pub use envelope::{Envelope, EventMetadata};
pub use model::{Address, LineQuantity, Money, OrderLine};
pub use spelling::{is_ulid, new_event_id, new_ulid, timestamp};

use garde::Validate;
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

/// An event of the shop: its `detail-type`, the capability that publishes it and the
/// version of its `data` schema.
///
/// Its `data` keeps the contract's bounds ([`limits`]), checked by [`DomainEvent::check`]:
/// the same ones the HTTP API holds requests to, and visible in its JSON Schema.
pub trait DomainEvent: Serialize + DeserializeOwned + JsonSchema + Validate<Context = ()> {
    /// The EventBridge `detail-type`, also the event's name in DESIGN §2.
    const DETAIL_TYPE: &'static str;
    /// The EventBridge `source`: `shop.<capability>`.
    const SOURCE: &'static str;
    /// Bumped on every incompatible change to `data`; consumers may reject versions they
    /// do not know.
    const SCHEMA_VERSION: u32 = 1;
    /// Whether the data holds something the shop may pass on but must not keep (a
    /// payment token): the outbox item that carries it is deleted as soon as the bus has
    /// it, instead of staying for the replay window.
    const CARRIES_SECRET: bool = false;

    /// Whether the data keeps the contract's bounds; what breaks them, field by field.
    fn check(&self) -> Result<(), String> {
        self.validate().map_err(|report| {
            report
                .iter()
                .map(|(path, error)| format!("{path}: {}", error.message()))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// Declares the `DomainEvent` impls of one capability's events in one place.
macro_rules! events_of {
    ($source:literal: $event:ident, carries_secret) => {
        impl $crate::DomainEvent for $event {
            const DETAIL_TYPE: &'static str = stringify!($event);
            const SOURCE: &'static str = $source;
            const CARRIES_SECRET: bool = true;
        }
    };
    ($source:literal: $($event:ident),+ $(,)?) => {
        $(
            impl $crate::DomainEvent for $event {
                const DETAIL_TYPE: &'static str = stringify!($event);
                const SOURCE: &'static str = $source;
            }
        )+
    };
}
pub(crate) use events_of;
