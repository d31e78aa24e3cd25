//! The shipping capability: a shipment per paid order, until an admin has dispatched and
//! delivered it (DESIGN §3, steps 7 and 8).
//!
//! - [`domain`]: the shipment and its state machine, pure: every status change is a
//!   guarded method that raises the event announcing it.
//! - [`store`]: the shipments table, its keys, conditional writes and the outbox.
//! - [`api`]: the admin routes of DESIGN §2 and §6 (`/shipments`).
//! - [`consumer`]: the reactions to OrderPaid and OrderCancelled.
//!
//! Its events (ShipmentDispatched, ShipmentDelivered) leave only through the outbox; the
//! relay Lambda (`src/bin/relay.rs`) publishes them.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod store;
