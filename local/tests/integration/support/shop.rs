//! A client of the whole shop, as a front end would be: products and stock as an admin,
//! baskets, checkouts and orders as shoppers, payments and shipments as an admin. Every
//! call goes through the local API Gateway.

use serde_json::{Value, json};
// Re-exported for the tests: not every test binary uses both.
#[allow(unused_imports)]
pub use shop_local::shop::{address, checkout_body};

use super::{Runner, STARTUP_LIMIT, eventually};

/// Where an order ends without anyone's help (DESIGN §3): paid or cancelled; shipped and
/// delivered only follow an admin's step.
pub fn is_settled(status: &str) -> bool {
    matches!(status, "paid" | "cancelled" | "shipped" | "delivered")
}

pub struct Shop {
    pub stack: Runner,
    pub admin: String,
}

impl Shop {
    pub fn start(extra: &[&str]) -> Self {
        let stack = Runner::start(extra);
        let admin = stack.token("shop-admin", true);
        Self { stack, admin }
    }

    /// A product with `stock` units, known to basket (its ProductCreated has arrived).
    pub async fn product_with_stock(&self, name: &str, price: i64, stock: u32) -> String {
        let product = json!({"name": name, "category": "e2e",
                             "price": {"amount": price, "currency": "USD"}});
        // The basket learns products from catalog's events: a probe basket retries as a
        // client would, then leaves nothing behind.
        let probe = self.stack.token("catalog-probe", false);
        shop_local::shop::product_with_stock(
            &self.stack.api,
            &self.admin,
            &probe,
            &product,
            stock,
            STARTUP_LIMIT,
        )
        .await
        .unwrap()
    }

    pub async fn add(&self, shopper: &str, product: &str, quantity: u32) {
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

    pub async fn checkout_with(&self, shopper: &str, key: &str, payment_token: &str) -> String {
        let (status, answer) = self
            .stack
            .call_with_headers(
                "POST",
                "/basket/checkout",
                Some(shopper),
                Some(checkout_body(payment_token)),
                &[("idempotency-key", key)],
            )
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["orderId"].as_str().unwrap().to_owned()
    }

    pub async fn checkout(&self, shopper: &str, key: &str) -> String {
        self.checkout_with(shopper, key, "tok_visa").await
    }

    pub async fn order(&self, shopper: &str, order: &str) -> (u16, Value) {
        self.stack
            .call_retrying("GET", &format!("/orders/{order}"), Some(shopper), None)
            .await
    }

    /// The order once `done` says so (polled: the saga is asynchronous).
    pub async fn order_when(
        &self,
        shopper: &str,
        order: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, async || {
            let (status, order) = self.order(shopper, order).await;
            (status == 200 && done(&order)).then_some(order)
        })
        .await
    }

    /// The order once it is paid or cancelled (or further along).
    pub async fn settled(&self, shopper: &str, order: &str) -> Value {
        self.order_when(shopper, order, "the order settles", |o| {
            o["status"].as_str().is_some_and(is_settled)
        })
        .await
    }

    pub async fn cancel(&self, shopper: &str, order: &str) -> (u16, Value) {
        self.stack
            .call(
                "POST",
                &format!("/orders/{order}/cancel"),
                Some(shopper),
                None,
            )
            .await
    }

    pub async fn stock(&self, product: &str) -> Value {
        let (status, stock) = self
            .stack
            .call_retrying(
                "GET",
                &format!("/inventory/{product}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{stock}");
        stock
    }

    pub async fn payment(&self, order: &str) -> (u16, Value) {
        self.stack
            .call_retrying(
                "GET",
                &format!("/payments/{order}"),
                Some(&self.admin),
                None,
            )
            .await
    }

    pub async fn shipment(&self, order: &str) -> (u16, Value) {
        self.stack
            .call_retrying(
                "GET",
                &format!("/shipments/{order}"),
                Some(&self.admin),
                None,
            )
            .await
    }

    /// The shipment once shipping has prepared it (OrderPaid has arrived).
    pub async fn pending_shipment(&self, order: &str) -> Value {
        eventually("the shipment is prepared", async || {
            let (status, shipment) = self.shipment(order).await;
            (status == 200 && shipment["status"] == "pending").then_some(shipment)
        })
        .await
    }

    /// An admin's step on a shipment: `dispatch` or `deliver`.
    pub async fn shipment_step(&self, order: &str, step: &str) -> (u16, Value) {
        self.stack
            .call(
                "POST",
                &format!("/shipments/{order}/{step}"),
                Some(&self.admin),
                None,
            )
            .await
    }
}

pub fn history(order: &Value) -> Vec<String> {
    order["statusHistory"]
        .as_array()
        .map(|changes| {
            changes
                .iter()
                .filter_map(|change| change["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
