//! Steps 1-4 of the order's life (DESIGN §3) through shop-local: catalog, inventory,
//! basket and ordering, each its own functions, table and queue, talking only through the
//! bus. Everything goes through the HTTP API, as a client would.

mod support;

use std::time::Instant;

use serde_json::{Value, json};
use support::{Runner, eventually};

const ADDRESS: &str = r#"{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"}"#;

fn checkout_body() -> Value {
    json!({"shippingAddress": serde_json::from_str::<Value>(ADDRESS).unwrap(), "paymentToken": "tok_visa"})
}

struct Shop {
    stack: Runner,
    admin: String,
}

impl Shop {
    fn start() -> Self {
        let stack = Runner::start(&[]);
        let admin = stack.token("saga-admin", true);
        Self { stack, admin }
    }

    /// A product with `stock` units, known to basket (its ProductCreated has arrived).
    async fn product_with_stock(&self, name: &str, stock: u32, shopper: &str) -> String {
        let body =
            json!({"name": name, "category": "saga", "price": {"amount": 2500, "currency": "USD"}});
        let (status, product) = self
            .stack
            .call("POST", "/products", Some(&self.admin), Some(body))
            .await;
        assert_eq!(status, 201, "{product}");
        let id = product["id"].as_str().unwrap().to_owned();
        let (status, stock) = self
            .stack
            .call(
                "PUT",
                &format!("/inventory/{id}"),
                Some(&self.admin),
                Some(json!({"available": stock})),
            )
            .await;
        assert_eq!(status, 200, "{stock}");
        // The basket learns products from catalog's events: retry as a client would.
        let path = format!("/basket/items/{id}");
        eventually("basket knows the product", async || {
            let (status, _) = self
                .stack
                .call("PUT", &path, Some(shopper), Some(json!({"quantity": 1})))
                .await;
            let (_, _) = self.stack.call("DELETE", &path, Some(shopper), None).await;
            (status == 200).then_some(())
        })
        .await;
        id
    }

    async fn add(&self, shopper: &str, product: &str, quantity: u32) {
        let (status, basket) = self
            .stack
            .call(
                "PUT",
                &format!("/basket/items/{product}"),
                Some(shopper),
                Some(json!({"quantity": quantity})),
            )
            .await;
        assert_eq!(status, 200, "{basket}");
    }

    async fn checkout(&self, shopper: &str, key: &str) -> String {
        let (status, answer) = self
            .stack
            .call_with_headers(
                "POST",
                "/basket/checkout",
                Some(shopper),
                Some(checkout_body()),
                &[("idempotency-key", key)],
            )
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["orderId"].as_str().unwrap().to_owned()
    }

    /// The order once it has left `submitted` (or reached `want`).
    async fn settled(&self, shopper: &str, order: &str) -> Value {
        let path = format!("/orders/{order}");
        eventually("the order settles", async || {
            let (status, order) = self.stack.call("GET", &path, Some(shopper), None).await;
            (status == 200 && order["status"] != "submitted").then_some(order)
        })
        .await
    }

    async fn stock(&self, product: &str) -> Value {
        let (status, stock) = self
            .stack
            .call(
                "GET",
                &format!("/inventory/{product}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{stock}");
        stock
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_reaches_stock_confirmed_and_an_oversized_one_is_cancelled_with_stock_untouched()
{
    let shop = Shop::start();
    let ada = shop.stack.token("ada", false);
    let product = shop.product_with_stock("Saga Lamp", 3, &ada).await;

    shop.add(&ada, &product, 2).await;
    let order_id = shop.checkout(&ada, "checkout-ada-0001").await;
    let order = shop.settled(&ada, &order_id).await;
    assert_eq!(order["status"], "stock_confirmed", "{order}");
    let history: Vec<&str> = order["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["submitted", "stock_confirmed"]);
    assert_eq!(order["total"], json!({"amount": 5000, "currency": "USD"}));
    assert!(
        order.get("paymentToken").is_none(),
        "the token never leaves ordering"
    );
    assert_eq!(
        shop.stock(&product).await,
        json!({"productId": product, "available": 1, "reserved": 2, "shipped": 0})
    );
    // The checked-out line left the basket once the order was submitted.
    eventually("the basket is emptied", async || {
        let (_, basket) = shop.stack.call("GET", "/basket", Some(&ada), None).await;
        (basket["items"] == json!([])).then_some(())
    })
    .await;

    shop.add(&ada, &product, 5).await;
    let too_many = shop.checkout(&ada, "checkout-ada-0002").await;
    let order = shop.settled(&ada, &too_many).await;
    assert_eq!(
        (order["status"].clone(), order["cancellationReason"].clone()),
        (json!("cancelled"), json!("out_of_stock"))
    );
    assert_eq!(
        shop.stock(&product).await["available"],
        1,
        "a failed reservation takes nothing"
    );

    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_checkouts_for_five_units_confirm_exactly_five() {
    let shop = Shop::start();
    let shoppers: Vec<String> = (0..20)
        .map(|n| shop.stack.token(&format!("rush-{n}"), false))
        .collect();
    let product = shop
        .product_with_stock("Limited Edition", 5, &shoppers[0])
        .await;
    for shopper in &shoppers {
        shop.add(shopper, &product, 1).await;
    }
    // Polled together: the checkouts race as twenty clients would.
    let orders = futures::future::join_all(shoppers.iter().enumerate().map(|(n, s)| {
        let shop = &shop;
        async move {
            (
                s.clone(),
                shop.checkout(s, &format!("rush-key-{n:04}")).await,
            )
        }
    }))
    .await;
    let mut confirmed = 0;
    let mut cancelled = 0;
    for (shopper, order) in &orders {
        let order = shop.settled(shopper, order).await;
        match order["status"].as_str() {
            Some("stock_confirmed") => confirmed += 1,
            Some("cancelled") => {
                assert_eq!(order["cancellationReason"], "out_of_stock");
                cancelled += 1
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    println!("20 concurrent checkouts for 5 units: {confirmed} confirmed, {cancelled} cancelled");
    assert_eq!((confirmed, cancelled), (5, 15));
    assert_eq!(
        shop.stock(&product).await,
        json!({"productId": product, "available": 0, "reserved": 5, "shipped": 0})
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_checkout_private_orders_and_bad_input() {
    let shop = Shop::start();
    let grace = shop.stack.token("grace", false);
    let mallory = shop.stack.token("mallory", false);
    let product = shop.product_with_stock("Saga Mug", 10, &grace).await;
    shop.add(&grace, &product, 1).await;

    let first = shop.checkout(&grace, "same-key-123").await;
    let again = shop.checkout(&grace, "same-key-123").await;
    assert_eq!(first, again, "the same key answers the same order");
    shop.settled(&grace, &first).await;
    let (_, orders) = shop.stack.call("GET", "/orders", Some(&grace), None).await;
    assert_eq!(
        orders["items"].as_array().unwrap().len(),
        1,
        "one order: {orders}"
    );

    let (status, problem) = shop
        .stack
        .call("GET", &format!("/orders/{first}"), Some(&mallory), None)
        .await;
    assert_eq!(
        (status, problem["status"].clone()),
        (404, json!(404)),
        "another user's order does not exist for them"
    );
    let (status, _) = shop
        .stack
        .call(
            "POST",
            &format!("/orders/{first}/cancel"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!(status, 404);

    let before = shop.stock(&product).await;
    let item = format!("/basket/items/{product}");
    // (case, method, path, token, body, expected status)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<Value>,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "quantity 0",
            "PUT",
            &item,
            Some(&grace),
            Some(json!({"quantity": 0})),
            422,
        ),
        (
            "quantity 100",
            "PUT",
            &item,
            Some(&grace),
            Some(json!({"quantity": 100})),
            422,
        ),
        (
            "unknown product",
            "PUT",
            "/basket/items/01JAAAAAAAAAAAAAAAAAAAAAAA",
            Some(&grace),
            Some(json!({"quantity": 1})),
            404,
        ),
        (
            "no token",
            "PUT",
            &item,
            None,
            Some(json!({"quantity": 1})),
            401,
        ),
        (
            "no token checkout",
            "POST",
            "/basket/checkout",
            None,
            Some(checkout_body()),
            401,
        ),
        ("no token orders", "GET", "/orders", None, None, 401),
    ];
    for (case, method, path, token, body, status) in cases {
        let (got, answer) = shop.stack.call(method, path, token, body).await;
        assert_eq!(got, status, "{case}: {answer}");
    }
    let (status, answer) = shop
        .stack
        .call_raw("PUT", &item, Some(&grace), "{\"quantity\": ")
        .await;
    assert_eq!(status, 400, "malformed JSON: {answer}");
    let (status, answer) = shop
        .stack
        .call_with_headers(
            "POST",
            "/basket/checkout",
            Some(&mallory),
            Some(checkout_body()),
            &[("idempotency-key", "mallory-key-1")],
        )
        .await;
    assert_eq!(status, 422, "an empty basket: {answer}");
    let (status, answer) = shop
        .stack
        .call(
            "POST",
            "/basket/checkout",
            Some(&grace),
            Some(checkout_body()),
        )
        .await;
    assert_eq!(status, 400, "no Idempotency-Key: {answer}");
    let (_, orders) = shop.stack.call("GET", "/orders", Some(&grace), None).await;
    assert_eq!(
        orders["items"].as_array().unwrap().len(),
        1,
        "bad input created no order"
    );
    assert_eq!(
        shop.stock(&product).await,
        before,
        "bad input touched no stock"
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}

/// Prints checkout → stock_confirmed latency over 20 orders (a figure, not an assertion).
#[tokio::test(flavor = "multi_thread")]
async fn checkout_to_stock_confirmed_latency() {
    let shop = Shop::start();
    let shopper = shop.stack.token("latency", false);
    let product = shop.product_with_stock("Latency Tea", 1000, &shopper).await;
    let mut millis = Vec::new();
    for n in 0..20 {
        shop.add(&shopper, &product, 1).await;
        let started = Instant::now();
        let order = shop
            .checkout(&shopper, &format!("latency-key-{n:04}"))
            .await;
        let settled = shop.settled(&shopper, &order).await;
        assert_eq!(settled["status"], "stock_confirmed");
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    let p50 = millis[millis.len() / 2];
    let p99 = millis[millis.len() - 1];
    println!(
        "checkout -> stock_confirmed over {} orders: p50 {p50:.0} ms, p99 {p99:.0} ms",
        millis.len()
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}
