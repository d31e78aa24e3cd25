//! The inventory capability: how many units of each product the shop can sell, and what
//! it promised to each order.
//!
//! - [`domain`]: stock, reservations and the rules that move units between them, pure.
//! - [`store`]: the inventory table, its keys, guarded updates and the outbox.
//! - [`api`]: the admin routes of DESIGN §2 and §6 (`GET`/`PUT /inventory/{productId}`).
//! - [`consumer`]: ProductCreated, ProductDeleted, OrderSubmitted, OrderCancelled and
//!   ShipmentDispatched, from its queue.
//! - [`metrics`]: the business facts it counts (stock reserved, reservations failed).
//!
//! Its events (StockReserved, StockReservationFailed, StockReleased) leave only through
//! the outbox; the relay Lambda (`src/bin/relay.rs`) publishes them.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod metrics;
pub mod store;
