//! shop-local's integration tests: the real `shop-local up` end to end (e2e, saga, the
//! chaos run, fuzzing, the browser journeys, the bench), the Lambda Runtime API and the
//! event source mappings, and the documents. One binary: it links the AWS SDK once, builds
//! the function binaries once, and lets one test's waiting (a queue's visibility timeout, a
//! settle window) overlap another's work.

mod support;

mod bench;
mod browser;
mod docs;
mod e2e;
mod fuzz;
mod lambda;
mod live;
mod mappings;
mod mixed;
mod openapi;
mod saga;
