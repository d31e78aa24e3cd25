//! The census: what each of the mix's actions costs in AWS calls, counted by the meter,
//! so that the cost per order can be priced. The functions are restarted with their AWS
//! endpoint pointing at the meter, warmed up (init calls are not an action's), and each
//! action is repeated and waited out (the saga a checkout sets off included) until the
//! stack is quiet; then everything is put back.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::load::{Action, Catalog, MIX};
use super::meter::{Counts, Meter};
use super::{Activity, wait_quiet};
use crate::client::ApiClient;
use crate::shop::checkout_body;
use crate::stack::Stack;

/// What one action costs, on average over the census's repetitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionCost {
    pub calls: BTreeMap<String, f64>,
    pub read_units: f64,
    pub write_units: f64,
    pub put_events_entries: f64,
    /// Messages the consumers' queues delivered.
    pub queue_messages: f64,
}

impl ActionCost {
    fn add(&mut self, counts: &Counts, queue_messages: u64, weight: f64) {
        for (operation, count) in &counts.calls {
            *self.calls.entry(operation.clone()).or_default() += *count as f64 * weight;
        }
        self.read_units += counts.read_units * weight;
        self.write_units += counts.write_units * weight;
        self.put_events_entries += counts.put_events_entries as f64 * weight;
        self.queue_messages += queue_messages as f64 * weight;
    }
}

pub struct Census {
    pub costs: BTreeMap<Action, ActionCost>,
    /// Requests of the census that did not answer as expected.
    pub errors: u64,
}

const ENDPOINT: &str = "AWS_ENDPOINT_URL";

pub async fn run(
    stack: &Stack,
    api: &ApiClient,
    catalog: &Catalog,
    repetitions: usize,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<Census, String> {
    let meter = Meter::start(&stack.moto_endpoint, &stack.topology)
        .await
        .map_err(|e| format!("meter: {e}"))?;
    wait_quiet(stack, None).await;
    for function in stack.functions.values() {
        function.override_environment(ENDPOINT, Some(meter.url.clone()));
        function.retire_idle().await;
    }
    let token = stack
        .issuer
        .token("bench-census", false, Duration::from_secs(3600))
        .map_err(|e| format!("census token: {e}"))?;
    let mut census = Census {
        costs: BTreeMap::new(),
        errors: 0,
    };
    let product = catalog
        .products
        .first()
        .cloned()
        .ok_or("the census needs a product")?;
    let act = async |action: Action, census: &mut Census| {
        let (method, path, body, key) = match action {
            Action::Browse => ("GET", "/products".to_owned(), None, None),
            Action::ViewProduct => ("GET", format!("/products/{product}"), None, None),
            Action::AddToBasket => (
                "PUT",
                format!("/basket/items/{product}"),
                Some(json!({"quantity": 1})),
                None,
            ),
            Action::ViewBasket => ("GET", "/basket".to_owned(), None, None),
            Action::Checkout => (
                "POST",
                "/basket/checkout".to_owned(),
                Some(checkout_body("tok_visa")),
                Some(ulid::Ulid::generate().to_string()),
            ),
        };
        let headers: Vec<(&str, &str)> = key
            .as_deref()
            .map(|key| vec![("idempotency-key", key)])
            .unwrap_or_default();
        let expected = if action == Action::Checkout { 202 } else { 200 };
        match api
            .call(method, &path, Some(&token), body.as_ref(), &headers)
            .await
        {
            Ok((status, _)) if status == expected => {}
            Ok((status, answer)) => {
                census.errors += 1;
                log(&format!("census: {method} {path}: {status} {answer}"));
            }
            Err(error) => {
                census.errors += 1;
                log(&format!("census: {error}"));
            }
        }
    };
    // Warm-up: every process the actions need starts now, outside the counts.
    for (action, _) in MIX {
        if action == Action::Checkout {
            act(Action::AddToBasket, &mut census).await;
        }
        act(action, &mut census).await;
    }
    wait_quiet(stack, Some(&meter)).await;

    let weight = 1.0 / repetitions.max(1) as f64;
    for (action, _) in MIX {
        let mut cost = ActionCost::default();
        for _ in 0..repetitions.max(1) {
            if action == Action::Checkout {
                // A checkout needs a line to order; adding it is an action of its own.
                act(Action::AddToBasket, &mut census).await;
                wait_quiet(stack, Some(&meter)).await;
            }
            let before = Activity::now(stack, Some(&meter));
            act(action, &mut census).await;
            wait_quiet(stack, Some(&meter)).await;
            let after = Activity::now(stack, Some(&meter));
            cost.add(
                &after.counts.since(&before.counts),
                after.queue_messages - before.queue_messages,
                weight,
            );
        }
        census.costs.insert(action, cost);
    }

    for function in stack.functions.values() {
        function.override_environment(ENDPOINT, None);
        function.retire_idle().await;
    }
    Ok(census)
}
