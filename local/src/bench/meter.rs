//! The meter: a counting reverse proxy in front of moto, through which the functions'
//! AWS calls pass during the bench's census (never during the timed load: the extra hop
//! would cost every call time). It counts calls per service operation, DynamoDB request
//! units (estimated from the items' sizes, as DynamoDB computes them), and EventBridge
//! entries.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::client::{HttpClient, http_client};
use crate::topology::{TableSpec, Topology};

/// What passed through the meter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Calls by `<service>.<operation>`, e.g. `DynamoDB.TransactWriteItems`.
    pub calls: BTreeMap<String, u64>,
    /// On-demand read request units (eventually consistent 4 KB = 0.5).
    pub read_units: f64,
    /// On-demand write request units (1 KB = 1; transactional writes double).
    pub write_units: f64,
    /// Entries in PutEvents calls: what EventBridge bills.
    pub put_events_entries: u64,
}

impl Counts {
    /// What was counted since `before`.
    pub fn since(&self, before: &Counts) -> Counts {
        let mut calls = self.calls.clone();
        for (operation, count) in &before.calls {
            if let Some(now) = calls.get_mut(operation) {
                *now = now.saturating_sub(*count);
            }
        }
        calls.retain(|_, count| *count > 0);
        Counts {
            calls,
            read_units: self.read_units - before.read_units,
            write_units: self.write_units - before.write_units,
            put_events_entries: self.put_events_entries - before.put_events_entries,
        }
    }
}

pub struct Meter {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    server: JoinHandle<()>,
}

impl Meter {
    /// Starts the proxy on a free loopback port in front of `target` (moto's endpoint).
    pub async fn start(target: &str, topology: &Topology) -> std::io::Result<Meter> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let proxy = Arc::new(Proxy {
            target: target.trim_end_matches('/').to_owned(),
            http: http_client(),
            tables: topology
                .tables
                .iter()
                .map(|table| (table.name.clone(), table.clone()))
                .collect(),
            counts: counts.clone(),
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let proxy = proxy.clone();
                        async move { Ok::<_, Infallible>(proxy.forward(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Meter {
            url,
            counts,
            server,
        })
    }

    pub fn counts(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Proxy {
    target: String,
    http: HttpClient,
    tables: BTreeMap<String, TableSpec>,
    counts: Arc<Mutex<Counts>>,
}

impl Proxy {
    async fn forward(&self, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|collected| collected.to_bytes()) else {
            return status_only(http::StatusCode::BAD_REQUEST);
        };
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let mut upstream = http::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path_and_query}", self.target));
        for (name, value) in &parts.headers {
            upstream = upstream.header(name, value);
        }
        let Ok(upstream) = upstream.body(Full::new(body.clone())) else {
            return status_only(http::StatusCode::BAD_REQUEST);
        };
        let Ok(response) = self.http.request(upstream).await else {
            return status_only(http::StatusCode::BAD_GATEWAY);
        };
        let (parts, answer) = response.into_parts();
        let Ok(answer) = answer.collect().await.map(|collected| collected.to_bytes()) else {
            return status_only(http::StatusCode::BAD_GATEWAY);
        };
        self.tally(target.as_deref(), &body, &answer);
        http::Response::from_parts(parts, Full::new(answer))
    }

    fn tally(&self, target: Option<&str>, request: &[u8], answer: &[u8]) {
        let operation = match target {
            Some(target) => target.to_owned(),
            // Query-protocol services name the action in the form body.
            None => std::str::from_utf8(request)
                .ok()
                .and_then(|form| {
                    form.split('&')
                        .find_map(|pair| pair.strip_prefix("Action="))
                        .map(|action| format!("query.{action}"))
                })
                .unwrap_or_else(|| "unknown".to_owned()),
        };
        let (service, action) = operation
            .split_once('.')
            .unwrap_or(("unknown", operation.as_str()));
        let service = match service {
            s if s.starts_with("DynamoDBStreams") => "DynamoDBStreams",
            s if s.starts_with("DynamoDB") => "DynamoDB",
            "AWSEvents" => "EventBridge",
            "AmazonSQS" => "SQS",
            "secretsmanager" => "SecretsManager",
            other => other,
        };
        let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts
            .calls
            .entry(format!("{service}.{action}"))
            .or_default() += 1;
        match service {
            "DynamoDB" => {
                let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
                let (read, write) = request_units(action, &request, &answer, &self.tables);
                counts.read_units += read;
                counts.write_units += write;
            }
            "EventBridge" if action == "PutEvents" => {
                counts.put_events_entries += request["Entries"]
                    .as_array()
                    .map_or(0, |entries| entries.len() as u64);
            }
            _ => {}
        }
    }
}

fn status_only(status: http::StatusCode) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

const READ_UNIT_BYTES: u64 = 4096;
const WRITE_UNIT_BYTES: u64 = 1024;

/// The on-demand (read, write) request units of one DynamoDB call, by DynamoDB's rules:
/// reads 1 unit per 4 KB (half for eventually consistent, double in a transaction), writes
/// 1 per KB (double in a transaction), plus one write per global index an item put lands
/// in. A conditional write that fails is billed all the same. Updates and deletes do not
/// say how large the item is: they are counted as items under 1 KB (and their index
/// writes are not counted), so they are a lower bound. Control-plane calls cost nothing.
pub fn request_units(
    action: &str,
    request: &Value,
    answer: &Value,
    tables: &BTreeMap<String, TableSpec>,
) -> (f64, f64) {
    let consistent = |request: &Value| request["ConsistentRead"].as_bool() == Some(true);
    let read_units = |bytes: u64, consistent: bool| {
        let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
        if consistent { units } else { units / 2.0 }
    };
    let write_units = |bytes: u64| bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64;
    let put_units = |table: &str, item: &Value| {
        let size = item_size(item);
        let index_writes: f64 = tables
            .get(table)
            .map(|table| {
                table
                    .global_indexes
                    .iter()
                    .filter(|index| {
                        item.get(&index.key.hash.0).is_some()
                            && index
                                .key
                                .range
                                .as_ref()
                                .is_none_or(|(range, _)| item.get(range).is_some())
                    })
                    .map(|index| {
                        if index.projection == "ALL" {
                            write_units(size)
                        } else {
                            1.0
                        }
                    })
                    .sum()
            })
            .unwrap_or(0.0);
        write_units(size) + index_writes
    };
    let table_of = |request: &Value| request["TableName"].as_str().unwrap_or("").to_owned();
    match action {
        "GetItem" => (
            read_units(item_size(&answer["Item"]), consistent(request)),
            0.0,
        ),
        "Query" | "Scan" => {
            let bytes = answer["Items"]
                .as_array()
                .map_or(0, |items| items.iter().map(item_size).sum());
            (read_units(bytes, consistent(request)), 0.0)
        }
        "BatchGetItem" => {
            let mut read = 0.0;
            for (table, items) in answer["Responses"].as_object().into_iter().flatten() {
                let consistent = consistent(&request["RequestItems"][table]);
                for item in items.as_array().into_iter().flatten() {
                    read += read_units(item_size(item), consistent);
                }
            }
            (read, 0.0)
        }
        "TransactGetItems" => {
            let read = answer["Responses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|response| 2.0 * read_units(item_size(&response["Item"]), true))
                .sum();
            (read, 0.0)
        }
        "PutItem" => (0.0, put_units(&table_of(request), &request["Item"])),
        "UpdateItem" | "DeleteItem" => (0.0, 1.0),
        "BatchWriteItem" => {
            let mut write = 0.0;
            for (table, requests) in request["RequestItems"].as_object().into_iter().flatten() {
                for each in requests.as_array().into_iter().flatten() {
                    write += match each.get("PutRequest") {
                        Some(put) => put_units(table, &put["Item"]),
                        None => 1.0,
                    };
                }
            }
            (0.0, write)
        }
        "TransactWriteItems" => {
            let (mut read, mut write) = (0.0, 0.0);
            for each in request["TransactItems"].as_array().into_iter().flatten() {
                if let Some(put) = each.get("Put") {
                    write += 2.0 * put_units(&table_of(put), &put["Item"]);
                } else if each.get("ConditionCheck").is_some() {
                    // A transactional read of the checked item.
                    read += 2.0;
                } else {
                    write += 2.0;
                }
            }
            (read, write)
        }
        _ => (0.0, 0.0),
    }
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings in UTF-8,
/// numbers about one byte per two digits plus one, binaries decoded, 1 byte for booleans
/// and nulls, 3 bytes plus 1 per element for lists and maps). 0 for no item.
pub fn item_size(item: &Value) -> u64 {
    item.as_object().map_or(0, attributes_size)
}

fn attributes_size(attributes: &Map<String, Value>) -> u64 {
    attributes
        .iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|typed| typed.iter().next()) else {
        return 0;
    };
    let number = |text: &str| {
        let digits = text.chars().filter(char::is_ascii_digit).count() as u64;
        digits.div_ceil(2) + 1
    };
    let binary = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_or(text.len() as u64, |bytes| bytes.len() as u64)
    };
    let strings: Vec<&str> = inner
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number),
        "B" => inner.as_str().map_or(0, binary),
        "BOOL" | "NULL" => 1,
        "SS" => strings.iter().map(|s| s.len() as u64).sum(),
        "NS" => strings.iter().map(|s| number(s)).sum(),
        "BS" => strings.iter().map(|s| binary(s)).sum(),
        "L" => {
            3 + inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|element| 1 + value_size(element))
                .sum::<u64>()
        }
        "M" => {
            3 + inner.as_object().map_or(0, |map| {
                map.iter()
                    .map(|(name, value)| 1 + name.len() as u64 + value_size(value))
                    .sum()
            })
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let item = json!({"pk": {"S": "ORDER#1"}, "n": {"N": "12345"}, "ok": {"BOOL": true},
                          "l": {"L": [{"S": "ab"}]}});
        // pk 2+7, n 1+(3+1), ok 2+1, l 1+(3+1+2)
        assert_eq!(item_size(&item), 9 + 5 + 3 + 7);
        assert_eq!(item_size(&Value::Null), 0);
    }

    #[test]
    fn request_units_of_reads_writes_and_transactions() {
        let tables = BTreeMap::new();
        let small = json!({"Item": {"pk": {"S": "x"}}});
        assert_eq!(
            request_units("GetItem", &json!({}), &small, &tables),
            (0.5, 0.0)
        );
        assert_eq!(
            request_units("GetItem", &json!({"ConsistentRead": true}), &small, &tables),
            (1.0, 0.0)
        );
        let big = "x".repeat(1500);
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": big}}}},
            {"Update": {"TableName": "t"}},
            {"ConditionCheck": {"TableName": "t"}}
        ]});
        assert_eq!(
            request_units("TransactWriteItems", &transaction, &Value::Null, &tables),
            (2.0, 2.0 * 2.0 + 2.0)
        );
        assert_eq!(
            request_units("DescribeTable", &json!({}), &Value::Null, &tables),
            (0.0, 0.0)
        );
    }
}
