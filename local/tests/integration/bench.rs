//! `shop-local bench` end to end, with tiny settings and debug binaries: the JSON it
//! writes names every function of the templates and every route of the shopper's mix,
//! and the floor's reference functions, with positive counts and no errors. Timing values
//! are figures, never asserted.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{build_functions, project_topology, repo_root};
use serde_json::{Value, json};

const MIX_ROUTES: [&str; 5] = [
    "GET /products",
    "GET /products/{productId}",
    "PUT /basket/items/{productId}",
    "GET /basket",
    "POST /basket/checkout",
];

#[test]
fn a_tiny_bench_measures_every_function_and_route_without_errors() {
    build_functions();
    let dir = std::env::temp_dir().join(format!("shop-local-bench-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_shop-local"))
        .args([
            "bench",
            "--debug",
            "--no-build",
            "--cold-starts",
            "1",
            "--users",
            "2",
            "--duration",
            "5",
            "--think-ms",
            "100",
            "--census-repetitions",
            "1",
            "--floor-invocations",
            "5",
            "--live-connections",
            "3",
            "--flash-orders",
            "6",
            "--flash-units",
            "4",
            "--flash-shards",
            "1,2",
            // The default seed, whose first shopper takes every route of the mix early
            // (a unit test of bench::load says so).
            "--seed",
            "1",
            "--json",
        ])
        .arg(&json)
        .arg("--log-file")
        .arg(dir.join("bench.log"))
        .current_dir(repo_root())
        .output()
        .expect("shop-local bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let topology = project_topology();
    let expected: BTreeSet<&str> = topology
        .functions
        .iter()
        .map(|f| f.binary.as_str())
        .collect();
    let functions = report["functions"].as_array().unwrap();
    let measured: BTreeSet<&str> = functions
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(measured, expected);
    for function in functions {
        let name = &function["name"];
        assert!(function["binaryBytes"].as_u64().unwrap() > 0, "{name}");
        assert!(function["maxRssBytes"].as_u64().unwrap() > 0, "{name}");
        assert!(
            function["coldStartMs"]["p50"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert!(
            function["firstResponseMs"]["max"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert_eq!(function["coldStarts"], 1, "{name}");
    }
    let invoked = |name: &str| {
        functions
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["invocations"].as_u64())
            .unwrap_or(0)
    };
    for name in [
        "catalog-api",
        "basket-api",
        "ordering-consumer",
        "payment-consumer",
    ] {
        assert!(invoked(name) > 0, "{name} was not invoked by the load");
    }

    let routes = report["routes"].as_array().unwrap();
    for route in MIX_ROUTES {
        let figures = routes
            .iter()
            .find(|r| r["route"] == route)
            .unwrap_or_else(|| panic!("{route} missing from {routes:?}"));
        assert!(figures["count"].as_u64().unwrap() > 0, "{route}");
        assert_eq!(figures["errors"], 0, "{route}");
    }
    let saga = &report["saga"];
    assert!(saga["orders"].as_u64().unwrap() > 0, "{saga}");
    assert_eq!(saga["paid"], saga["orders"], "{saga}");
    let cost = &report["cost"];
    assert!(
        cost["usdPerMillionOrders"]["total"].as_f64().unwrap() > 0.0,
        "{cost}"
    );
    assert!(
        cost["perOrder"]["dynamodbWriteUnits"].as_f64().unwrap() > 0.0,
        "{cost}"
    );
    let floor: Vec<&str> = report["floor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["invocations"], 5, "{f}");
            assert_eq!(f["errors"], 0, "{f}");
            assert!(f["maxRssBytes"].as_u64().unwrap() > 0, "{f}");
            f["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        floor,
        [
            "baseline-runtime",
            "baseline-http",
            "baseline-getitem",
            "catalog-api"
        ]
    );
    // Three shoppers follow their orders over WebSockets: every one connects, hears its
    // order reach a final status, and the pushes are priced.
    let live = &report["live"];
    assert_eq!(live["connections"], 3, "{live}");
    assert_eq!(live["orders"], 3, "{live}");
    assert_eq!(
        (live["refused"].clone(), live["missed"].clone()),
        (json!(0), json!(0)),
        "{live}"
    );
    assert!(
        live["messages"].as_u64().unwrap() >= 9,
        "submitted, stock_confirmed and paid: {live}"
    );
    assert!(
        live["pushLatencyMs"]["p99"].as_f64().unwrap() > 0.0,
        "{live}"
    );
    assert!(
        cost["perOrder"]["websocketMessages"].as_f64().unwrap() >= 3.0,
        "{cost}"
    );
    // Six shoppers for four units, once on one shard and once on two: exactly four paid,
    // two cancelled out of stock, the counters agree, nothing dead-lettered.
    let flash = report["flash"].as_array().unwrap();
    let shards: Vec<&Value> = flash.iter().map(|sale| &sale["shards"]).collect();
    assert_eq!(shards, [&json!(1), &json!(2)]);
    for sale in flash {
        assert_eq!(
            (
                sale["orders"].clone(),
                sale["paid"].clone(),
                sale["cancelledOutOfStock"].clone()
            ),
            (json!(6), json!(4), json!(2)),
            "{sale}"
        );
        assert_eq!(
            (
                sale["available"].clone(),
                sale["reserved"].clone(),
                sale["oversold"].clone(),
                sale["deadLetters"].clone(),
                sale["stockAgrees"].clone(),
                sale["soldExactly"].clone()
            ),
            (
                json!(0),
                json!(4),
                json!(0),
                json!(0),
                json!(true),
                json!(true)
            ),
            "{sale}"
        );
    }
    assert_eq!(report["errors"], 0, "{stdout}");
    assert!(stdout.contains("cost per million orders"), "{stdout}");
    assert!(stdout.contains("live updates: 3 connections"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
