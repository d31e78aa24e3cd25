//! The basket API Lambda's handler against moto, driven by the sample events in
//! `events/basket/` (the same files `sam local invoke -e` and `shop-local invoke` take).

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shop_platform::consumer::Outcome;
use shop_testing::api::{
    BadRequest, anonymous, assert_rejected_without_writes, call, with_body, with_header,
    without_header,
};

fn zero() -> Value {
    json!({"amount": 0, "currency": "USD"})
}

#[tokio::test]
async fn a_user_without_a_basket_sees_an_empty_one() {
    let shop = Shop::new().await;
    let (status, basket, response) = shop.call(fixture("api-get-basket.json")).await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(basket, json!({"items": [], "total": zero()}));
    assert_eq!(shop.table.item_count().await, 0, "reading writes nothing");
}

#[tokio::test]
async fn lines_are_set_changed_and_removed_and_priced_from_the_projection() {
    let shop = Shop::new().await;
    assert_eq!(
        shop.deliver(&fixture("consumer-product-created.json"))
            .await,
        shop_platform::consumer::Outcome::Applied
    );

    let (status, basket, _) = shop.call(fixture("api-set-item.json")).await;
    assert_eq!(status, 200, "{basket}");
    let line = |price: i64, quantity: u32| {
        json!({"productId": BOOK, "name": "The Rust Programming Language",
               "unitPrice": {"amount": price, "currency": "USD"}, "quantity": quantity})
    };
    assert_eq!(
        basket,
        json!({"items": [line(3999, 2)], "total": {"amount": 7998, "currency": "USD"}})
    );

    // The catalog lowers the price: the basket shows it at once, nothing is stored twice.
    assert_eq!(
        shop.deliver(&fixture("consumer-product-updated.json"))
            .await,
        shop_platform::consumer::Outcome::Applied
    );
    let basket = shop.set(SHOPPER, BOOK, 3).await;
    assert_eq!(basket["items"], json!([line(3499, 3)]));
    assert_eq!(basket["total"]["amount"], 3 * 3499);
    assert_eq!(shop.view(SHOPPER).await, basket);

    // Every write restarts the idle lifetime: TTL removes a basket 30 days after its last change.
    let stored = &shop.table.items("BASKET#").await[0];
    let expires: i64 = stored["expiresAt"].as_n().unwrap().parse().unwrap();
    let updated =
        chrono::DateTime::parse_from_rfc3339(stored["updatedAt"].as_s().unwrap()).unwrap();
    assert_eq!(expires, (updated + chrono::TimeDelta::days(30)).timestamp());
    assert_eq!(stored["version"].as_n().unwrap(), "2");

    let (status, basket, _) = shop.call(fixture("api-remove-item.json")).await;
    assert_eq!(
        (status, basket),
        (200, json!({"items": [], "total": zero()}))
    );
    let before = shop.table.item_count().await;
    let (status, basket, _) = shop.call(fixture("api-remove-item.json")).await;
    assert_eq!(
        (status, basket),
        (200, json!({"items": [], "total": zero()})),
        "removing an absent line is fine"
    );
    let stored = &shop.table.items("BASKET#").await[0];
    assert_eq!(stored["version"].as_n().unwrap(), "3", "and writes nothing");
    assert_eq!(shop.table.item_count().await, before);
}

#[tokio::test]
async fn each_user_has_their_own_basket() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    shop.set("someone-else", BOOK, 4).await;
    assert_eq!(shop.view(SHOPPER).await["items"][0]["quantity"], 1);
    assert_eq!(shop.view("someone-else").await["items"][0]["quantity"], 4);
    assert_eq!(shop.view("a-third").await["items"], json!([]));
}

#[tokio::test]
async fn a_product_is_404_until_the_basket_knows_it_and_after_it_is_deleted() {
    let shop = Shop::new().await;
    let (status, problem, response) = shop.call(fixture("api-set-item.json")).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(problem["detail"].as_str().unwrap().contains("retry"));
    assert_eq!(shop.table.item_count().await, 0);

    shop.deliver(&fixture("consumer-product-created.json"))
        .await;
    shop.set(SHOPPER, BOOK, 2).await;
    let other = new_product();
    shop.project(&other, "Mug", 500, 1).await;
    shop.set(SHOPPER, &other, 1).await;

    shop.deliver(&fixture("consumer-product-deleted.json"))
        .await;
    assert_eq!(
        shop.view(SHOPPER).await,
        json!({"items": [{"productId": other, "name": "Mug",
                          "unitPrice": {"amount": 500, "currency": "USD"}, "quantity": 1}],
               "total": {"amount": 500, "currency": "USD"}}),
        "a deleted product's line is left out"
    );
    let (status, _, _) = shop.call(fixture("api-set-item.json")).await;
    assert_eq!(status, 404, "a deleted product cannot be added");
}

#[tokio::test]
async fn a_basket_holds_at_most_fifty_products() {
    let shop = Shop::new().await;
    let products: Vec<String> = (0..51).map(|_| new_product()).collect();
    for product in &products {
        shop.project(product, "Thing", 100, 1).await;
    }
    for product in &products[..50] {
        shop.set(SHOPPER, product, 1).await;
    }
    let full = shop.view(SHOPPER).await;
    assert_eq!(full["items"].as_array().unwrap().len(), 50);
    assert_eq!(full["total"]["amount"], 5000);

    let event = for_product(fixture("api-set-item.json"), &products[50]);
    let (status, problem, _) = shop.call(event).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(shop.view(SHOPPER).await, full, "nothing written");
    // A line already there can still change.
    let basket = shop.set(SHOPPER, &products[0], 7).await;
    assert_eq!(basket["total"]["amount"], 5600);
}

#[tokio::test]
async fn concurrent_changes_to_one_basket_are_all_kept() {
    let shop = Shop::new().await;
    let products: Vec<String> = (0..4).map(|_| new_product()).collect();
    for product in &products {
        shop.project(product, "Thing", 100, 1).await;
    }
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| shop.set(SHOPPER, &products[i], 1));
    tokio::join!(a, b, c, d);
    let basket = shop.view(SHOPPER).await;
    let mut ids: Vec<&str> = basket["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["productId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<&str> = products.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(ids, expected, "no change overwrote another");
}

#[tokio::test]
async fn checkout_freezes_the_basket_and_publishes_checkout_requested() {
    let shop = Shop::new().await;
    shop.deliver(&fixture("consumer-product-created.json"))
        .await;
    shop.set(SHOPPER, BOOK, 2).await;

    let (status, body, response) = shop.call(fixture("api-checkout.json")).await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["orderId"].as_str().unwrap();
    assert!(basket::domain::is_ulid(order_id));
    assert_eq!(body, json!({"orderId": order_id}));
    assert_eq!(
        response.headers()["location"],
        format!("/orders/{order_id}").as_str()
    );

    let published = shop.table.published().await;
    assert_eq!(published.len(), 1);
    let event = &published[0];
    assert_eq!(event["source"], "shop.basket");
    assert_eq!(event["detail-type"], "CheckoutRequested");
    assert_eq!(
        event["detail"]["metadata"]["correlationId"],
        fixture("api-checkout.json")["requestContext"]["requestId"]
    );
    assert_eq!(
        event["detail"]["data"],
        json!({
            "orderId": order_id,
            "userId": SHOPPER,
            "lines": [{"productId": BOOK, "name": "The Rust Programming Language",
                       "unitPrice": {"amount": 3999, "currency": "USD"}, "quantity": 2}],
            "total": {"amount": 7998, "currency": "USD"},
            "shippingAddress": {"name": "Ada Lovelace", "line1": "12 St James's Square",
                                "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
            "paymentToken": "tok_visa_4242"
        })
    );
    // The checkout is kept under its key and under its order, for OrderSubmitted.
    assert_eq!(shop.table.items("CHECKOUT#").await.len(), 1);
    let by_order = shop.table.items(&format!("ORDER#{order_id}")).await;
    assert_eq!(by_order[0]["userId"].as_s().unwrap(), SHOPPER);
    // Until the order exists, the basket is as it was.
    assert_eq!(shop.view(SHOPPER).await["items"][0]["quantity"], 2);
}

#[tokio::test]
async fn the_same_idempotency_key_is_the_same_checkout_and_another_key_another() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;

    let (status, first) = shop.checkout(SHOPPER, "key-aaaaaaaa").await;
    assert_eq!(status, 202, "{first}");
    let items = shop.table.item_count().await;
    let (status, again) = shop.checkout(SHOPPER, "key-aaaaaaaa").await;
    assert_eq!((status, &again), (202, &first), "same key, same order");
    assert_eq!(shop.table.item_count().await, items, "and nothing new");
    assert_eq!(shop.outbox().await.len(), 1, "one CheckoutRequested");

    // Another key while the first order is on its way is no second order of the same
    // lines (until checkouts froze the basket, it was)...
    let (status, problem) = shop.checkout(SHOPPER, "key-bbbbbbbb").await;
    assert_eq!(status, 409, "{problem}");
    // ...but once a line is set since, it is another order.
    shop.set(SHOPPER, BOOK, 2).await;
    let (status, second) = shop.checkout(SHOPPER, "key-bbbbbbbb").await;
    assert_eq!(status, 202);
    assert_ne!(
        second["orderId"], first["orderId"],
        "another key, another order"
    );
    let mut orders: Vec<Value> = shop
        .outbox()
        .await
        .iter()
        .map(|event| event["data"]["orderId"].clone())
        .collect();
    orders.sort_by_key(|id| id.to_string());
    let mut expected = vec![first["orderId"].clone(), second["orderId"].clone()];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(orders, expected);

    // Keys belong to their user: the same key from someone else is their own checkout
    // (of their empty basket).
    let (status, problem) = shop.checkout("someone-else", "key-aaaaaaaa").await;
    assert_eq!(status, 422, "{problem}");
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    let (a, b, c) = tokio::join!(
        shop.checkout(SHOPPER, "key-racing-1"),
        shop.checkout(SHOPPER, "key-racing-1"),
        shop.checkout(SHOPPER, "key-racing-1"),
    );
    assert_eq!(a.0, 202, "{}", a.1);
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(shop.outbox().await.len(), 1);
}

#[tokio::test]
async fn a_new_key_while_a_checkout_is_pending_orders_nothing_again() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 2).await;
    let (status, first) = shop.checkout(SHOPPER, "key-click-01").await;
    assert_eq!(status, 202, "{first}");
    let order_id = first["orderId"].as_str().unwrap();
    let items = shop.table.item_count().await;

    // A second click that minted its own key, or a retry with a new one after a client
    // timeout: the lines are already on their way to becoming the first order.
    let (status, problem) = shop.checkout(SHOPPER, "key-click-02").await;
    assert_eq!(
        (status, &problem["status"]),
        (409, &json!(409)),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("in progress"),
        "{problem}"
    );
    assert_eq!(shop.table.item_count().await, items, "nothing written");
    assert_eq!(shop.outbox().await.len(), 1, "one CheckoutRequested");
    // Until the order exists the basket shows them, and the first key keeps its order.
    assert_eq!(
        lines(&shop.view(SHOPPER).await["items"]),
        [(BOOK.to_owned(), 2)]
    );
    assert_eq!(
        shop.checkout(SHOPPER, "key-click-01").await,
        (202, first.clone())
    );

    assert_eq!(
        shop.deliver(&order_submitted(order_id, SHOPPER)).await,
        Outcome::Applied
    );
    assert_eq!(shop.view(SHOPPER).await["items"], json!([]));
    let (status, problem) = shop.checkout(SHOPPER, "key-click-02").await;
    assert_eq!(status, 422, "the order took everything: {problem}");
    assert_eq!(shop.checkout(SHOPPER, "key-click-01").await, (202, first));
    assert_eq!(shop.outbox().await.len(), 1);
}

#[tokio::test]
async fn checkouts_racing_with_a_key_per_click_make_one_order() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    let (a, b, c) = tokio::join!(
        shop.checkout(SHOPPER, "key-click-a1"),
        shop.checkout(SHOPPER, "key-click-b1"),
        shop.checkout(SHOPPER, "key-click-c1"),
    );
    let mut statuses = [a.0, b.0, c.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409, 409], "{a:?} {b:?} {c:?}");
    assert_eq!(shop.outbox().await.len(), 1, "one order");
}

#[tokio::test]
async fn lines_set_after_a_pending_checkout_are_the_next_order_and_each_order_takes_its_own() {
    let shop = Shop::new().await;
    let [mug, tea] = [0; 2].map(|_| new_product());
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.project(&mug, "Mug", 500, 1).await;
    shop.project(&tea, "Tea", 300, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    shop.set(SHOPPER, &mug, 1).await;
    let (_, first) = shop.checkout(SHOPPER, "key-first-01").await;
    let first = first["orderId"].as_str().unwrap().to_owned();

    // While the first order is on its way: a product added, and one of its lines changed.
    shop.set(SHOPPER, &tea, 2).await;
    shop.set(SHOPPER, &mug, 3).await;
    let (status, second) = shop.checkout(SHOPPER, "key-second-1").await;
    assert_eq!(status, 202, "{second}");
    let second = second["orderId"].as_str().unwrap().to_owned();
    assert_eq!(
        lines(&requested(&shop, &first).await["lines"]),
        [(BOOK.to_owned(), 1), (mug.clone(), 1)]
    );
    assert_eq!(
        lines(&requested(&shop, &second).await["lines"]),
        [(mug.clone(), 3), (tea.clone(), 2)],
        "only what is new since the first checkout"
    );
    let (status, _) = shop.checkout(SHOPPER, "key-third-01").await;
    assert_eq!(status, 409, "nothing new since the second");

    // The orders come back in any order; each takes its own lines and no others.
    let submitted = order_submitted(&second, SHOPPER);
    assert_eq!(shop.deliver(&submitted).await, Outcome::Applied);
    assert_eq!(
        lines(&shop.view(SHOPPER).await["items"]),
        [(BOOK.to_owned(), 1)]
    );
    let (status, _) = shop.checkout(SHOPPER, "key-third-01").await;
    assert_eq!(status, 409, "the book is still the first order's");
    assert_eq!(
        shop.deliver(&order_submitted(&first, SHOPPER)).await,
        Outcome::Applied
    );
    assert_eq!(shop.view(SHOPPER).await["items"], json!([]));

    // Late and repeated, under new event ids: nothing left to change.
    let stored = shop.store().basket(SHOPPER).await.unwrap().unwrap();
    for order in [&first, &second] {
        let again = order_submitted(order, SHOPPER);
        assert_eq!(shop.deliver(&again).await, Outcome::Applied);
    }
    assert_eq!(shop.store().basket(SHOPPER).await.unwrap(), Some(stored));
    let (_, answer) = shop.checkout(SHOPPER, "key-first-01").await;
    assert_eq!(answer["orderId"], first.as_str());
    let (_, answer) = shop.checkout(SHOPPER, "key-second-1").await;
    assert_eq!(answer["orderId"], second.as_str());
    assert_eq!(shop.outbox().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_committed_between_the_checkouts_read_and_its_commit_is_in_the_order() {
    let shop = Shop::new().await;
    let mug = new_product();
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.project(&mug, "Mug", 500, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    shop.set(SHOPPER, &mug, 1).await;
    // Another tab of the same user: three books, and no mug after all.
    let app = shop.app_with(JustBefore::commit(
        &shop,
        vec![set_request(SHOPPER, BOOK, 3), remove_request(SHOPPER, &mug)],
    ));
    let (status, body, _) = call(
        |request| basket::api::handle(&app, request),
        checkout_request(SHOPPER, "key-between-1"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["orderId"].as_str().unwrap();
    assert_eq!(
        lines(&requested(&shop, order_id).await["lines"]),
        [(BOOK.to_owned(), 3)],
        "the basket as it was when the checkout committed"
    );
    assert_eq!(
        shop.deliver(&order_submitted(order_id, SHOPPER)).await,
        Outcome::Applied
    );
    assert_eq!(
        shop.view(SHOPPER).await["items"],
        json!([]),
        "and the order took all of it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_with_the_same_key_that_lands_just_before_the_basket_read_is_the_answer() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    // The key is looked up and not found; then the same request, sent twice by the
    // client, commits its other copy before this copy reads the basket.
    let app = shop.app_with(JustBefore::basket_read(
        &shop,
        vec![checkout_request(SHOPPER, "key-twice-001")],
    ));
    let (status, body, _) = call(
        |request| basket::api::handle(&app, request),
        checkout_request(SHOPPER, "key-twice-001"),
    )
    .await;
    assert_eq!(status, 202, "the same key, the same order: {body}");
    let orders: Vec<Value> = shop
        .outbox()
        .await
        .iter()
        .map(|event| event["data"]["orderId"].clone())
        .collect();
    assert_eq!(orders, [body["orderId"].clone()]);
}

#[tokio::test]
async fn a_replica_behind_on_the_projection_loses_no_line_and_leaves_none_out_of_an_order() {
    let shop = Shop::new().await;
    let mug = new_product();
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.project(&mug, "Mug", 500, 1).await;
    let replica = LaggingReplica::default();
    let app = shop.app_with(replica.clone());
    let send = async |event| call(|request| basket::api::handle(&app, request), event).await;
    let (status, basket, _) = send(set_request(SHOPPER, &mug, 1)).await;
    assert_eq!(status, 200, "{basket}");

    // The mug's projection was written moments ago: a replica may not have it yet.
    replica.falls_behind_on(&mug);
    let both = [(mug.clone(), 1), (BOOK.to_owned(), 2)];
    let (status, basket, _) = send(set_request(SHOPPER, BOOK, 2)).await;
    assert_eq!(status, 200, "{basket}");
    assert_eq!(lines(&basket["items"]), both);
    let (status, basket, _) = send(remove_request(SHOPPER, &new_product())).await;
    assert_eq!((status, lines(&basket["items"])), (200, both.to_vec()));
    let stored = shop.store().basket(SHOPPER).await.unwrap().unwrap();
    let stored: Vec<_> = stored.lines.iter().map(|l| l.product_id.as_str()).collect();
    assert_eq!(stored, [mug.as_str(), BOOK], "no line lost");

    // Only showing the basket may read the replica, and leave the mug out of that answer.
    let (status, shown, _) = send(as_user(fixture("api-get-basket.json"), SHOPPER)).await;
    assert_eq!((status, lines(&shown["items"])), (200, both[1..].to_vec()));

    let (status, body, _) = send(checkout_request(SHOPPER, "key-replica-1")).await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["orderId"].as_str().unwrap();
    assert_eq!(lines(&requested(&shop, order_id).await["lines"]), both);
}

#[tokio::test]
async fn a_line_the_basket_cannot_price_is_kept_and_named_at_checkout_not_left_out() {
    let shop = Shop::new().await;
    let mug = new_product();
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.project(&mug, "Mug", 500, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    shop.set(SHOPPER, &mug, 2).await;
    // The mug's projection is gone (say, a restore from before it was created).
    shop.table
        .dynamodb
        .delete_item()
        .table_name(&shop.table.name)
        .key("pk", AttributeValue::S(format!("PRODUCT#{mug}")))
        .key("sk", AttributeValue::S("PROJECTION".into()))
        .send()
        .await
        .unwrap();

    let basket = shop.set(SHOPPER, BOOK, 3).await;
    assert_eq!(
        lines(&basket["items"]),
        [(BOOK.to_owned(), 3)],
        "what has no price is not shown"
    );
    let stored = shop.store().basket(SHOPPER).await.unwrap().unwrap();
    let stored: Vec<_> = stored.lines.iter().map(|l| l.product_id.as_str()).collect();
    assert_eq!(stored, [BOOK, mug.as_str()], "but it is kept");

    let before = shop.table.item_count().await;
    let (status, problem) = shop.checkout(SHOPPER, "key-unpriced").await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(&mug),
        "{problem}"
    );
    assert_eq!(shop.table.item_count().await, before, "nothing written");
    assert!(shop.outbox().await.is_empty());

    // Once the basket knows the product again, the line is bought like any other.
    shop.project(&mug, "Mug", 500, 1).await;
    let (status, body) = shop.checkout(SHOPPER, "key-unpriced").await;
    assert_eq!(status, 202, "{body}");
    let order_id = body["orderId"].as_str().unwrap();
    assert_eq!(
        lines(&requested(&shop, order_id).await["lines"]),
        [(BOOK.to_owned(), 3), (mug.clone(), 2)]
    );
}

#[tokio::test]
async fn a_retried_checkout_gets_its_order_even_after_the_basket_was_emptied() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 1000, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    let (_, first) = shop.checkout(SHOPPER, "key-retry-01").await;
    let order_id = first["orderId"].as_str().unwrap();
    shop.deliver(&order_submitted(order_id, SHOPPER)).await;
    assert_eq!(shop.view(SHOPPER).await["items"], json!([]));

    let (status, again) = shop.checkout(SHOPPER, "key-retry-01").await;
    assert_eq!((status, again), (202, first));
    let (status, _) = shop.checkout(SHOPPER, "key-retry-02").await;
    assert_eq!(status, 422, "a new key on the emptied basket");
}

#[tokio::test]
async fn checking_out_an_empty_basket_is_422_and_writes_nothing() {
    let shop = Shop::new().await;
    let (status, problem) = shop.checkout(SHOPPER, "key-empty-01").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["status"], 422);
    assert_eq!(shop.table.item_count().await, 0);

    // Only deleted products left is empty too.
    shop.deliver(&fixture("consumer-product-created.json"))
        .await;
    shop.set(SHOPPER, BOOK, 1).await;
    shop.deliver(&fixture("consumer-product-deleted.json"))
        .await;
    let before = shop.table.item_count().await;
    let (status, _) = shop.checkout(SHOPPER, "key-empty-01").await;
    assert_eq!(status, 422);
    assert_eq!(shop.table.item_count().await, before);
    assert!(shop.outbox().await.is_empty());
}

#[tokio::test]
async fn bad_input_gets_the_right_problem_and_writes_nothing() {
    let shop = Shop::new().await;
    shop.deliver(&fixture("consumer-product-created.json"))
        .await;
    let before_basket = shop.set(SHOPPER, BOOK, 2).await;

    let set = fixture("api-set-item.json");
    let checkout = fixture("api-checkout.json");
    let valid: Value = serde_json::from_str(checkout["body"].as_str().unwrap()).unwrap();
    let address = |field: &str, value: Value| {
        let mut body = valid.clone();
        body["shippingAddress"][field] = value;
        with_body(checkout.clone(), &body.to_string())
    };
    let key = |value: &str| with_header(checkout.clone(), "idempotency-key", value);
    let quantity = |value: Value| with_body(set.clone(), &json!({ "quantity": value }).to_string());

    let cases: Vec<BadRequest> = vec![
        ("quantity 0", quantity(json!(0)), 422, Some("quantity")),
        ("quantity 100", quantity(json!(100)), 422, Some("quantity")),
        (
            "negative quantity",
            quantity(json!(-1)),
            422,
            Some("quantity"),
        ),
        (
            "fractional quantity",
            quantity(json!(1.5)),
            422,
            Some("quantity"),
        ),
        (
            "quantity as text",
            quantity(json!("2")),
            422,
            Some("quantity"),
        ),
        (
            "no quantity",
            with_body(set.clone(), "{}"),
            422,
            Some("quantity"),
        ),
        (
            "malformed JSON",
            with_body(set.clone(), "{\"quantity\": "),
            400,
            None,
        ),
        ("no body", without_body(set.clone()), 400, None),
        (
            "not JSON",
            with_header(set.clone(), "content-type", "text/plain"),
            415,
            None,
        ),
        (
            "not a product id",
            for_product(set.clone(), "..%2F..%2Fetc"),
            404,
            None,
        ),
        ("set without a token", anonymous(set.clone()), 401, None),
        (
            "view without a token",
            anonymous(fixture("api-get-basket.json")),
            401,
            None,
        ),
        (
            "remove without a token",
            anonymous(fixture("api-remove-item.json")),
            401,
            None,
        ),
        (
            "checkout without a token",
            anonymous(checkout.clone()),
            401,
            None,
        ),
        (
            "no idempotency key",
            without_header(checkout.clone(), "idempotency-key"),
            400,
            Some("Idempotency-Key"),
        ),
        ("short key", key("short"), 400, Some("Idempotency-Key")),
        (
            "long key",
            key(&"k".repeat(65)),
            400,
            Some("Idempotency-Key"),
        ),
        (
            "key with a slash",
            key("abc/defgh"),
            400,
            Some("Idempotency-Key"),
        ),
        (
            "key with a space",
            key("abcd efgh"),
            400,
            Some("Idempotency-Key"),
        ),
        (
            "malformed checkout JSON",
            with_body(checkout.clone(), "{\"shippingAddress\": {"),
            400,
            None,
        ),
        (
            "no payment token",
            with_body(checkout.clone(), &{
                let mut body = valid.clone();
                body.as_object_mut().unwrap().remove("paymentToken");
                body.to_string()
            }),
            422,
            Some("paymentToken"),
        ),
        (
            "blank payment token",
            with_body(checkout.clone(), &{
                let mut body = valid.clone();
                body["paymentToken"] = json!("  ");
                body.to_string()
            }),
            422,
            Some("paymentToken"),
        ),
        (
            "lower-case country",
            address("country", json!("gb")),
            422,
            Some("shippingAddress.country"),
        ),
        (
            "unassigned country",
            address("country", json!("UK")),
            422,
            Some("shippingAddress.country"),
        ),
        (
            "alpha-3 country",
            address("country", json!("GBR")),
            422,
            Some("shippingAddress.country"),
        ),
        (
            "blank name",
            address("name", json!(" ")),
            422,
            Some("shippingAddress.name"),
        ),
        (
            "long name",
            address("name", json!("n".repeat(101))),
            422,
            Some("shippingAddress.name"),
        ),
        (
            "no line1",
            address("line1", Value::Null),
            422,
            Some("shippingAddress.line1"),
        ),
        (
            "long line2",
            address("line2", json!("l".repeat(201))),
            422,
            Some("shippingAddress.line2"),
        ),
        (
            "long postal code",
            address("postalCode", json!("1".repeat(21))),
            422,
            Some("shippingAddress.postalCode"),
        ),
        (
            "empty city",
            address("city", json!("")),
            422,
            Some("shippingAddress.city"),
        ),
        (
            "oversized body",
            address("line2", json!("x".repeat(20_000))),
            413,
            None,
        ),
    ];
    assert_rejected_without_writes(&shop.table, async |e| shop.call(e).await, cases).await;
    assert!(shop.outbox().await.is_empty());
    assert_eq!(shop.view(SHOPPER).await, before_basket);
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let shop = Shop::new().await;
    let (status, body, _) = shop.call(fixture("api-health.json")).await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "capability": "basket"}))
    );

    let missing = basket::api::App {
        store: basket::store::BasketStore::new(
            shop.table.dynamodb.clone(),
            shop_testing::unique("no-such-table"),
        ),
    };
    let (status, _, _) = call(
        |request| basket::api::handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}
