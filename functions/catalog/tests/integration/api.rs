//! The catalog API Lambda's handler against moto, driven by the sample events in
//! `events/catalog/` (the same files `sam local invoke -e` and `shop-local invoke` take).

use catalog::api::{App, handle};
use catalog::store::ProductStore;
use serde_json::{Value, json};
use shop_testing::api::{
    Answer, BadRequest, anonymous, assert_rejected_without_writes, call, for_path_param,
    page_shape, pages, with_body, with_claims, with_query,
};
use shop_testing::{Table, unique};

struct Catalog {
    table: Table,
    app: App,
}

impl Catalog {
    async fn new() -> Self {
        let table = Table::new("products", &["gsi1", "gsi2"]).await;
        let app = App {
            cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
            store: ProductStore::new(table.dynamodb.clone(), &table.name),
        };
        Self { table, app }
    }

    async fn call(&self, event: Value) -> Answer {
        call(|request| handle(&self.app, request), event).await
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
}

fn fixture(name: &str) -> Value {
    shop_testing::fixture("catalog", name)
}

fn for_product(event: Value, id: &str) -> Value {
    for_path_param(event, "productId", id)
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

    let events = catalog.table.published().await;
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

    let events = catalog.table.published().await;
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
    let first = fixture("api-list-products.json");
    assert!(first["requestContext"].get("authorizer").is_none());
    let next = |cursor: &str| {
        with_query(
            fixture("api-list-products.json"),
            json!({"category": "books", "limit": "2", "cursor": cursor}),
        )
    };
    let mut names = Vec::new();
    for page in pages(async |e| catalog.call(e).await, first, next).await {
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(items.iter().map(|p| p["name"].as_str().unwrap().to_owned()));
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

/// Every page of a listing (`category`, if any), `limit` at a time, following each cursor.
async fn listing(catalog: &Catalog, category: Option<&str>, limit: usize) -> Vec<Value> {
    let query = |cursor: Option<&str>| {
        let mut query = json!({"limit": limit.to_string()});
        if let Some(category) = category {
            query["category"] = json!(category);
        }
        if let Some(cursor) = cursor {
            query["cursor"] = json!(cursor);
        }
        with_query(fixture("api-list-products.json"), query)
    };
    pages(
        async |e| catalog.call(e).await,
        query(None),
        |cursor| query(Some(cursor)),
    )
    .await
}

fn names(pages: &[Value]) -> Vec<Vec<&str>> {
    pages
        .iter()
        .map(|page| {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_page_carries_a_cursor_only_when_more_products_follow() {
    let catalog = Catalog::new().await;
    for name in ["Dune", "Anathem", "Cryptonomicon", "Emma", "Beowulf"] {
        catalog.create(name, "books").await;
    }
    catalog.create("Teapot", "kitchen").await;

    // Exactly `limit` products: one page, and no cursor to an empty one after it.
    let books = listing(&catalog, Some("books"), 5).await;
    assert_eq!(page_shape(&books), [(5, false)]);
    let everything = listing(&catalog, None, 6).await;
    assert_eq!(page_shape(&everything), [(6, false)]);

    // One more than `limit`: the cursor's page holds that one alone, with no cursor.
    let books = listing(&catalog, Some("books"), 4).await;
    assert_eq!(page_shape(&books), [(4, true), (1, false)]);
    assert_eq!(names(&books)[1], ["Emma"]);
    let everything = listing(&catalog, None, 5).await;
    assert_eq!(page_shape(&everything), [(5, true), (1, false)]);
    assert_eq!(names(&everything)[1], ["Teapot"]);

    // Five, two at a time.
    let books = listing(&catalog, Some("books"), 2).await;
    assert_eq!(page_shape(&books), [(2, true), (2, true), (1, false)]);
    assert_eq!(
        names(&books),
        [
            vec!["Anathem", "Beowulf"],
            vec!["Cryptonomicon", "Dune"],
            vec!["Emma"]
        ]
    );
}

#[tokio::test]
async fn bad_input_gets_the_right_problem_and_writes_nothing() {
    let catalog = Catalog::new().await;
    let existing = catalog.create("Kettle", "kitchen").await;
    let id = existing["id"].as_str().unwrap();

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
    let cases: Vec<BadRequest> = vec![
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
    assert_rejected_without_writes(&catalog.table, async |e| catalog.call(e).await, cases).await;
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
        // The black-box finding: a key attribute's type changed (it was a 500).
        (
            json!({"cursor": shop_testing::api::retyped_cursor(cursor)}),
            422,
        ),
        (json!({"limit": "0"}), 422),
        (json!({"limit": "101"}), 422),
        (json!({"limit": "ten"}), 422),
        // Found by the fuzzer: the document promises an integer, so empty is not absent.
        (json!({"limit": ""}), 422),
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
        cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
        store: ProductStore::new(catalog.table.dynamodb.clone(), unique("no-such-table")),
    };
    let (status, _, _) = call(
        |request| handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}

/// The public reads say how long a cache may keep them (the storefront's CloudFront
/// distribution and browsers keep them that long); an error or a write is never cached.
#[tokio::test]
async fn public_reads_may_be_cached_for_five_seconds_and_nothing_else_may() {
    let catalog = Catalog::new().await;
    let product = catalog.create("Lamp", "lighting").await;
    let id = product["id"].as_str().unwrap();
    let cache_control = |response: &lambda_http::Response<lambda_http::Body>| {
        response
            .headers()
            .get("cache-control")
            .map(|value| value.to_str().unwrap().to_owned())
    };

    for event in [
        fixture("api-list-products.json"),
        with_query(
            fixture("api-list-products.json"),
            json!({"category": "lighting"}),
        ),
        for_product(fixture("api-get-product.json"), id),
    ] {
        let (status, _, response) = catalog.call(event).await;
        assert_eq!(status, 200);
        assert_eq!(
            cache_control(&response).as_deref(),
            Some("public, max-age=5")
        );
    }
    for event in [
        for_product(fixture("api-get-product.json"), &unique("missing")),
        with_query(
            fixture("api-list-products.json"),
            json!({"cursor": "forged.cursor"}),
        ),
    ] {
        let (status, _, response) = catalog.call(event).await;
        assert!(status >= 400, "{status}");
        assert_eq!(cache_control(&response).as_deref(), Some("no-store"));
    }
    let (status, _, response) = catalog.call(fixture("api-create-product.json")).await;
    assert_eq!(status, 201);
    assert_eq!(
        cache_control(&response),
        None,
        "a write says nothing of caches"
    );
}
