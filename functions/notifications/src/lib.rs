//! The notifications capability: order updates pushed to browsers over API Gateway's
//! WebSocket API, the moment ordering records them (DESIGN §2 and §6).
//!
//! - [`domain`]: connections, who hears which order, what a client may ask: pure.
//! - [`store`]: the connections table, keyed for each reader.
//! - [`api`]: the WebSocket API's routes (`$connect` with its token, `$disconnect`,
//!   `$default`).
//! - [`consumer`]: the reactions to the order events: one push per open connection.
//! - [`push`]: the port to API Gateway's Management API, and its adapter.
//!
//! It publishes nothing, so it has no outbox and no relay.

pub mod api;
pub mod consumer;
pub mod domain;
pub mod push;
pub mod store;
