//! The EMF documents the process's collector writes, checked as CloudWatch reads them
//! (the Embedded Metric Format specification). The collector is the process's one global
//! recorder, so this binary has this one test and nothing else that counts.

use std::io::Write;

use serde_json::{Value, json};
use shop_events::ordering::CancellationReason;
use shop_platform::metrics::{self, Count, Metrics};

/// Keeps every write apart, to tell one write from many.
#[derive(Default)]
struct Writes(Vec<Vec<u8>>);

impl Write for Writes {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.push(bytes.to_vec());
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn flushed() -> Writes {
    let mut writes = Writes::default();
    metrics::flush_to(&mut writes).expect("a buffer takes every write");
    writes
}

/// What CloudWatch requires of a document: `_aws.Timestamp` in epoch milliseconds, one
/// directive with a namespace, dimension sets naming top-level string members, and metrics
/// naming top-level numeric members. Returns the directive.
fn assert_emf(document: &Value) -> &Value {
    let timestamp = document["_aws"]["Timestamp"]
        .as_u64()
        .expect("_aws.Timestamp is an integer");
    assert!(
        timestamp > 1_600_000_000_000,
        "epoch milliseconds: {timestamp}"
    );
    let directives = document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("_aws.CloudWatchMetrics is an array");
    assert_eq!(directives.len(), 1);
    let directive = &directives[0];
    for set in directive["Dimensions"].as_array().expect("Dimensions") {
        for dimension in set.as_array().expect("a dimension set") {
            let name = dimension.as_str().expect("a dimension name");
            assert!(
                document[name].is_string(),
                "dimension {name} is a top-level string: {document}"
            );
        }
    }
    let names = directive["Metrics"].as_array().expect("Metrics");
    assert!(!names.is_empty(), "no empty document: {document}");
    for metric in names {
        let name = metric["Name"].as_str().expect("a metric name");
        assert!(
            document[name].is_number(),
            "metric {name} has a top-level value: {document}"
        );
    }
    directive
}

#[test]
fn counts_flush_as_one_emf_line_per_dimension_set_in_one_write_and_nothing_when_none() {
    metrics::install("shop-test", "ordering").expect("the only recorder of this process");
    assert!(
        flushed().0.is_empty(),
        "nothing counted: nothing written, not even an empty document"
    );

    let process = Metrics::global();
    process.count(&Count::of("OrdersPlaced"));
    process.count_all(&[
        Count::of("OrdersPlaced"),
        Count::of("OrdersPaid"),
        Count::of("OrdersCancelled").because(CancellationReason::OutOfStock),
    ]);

    let writes = flushed();
    assert_eq!(writes.0.len(), 1, "the documents go out in one write");
    let text = String::from_utf8(writes.0[0].clone()).expect("UTF-8");
    assert!(text.ends_with('\n'), "a document is a whole line");
    let documents: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON document"))
        .collect();
    assert_eq!(documents.len(), 2, "one per dimension set: {text}");

    let plain = documents
        .iter()
        .find(|d| d.get("Reason").is_none())
        .expect("the document without a reason");
    let directive = assert_emf(plain);
    assert_eq!(directive["Namespace"], "shop-test");
    assert_eq!(directive["Dimensions"], json!([["Capability"]]));
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "OrdersPaid", "Unit": "Count"}, {"Name": "OrdersPlaced", "Unit": "Count"}])
    );
    assert_eq!(plain["Capability"], "ordering");
    assert_eq!(plain["OrdersPlaced"], 2);
    assert_eq!(plain["OrdersPaid"], 1);

    let with_reason = documents
        .iter()
        .find(|d| d.get("Reason").is_some())
        .expect("the document with a reason");
    let directive = assert_emf(with_reason);
    assert_eq!(directive["Namespace"], "shop-test");
    assert_eq!(directive["Dimensions"], json!([["Capability", "Reason"]]));
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "OrdersCancelled", "Unit": "Count"}])
    );
    assert_eq!(with_reason["Capability"], "ordering");
    assert_eq!(with_reason["Reason"], "out_of_stock");
    assert_eq!(with_reason["OrdersCancelled"], 1);

    assert!(
        flushed().0.is_empty(),
        "a flush starts the counts afresh: nothing new, nothing written"
    );
    process.count(&Count::of("OrdersPaid"));
    let again = flushed();
    let text = String::from_utf8(again.0.concat()).expect("UTF-8");
    let document: Value = serde_json::from_str(text.trim_end()).expect("one document");
    assert_eq!(
        assert_emf(&document)["Metrics"],
        json!([{"Name": "OrdersPaid", "Unit": "Count"}]),
        "only what was counted since"
    );
    assert_eq!(document["OrdersPaid"], 1);
}
