//! The order's life (DESIGN §3) through shop-local: all six capabilities, each its own
//! functions, table and queue, talking only through the bus, and the sandbox payment
//! provider behind its function URL. Everything goes through the HTTP API, as a client
//! would; every scenario ends with the invariant checker.

use std::time::Instant;

use crate::support::invariants::{Provider, Scenario, assert_invariants};
use crate::support::shop::{Shop, checkout_body, history};
use crate::support::{Tail, eventually};
use serde_json::{Value, json};

/// Payment tokens no log line may hold (DESIGN §6: the shop never logs them).
const PAID_TOKEN: &str = "tok_visa_never_logged_7f3a9c";
const DECLINED_TOKEN: &str = "tok_decline_never_logged_51e2";

#[tokio::test(flavor = "multi_thread")]
async fn an_order_lives_to_delivered_and_every_way_out_of_it_compensates() {
    let shop = Shop::start(&[]);
    let tail = Tail::start(&shop.stack);
    let mut scenario = Scenario::default();
    let ada = shop.stack.token("ada", false);
    let lamp = shop.product_with_stock("Saga Lamp", 2500, 10).await;
    scenario.stock_set.insert(lamp.clone(), 10);

    // The happy path, to delivered.
    shop.add(&ada, &lamp, 2).await;
    let happy = shop.checkout_with(&ada, "life-ada-0001", PAID_TOKEN).await;
    scenario.orders.push((happy.clone(), ada.clone()));
    let order = shop.settled(&ada, &happy).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(order["total"], json!({"amount": 5000, "currency": "USD"}));
    let (status, payment) = shop.payment(&happy).await;
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["amount"], order["total"]);
    let shipment = shop.pending_shipment(&happy).await;
    assert_eq!(shipment["shippingAddress"], order["shippingAddress"]);
    let (status, problem) = shop.shipment_step(&happy, "deliver").await;
    assert_eq!(status, 409, "deliver before dispatch: {problem}");
    let (status, shipment) = shop.shipment_step(&happy, "dispatch").await;
    assert_eq!(
        (status, shipment["status"].clone()),
        (200, json!("dispatched"))
    );
    shop.order_when(&ada, &happy, "the order ships", |o| {
        o["status"] == "shipped"
    })
    .await;
    let (status, problem) = shop.cancel(&ada, &happy).await;
    assert_eq!(status, 409, "cancel after dispatch: {problem}");
    let (status, _) = shop.shipment_step(&happy, "dispatch").await;
    assert_eq!(status, 409, "dispatched twice");
    let (status, _) = shop.shipment_step(&happy, "deliver").await;
    assert_eq!(status, 200);
    let order = shop
        .order_when(&ada, &happy, "the order is delivered", |o| {
            o["status"] == "delivered"
        })
        .await;
    assert_eq!(
        history(&order),
        [
            "submitted",
            "stock_confirmed",
            "paid",
            "shipped",
            "delivered"
        ]
    );
    eventually("inventory ships the reservation", async || {
        let stock = shop.stock(&lamp).await;
        (stock
            == json!({"productId": lamp, "available": 8, "reserved": 0, "shipped": 2, "shards": 1}))
        .then_some(())
    })
    .await;

    // A declined card: cancelled, stock released, nothing charged.
    shop.add(&ada, &lamp, 3).await;
    let declined = shop
        .checkout_with(&ada, "life-ada-0002", DECLINED_TOKEN)
        .await;
    scenario.orders.push((declined.clone(), ada.clone()));
    let order = shop.settled(&ada, &declined).await;
    assert_eq!(
        (order["status"].clone(), order["cancellationReason"].clone()),
        (json!("cancelled"), json!("payment_failed")),
        "{order}"
    );
    assert_eq!(
        history(&order),
        ["submitted", "stock_confirmed", "cancelled"]
    );
    let (_, payment) = shop.payment(&declined).await;
    assert_eq!(
        (payment["status"].clone(), payment["reason"].clone()),
        (json!("failed"), json!("declined")),
        "{payment}"
    );

    // Cancelled after payment: shipping confirms, then refunded, released, dropped.
    shop.add(&ada, &lamp, 1).await;
    let regret = shop.checkout(&ada, "life-ada-0003").await;
    scenario.orders.push((regret.clone(), ada.clone()));
    assert_eq!(shop.settled(&ada, &regret).await["status"], "paid");
    shop.pending_shipment(&regret).await;
    let (status, order) = shop.cancel(&ada, &regret).await;
    assert_eq!(
        (status, order["status"].clone()),
        (202, json!("cancelling")),
        "from paid on, shipping has the last word"
    );
    let (status, _) = shop.cancel(&ada, &regret).await;
    assert_eq!(status, 200, "asked already");
    let order = shop
        .order_when(&ada, &regret, "shipping confirms the cancellation", |o| {
            o["status"] == "cancelled"
        })
        .await;
    assert_eq!(
        history(&order),
        [
            "submitted",
            "stock_confirmed",
            "paid",
            "cancelling",
            "cancelled"
        ]
    );
    let (status, problem) = shop.shipment_step(&regret, "dispatch").await;
    assert_eq!(status, 409, "a cancelled shipment cannot leave: {problem}");
    eventually("payment refunds the charge", async || {
        let (_, payment) = shop.payment(&regret).await;
        (payment["status"] == "refunded").then_some(())
    })
    .await;
    eventually("shipping drops the shipment", async || {
        let (_, shipment) = shop.shipment(&regret).await;
        (shipment["status"] == "cancelled").then_some(())
    })
    .await;

    // Cancelled the moment the order exists: the cancellation races the charge.
    shop.add(&ada, &lamp, 1).await;
    let racing = shop.checkout(&ada, "life-ada-0004").await;
    scenario.orders.push((racing.clone(), ada.clone()));
    let (status, order) = eventually("the order exists", async || {
        let (status, order) = shop.cancel(&ada, &racing).await;
        (status != 404).then_some((status, order))
    })
    .await;
    assert!([200, 202].contains(&status), "{status}: {order}");

    // More than there is: cancelled for stock, nothing taken.
    shop.add(&ada, &lamp, 50).await;
    let too_many = shop.checkout(&ada, "life-ada-0005").await;
    scenario.orders.push((too_many.clone(), ada.clone()));
    let order = shop.settled(&ada, &too_many).await;
    assert_eq!(
        (order["status"].clone(), order["cancellationReason"].clone()),
        (json!("cancelled"), json!("out_of_stock"))
    );
    let (status, _) = shop.payment(&too_many).await;
    assert_eq!(status, 404, "never charged");

    assert_invariants(&shop, &scenario).await;
    assert_eq!(
        shop.stock(&lamp).await,
        json!({"productId": lamp, "available": 8, "reserved": 0, "shipped": 2, "shards": 1}),
        "only the delivered order holds stock"
    );

    // The whole run's logs (every function's, and shop-local's own) and the bus feed as
    // `tail` shows it hold neither token nor the provider's API key.
    let provider = Provider::of(&shop.stack).await;
    let logs = shop.stack.output();
    assert!(
        logs.iter().any(|line| line.contains("event published")),
        "the functions' logs are there to read"
    );
    let feed: Vec<String> = tail.lines.try_iter().collect();
    assert!(
        feed.iter()
            .any(|line| line.contains("\"OrderStockConfirmed\"")),
        "tail showed the events that carry a token"
    );
    for secret in [PAID_TOKEN, DECLINED_TOKEN, provider.api_key.as_str()] {
        for (place, lines) in [("the logs", &logs), ("tail", &feed)] {
            let leaks: Vec<&String> = lines.iter().filter(|line| line.contains(secret)).collect();
            assert!(leaks.is_empty(), "{place} show a secret: {leaks:#?}");
        }
    }
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_provider_is_down_orders_end_cancelled_not_stuck() {
    let shop = Shop::start(&[]);
    let provider = Provider::of(&shop.stack).await;
    let mut scenario = Scenario::default();
    let product = shop.product_with_stock("Outage Kettle", 4000, 5).await;
    scenario.stock_set.insert(product.clone(), 5);

    provider
        .set_test_mode(&shop.stack, json!({"outage": true}))
        .await;
    let mut during = Vec::new();
    for n in 0..3 {
        let shopper = shop.stack.token(&format!("outage-{n}"), false);
        shop.add(&shopper, &product, 1).await;
        let order = shop.checkout(&shopper, &format!("outage-key-{n:04}")).await;
        scenario.orders.push((order.clone(), shopper.clone()));
        during.push((order, shopper));
    }
    for (order, shopper) in &during {
        let order = shop.settled(shopper, order).await;
        assert_eq!(
            (order["status"].clone(), order["cancellationReason"].clone()),
            (json!("cancelled"), json!("provider_unavailable")),
            "{order}"
        );
    }

    // Back up: the next order goes through.
    provider.set_test_mode(&shop.stack, json!({})).await;
    let shopper = shop.stack.token("after-outage", false);
    shop.add(&shopper, &product, 2).await;
    let order = shop.checkout(&shopper, "after-outage-0001").await;
    scenario.orders.push((order.clone(), shopper.clone()));
    assert_eq!(shop.settled(&shopper, &order).await["status"], "paid");

    assert_invariants(&shop, &scenario).await;
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}

/// The black-box race of issue 13: paid orders, and for each the owner's cancel and an
/// admin's dispatch sent at the same moment. Shipping has the last word: either the parcel
/// left (the order ships, its history keeping the refused request) or it never will (the
/// order is cancelled and refunded); never both, and inventory counts exactly the units of
/// the parcels that left as shipped.
#[tokio::test(flavor = "multi_thread")]
async fn cancels_racing_dispatches_leave_every_order_one_story() {
    const ORDERS: usize = 12;
    let shop = Shop::start(&[]);
    let mut scenario = Scenario::default();
    let product = shop.product_with_stock("Race Lamp", 3100, 40).await;
    scenario.stock_set.insert(product.clone(), 40);
    let mut paid = Vec::new();
    for n in 0..ORDERS {
        let shopper = shop.stack.token(&format!("racer-{n}"), false);
        shop.add(&shopper, &product, 2).await;
        let order = shop.checkout(&shopper, &format!("race-key-{n:04}")).await;
        scenario.orders.push((order.clone(), shopper.clone()));
        paid.push((order, shopper));
    }
    for (order, shopper) in &paid {
        assert_eq!(shop.settled(shopper, order).await["status"], "paid");
        shop.pending_shipment(order).await;
    }
    let answers = futures::future::join_all(paid.iter().map(|(order, shopper)| {
        let shop = &shop;
        async move {
            let (cancel, dispatch) = tokio::join!(
                shop.cancel(shopper, order),
                shop.shipment_step(order, "dispatch")
            );
            (cancel.0, dispatch.0)
        }
    }))
    .await;
    let (mut shipped, mut cancelled) = (0, 0);
    for ((order, shopper), (cancel, dispatch)) in paid.iter().zip(&answers) {
        let settled = shop.settled(shopper, order).await;
        let path = history(&settled);
        let asked = path.contains(&"cancelling".to_owned());
        match (settled["status"].as_str(), *cancel, *dispatch) {
            // The dispatch won; the request was refused and stays on record.
            (Some("shipped"), 202, 200) if asked => shipped += 1,
            // The dispatch reached ordering before the cancel: too late to ask.
            (Some("shipped"), 409, 200) if !asked => shipped += 1,
            // Shipping cancelled first; the dispatch was refused.
            (Some("cancelled"), 202, 409) if asked => cancelled += 1,
            (status, cancel, dispatch) => panic!(
                "{order} is {status:?} after cancel {cancel} and dispatch {dispatch}: {path:?}"
            ),
        }
    }
    println!("{ORDERS} cancels racing dispatches: {shipped} shipped, {cancelled} cancelled");
    assert_invariants(&shop, &scenario).await;
    let stock = shop.stock(&product).await;
    assert_eq!(
        (stock["shipped"].as_i64(), stock["reserved"].as_i64()),
        (Some(2 * shipped as i64), Some(0)),
        "{stock}"
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}

/// The other black-box finding of issue 13: a card processor slower than payment's
/// client. Every attempt times out, the charges complete anyway, the orders are cancelled
/// for the failed payments; the processor's own ledger must end with every charge
/// refunded, by the shop alone.
#[tokio::test(flavor = "multi_thread")]
async fn charges_slower_than_the_client_never_keep_the_customers_money() {
    let shop = Shop::start(&[]);
    let provider = Provider::of(&shop.stack).await;
    let mut scenario = Scenario::default();
    let product = shop.product_with_stock("Slow Kettle", 4100, 10).await;
    scenario.stock_set.insert(product.clone(), 10);
    provider
        .set_test_mode(&shop.stack, json!({"delayMs": 3000}))
        .await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let shopper = shop.stack.token(&format!("slow-{n}"), false);
        shop.add(&shopper, &product, 1).await;
        let order = shop.checkout(&shopper, &format!("slow-key-{n:04}")).await;
        scenario.orders.push((order.clone(), shopper.clone()));
        orders.push((order, shopper));
    }
    for (order, shopper) in &orders {
        let order = shop.settled(shopper, order).await;
        assert_eq!(
            (order["status"].clone(), order["cancellationReason"].clone()),
            (json!("cancelled"), json!("provider_unavailable")),
            "{order}"
        );
    }
    provider.set_test_mode(&shop.stack, json!({})).await;
    // The invariants are counted at the processor's ledger: every charge made is refunded.
    assert_invariants(&shop, &scenario).await;
    for (order, _) in &orders {
        let charge = provider.charge(&shop.stack, order).await;
        assert!(
            charge.as_ref().is_none_or(|c| c["refunded"] == true),
            "{order}: {charge:?}"
        );
    }
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_checkouts_for_five_units_pay_exactly_five() {
    let shop = Shop::start(&[]);
    let shoppers: Vec<String> = (0..20)
        .map(|n| shop.stack.token(&format!("rush-{n}"), false))
        .collect();
    let product = shop.product_with_stock("Limited Edition", 2500, 5).await;
    let mut scenario = Scenario::default();
    scenario.stock_set.insert(product.clone(), 5);
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
            Some("paid") => confirmed += 1,
            Some("cancelled") => {
                assert_eq!(order["cancellationReason"], "out_of_stock");
                cancelled += 1
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    println!("20 concurrent checkouts for 5 units: {confirmed} paid, {cancelled} cancelled");
    scenario.orders = orders.iter().map(|(s, o)| (o.clone(), s.clone())).collect();
    assert_invariants(&shop, &scenario).await;
    assert_eq!((confirmed, cancelled), (5, 15));
    assert_eq!(
        shop.stock(&product).await,
        json!({"productId": product, "available": 0, "reserved": 5, "shipped": 0, "shards": 1})
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_checkout_private_orders_and_bad_input() {
    let shop = Shop::start(&[]);
    let grace = shop.stack.token("grace", false);
    let mallory = shop.stack.token("mallory", false);
    let product = shop.product_with_stock("Saga Mug", 1200, 10).await;
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
            Some(checkout_body("tok_visa")),
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
            Some(checkout_body("tok_visa")),
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
            Some(checkout_body("tok_visa")),
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

/// Prints checkout → paid latency over 20 orders (a figure, not an assertion).
#[tokio::test(flavor = "multi_thread")]
async fn checkout_to_paid_latency() {
    let shop = Shop::start(&[]);
    let shopper = shop.stack.token("latency", false);
    let product = shop.product_with_stock("Latency Tea", 800, 1000).await;
    let mut millis = Vec::new();
    // Milliseconds from the order's creation to each later status, from its history.
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for n in 0..20 {
        shop.add(&shopper, &product, 1).await;
        let started = Instant::now();
        let order = shop
            .checkout(&shopper, &format!("latency-key-{n:04}"))
            .await;
        let settled = shop.settled(&shopper, &order).await;
        assert_eq!(settled["status"], "paid");
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        let at: Vec<chrono::DateTime<chrono::Utc>> = settled["statusHistory"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| change["at"].as_str().unwrap().parse().unwrap())
            .collect();
        for (step, times) in steps.iter_mut().enumerate() {
            times.push((at[step + 1] - at[step]).num_milliseconds() as f64);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    millis.sort_by(f64::total_cmp);
    let p50 = millis[millis.len() / 2];
    let p99 = millis[millis.len() - 1];
    println!(
        "checkout -> paid over {} orders: p50 {p50:.0} ms, p99 {p99:.0} ms \
         (submitted -> stock_confirmed p50 {:.0} ms, stock_confirmed -> paid p50 {:.0} ms)",
        millis.len(),
        median(&mut steps[0]),
        median(&mut steps[1]),
    );
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}
