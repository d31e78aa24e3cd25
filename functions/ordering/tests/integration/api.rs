//! The API Lambda's handler against moto, driven by the sample events in
//! `events/ordering/api-*.json` (the same files `sam local invoke -e` and `shop-local
//! invoke` take).

use crate::support::*;
use ordering::api::App;
use ordering::domain::{CancelOutcome, Order, OrderStatus};
use ordering::store::OrderStore;
use serde_json::{Value, json};
use shop_events::payment::PaymentFailureReason;
use shop_testing::api::{
    BadRequest, anonymous, assert_rejected_without_writes, call, page_shape, pages, with_claims,
    with_query,
};
use shop_testing::metrics::expected;
use shop_testing::sqs;

/// An order of `user_id` created at `seconds`, brought to `status` through the domain.
fn order(id: &str, user_id: &str, seconds: i64, status: OrderStatus) -> Order {
    let (mut order, _) = Order::submit(checkout(id, user_id), at(seconds)).unwrap();
    let later = at(seconds + 60);
    let steps: &[OrderStatus] = match status {
        OrderStatus::Submitted => &[],
        OrderStatus::StockConfirmed => &[OrderStatus::StockConfirmed],
        OrderStatus::Paid => &[OrderStatus::StockConfirmed, OrderStatus::Paid],
        OrderStatus::Cancelling => &[
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Cancelling,
        ],
        OrderStatus::Shipped => &[
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Shipped,
        ],
        OrderStatus::Delivered => &[
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ],
        OrderStatus::Cancelled => &[OrderStatus::StockConfirmed, OrderStatus::Cancelled],
    };
    for step in steps {
        match step {
            OrderStatus::StockConfirmed => drop(order.confirm_stock(later).unwrap()),
            OrderStatus::Paid => drop(order.mark_paid(later).unwrap()),
            OrderStatus::Cancelling => {
                assert!(matches!(
                    order.cancel_by_customer(later),
                    CancelOutcome::Requested(_)
                ))
            }
            OrderStatus::Shipped => drop(order.mark_shipped(later).unwrap()),
            OrderStatus::Delivered => drop(order.mark_delivered(later).unwrap()),
            OrderStatus::Cancelled => drop(
                order
                    .fail_payment(PaymentFailureReason::Declined, later)
                    .unwrap(),
            ),
            OrderStatus::Submitted => {}
        }
    }
    order
}

fn admin_claims() -> Value {
    json!({"sub": ADMIN, "cognito:groups": "[admin]", "token_use": "access"})
}

fn stranger_claims() -> Value {
    json!({"sub": STRANGER, "token_use": "access"})
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_owner_reads_the_order_in_the_public_shape_without_the_payment_token() {
    let ordering = Ordering::new().await;
    ordering
        .deliver(fixture("consumer-checkout-requested.json"))
        .await;

    let (status, body, response) = ordering.call(fixture("api-get-order.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let stored = ordering.order(ORDER_ID).await.unwrap();
    let sent =
        sqs::envelope(&fixture("consumer-checkout-requested.json"))["detail"]["data"].clone();
    assert_eq!(
        body,
        json!({
            "id": ORDER_ID,
            "userId": SHOPPER,
            "status": "submitted",
            "lines": sent["lines"],
            "total": sent["total"],
            "shippingAddress": sent["shippingAddress"],
            "statusHistory": [{"status": "submitted", "at": stored.created_at}],
            "createdAt": stored.created_at,
            "updatedAt": stored.updated_at,
        })
    );
    let text = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!text.contains(PAYMENT_TOKEN) && !text.contains("paymentToken"));
}

#[tokio::test]
async fn another_users_order_is_not_found_but_an_admin_reads_it() {
    let ordering = Ordering::new().await;
    ordering
        .deliver(fixture("consumer-checkout-requested.json"))
        .await;
    let before = ordering.order(ORDER_ID).await.unwrap();

    let (status, problem, response) = ordering
        .call(with_claims(
            fixture("api-get-order.json"),
            stranger_claims(),
        ))
        .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (_, unknown, _) = ordering
        .call(on_order(
            fixture("api-get-order.json"),
            "01JDMB4W00000000000000000Q",
        ))
        .await;
    assert_eq!(
        problem["title"], unknown["title"],
        "indistinguishable from an order that does not exist"
    );

    let (status, _, _) = ordering
        .call(with_claims(
            fixture("api-cancel-order.json"),
            stranger_claims(),
        ))
        .await;
    assert_eq!(status, 404);
    // Admins read orders; cancelling is the owner's alone.
    let (status, order, _) = ordering
        .call(with_claims(fixture("api-get-order.json"), admin_claims()))
        .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["userId"], SHOPPER);
    let (status, _, _) = ordering
        .call(with_claims(
            fixture("api-cancel-order.json"),
            admin_claims(),
        ))
        .await;
    assert_eq!(status, 404);

    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), before);
    assert_eq!(ordering.raised().await, ["OrderSubmitted"]);
}

#[tokio::test]
async fn the_list_holds_the_callers_orders_newest_first_page_by_page() {
    let ordering = Ordering::new().await;
    let theirs = ["01JDMB00000000000000000001", "01JDMB00000000000000000002"];
    let created = [
        ("A", 1_000),
        ("C", 3_000),
        ("E", 5_000),
        ("B", 2_000),
        ("D", 4_000),
    ];
    for (suffix, seconds) in created {
        ordering
            .seed(&order(
                &format!("ORDER-{suffix}"),
                SHOPPER,
                seconds,
                OrderStatus::Submitted,
            ))
            .await;
    }
    for (i, id) in theirs.iter().enumerate() {
        ordering
            .seed(&order(
                id,
                STRANGER,
                10_000 + i as i64,
                OrderStatus::Submitted,
            ))
            .await;
    }

    // The sample asks for two at a time.
    let next = |cursor: &str| {
        with_query(
            fixture("api-list-orders.json"),
            json!({"limit": "2", "cursor": cursor}),
        )
    };
    let first = fixture("api-list-orders.json");
    let pages = pages(async |e| ordering.call(e).await, first, next).await;
    let mut seen = Vec::new();
    for page in &pages {
        assert!(page["items"].as_array().unwrap().len() <= 2);
        assert!(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o.get("paymentToken").is_none())
        );
        seen.extend(ids(page));
    }
    assert_eq!(
        seen,
        ["ORDER-E", "ORDER-D", "ORDER-C", "ORDER-B", "ORDER-A"]
    );
    assert_eq!(pages.len(), 3);

    let (_, all, _) = ordering
        .call(with_query(
            fixture("api-list-orders.json"),
            json!({"limit": "100"}),
        ))
        .await;
    assert_eq!(ids(&all).len(), 5);
    assert!(
        all.get("nextCursor").is_none(),
        "no cursor on the last page"
    );

    let (_, strangers_page, _) = ordering
        .call(with_claims(
            fixture("api-list-orders.json"),
            stranger_claims(),
        ))
        .await;
    assert_eq!(ids(&strangers_page), [theirs[1], theirs[0]]);

    let (_, nobody, _) = ordering
        .call(with_claims(
            fixture("api-list-orders.json"),
            json!({"sub": "new-user"}),
        ))
        .await;
    assert_eq!(nobody, json!({"items": []}));
}

#[tokio::test]
async fn a_page_carries_a_cursor_only_when_more_orders_follow() {
    let ordering = Ordering::new().await;
    for (suffix, seconds) in [
        ("A", 1_000),
        ("B", 2_000),
        ("C", 3_000),
        ("D", 4_000),
        ("E", 5_000),
    ] {
        ordering
            .seed(&order(
                &format!("ORDER-{suffix}"),
                SHOPPER,
                seconds,
                OrderStatus::Submitted,
            ))
            .await;
    }
    // Another user's order sits in the same index, in a partition of its own.
    ordering
        .seed(&order("THEIRS", STRANGER, 9_000, OrderStatus::Submitted))
        .await;
    let listing = async |limit: &str| {
        let query = |cursor: Option<&str>| {
            let query = match cursor {
                Some(cursor) => json!({"limit": limit, "cursor": cursor}),
                None => json!({"limit": limit}),
            };
            with_query(fixture("api-list-orders.json"), query)
        };
        pages(
            async |e| ordering.call(e).await,
            query(None),
            |cursor| query(Some(cursor)),
        )
        .await
    };

    // Exactly `limit` orders: one page, and no cursor to an empty one after it.
    let exact = listing("5").await;
    assert_eq!(page_shape(&exact), [(5, false)]);

    // One more than `limit`: the cursor's page holds that one alone, with no cursor.
    let one_over = listing("4").await;
    assert_eq!(page_shape(&one_over), [(4, true), (1, false)]);
    assert_eq!(ids(&one_over[1]), ["ORDER-A"]);

    // Five, two at a time.
    let by_two = listing("2").await;
    assert_eq!(page_shape(&by_two), [(2, true), (2, true), (1, false)]);
    let seen: Vec<Vec<String>> = by_two.iter().map(ids).collect();
    assert_eq!(
        seen,
        [
            vec!["ORDER-E", "ORDER-D"],
            vec!["ORDER-C", "ORDER-B"],
            vec!["ORDER-A"]
        ]
    );
}

#[tokio::test]
async fn the_owner_cancels_once_with_202_and_again_gets_200() {
    let ordering = Ordering::new().await;
    ordering
        .deliver(fixture("consumer-checkout-requested.json"))
        .await;

    let (status, cancelled, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancellationReason"], "customer_request");
    let history = cancelled["statusHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["status"], "cancelled");
    assert_eq!(history[1]["reason"], "customer_request");
    assert!(cancelled.get("paymentToken").is_none());

    let (status, again, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 200);
    assert_eq!(again, cancelled);
    let (_, read, _) = ordering.call(fixture("api-get-order.json")).await;
    assert_eq!(read, cancelled);
    assert_eq!(
        ordering.counts.snapshot(),
        expected([
            ("OrdersPlaced", 1),
            ("OrdersCancelled{Reason=customer_request}", 1)
        ]),
        "counted once, by the request that cancelled"
    );

    let events = ordering.outbox().await;
    assert_eq!(events.len(), 2, "one OrderCancelled for two requests");
    assert_eq!(events[1]["detail-type"], "OrderCancelled");
    assert_eq!(
        events[1]["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER, "reason": "customer_request"})
    );
    assert_eq!(
        events[1]["detail"]["metadata"]["correlationId"],
        fixture("api-cancel-order.json")["requestContext"]["requestId"]
    );
}

#[tokio::test]
async fn cancelling_is_accepted_until_the_order_ships_and_a_conflict_after() {
    let ordering = Ordering::new().await;
    let cases = [
        ("SUBMITTED", OrderStatus::Submitted, 202),
        ("CONFIRMED", OrderStatus::StockConfirmed, 202),
        ("PAID", OrderStatus::Paid, 202),
        ("SHIPPED", OrderStatus::Shipped, 409),
        ("DELIVERED", OrderStatus::Delivered, 409),
        ("FAILED", OrderStatus::Cancelled, 200),
        ("ASKED", OrderStatus::Cancelling, 200),
    ];
    for (id, status, _) in cases {
        ordering.seed(&order(id, SHOPPER, 1_000, status)).await;
    }
    for (id, status, expected) in cases {
        let before = ordering.order(id).await.unwrap();
        let (got, body, response) = ordering
            .call(on_order(fixture("api-cancel-order.json"), id))
            .await;
        assert_eq!(got, expected, "{status}: {body}");
        let after = ordering.order(id).await.unwrap();
        match expected {
            202 => {
                // From paid on, shipping is asked and has the last word.
                let now = if status == OrderStatus::Paid {
                    OrderStatus::Cancelling
                } else {
                    OrderStatus::Cancelled
                };
                assert_eq!(after.status, now, "{status}");
                assert_eq!(body["status"], now.as_str());
                assert_eq!(after.version, before.version + 1);
            }
            409 => {
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                assert_eq!(body["status"], 409);
                assert!(
                    body["detail"].as_str().unwrap().contains(status.as_str()),
                    "{body}"
                );
                assert_eq!(after, before);
            }
            _ if status == OrderStatus::Cancelling => {
                assert_eq!(after, before, "asked once is enough");
                assert_eq!(body["status"], "cancelling");
            }
            _ => {
                assert_eq!(after, before);
                assert_eq!(
                    body["cancellationReason"], "payment_failed",
                    "the first reason stands"
                );
            }
        }
    }
    let mut raised = ordering.raised().await;
    raised.sort();
    assert_eq!(
        raised,
        [
            "OrderCancellationRequested",
            "OrderCancelled",
            "OrderCancelled"
        ]
    );
    assert_eq!(
        ordering.counts.snapshot(),
        expected([("OrdersCancelled{Reason=customer_request}", 2)]),
        "neither a refusal, a request nor an order cancelled already counts"
    );
}

#[tokio::test]
async fn bad_requests_get_the_right_problem_and_write_nothing() {
    let ordering = Ordering::new().await;
    ordering
        .deliver(fixture("consumer-checkout-requested.json"))
        .await;
    ordering
        .seed(&order("THEIRS-1", STRANGER, 1, OrderStatus::Submitted))
        .await;
    ordering
        .seed(&order("THEIRS-2", STRANGER, 2, OrderStatus::Submitted))
        .await;
    let (_, strangers_page, _) = ordering
        .call(with_query(
            with_claims(fixture("api-list-orders.json"), stranger_claims()),
            json!({"limit": "1"}),
        ))
        .await;
    let their_cursor = strangers_page["nextCursor"].as_str().unwrap().to_owned();
    let existing = ordering.order(ORDER_ID).await.unwrap();

    let list = fixture("api-list-orders.json");
    let cases: Vec<BadRequest> = vec![
        ("list without token", anonymous(list.clone()), 401, None),
        (
            "read without token",
            anonymous(fixture("api-get-order.json")),
            401,
            None,
        ),
        (
            "cancel without token",
            anonymous(fixture("api-cancel-order.json")),
            401,
            None,
        ),
        (
            "limit zero",
            with_query(list.clone(), json!({"limit": "0"})),
            422,
            Some("limit"),
        ),
        (
            "limit too large",
            with_query(list.clone(), json!({"limit": "101"})),
            422,
            Some("limit"),
        ),
        (
            "limit not a number",
            with_query(list.clone(), json!({"limit": "ten"})),
            422,
            Some("limit"),
        ),
        (
            "forged cursor",
            with_query(list.clone(), json!({"cursor": "bm90IGEgY3Vyc29y"})),
            422,
            Some("cursor"),
        ),
        (
            "another user's cursor",
            with_query(list.clone(), json!({"cursor": their_cursor})),
            422,
            Some("cursor"),
        ),
        (
            "a cursor with its key's types changed",
            with_query(
                list.clone(),
                json!({"cursor": shop_testing::api::retyped_cursor(&their_cursor)}),
            ),
            422,
            Some("cursor"),
        ),
        (
            "unknown order",
            on_order(fixture("api-get-order.json"), "01JDMB4W00000000000000000Q"),
            404,
            None,
        ),
        (
            "cancel unknown order",
            on_order(
                fixture("api-cancel-order.json"),
                "01JDMB4W00000000000000000Q",
            ),
            404,
            None,
        ),
        (
            "not an order id",
            on_order(fixture("api-get-order.json"), "..%2F..%2Fetc"),
            404,
            None,
        ),
        (
            "cancel another user's order",
            on_order(fixture("api-cancel-order.json"), "THEIRS-1"),
            404,
            None,
        ),
    ];
    let named =
        assert_rejected_without_writes(&ordering.table, async |e| ordering.call(e).await, cases)
            .await;
    assert!(
        named.iter().all(|fields| fields.len() <= 1),
        "a problem names only the field at fault: {named:?}"
    );
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), existing);
    assert_eq!(
        ordering.order("THEIRS-1").await.unwrap().status,
        OrderStatus::Submitted
    );
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let ordering = Ordering::new().await;
    let (status, body, _) = ordering.call(fixture("api-health.json")).await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "capability": "ordering"}))
    );
    assert!(
        fixture("api-health.json")["requestContext"]
            .get("authorizer")
            .is_none()
    );

    let missing = App {
        cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
        store: OrderStore::new(
            ordering.table.dynamodb.clone(),
            shop_testing::unique("no-such-table"),
        ),
        metrics: ordering.counts.metrics(),
    };
    let (status, _, _) = call(
        |request| ordering::api::handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}
