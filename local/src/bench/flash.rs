//! The flash-sale phase: `orders` shoppers buy one unit each of one product that has
//! `units`, all at once, once per shard count. What it checks is the stock's truth under
//! the worst contention the shop meets: none oversold, the product's counters agree with
//! the orders (every paid order holds one reserved unit, every other unit is available
//! again), nothing lands in a dead-letter queue, and whether exactly the stock was sold
//! (as many orders paid as there were units, the rest cancelled `out_of_stock`; an order
//! cancelled for another reason, a payment provider overwhelmed say, gives its unit back
//! and leaves it unsold). What it measures is the time for every order to settle and how
//! many attempts inventory lost to a concurrent writer and made again.
//!
//! moto runs one request at a time, so it never reports DynamoDB's TransactionConflict: a
//! lost race here is a guard (`available >= :quantity`) that failed because another order
//! took the units between the read and the commit. The figures say what sharding costs
//! and that it is correct; how much it raises one product's rate only DynamoDB can show
//! (BENCHMARKS.md, the capacity plan).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use super::emf::MetricTally;
use super::report::round;
use crate::client::ApiClient;
use crate::stack::Stack;

/// How long the phase waits for every order to be paid or cancelled. On a 2-core machine
/// moto settles about a hundred such orders in two minutes and two hundred in over four.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);
/// Checkouts in flight at once: enough that inventory's queue fills faster than its
/// consumer drains it, which is the flash sale's shape; more would measure the emulator
/// (as in the live phase).
const CHECKOUTS_AT_ONCE: usize = 16;
/// Baskets filled at once before the sale opens: not what is measured.
const BASKETS_AT_ONCE: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashFigures {
    pub shards: u32,
    pub units: u64,
    /// Checkouts accepted (202).
    pub orders: u64,
    /// Shoppers whose basket or checkout the API refused: 0 unless something broke.
    pub refused: u64,
    pub paid: u64,
    pub cancelled_out_of_stock: u64,
    /// Cancelled for any other reason (a declined card would be one): 0 with the test card.
    pub cancelled_otherwise: u64,
    /// Neither paid nor cancelled within the limit.
    pub unsettled: u64,
    /// The product's counters afterwards, as `GET /inventory/{productId}` sums them.
    pub available: u64,
    pub reserved: u64,
    pub shipped: u64,
    /// Paid orders beyond the units there were.
    pub oversold: u64,
    /// Whether the counters agree with the orders: no unit made or lost
    /// (`available + reserved + shipped == units`), every paid order holds its unit
    /// (`reserved + shipped >= paid`), and once every order has settled no other order
    /// holds one (`reserved == paid`).
    pub stock_agrees: bool,
    /// Whether exactly the stock was sold: `paid == min(orders, units)`.
    pub sold_exactly: bool,
    /// Messages that reached a dead-letter queue during the phase.
    pub dead_letters: u64,
    /// From the first checkout sent to the last order paid or cancelled (its event's
    /// `occurredAt`).
    pub settle_seconds: f64,
    /// Inventory's attempts lost to a concurrent writer and made again (its EMF
    /// `ConflictsRetried`), all orders together, and per order.
    pub conflicts_retried: u64,
    pub conflicts_per_order: f64,
}

/// Runs the sale once for each shard count.
pub async fn run(
    stack: &Stack,
    api: &ApiClient,
    tally: &MetricTally,
    orders: usize,
    units: u32,
    shard_counts: &[u32],
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<FlashFigures>, String> {
    let mut figures = Vec::new();
    for &shards in shard_counts {
        super::wait_quiet(stack, None).await;
        match sale(stack, api, tally, orders, units, shards).await {
            Ok(sale) => {
                log(&format!("flash sale: {sale:?}"));
                figures.push(sale);
            }
            // A stack the sale could not even set up (its admin calls failing, say) is a
            // finding for the report, not a reason to lose the other phases' figures.
            Err(error) => {
                log(&format!(
                    "flash sale with {shards} shards could not run: {error}"
                ));
                figures.push(FlashFigures {
                    shards,
                    units: u64::from(units),
                    refused: orders as u64,
                    ..FlashFigures::default()
                });
            }
        }
    }
    Ok(figures)
}

async fn sale(
    stack: &Stack,
    api: &ApiClient,
    tally: &MetricTally,
    orders: usize,
    units: u32,
    shards: u32,
) -> Result<FlashFigures, String> {
    let token = |user: String| {
        stack
            .issuer
            .token(&user, false, Duration::from_secs(3600))
            .map_err(|e| format!("token: {e}"))
    };
    let admin = stack
        .issuer
        .token("bench-admin", true, Duration::from_secs(3600))
        .map_err(|e| format!("token: {e}"))?;
    let product = crate::shop::product_with_stock(
        api,
        &admin,
        &token(format!("bench-flash-probe-{shards}"))?,
        &json!({"name": format!("Flash Lamp ({shards} shards)"), "category": "flash",
                "description": "The one product everybody wants at once.",
                "price": {"amount": 2500, "currency": "USD"}}),
        units,
        Duration::from_secs(60),
    )
    .await?;
    let stock_path = format!("/inventory/{product}");
    let (status, answer) = api
        .call(
            "PUT",
            &stock_path,
            Some(&admin),
            Some(&json!({"available": units, "shards": shards})),
            &[],
        )
        .await?;
    if status != 200 {
        return Err(format!("PUT {stock_path} answered {status}: {answer}"));
    }

    let shoppers = (0..orders)
        .map(|n| token(format!("bench-flash-{shards}-{n}")))
        .collect::<Result<Vec<_>, _>>()?;
    let baskets = Arc::new(Semaphore::new(BASKETS_AT_ONCE));
    let mut filling = Vec::new();
    for shopper in &shoppers {
        let (api, shopper, product, baskets) = (
            api.clone(),
            shopper.clone(),
            product.clone(),
            baskets.clone(),
        );
        filling.push(tokio::spawn(async move {
            let _permit = baskets.acquire().await.ok()?;
            let path = format!("/basket/items/{product}");
            let (status, _) = api
                .call(
                    "PUT",
                    &path,
                    Some(&shopper),
                    Some(&json!({"quantity": 1})),
                    &[],
                )
                .await
                .ok()?;
            (status == 200).then_some(shopper)
        }));
    }
    let mut ready = Vec::new();
    for filled in filling {
        if let Ok(Some(shopper)) = filled.await {
            ready.push(shopper);
        }
    }
    let mut figures = FlashFigures {
        shards,
        units: u64::from(units),
        refused: (orders - ready.len()) as u64,
        ..FlashFigures::default()
    };

    let dead_letters_before = dead_letters(stack).await?;
    let conflicts_before = tally.total("inventory", shop_platform::consumer::CONFLICTS_RETRIED);
    let watch = super::SagaWatch::start(stack.events.subscribe());
    let checkouts = Arc::new(Semaphore::new(CHECKOUTS_AT_ONCE));
    let opened = SystemTime::now();
    let mut placing = Vec::new();
    for (n, shopper) in ready.into_iter().enumerate() {
        let (api, checkouts) = (api.clone(), checkouts.clone());
        placing.push(tokio::spawn(async move {
            let _permit = checkouts.acquire().await.ok()?;
            let key = format!("bench-flash-{n:06}");
            let (status, answer) = api
                .call(
                    "POST",
                    "/basket/checkout",
                    Some(&shopper),
                    Some(&crate::shop::checkout_body("tok_visa")),
                    &[("idempotency-key", key.as_str())],
                )
                .await
                .ok()?;
            (status == 202).then(|| answer["orderId"].as_str().map(str::to_owned))?
        }));
    }
    let mut placed = Vec::new();
    for order in placing {
        match order.await {
            Ok(Some(order)) => placed.push(order),
            _ => figures.refused += 1,
        }
    }
    figures.orders = placed.len() as u64;
    let placed_ids: Vec<&str> = placed.iter().map(String::as_str).collect();
    watch.wait_for(&placed_ids, SETTLE_LIMIT).await;
    watch.stop();
    let mut last = Duration::ZERO;
    {
        let seen = watch.lock();
        for order in &placed {
            let fate = match (seen.paid.get(order), seen.cancelled.get(order)) {
                (Some(at), _) => Some(("paid", at)),
                (None, Some((reason, at))) => Some((reason.as_str(), at)),
                (None, None) => None,
            };
            match fate {
                Some((fate, at)) => {
                    last = last.max(at.duration_since(opened).unwrap_or(Duration::ZERO));
                    match fate {
                        "paid" => figures.paid += 1,
                        "out_of_stock" => figures.cancelled_out_of_stock += 1,
                        _ => figures.cancelled_otherwise += 1,
                    }
                }
                None => figures.unsettled += 1,
            }
        }
    }
    figures.settle_seconds = round(last.as_secs_f64());

    super::wait_quiet(stack, None).await;
    let (status, levels) = api
        .call("GET", &stock_path, Some(&admin), None, &[])
        .await?;
    if status != 200 {
        return Err(format!("GET {stock_path} answered {status}: {levels}"));
    }
    let level = |name: &str| levels[name].as_u64().unwrap_or(u64::MAX);
    (figures.available, figures.reserved, figures.shipped) =
        (level("available"), level("reserved"), level("shipped"));
    figures.oversold = figures.paid.saturating_sub(figures.units);
    figures.stock_agrees = figures.available + figures.reserved + figures.shipped == figures.units
        && figures.reserved + figures.shipped >= figures.paid
        && (figures.unsettled > 0 || figures.reserved == figures.paid);
    figures.sold_exactly = figures.paid == figures.orders.min(figures.units);
    figures.dead_letters = dead_letters(stack)
        .await?
        .saturating_sub(dead_letters_before);
    let conflicts =
        tally.total("inventory", shop_platform::consumer::CONFLICTS_RETRIED) - conflicts_before;
    figures.conflicts_retried = conflicts.max(0.0) as u64;
    figures.conflicts_per_order = round(conflicts / figures.orders.max(1) as f64);
    Ok(figures)
}

/// Messages in every dead-letter queue of the stack, now.
async fn dead_letters(stack: &Stack) -> Result<u64, String> {
    let operations = crate::dead_letters::Stack::new(
        stack.stats(),
        crate::stack::sdk_config(&stack.moto_endpoint).await,
    );
    Ok(operations
        .dead_letters(None)
        .await?
        .iter()
        .map(|queue| queue.messages.len() as u64)
        .sum())
}
