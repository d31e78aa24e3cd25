//! The payment capability: one payment per order, charged through a payment provider.
//!
//! - [`domain`]: payments and the rules of their life, pure.
//! - [`provider`]: the provider port, the retry policy its calls run under, and the
//!   adapter to a provider's HTTP API.
//! - [`secret`]: the provider's API key, from Secrets Manager.
//! - [`store`]: the payments table, its keys and guarded writes.
//! - [`settle`]: one look at the provider that settles a payment's money, or schedules
//!   the next.
//! - [`consumer`]: OrderStockConfirmed (charge) and OrderCancelled (refund), from its queue.
//! - [`reconciler`]: on a schedule, settles every payment that is due, until none is left.
//! - [`api`]: the admin route of DESIGN §2 and §6 (`GET /payments/{orderId}`).
//! - [`metrics`]: the business facts it counts (payments succeeded, declined, failed by
//!   reason, refunded).
//! - [`sandbox`]: the default provider, a card processor's test mode, deployed as a
//!   Lambda of its own behind a Function URL.
//!
//! Its events (PaymentSucceeded, PaymentFailed, PaymentRefunded) leave only through the
//! outbox; the relay Lambda (`src/bin/relay.rs`) publishes them.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod metrics;
pub mod provider;
pub mod reconciler;
pub mod sandbox;
pub mod secret;
pub mod settle;
pub mod store;
