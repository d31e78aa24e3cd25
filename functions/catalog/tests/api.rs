//! The catalog API Lambda's handler against moto, driven by the sample events in
//! `events/catalog/` (the same files `sam local invoke -e` and `shop-local invoke` take).

use aws_sdk_dynamodb::types::Select;
use catalog::api::{App, handle};
use catalog::store::ProductStore;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{
    bus_with_queue, create_table, drain_queue, sdk_config, stream_batch, unique, workspace_root,
};

struct Catalog {
    config: shop_testing::Config,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    app: App,
}

impl Catalog {
    async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("products");
        create_table(&dynamodb, &table, &["gsi1", "gsi2"], true).await;
        let app = App {
            store: ProductStore::new(dynamodb.clone(), &table),
        };
        Self {
            config,
            dynamodb,
            table,
            app,
        }
    }

    async fn call(&self, event: Value) -> (u16, Value, Response<Body>) {
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("a valid API Gateway v2 event");
        let response = handle(&self.app, request).await;
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
            Body::Empty => Value::Null,
            Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (response.status().as_u16(), body, response)
    }

    async fn create(&self, name: &str, category: &str) -> Value {
        let body = json!({"name": name, "category": category, "price": {"amount": 500, "currency": "USD"}});
        let (status, product, _) = self
            .call(with_body(
                fixture("api-create-product.json"),
                &body.to_string(),
            ))
            .await;
        assert_eq!(status, 201, "{product}");
        product
    }

    async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .select(Select::Count)
            .send()
            .await
            .unwrap()
            .count
    }

    /// Runs the relay over everything in the table's stream; returns what reached the bus.
    async fn published(&self) -> Vec<Value> {
        let (bus, queue) = bus_with_queue(&self.config).await;
        let relay = Relay::new(
            EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&self.config), &bus),
            RetryPolicy::default(),
        );
        let batch = serde_json::from_value(stream_batch(&self.config, &self.table).await).unwrap();
        assert!(relay.handle(batch).await.batch_item_failures.is_empty());
        drain_queue(&self.config, &queue).await
    }
}

fn fixture(name: &str) -> Value {
    let path = workspace_root().join("events/catalog").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn for_product(mut event: Value, id: &str) -> Value {
    event["pathParameters"]["productId"] = json!(id);
    event["rawPath"] = json!(format!("/products/{id}"));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event
}

fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

fn with_claims(mut event: Value, claims: Value) -> Value {
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    event
}

fn anonymous(mut event: Value) -> Value {
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    event
}

fn with_query(mut event: Value, query: Value) -> Value {
    let raw = query
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("&");
    event["queryStringParameters"] = query;
    event["rawQueryString"] = json!(raw);
    event
}

#[tokio::test]
async fn a_created_product_is_stored_and_its_product_created_reaches_the_bus() {
    let catalog = Catalog::new().await;
    let (status, product, response) = catalog.call(fixture("api-create-product.json")).await;
    assert_eq!(status, 201, "{product}");
    let id = product["id"].as_str().unwrap();
    assert_eq!(
        response.headers()["location"],
        format!("/products/{id}").as_str()
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(product["name"], "The Rust Programming Language");
    assert_eq!(product["price"], json!({"amount": 3999, "currency": "USD"}));
    assert_eq!(product["version"], 1);
    assert_eq!(product["createdAt"], product["updatedAt"]);

    let (status, stored, _) = catalog
        .call(for_product(fixture("api-get-product.json"), id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored, product);

    let events = catalog.published().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["source"], "shop.catalog");
    assert_eq!(event["detail-type"], "ProductCreated");
    let metadata = &event["detail"]["metadata"];
    assert_eq!(metadata["schemaVersion"], 1);
    assert_eq!(metadata["eventId"].as_str().unwrap().len(), 26);
    assert_eq!(
        metadata["correlationId"],
        fixture("api-create-product.json")["requestContext"]["requestId"]
    );
    assert!(metadata["occurredAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        event["detail"]["data"],
        json!({"productId": id, "name": product["name"], "description": product["description"], "category": "books",
               "price": product["price"], "imageUrl": product["imageUrl"], "version": 1})
    );
}

#[tokio::test]
async fn replace_and_delete_move_the_version_and_publish_in_order() {
    let catalog = Catalog::new().await;
    let id = catalog.create("Mug", "kitchen").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, replaced, _) = catalog
        .call(for_product(fixture("api-replace-product.json"), &id))
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["id"], id.as_str());
    let sent: Value = serde_json::from_str(
        fixture("api-replace-product.json")["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(replaced["price"], sent["price"]);

    let (status, body, _) = catalog
        .call(for_product(fixture("api-delete-product.json"), &id))
        .await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, problem, _) = catalog
        .call(for_product(fixture("api-get-product.json"), &id))
        .await;
    assert_eq!(status, 404);
    assert_eq!(problem["status"], 404);
    let (status, _, _) = catalog
        .call(for_product(fixture("api-delete-product.json"), &id))
        .await;
    assert_eq!(status, 404, "deleting twice");

    let events = catalog.published().await;
    let mut seen: Vec<(String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap().to_owned(),
                e["detail"]["data"]["version"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort_by_key(|(_, version)| *version);
    assert_eq!(
        seen,
        vec![
            ("ProductCreated".into(), 1),
            ("ProductUpdated".into(), 2),
            ("ProductDeleted".into(), 3)
        ]
    );
}

#[tokio::test]
async fn listing_filters_by_category_and_pages_with_a_cursor() {
    let catalog = Catalog::new().await;
    for name in ["Dune", "Anathem", "Cryptonomicon", "Emma", "Beowulf"] {
        catalog.create(name, "books").await;
    }
    catalog.create("Teapot", "kitchen").await;

    // The sample event asks for books, two at a time, anonymously.
    let mut names = Vec::new();
    let mut event = fixture("api-list-products.json");
    assert!(event["requestContext"].get("authorizer").is_none());
    loop {
        let (status, page, _) = catalog.call(event.clone()).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(items.iter().map(|p| p["name"].as_str().unwrap().to_owned()));
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(cursor) => {
                event = with_query(
                    event,
                    json!({"category": "books", "limit": "2", "cursor": cursor}),
                )
            }
            None => break,
        }
    }
    assert_eq!(
        names,
        ["Anathem", "Beowulf", "Cryptonomicon", "Dune", "Emma"]
    );

    let all = with_query(fixture("api-list-products.json"), json!({"limit": "100"}));
    let (_, page, _) = catalog.call(all).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 6);
    assert!(
        page.get("nextCursor").is_none(),
        "no cursor on the last page"
    );

    let (_, empty, _) = catalog
        .call(with_query(
            fixture("api-list-products.json"),
            json!({"category": "garden"}),
        ))
        .await;
    assert_eq!(empty, json!({"items": []}));
}

#[tokio::test]
async fn bad_input_gets_the_right_problem_and_writes_nothing() {
    let catalog = Catalog::new().await;
    let existing = catalog.create("Kettle", "kitchen").await;
    let id = existing["id"].as_str().unwrap();
    let before = catalog.item_count().await;

    let create = fixture("api-create-product.json");
    let valid: Value = serde_json::from_str(create["body"].as_str().unwrap()).unwrap();
    let mutated = |change: &dyn Fn(&mut Value)| {
        let mut body = valid.clone();
        change(&mut body);
        with_body(create.clone(), &body.to_string())
    };
    let mut blank_category = valid.clone();
    blank_category["category"] = json!("");
    let blank_category = blank_category.to_string();
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        (
            "malformed JSON",
            with_body(create.clone(), "{\"name\": "),
            400,
            None,
        ),
        (
            "trailing garbage",
            with_body(create.clone(), &format!("{valid} x")),
            400,
            None,
        ),
        ("no body", with_body(create.clone(), ""), 400, None),
        (
            "wrong type",
            mutated(&|b| b["price"]["amount"] = json!("12")),
            422,
            Some("price.amount"),
        ),
        (
            "missing field",
            mutated(&|b| drop(b.as_object_mut().unwrap().remove("name"))),
            422,
            Some("name"),
        ),
        (
            "missing nested field",
            mutated(&|b| drop(b["price"].as_object_mut().unwrap().remove("currency"))),
            422,
            Some("price.currency"),
        ),
        (
            "not a URL",
            mutated(&|b| b["imageUrl"] = json!("javascript:alert(1)")),
            422,
            Some("imageUrl"),
        ),
        (
            "oversized name",
            mutated(&|b| b["name"] = json!("n".repeat(201))),
            422,
            Some("name"),
        ),
        (
            "negative price",
            mutated(&|b| b["price"]["amount"] = json!(-1)),
            422,
            Some("price.amount"),
        ),
        (
            "other currency",
            mutated(&|b| b["price"]["currency"] = json!("EUR")),
            422,
            Some("price.currency"),
        ),
        (
            "oversized body",
            mutated(&|b| b["description"] = json!("d".repeat(20_000))),
            413,
            None,
        ),
        (
            "not an admin",
            fixture("api-create-product-non-admin.json"),
            403,
            None,
        ),
        ("no token", anonymous(create.clone()), 401, None),
        (
            "unknown id",
            for_product(
                fixture("api-replace-product.json"),
                "01JAAAAAAAAAAAAAAAAAAAAAAA",
            ),
            404,
            None,
        ),
        (
            "not an id",
            for_product(fixture("api-delete-product.json"), "../../etc"),
            404,
            None,
        ),
        (
            "replace as non-admin",
            with_claims(
                for_product(fixture("api-replace-product.json"), id),
                json!({"sub": "u1"}),
            ),
            403,
            None,
        ),
        (
            "delete without token",
            anonymous(for_product(fixture("api-delete-product.json"), id)),
            401,
            None,
        ),
        (
            "invalid replacement",
            with_body(
                for_product(fixture("api-replace-product.json"), id),
                &blank_category,
            ),
            422,
            Some("category"),
        ),
    ];
    for (case, event, status, field) in cases {
        let (got, problem, response) = catalog.call(event).await;
        assert_eq!(got, status, "{case}: {problem}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{case}"
        );
        assert_eq!(problem["status"], status, "{case}");
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{case}: {problem}"
        );
        if let Some(field) = field {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{case}: {problem}");
        }
    }
    assert_eq!(
        catalog.item_count().await,
        before,
        "no bad request wrote anything"
    );
    let (_, unchanged, _) = catalog
        .call(for_product(fixture("api-get-product.json"), id))
        .await;
    assert_eq!(unchanged, existing);
}

#[tokio::test]
async fn a_forged_or_foreign_cursor_is_a_bad_request() {
    let catalog = Catalog::new().await;
    for name in ["A", "B", "C"] {
        catalog.create(name, "books").await;
    }
    let all = with_query(fixture("api-list-products.json"), json!({"limit": "1"}));
    let (_, page, _) = catalog.call(all).await;
    let cursor = page["nextCursor"].as_str().unwrap();
    for (query, status) in [
        (json!({"category": "books", "cursor": cursor}), 422),
        (json!({"cursor": "bm90IGEgY3Vyc29y"}), 422),
        (json!({"limit": "0"}), 422),
        (json!({"limit": "101"}), 422),
        (json!({"limit": "ten"}), 422),
    ] {
        let (got, problem, _) = catalog
            .call(with_query(fixture("api-list-products.json"), query.clone()))
            .await;
        assert_eq!(got, status, "{query}: {problem}");
    }
}

#[tokio::test]
async fn concurrent_replacements_of_one_version_never_both_win() {
    let catalog = Catalog::new().await;
    let id = catalog.create("Lamp", "home").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = for_product(fixture("api-replace-product.json"), &id);
    let results = tokio::join!(catalog.call(event.clone()), catalog.call(event));
    let mut statuses = [results.0.0, results.1.0];
    statuses.sort();
    // Either both serialised (200, 200 with versions 2 and 3) or one lost the race (409).
    let (_, current, _) = catalog
        .call(for_product(fixture("api-get-product.json"), &id))
        .await;
    match statuses {
        [200, 200] => assert_eq!(current["version"], 3),
        [200, 409] => assert_eq!(current["version"], 2),
        other => panic!("unexpected statuses {other:?}"),
    }
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let catalog = Catalog::new().await;
    let (status, body, _) = catalog.call(fixture("api-health.json")).await;
    assert_eq!((status, body["status"].clone()), (200, json!("ok")));

    let missing = App {
        store: ProductStore::new(catalog.dynamodb.clone(), unique("no-such-table")),
    };
    let request = lambda_http::request::from_str(&fixture("api-health.json").to_string()).unwrap();
    assert_eq!(handle(&missing, request).await.status().as_u16(), 503);
}
