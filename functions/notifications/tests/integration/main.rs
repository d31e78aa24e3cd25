//! notifications' integration tests, one module per part, against a private moto. One
//! binary per crate: it links the AWS SDK once. The Management API is the one thing not
//! in moto: the consumer's tests push through a recording port here, and the real adapter
//! is proven through shop-local's WebSocket API (`local/tests/integration/live.rs`).

mod api;
mod consumer;
mod store;
mod support;
