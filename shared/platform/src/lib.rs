//! Lambda and AWS plumbing, written once for every capability: client construction,
//! tracing, problem+json errors, request parsing and validation, cursor pagination, the
//! capability's table, the transactional outbox, the outbox relay, the SQS consumer
//! harness, and business metrics (CloudWatch EMF).

pub mod aws;
pub mod consumer;
pub mod entrypoint;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod problem;
pub mod relay;
pub mod store;
pub mod telemetry;
pub mod transaction;
pub mod validate;

pub use problem::{FieldError, Problem};
