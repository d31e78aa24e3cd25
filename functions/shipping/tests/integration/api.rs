//! The API Lambda's handler against moto, driven by the sample events in
//! `events/shipping/api-*.json` (the same files `sam local invoke -e` and `shop-local
//! invoke` take). The samples tell one story: the sample order is paid, an admin looks it
//! up, dispatches it and marks it delivered.

use crate::support::*;
use serde_json::{Value, json};
use shipping::api::{App, handle};
use shipping::domain::{Shipment, ShipmentStatus};
use shipping::store::ShipmentStore;
use shop_testing::api::{
    BadRequest, anonymous, assert_rejected_without_writes, call, page_shape, pages, with_query,
};
use shop_testing::sqs;

fn order_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["orderId"].as_str().unwrap().to_owned())
        .collect()
}

fn listing(status: &str, limit: &str) -> Value {
    with_query(
        fixture("api-list-shipments.json"),
        json!({"status": status, "limit": limit}),
    )
}

#[tokio::test]
async fn the_sample_order_is_paid_dispatched_and_delivered() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let sent = sqs::envelope(&order_paid())["detail"]["data"].clone();
    let lines = json!([
        {"productId": "01JDKQ8M3ZP7G5V4X2N6R9T1CB", "name": "The Rust Programming Language", "quantity": 1},
        {"productId": "01JDKQ9T6WB2C4D6F8H0J2K4M6", "name": "Ferris mug", "quantity": 2},
    ]);

    let (status, pending, response) = shipping.call(fixture("api-get-shipment.json")).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let created = shipping.shipment(ORDER_ID).await.unwrap().created_at;
    assert_eq!(
        pending,
        json!({
            "orderId": ORDER_ID,
            "status": "pending",
            "shippingAddress": sent["shippingAddress"],
            "lines": lines,
            "statusHistory": [{"status": "pending", "at": created}],
            "createdAt": created,
            "updatedAt": created,
        })
    );
    let (status, work, _) = shipping.call(fixture("api-list-shipments.json")).await;
    assert_eq!((status, work), (200, json!({"items": [pending]})));

    let (status, dispatched, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!(status, 200, "{dispatched}");
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["lines"], lines);
    let history = dispatched["statusHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["status"], "dispatched");
    assert_eq!(dispatched["updatedAt"], history[1]["at"]);
    let events = shipping.outbox_of("ShipmentDispatched").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["source"], "shop.shipping");
    assert_eq!(
        events[0]["detail"]["data"],
        json!({"orderId": ORDER_ID, "lines": [
            {"productId": "01JDKQ8M3ZP7G5V4X2N6R9T1CB", "quantity": 1},
            {"productId": "01JDKQ9T6WB2C4D6F8H0J2K4M6", "quantity": 2},
        ]})
    );
    assert_eq!(
        events[0]["detail"]["metadata"]["correlationId"],
        fixture("api-dispatch.json")["requestContext"]["requestId"]
    );
    let (_, work, _) = shipping.call(fixture("api-list-shipments.json")).await;
    assert_eq!(work, json!({"items": []}), "no longer pending");

    let (status, delivered, _) = shipping.call(fixture("api-deliver.json")).await;
    assert_eq!(status, 200, "{delivered}");
    assert_eq!(delivered["status"], "delivered");
    let (_, read, _) = shipping.call(fixture("api-get-shipment.json")).await;
    assert_eq!(read, delivered);
    let statuses: Vec<&Value> = read["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["status"])
        .collect();
    assert_eq!(statuses, ["pending", "dispatched", "delivered"]);
    let (_, done, _) = shipping.call(listing("delivered", "20")).await;
    assert_eq!(done, json!({"items": [delivered]}));

    let events = shipping.outbox_of("ShipmentDelivered").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["data"], json!({"orderId": ORDER_ID}));
    assert_eq!(
        shipping.raised().await,
        ["ShipmentDispatched", "ShipmentDelivered"]
    );
}

#[tokio::test]
async fn a_change_the_status_does_not_allow_is_a_409_naming_the_status_and_writes_nothing() {
    let shipping = Shipping::new().await;
    let cases = [
        (ShipmentStatus::Pending, "api-deliver.json"),
        (ShipmentStatus::Dispatched, "api-dispatch.json"),
        (ShipmentStatus::Delivered, "api-dispatch.json"),
        (ShipmentStatus::Delivered, "api-deliver.json"),
        (ShipmentStatus::Cancelled, "api-dispatch.json"),
        (ShipmentStatus::Cancelled, "api-deliver.json"),
    ];
    for (status, request) in cases {
        let id = new_order_id();
        let mut shipment = prepared(&id, 1_000);
        match status {
            ShipmentStatus::Pending => {}
            ShipmentStatus::Dispatched => drop(shipment.dispatch(at(2_000)).unwrap()),
            ShipmentStatus::Delivered => {
                shipment.dispatch(at(2_000)).unwrap();
                shipment.deliver(at(3_000)).unwrap();
            }
            ShipmentStatus::Cancelled => shipment.cancel(at(2_000)).unwrap(),
        }
        shipping.seed(&shipment).await;
        let before = shipping.table.item_count().await;

        let (got, problem, response) = shipping.call(on_order(fixture(request), &id)).await;
        assert_eq!(got, 409, "{status} {request}: {problem}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(problem["status"], 409);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.ends_with(&format!("is {status}")),
            "{status} {request}: {detail}"
        );
        assert_eq!(shipping.shipment(&id).await.unwrap(), shipment);
        assert_eq!(shipping.table.item_count().await, before);
    }
    assert!(shipping.raised().await.is_empty());
}

#[tokio::test]
async fn dispatching_twice_dispatches_once() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let (first, _, _) = shipping.call(fixture("api-dispatch.json")).await;
    let (second, problem, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!((first, second), (200, 409), "{problem}");
    assert_eq!(
        problem["detail"],
        "cannot dispatch a shipment that is dispatched"
    );
    assert_eq!(shipping.raised().await, ["ShipmentDispatched"]);
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap().version, 2);
}

#[tokio::test]
async fn a_dispatch_racing_a_cancellation_loses_neither_change_and_leaves_one_story() {
    for _ in 0..3 {
        let shipping = Shipping::new().await;
        shipping.apply(&order_paid()).await;
        let ((status, body, _), failures) = tokio::join!(
            shipping.call(fixture("api-dispatch.json")),
            shipping.deliver(order_cancelled())
        );
        assert!(failures.is_empty(), "{failures:?}");
        let shipment = shipping.shipment(ORDER_ID).await.unwrap();
        assert_eq!(shipment.version as usize, shipment.status_history.len());
        match status {
            // The dispatch won: the parcel left, the cancellation came too late.
            200 => {
                assert_eq!(shipment.status, ShipmentStatus::Dispatched);
                assert_eq!(shipping.raised().await, ["ShipmentDispatched"]);
            }
            // The cancellation won: nothing leaves, nothing is announced.
            409 => {
                assert_eq!(shipment.status, ShipmentStatus::Cancelled, "{body}");
                assert!(shipping.raised().await.is_empty());
            }
            other => panic!("{other}: {body}"),
        }
    }
}

/// DESIGN §3 step 8: a customer's cancellation of a paid order and an admin's dispatch,
/// at the same moment, many times over. Shipping has the last word, so exactly one of
/// them wins, and its answer to the request says which: the parcel never both leaves and
/// is confirmed cancelled.
#[tokio::test]
async fn a_dispatch_racing_a_cancellation_request_leaves_exactly_one_answer() {
    let shipping = Shipping::new().await;
    let (mut dispatched, mut cancelled) = (0, 0);
    for _ in 0..12 {
        let order = new_order_id();
        shipping.apply(&for_order(order_paid(), &order)).await;
        let ((status, body, _), failures) = tokio::join!(
            shipping.call(on_order(fixture("api-dispatch.json"), &order)),
            shipping.deliver(for_order(cancellation_requested(), &order))
        );
        assert!(failures.is_empty(), "{failures:?}");
        let shipment = shipping.shipment(&order).await.unwrap();
        let answers: Vec<String> = shipping
            .table
            .outbox()
            .await
            .iter()
            .filter(|e| e["detail"]["data"]["orderId"] == order.as_str())
            .map(|e| e["detail-type"].as_str().unwrap().to_owned())
            .collect();
        match status {
            200 => {
                dispatched += 1;
                assert_eq!(shipment.status, ShipmentStatus::Dispatched);
                assert_eq!(
                    answers,
                    ["ShipmentDispatched", "ShipmentCancellationRefused"],
                    "the dispatch won; the request is refused"
                );
            }
            409 => {
                cancelled += 1;
                assert_eq!(shipment.status, ShipmentStatus::Cancelled, "{body}");
                assert_eq!(answers, ["ShipmentCancelled"], "nothing left");
            }
            other => panic!("{other}: {body}"),
        }
    }
    println!("{dispatched} dispatched first, {cancelled} cancelled first");
}

#[tokio::test]
async fn a_tombstone_reads_as_a_cancelled_shipment_with_nothing_to_send() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_cancelled()).await;
    let (status, body, _) = shipping.call(fixture("api-get-shipment.json")).await;
    assert_eq!(status, 200, "{body}");
    let at = shipping.shipment(ORDER_ID).await.unwrap().created_at;
    assert_eq!(
        body,
        json!({
            "orderId": ORDER_ID,
            "status": "cancelled",
            "shippingAddress": null,
            "lines": [],
            "statusHistory": [{"status": "cancelled", "at": at}],
            "createdAt": at,
            "updatedAt": at,
        })
    );
    assert!(body.get("expiresAt").is_none() && body.get("version").is_none());
    let (_, cancelled, _) = shipping.call(listing("cancelled", "20")).await;
    assert_eq!(
        cancelled,
        json!({"items": []}),
        "a tombstone is no shipment"
    );
}

#[tokio::test]
async fn the_work_list_holds_one_status_most_recently_changed_first_page_by_page() {
    let shipping = Shipping::new().await;
    let ids: Vec<String> = (0..5).map(|_| new_order_id()).collect();
    // Prepared out of order in time, so the list's order is the index's, not the writes'.
    for (id, seconds) in ids.iter().zip([3_000, 1_000, 5_000, 2_000, 4_000]) {
        shipping.seed(&prepared(id, seconds)).await;
    }
    let mut dispatched: Shipment = prepared(&new_order_id(), 9_000);
    dispatched.dispatch(at(9_500)).unwrap();
    shipping.seed(&dispatched).await;

    let newest_first: Vec<String> = [2, 4, 0, 3, 1].map(|n| ids[n].clone()).to_vec();
    let page_of = |cursor: Option<&str>, limit: &str| {
        let query = match cursor {
            Some(cursor) => json!({"status": "pending", "limit": limit, "cursor": cursor}),
            None => json!({"status": "pending", "limit": limit}),
        };
        with_query(fixture("api-list-shipments.json"), query)
    };
    let walk = async |limit: &str| {
        pages(
            async |e| shipping.call(e).await,
            page_of(None, limit),
            |cursor| page_of(Some(cursor), limit),
        )
        .await
    };

    let by_two = walk("2").await;
    assert_eq!(page_shape(&by_two), [(2, true), (2, true), (1, false)]);
    let seen: Vec<String> = by_two.iter().flat_map(order_ids).collect();
    assert_eq!(seen, newest_first);
    assert_eq!(page_shape(&walk("5").await), [(5, false)]);
    assert_eq!(page_shape(&walk("4").await), [(4, true), (1, false)]);

    // The sample asks for pending, two at a time.
    let (status, sample, _) = shipping.call(fixture("api-list-shipments.json")).await;
    assert_eq!(status, 200);
    assert_eq!(order_ids(&sample), newest_first[..2]);

    let (_, others, _) = shipping.call(listing("dispatched", "100")).await;
    assert_eq!(order_ids(&others), [dispatched.order_id.clone()]);
    assert!(others.get("nextCursor").is_none());
}

/// The status index is written in pieces (so one status's partition is not one hot
/// partition); the work list still reads as one list, newest first, page by page with no
/// shipment missed or shown twice, and an item written before the pieces existed (index
/// key `STATUS#pending`, piece 0's spelling) is listed among them without a backfill.
#[tokio::test]
async fn the_work_list_merges_every_piece_of_the_status_index_page_by_page() {
    let shipping = Shipping::new().await;
    let ids: Vec<String> = (0..40).map(|_| new_order_id()).collect();
    // Times in a scrambled order: 17 is prime to 40, so each second is used once.
    for (n, id) in ids.iter().enumerate() {
        shipping
            .seed(&prepared(id, 10_000 + (n as i64 * 17) % 40))
            .await;
    }
    let stored: Vec<Value> = shipping
        .table
        .items("SHIPMENT#")
        .await
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect();
    let pieces: std::collections::BTreeSet<&str> = stored
        .iter()
        .map(|item| item["gsi1pk"].as_str().unwrap())
        .collect();
    assert!(pieces.len() >= 4, "40 shipments in {pieces:?}");

    // One item as it was written before: its index key without a piece.
    let legacy = stored
        .iter()
        .find(|item| item["gsi1pk"] != "STATUS#pending")
        .unwrap();
    let mut old_style: Value = legacy.clone();
    old_style["gsi1pk"] = json!("STATUS#pending");
    shipping
        .table
        .dynamodb
        .put_item()
        .table_name(&shipping.table.name)
        .set_item(Some(serde_dynamo::to_item(&old_style).unwrap()))
        .send()
        .await
        .unwrap();

    let mut newest_first: Vec<(i64, String)> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (10_000 + (n as i64 * 17) % 40, id.clone()))
        .collect();
    newest_first.sort_by(|a, b| b.cmp(a));
    let newest_first: Vec<String> = newest_first.into_iter().map(|(_, id)| id).collect();

    let page_of = |cursor: Option<&str>| {
        let query = match cursor {
            Some(cursor) => json!({"status": "pending", "limit": "7", "cursor": cursor}),
            None => json!({"status": "pending", "limit": "7"}),
        };
        with_query(fixture("api-list-shipments.json"), query)
    };
    let walked = pages(
        async |e| shipping.call(e).await,
        page_of(None),
        |cursor| page_of(Some(cursor)),
    )
    .await;
    assert_eq!(
        page_shape(&walked),
        [
            (7, true),
            (7, true),
            (7, true),
            (7, true),
            (7, true),
            (5, false)
        ]
    );
    let seen: Vec<String> = walked.iter().flat_map(order_ids).collect();
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn bad_requests_get_the_right_problem_and_write_nothing() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    for _ in 0..2 {
        shipping.seed(&prepared(&new_order_id(), 1_000)).await;
    }
    let (_, first_page, _) = shipping.call(listing("pending", "1")).await;
    let pending_cursor = first_page["nextCursor"].as_str().unwrap().to_owned();
    let before = shipping.shipment(ORDER_ID).await.unwrap();

    let list = fixture("api-list-shipments.json");
    let unknown = "01JDMB4W00000000000000000Q";
    let cases: Vec<BadRequest> = vec![
        (
            "no status",
            with_query(list.clone(), json!({"limit": "2"})),
            422,
            Some("status"),
        ),
        (
            "empty status",
            with_query(list.clone(), json!({"status": ""})),
            422,
            Some("status"),
        ),
        (
            "unknown status",
            with_query(list.clone(), json!({"status": "shipped"})),
            422,
            Some("status"),
        ),
        ("limit zero", listing("pending", "0"), 422, Some("limit")),
        (
            "limit too large",
            listing("pending", "101"),
            422,
            Some("limit"),
        ),
        (
            "forged cursor",
            with_query(
                list.clone(),
                json!({"status": "pending", "cursor": "bm90IGEgY3Vyc29y"}),
            ),
            422,
            Some("cursor"),
        ),
        (
            "another status's cursor",
            with_query(
                list.clone(),
                json!({"status": "dispatched", "cursor": pending_cursor}),
            ),
            422,
            Some("cursor"),
        ),
        (
            "unknown order",
            on_order(fixture("api-get-shipment.json"), unknown),
            404,
            None,
        ),
        (
            "dispatch unknown order",
            on_order(fixture("api-dispatch.json"), unknown),
            404,
            None,
        ),
        (
            "deliver unknown order",
            on_order(fixture("api-deliver.json"), unknown),
            404,
            None,
        ),
        (
            "dispatch what is no order id",
            on_order(fixture("api-dispatch.json"), "..%2F..%2Fetc"),
            404,
            None,
        ),
        (
            "an order id in lower case",
            on_order(fixture("api-get-shipment.json"), &ORDER_ID.to_lowercase()),
            404,
            None,
        ),
    ];
    let named =
        assert_rejected_without_writes(&shipping.table, async |e| shipping.call(e).await, cases)
            .await;
    assert!(
        named.iter().all(|fields| fields.len() <= 1),
        "a problem names only the field at fault: {named:?}"
    );
    let (_, problem, _) = shipping
        .call(with_query(list.clone(), json!({"status": "shipped"})))
        .await;
    assert_eq!(
        problem["errors"][0]["message"],
        "must be one of pending, dispatched, delivered, cancelled"
    );
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), before);
}

#[tokio::test]
async fn every_shipment_route_is_for_admins_only() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let before = shipping.shipment(ORDER_ID).await.unwrap();
    let routes = [
        "api-list-shipments.json",
        "api-get-shipment.json",
        "api-dispatch.json",
        "api-deliver.json",
    ];
    let mut cases: Vec<BadRequest> = Vec::new();
    for route in routes {
        cases.push((route, as_customer(fixture(route)), 403, None));
        cases.push((route, anonymous(fixture(route)), 401, None));
    }
    // Even the customer whose order it is.
    assert_eq!(
        as_customer(fixture("api-dispatch.json"))["requestContext"]["authorizer"]["jwt"]["claims"]
            ["sub"],
        before.user_id
    );
    assert_rejected_without_writes(&shipping.table, async |e| shipping.call(e).await, cases).await;
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), before);
    assert!(shipping.raised().await.is_empty());
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let shipping = Shipping::new().await;
    let (status, body, _) = shipping.call(fixture("api-health.json")).await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "capability": "shipping"}))
    );
    assert!(
        fixture("api-health.json")["requestContext"]
            .get("authorizer")
            .is_none(),
        "public"
    );

    let missing = App {
        cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
        store: ShipmentStore::new(
            shipping.table.dynamodb.clone(),
            shop_testing::unique("no-such-table"),
        ),
    };
    let (status, _, _) = call(
        |request| handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}
