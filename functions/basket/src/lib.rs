//! The basket capability: one basket per user, and the checkout that turns it into an
//! order (DESIGN §3, steps 1 and 2).
//!
//! - [`domain`]: baskets, the product projection and checkouts, and their rules; pure.
//! - [`store`]: the basket table, its items and conditional writes, the outbox.
//! - [`api`]: the basket routes of DESIGN §2 and §6, for signed-in users.
//! - [`consumer`]: ProductCreated/Updated/Deleted keep the projection of names and prices;
//!   OrderSubmitted takes the checked-out lines out of the basket.
//!
//! Its one event, CheckoutRequested, leaves only through the outbox; the relay Lambda
//! (`src/bin/relay.rs`) publishes it.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod store;
