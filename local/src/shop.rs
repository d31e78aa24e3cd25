//! The shop driven as a front end drives it, through the API: what the end-to-end tests
//! and the bench both need (products with stock, the checkout's body).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::ApiClient;

pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
           "postalCode": "SW1Y 4JH", "country": "GB"})
}

pub fn checkout_body(payment_token: &str) -> Value {
    json!({"shippingAddress": address(), "paymentToken": payment_token})
}

/// A product with `stock` units, once basket knows it (its ProductCreated has arrived,
/// which may take a moment: `within` bounds the wait). `probe` is a shopper's token whose
/// basket is used to ask, and left as it was.
pub async fn product_with_stock(
    api: &ApiClient,
    admin: &str,
    probe: &str,
    product: &Value,
    stock: u32,
    within: Duration,
) -> Result<String, String> {
    let (status, created) = api
        .call("POST", "/products", Some(admin), Some(product), &[])
        .await?;
    let id = match (status, created["id"].as_str()) {
        (201, Some(id)) => id.to_owned(),
        _ => return Err(format!("POST /products answered {status}: {created}")),
    };
    let (status, answer) = api
        .call(
            "PUT",
            &format!("/inventory/{id}"),
            Some(admin),
            Some(&json!({"available": stock})),
            &[],
        )
        .await?;
    if status != 200 {
        return Err(format!("PUT /inventory/{id} answered {status}: {answer}"));
    }
    let path = format!("/basket/items/{id}");
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(25);
    loop {
        let (status, _) = api
            .call(
                "PUT",
                &path,
                Some(probe),
                Some(&json!({"quantity": 1})),
                &[],
            )
            .await?;
        api.call("DELETE", &path, Some(probe), None, &[]).await?;
        if status == 200 {
            return Ok(id);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "basket did not learn product {id} within {}s",
                within.as_secs()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(100));
    }
}
