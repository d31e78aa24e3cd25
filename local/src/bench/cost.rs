//! What a million orders would cost on AWS (us-east-1, arm64), from what the bench
//! measured per order and list prices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The day the prices below were read. Lambda's arm64 GB-second and request prices were
/// checked against copies of AWS's pricing tables (artillery's Lambda price table, an
/// API-Evangelist transcription of aws.amazon.com/lambda/pricing), DynamoDB's on-demand
/// prices against a third-party summary of the November 2024 price cut; HTTP API,
/// EventBridge and SQS are as the issue states them.
pub const PRICES_READ_ON: &str = "2026-11-28";
pub const REGION: &str = "us-east-1";
pub const LAMBDA_ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_USD_PER_MILLION_REQUESTS: f64 = 0.20;
pub const HTTP_API_USD_PER_MILLION_REQUESTS: f64 = 1.00;
pub const EVENTBRIDGE_USD_PER_MILLION_CUSTOM_EVENTS: f64 = 1.00;
pub const SQS_USD_PER_MILLION_REQUESTS: f64 = 0.40;
pub const DYNAMODB_USD_PER_MILLION_WRITE_UNITS: f64 = 0.625;
pub const DYNAMODB_USD_PER_MILLION_READ_UNITS: f64 = 0.125;
/// API Gateway WebSocket APIs: messages (in 32 KB units, sent or received) and connection
/// minutes, first billion messages' tier.
pub const WEBSOCKET_USD_PER_MILLION_MESSAGES: f64 = 1.00;
pub const WEBSOCKET_USD_PER_MILLION_CONNECTION_MINUTES: f64 = 0.25;
/// What one connection's `$connect` and `$disconnect` write and read: two items put in
/// one transaction (2 WRU each), then the lookup read strongly (1 RRU) and three keys
/// deleted in one transaction (2 WRU each).
pub const WEBSOCKET_WRITE_UNITS_PER_CONNECTION: f64 = 10.0;
pub const WEBSOCKET_READ_UNITS_PER_CONNECTION: f64 = 1.0;

/// CloudFront, HTTPS requests in the United States, Canada and Europe (PriceClass_100, the
/// storefront distribution's): $0.0100 per 10,000, read from AWS's CloudFront pricing page
/// as third-party copies give it (the page renders its table client-side). Every viewer
/// request is billed, hit or miss; the origin's answers to CloudFront are not.
pub const CLOUDFRONT_USD_PER_MILLION_HTTPS_REQUESTS: f64 = 1.00;
/// The share of the cached catalog reads the edge answers without asking the origin. With
/// `max-age=5`, each distinct page is fetched at most once per edge location every 5 s:
/// at the rates of the capacity plan (thousands of reads a second over a few dozen pages
/// and locations) that is under 5 % of the reads. At low rates it is more, and the cache
/// saves less than this assumes.
pub const EDGE_CACHE_HIT_RATIO: f64 = 0.95;

/// SQS requests per message a consumer handles: EventBridge's SendMessage, the poller's
/// ReceiveMessage that returns it and its DeleteMessage. An upper bound per message: under
/// load, receives and deletes carry up to 10 messages each. The empty long-poll receives
/// of Lambda's pollers (about 5 pollers x 3 a minute per queue) are a fixed monthly cost
/// per queue, not a cost per order, and are left out.
pub const SQS_REQUESTS_PER_MESSAGE: f64 = 3.0;

/// Usage per order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub api_requests: f64,
    pub eventbridge_entries: f64,
    pub sqs_requests: f64,
    pub dynamodb_read_units: f64,
    pub dynamodb_write_units: f64,
    /// Messages pushed to browsers, and their connections' minutes (live updates).
    #[serde(default)]
    pub websocket_messages: f64,
    #[serde(default)]
    pub websocket_connection_minutes: f64,
    /// Requests through CloudFront (with the edge cache: every API request).
    #[serde(default)]
    pub cloudfront_requests: f64,
}

/// What the public catalog reads (`GET /products`, `GET /products/{productId}`) cost per
/// order at the origin: the requests, catalog-api's invocations and billed GB-seconds,
/// and the read units their queries and gets consume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogReads {
    pub requests: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub dynamodb_read_units: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub api_gateway: f64,
    pub eventbridge: f64,
    pub sqs: f64,
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    #[serde(default)]
    pub websocket: f64,
    #[serde(default)]
    pub cloudfront: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub region: String,
    pub architecture: String,
    pub prices_read_on: String,
    pub per_order: Usage,
    pub usd_per_million_orders: Breakdown,
    /// AWS calls the functions made per order, by `<service>.<operation>` (from the census).
    pub calls_per_order: BTreeMap<String, f64>,
    pub assumptions: Vec<String>,
}

impl Cost {
    pub fn new(per_order: Usage, calls_per_order: BTreeMap<String, f64>) -> Cost {
        let million = |usage: f64, usd_per_million: f64| usage * usd_per_million;
        let mut usd = Breakdown {
            lambda_requests: million(per_order.lambda_requests, LAMBDA_USD_PER_MILLION_REQUESTS),
            // A million orders use a million times the GB-seconds of one.
            lambda_duration: per_order.lambda_gb_seconds
                * 1_000_000.0
                * LAMBDA_ARM64_USD_PER_GB_SECOND,
            api_gateway: million(per_order.api_requests, HTTP_API_USD_PER_MILLION_REQUESTS),
            eventbridge: million(
                per_order.eventbridge_entries,
                EVENTBRIDGE_USD_PER_MILLION_CUSTOM_EVENTS,
            ),
            sqs: million(per_order.sqs_requests, SQS_USD_PER_MILLION_REQUESTS),
            dynamodb_reads: million(
                per_order.dynamodb_read_units,
                DYNAMODB_USD_PER_MILLION_READ_UNITS,
            ),
            dynamodb_writes: million(
                per_order.dynamodb_write_units,
                DYNAMODB_USD_PER_MILLION_WRITE_UNITS,
            ),
            websocket: million(
                per_order.websocket_messages,
                WEBSOCKET_USD_PER_MILLION_MESSAGES,
            ) + million(
                per_order.websocket_connection_minutes,
                WEBSOCKET_USD_PER_MILLION_CONNECTION_MINUTES,
            ),
            cloudfront: million(
                per_order.cloudfront_requests,
                CLOUDFRONT_USD_PER_MILLION_HTTPS_REQUESTS,
            ),
            total: 0.0,
        };
        usd.total = usd.cloudfront
            + usd.lambda_requests
            + usd.lambda_duration
            + usd.api_gateway
            + usd.eventbridge
            + usd.sqs
            + usd.dynamodb_reads
            + usd.dynamodb_writes
            + usd.websocket;
        Cost {
            region: REGION.to_owned(),
            architecture: "arm64".to_owned(),
            prices_read_on: PRICES_READ_ON.to_owned(),
            per_order,
            usd_per_million_orders: usd,
            calls_per_order,
            assumptions: vec![
                "per order = the load's traffic (browsing included) divided by the orders it placed".into(),
                "Lambda duration: each invocation's measured duration rounded up to 1 ms, times the template's MemorySize; cold starts billed init + first invocation, as many as the load started".into(),
                "Lambda duration is measured against moto on a shared 2-core machine, not against DynamoDB from inside AWS".into(),
                "payment-sandbox stands in for an external payment provider; its Lambda cost is included".into(),
                "SQS: 3 requests per consumed message (EventBridge send, receive, delete); idle long-poll receives left out".into(),
                "DynamoDB: request units estimated per call from item sizes (updates and deletes as items under 1 KB, a lower bound); stream reads by Lambda are free".into(),
                "EventBridge: one entry per event published (each under 64 KB)".into(),
                "API Gateway: one HTTP API request per API call (each under 512 KB)".into(),
                "free tiers and storage left out".into(),
            ],
        }
    }

    /// The cost with a shopper following each order live (`bench::live`'s figures): its
    /// connection (the socket function's invocations and table writes, the connection's
    /// minutes, each started minute billed) and the pushes it received. The notifications
    /// consumer's own work per order event is already in the load's figures.
    pub fn with_live_updates(self, live: Option<&super::live::LiveFigures>) -> Cost {
        let Some(live) = live else {
            return self;
        };
        let orders = live.orders.max(1) as f64;
        let mut usage = self.per_order.clone();
        usage.lambda_requests += live.socket_invocations_per_order;
        usage.lambda_gb_seconds += live.socket_gb_seconds_per_order;
        usage.dynamodb_write_units +=
            WEBSOCKET_WRITE_UNITS_PER_CONNECTION * live.connections as f64 / orders;
        usage.dynamodb_read_units +=
            WEBSOCKET_READ_UNITS_PER_CONNECTION * live.connections as f64 / orders;
        usage.websocket_messages = live.messages as f64 / orders;
        usage.websocket_connection_minutes =
            (live.connection_seconds_per_order / 60.0).ceil().max(1.0);
        let mut cost = Cost::new(usage, self.calls_per_order);
        cost.assumptions.push(
            "live updates: every order followed by one WebSocket connection from checkout to paid, billed a started minute at least; the pushes it received; $connect/$disconnect's invocations and 10 WRU + 1 RRU".into(),
        );
        cost
    }

    /// The cost with the API behind the storefront's CloudFront distribution, as the root
    /// template deploys it: every request is a CloudFront request, and
    /// [`EDGE_CACHE_HIT_RATIO`] of the public catalog reads never reach API Gateway,
    /// Lambda or DynamoDB.
    pub fn with_edge_cache(&self, reads: &CatalogReads) -> Cost {
        let hits = EDGE_CACHE_HIT_RATIO;
        let mut usage = self.per_order.clone();
        usage.cloudfront_requests += usage.api_requests;
        usage.api_requests = (usage.api_requests - hits * reads.requests).max(0.0);
        usage.lambda_requests = (usage.lambda_requests - hits * reads.lambda_requests).max(0.0);
        usage.lambda_gb_seconds =
            (usage.lambda_gb_seconds - hits * reads.lambda_gb_seconds).max(0.0);
        usage.dynamodb_read_units =
            (usage.dynamodb_read_units - hits * reads.dynamodb_read_units).max(0.0);
        let mut cost = Cost::new(usage, self.calls_per_order.clone());
        cost.assumptions = self.assumptions.clone();
        cost.assumptions.push(format!(
            "edge cache: every API request goes through the storefront's distribution at ${CLOUDFRONT_USD_PER_MILLION_HTTPS_REQUESTS:.2} per million HTTPS requests; {:.0} % of the public catalog reads are answered at the edge (max-age=5), every other request passes through to API Gateway; data transfer out left out, as for API Gateway",
            hits * 100.0
        ));
        cost
    }

    pub fn table(&self) -> Vec<String> {
        let u = &self.per_order;
        let usd = &self.usd_per_million_orders;
        vec![
            format!(
                "  cost per million orders on AWS ({}, {}, list prices of {}): ${:.2}",
                self.region, self.architecture, self.prices_read_on, usd.total
            ),
            format!(
                "    Lambda requests    {:>8.2}/order  ${:>8.2}",
                u.lambda_requests, usd.lambda_requests
            ),
            format!(
                "    Lambda GB-seconds  {:>8.4}/order  ${:>8.2}",
                u.lambda_gb_seconds, usd.lambda_duration
            ),
            format!(
                "    HTTP API requests  {:>8.2}/order  ${:>8.2}",
                u.api_requests, usd.api_gateway
            ),
            format!(
                "    EventBridge events {:>8.2}/order  ${:>8.2}",
                u.eventbridge_entries, usd.eventbridge
            ),
            format!(
                "    SQS requests       {:>8.2}/order  ${:>8.2}",
                u.sqs_requests, usd.sqs
            ),
            format!(
                "    DynamoDB RRU       {:>8.2}/order  ${:>8.2}",
                u.dynamodb_read_units, usd.dynamodb_reads
            ),
            format!(
                "    DynamoDB WRU       {:>8.2}/order  ${:>8.2}",
                u.dynamodb_write_units, usd.dynamodb_writes
            ),
            format!(
                "    WebSocket messages {:>8.2}/order  conn. minutes {:>5.2}/order  ${:>8.2}",
                u.websocket_messages, u.websocket_connection_minutes, usd.websocket
            ),
            format!(
                "    CloudFront requests{:>8.2}/order  ${:>8.2}",
                u.cloudfront_requests, usd.cloudfront
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_orders_cost_a_million_times_one() {
        let usage = Usage {
            lambda_requests: 10.0,
            lambda_gb_seconds: 0.01,
            api_requests: 26.0,
            eventbridge_entries: 8.0,
            sqs_requests: 24.0,
            dynamodb_read_units: 30.0,
            dynamodb_write_units: 20.0,
            websocket_messages: 3.0,
            websocket_connection_minutes: 1.0,
            cloudfront_requests: 0.0,
        };
        let cost = Cost::new(usage, BTreeMap::new());
        let usd = &cost.usd_per_million_orders;
        assert!((usd.lambda_requests - 2.0).abs() < 1e-9);
        assert!((usd.lambda_duration - 0.01 * 13.3334).abs() < 1e-9);
        assert!((usd.api_gateway - 26.0).abs() < 1e-9);
        assert!((usd.eventbridge - 8.0).abs() < 1e-9);
        assert!((usd.sqs - 9.6).abs() < 1e-9);
        assert!((usd.dynamodb_reads - 3.75).abs() < 1e-9);
        assert!((usd.dynamodb_writes - 12.5).abs() < 1e-9);
        assert!((usd.websocket - 3.25).abs() < 1e-9);
        let sum = 2.0 + 0.133334 + 26.0 + 8.0 + 9.6 + 3.75 + 12.5 + 3.25;
        assert!((usd.total - sum).abs() < 1e-9);
    }

    #[test]
    fn the_edge_cache_moves_the_catalog_reads_hits_off_the_origin_and_bills_every_request_at_the_edge()
     {
        let usage = Usage {
            lambda_requests: 30.0,
            lambda_gb_seconds: 0.2,
            api_requests: 28.0,
            dynamodb_read_units: 40.0,
            ..Usage::default()
        };
        let reads = CatalogReads {
            requests: 20.0,
            lambda_requests: 20.0,
            lambda_gb_seconds: 0.1,
            dynamodb_read_units: 10.0,
        };
        let cached = Cost::new(usage, BTreeMap::new()).with_edge_cache(&reads);
        let u = &cached.per_order;
        let hits = EDGE_CACHE_HIT_RATIO;
        assert!((u.api_requests - (28.0 - 20.0 * hits)).abs() < 1e-9);
        assert!((u.lambda_requests - (30.0 - 20.0 * hits)).abs() < 1e-9);
        assert!((u.dynamodb_read_units - (40.0 - 10.0 * hits)).abs() < 1e-9);
        assert!((u.cloudfront_requests - 28.0).abs() < 1e-9, "every request");
        assert!((cached.usd_per_million_orders.cloudfront - 28.0).abs() < 1e-9);
        assert!(
            cached
                .assumptions
                .iter()
                .any(|a| a.starts_with("edge cache"))
        );
    }
}
