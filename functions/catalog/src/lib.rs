//! The catalog capability: the products the shop sells.
//!
//! - [`domain`]: products and their rules, pure.
//! - [`store`]: the products table, its keys, conditional writes and the outbox.
//! - [`api`]: the HTTP routes of DESIGN §2 and §6.
//!
//! Its events (ProductCreated, ProductUpdated, ProductDeleted) leave only through the
//! outbox; the relay Lambda (`src/bin/relay.rs`) publishes them.

pub mod api;
pub mod domain;
pub mod store;
