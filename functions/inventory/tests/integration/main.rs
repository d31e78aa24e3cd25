//! inventory's integration tests, one module per part (against a private moto where
//! they need AWS). One binary per crate: each links the AWS SDK once, not once per file.

mod api;
mod consumer;
mod relay;
mod shards;
mod store;
mod support;
