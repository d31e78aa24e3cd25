use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cost::{Cost, Usage};
use super::report::*;

fn sample_report() -> Report {
    Report {
        functions: vec![FunctionFigures {
            name: "catalog-api".into(),
            binary_bytes: 6_400_000,
            cold_start_ms: PeakFigures { p50: 4.2, max: 6.0 },
            first_response_ms: PeakFigures {
                p50: 9.5,
                max: 12.25,
            },
            warm_duration_ms: TailFigures { p50: 2.5, p99: 8.0 },
            cpu_ms_per_invocation: 0.31,
            max_rss_bytes: 9_000_000,
            invocations: 1200,
            memory_mb: 128,
            cold_starts: 5,
            warm_invocations: 1196,
            load_cold_starts: 4,
            errors: 0,
        }],
        routes: vec![RouteFigures {
            route: "GET /products".into(),
            count: 800,
            latency_ms: LatencyFigures {
                p50: 3.0,
                p90: 5.0,
                p99: 9.0,
            },
            errors: 0,
        }],
        saga: SagaFigures {
            orders: 40,
            checkout_to_paid_ms: TailFigures {
                p50: 300.0,
                p99: 900.0,
            },
            paid: 40,
            cancelled: 0,
            unsettled: 0,
        },
        errors: 0,
        cost: Cost::new(Usage::default(), BTreeMap::new()),
        settings: Settings {
            cold_starts: 5,
            users: 20,
            duration_seconds: 120,
            think_ms: 1000,
            seed: 1,
            release: true,
            max_processes: 4,
            census_repetitions: 3,
        },
        machine: Machine {
            cpus: 2,
            arch: "x86_64".into(),
            os: "linux".into(),
        },
        overhead: Overhead {
            runner_cpu_ms_per_request: 0.8,
            runner_cpu_percent: 20.0,
            emulator_cpu_percent: 60.0,
            functions_cpu_percent: 30.0,
        },
        census: vec![CensusFigures {
            route: "POST /basket/checkout".into(),
            calls: BTreeMap::from([("DynamoDB.TransactWriteItems".to_owned(), 9.0)]),
            dynamodb_read_units: 12.0,
            dynamodb_write_units: 40.0,
            eventbridge_entries: 6.0,
            queue_messages: 7.0,
        }],
        floor: vec![FloorFigures {
            name: "baseline-getitem".into(),
            description: "lambda_http, one DynamoDB GetItem, nothing else".into(),
            binary_bytes: 5_800_000,
            cpu_ms_per_invocation: 0.5,
            max_rss_bytes: 7_000_000,
            invocations: 2000,
            errors: 0,
        }],
        live: Some(super::live::LiveFigures {
            connections: 200,
            orders: 200,
            messages: 600,
            push_latency_ms: LatencyFigures {
                p50: 40.0,
                p90: 80.0,
                p99: 120.0,
            },
            connection_seconds_per_order: 4.0,
            socket_invocations_per_order: 2.0,
            ..Default::default()
        }),
        cost_with_edge_cache: None,
        catalog_reads: Default::default(),
        flash: vec![super::flash::FlashFigures {
            shards: 8,
            units: 100,
            orders: 200,
            paid: 100,
            cancelled_out_of_stock: 100,
            reserved: 100,
            stock_agrees: true,
            sold_exactly: true,
            settle_seconds: 12.5,
            conflicts_retried: 40,
            conflicts_per_order: 0.2,
            ..Default::default()
        }],
    }
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

fn has_all(value: &Value, expected: &[&str]) {
    let present = keys(value);
    for key in expected {
        assert!(present.contains(key), "{key} missing from {present:?}");
    }
}

/// The names of issue 7's JSON are a contract: every one of them, exactly spelt, and the
/// document reads back as the same report.
#[test]
fn the_json_has_the_contracts_field_names_and_round_trips() {
    let report = sample_report();
    let value = serde_json::to_value(&report).unwrap();
    has_all(&value, &["functions", "routes", "saga", "errors"]);
    let function = &value["functions"][0];
    has_all(
        function,
        &[
            "name",
            "binaryBytes",
            "coldStartMs",
            "firstResponseMs",
            "warmDurationMs",
            "cpuMsPerInvocation",
            "maxRssBytes",
            "invocations",
        ],
    );
    assert_eq!(keys(&function["coldStartMs"]), ["max", "p50"]);
    assert_eq!(keys(&function["firstResponseMs"]), ["max", "p50"]);
    assert_eq!(keys(&function["warmDurationMs"]), ["p50", "p99"]);
    let route = &value["routes"][0];
    has_all(route, &["route", "count", "latencyMs", "errors"]);
    assert_eq!(keys(&route["latencyMs"]), ["p50", "p90", "p99"]);
    has_all(&value["saga"], &["orders", "checkoutToPaidMs"]);
    assert_eq!(keys(&value["saga"]["checkoutToPaidMs"]), ["p50", "p99"]);
    has_all(
        &value["floor"][0],
        &[
            "name",
            "description",
            "binaryBytes",
            "cpuMsPerInvocation",
            "maxRssBytes",
            "invocations",
            "errors",
        ],
    );
    assert_eq!(function["binaryBytes"], json!(6_400_000));
    assert_eq!(function["coldStartMs"]["p50"], json!(4.2));
    assert_eq!(value["saga"]["checkoutToPaidMs"]["p99"], json!(900.0));

    let text = serde_json::to_string_pretty(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn figures_are_nearest_rank_percentiles() {
    let mut samples: Vec<f64> = (1..=200).rev().map(|n| f64::from(n) / 2.0).collect();
    assert_eq!(
        latency(&mut samples),
        LatencyFigures {
            p50: 50.0,
            p90: 90.0,
            p99: 99.0
        }
    );
    assert_eq!(
        tail(&mut [3.0, 1.0, 2.0]),
        TailFigures { p50: 2.0, p99: 3.0 }
    );
    assert_eq!(tail(&mut []), TailFigures::default());
    assert_eq!(round(1.23456), 1.235);
}

#[test]
fn the_table_names_every_function_and_route() {
    let table = sample_report().table();
    assert!(table.contains("catalog-api"), "{table}");
    assert!(table.contains("GET /products"), "{table}");
    assert!(table.contains("cost per million orders"), "{table}");
    assert!(
        table.contains("one AWS call: 2000 invocations each"),
        "{table}"
    );
    assert!(table.contains("baseline-getitem"), "{table}");
    assert!(
        table.contains("flash sale: 200 shoppers at once for 100 units"),
        "{table}"
    );
}

/// A report written before the floor existed still reads.
#[test]
fn a_report_without_the_floor_reads_back_with_none() {
    let mut value = serde_json::to_value(sample_report()).unwrap();
    value.as_object_mut().unwrap().remove("floor");
    let report: Report = serde_json::from_value(value).unwrap();
    assert!(report.floor.is_empty());
}
