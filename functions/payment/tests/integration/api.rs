//! Payment's API Lambda's handler against moto, driven by the sample requests in
//! `events/payment/` (the same files `sam local invoke -e` and `shop-local invoke` take).

use crate::support::*;
use payment::api::{App, handle};
use payment::store::PaymentStore;
use serde_json::json;
use shop_testing::api::{
    BadRequest, anonymous, assert_problem, assert_rejected_without_writes, call, for_path_param,
};
use shop_testing::unique;

fn get_payment(order_id: &str) -> serde_json::Value {
    for_path_param(fixture("api-get-payment.json"), "orderId", order_id)
}

#[tokio::test]
async fn an_admin_reads_the_payment_of_an_order() {
    let payments = Payments::new().await;
    payments
        .apply(&sample_message("consumer-order-stock-confirmed.json"))
        .await;
    let (status, view, response) = payments.call(fixture("api-get-payment.json")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let payment = payments.payment(ORDER_ID).await.unwrap();
    assert_eq!(
        view,
        json!({
            "orderId": ORDER_ID,
            "status": "succeeded",
            "amount": {"amount": TOTAL, "currency": "USD"},
            "providerReference": payment.provider_reference,
            "createdAt": payment.created_at,
            "updatedAt": payment.updated_at,
        })
    );

    payments
        .apply(&sample_message("consumer-order-cancelled.json"))
        .await;
    let (status, view, _) = payments.call(fixture("api-get-payment.json")).await;
    assert_eq!((status, view["status"].clone()), (200, json!("refunded")));
    assert_eq!(view["providerReference"], json!(payment.provider_reference));
}

#[tokio::test]
async fn a_failed_payment_says_why() {
    let payments = Payments::new().await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 1200, DECLINED_TOKEN))
        .await;
    let (status, view, _) = payments.call(get_payment(&order)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "failed");
    assert_eq!(view["reason"], "declined");
    assert_eq!(view["amount"], json!({"amount": 1200, "currency": "USD"}));
    assert!(view.get("providerReference").is_none());
}

#[tokio::test]
async fn no_payment_and_a_cancelled_order_without_charge_are_404() {
    let payments = Payments::new().await;
    let (status, problem, _) = payments.call(fixture("api-get-payment.json")).await;
    assert_eq!(status, 404, "{problem}");

    let order = new_order_id();
    payments.apply(&order_cancelled(&order)).await;
    let answer = payments.call(get_payment(&order)).await;
    assert_problem("voided", &answer, 404, None);
    let detail = answer.1["detail"].as_str().unwrap();
    assert!(detail.contains("cancelled before any charge"), "{detail}");
}

#[tokio::test]
async fn only_admins_read_payments_and_bad_ids_are_never_looked_up() {
    let payments = Payments::new().await;
    payments
        .apply(&sample_message("consumer-order-stock-confirmed.json"))
        .await;
    let cases: Vec<BadRequest> = vec![
        (
            "not an admin",
            fixture("api-get-payment-non-admin.json"),
            403,
            None,
        ),
        (
            "no token",
            anonymous(fixture("api-get-payment.json")),
            401,
            None,
        ),
        ("not an order id", get_payment("../../etc"), 404, None),
        (
            "lower-case id",
            get_payment(&ORDER_ID.to_lowercase()),
            404,
            None,
        ),
    ];
    assert_rejected_without_writes(&payments.table, async |e| payments.call(e).await, cases).await;
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let payments = Payments::new().await;
    let (status, body, _) = payments.call(fixture("api-health.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok", "capability": "payment"}));
    assert!(
        fixture("api-health.json")["requestContext"]
            .get("authorizer")
            .is_none()
    );

    let missing = App {
        store: PaymentStore::new(payments.table.dynamodb.clone(), unique("no-such-table")),
    };
    let (status, _, _) = call(
        |request| handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}
