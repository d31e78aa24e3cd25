//! shop-local: the whole shop on one machine, with no Docker and no AWS account.
//!
//! It reads the SAM templates ([`template`]) into a resolved [`topology`], creates their
//! tables, queues, bus and rules in moto, runs each function's real binary behind a local
//! Lambda Runtime API ([`lambda`]), serves the HTTP API with API Gateway's routing and JWT
//! checks and the WebSocket API's routes and Management API ([`websocket`]), and feeds functions from SQS queues and DynamoDB streams as Lambda's event
//! source mappings do.

pub mod bench;
pub mod client;
pub mod dead_letters;
pub mod emulator;
pub mod faults;
pub mod gateway;
pub mod issuer;
pub mod lambda;
pub mod mappings;
pub mod pattern;
pub mod percentile;
pub mod procfs;
pub mod provision;
pub mod server;
pub mod shop;
pub mod stack;
pub mod streams;
pub mod template;
pub mod topology;
pub mod watch;
pub mod web;
pub mod websocket;
