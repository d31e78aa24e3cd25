//! The ordering capability: orders and their status history (DESIGN §3).
//!
//! - [`domain`]: the order and its state machine, pure: every status change is a guarded
//!   method that raises the event announcing it.
//! - [`store`]: the orders table, its keys, conditional writes and the outbox.
//! - [`api`]: the HTTP routes of DESIGN §2 and §6, for the orders' owners.
//! - [`consumer`]: the reactions to CheckoutRequested, StockReserved,
//!   StockReservationFailed, PaymentSucceeded, PaymentFailed, ShipmentDispatched and
//!   ShipmentDelivered.
//! - [`metrics`]: the business facts it counts (orders placed, paid, cancelled by reason).
//!
//! Its events (OrderSubmitted, OrderStockConfirmed, OrderCancelled, ...) leave only through
//! the outbox; the relay Lambda (`src/bin/relay.rs`) publishes them.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod metrics;
pub mod store;
