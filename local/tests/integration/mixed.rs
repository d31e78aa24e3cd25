//! The chaos run: orders of random products and quantities, some paid with declined
//! cards, some cancelled as soon as they exist, some while their charge is in flight
//! (the card processor is slow), some after payment (shipping has the last word), some
//! whose cancel races an admin's dispatch, some dispatched and delivered; with
//! shop-local's faults on: function processes killed during their invocations (half of
//! them before they answered, half as they answered), SQS messages delivered twice and
//! held back at random. Clients behave as real ones do: a 5xx is retried with the same
//! request (the checkout's with the same Idempotency-Key). Once everything has settled,
//! the invariant checker must find nothing wrong (counted at the processor's ledger) and
//! every dead-letter queue must be empty.
//!
//! Prints orders by outcome, faults injected, time to settle and checkout → paid
//! p50/p99. `SHOP_CHAOS_ORDERS` sets the number of orders (default 120; the documented
//! run is 500), `SHOP_CHAOS_SEED` replays another run (default 7).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::eventually;
use crate::support::invariants::{Scenario, assert_invariants};
use crate::support::shop::{Shop, checkout_body, is_settled};
use futures::StreamExt;
use serde_json::{Value, json};

/// Orders of the run in the test command; `SHOP_CHAOS_ORDERS` for another number.
const DEFAULT_ORDERS: usize = 120;
const PRODUCTS: usize = 8;
/// Shoppers placing orders at the same time.
const CONCURRENCY: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// Left alone: paid, or cancelled by the saga.
    Keep,
    /// The customer cancels the moment the order exists, racing the reservation and charge.
    CancelAtOnce,
    /// The customer cancels while its charge is in flight (the order is stock_confirmed).
    CancelDuringCharge,
    /// The customer cancels once it is paid: shipping has the last word.
    CancelWhenPaid,
    /// Once paid, the customer's cancel and an admin's dispatch go out at the same moment.
    CancelRacingDispatch,
    /// An admin dispatches it once paid.
    Dispatch,
    /// An admin dispatches and delivers it once paid.
    Deliver,
}

struct Order {
    shopper: String,
    lines: Vec<(usize, u32)>,
    decline: bool,
    plan: Plan,
}

/// What happened to one order, for the figures.
struct Outcome {
    order_id: String,
    shopper: String,
    checkout_to_paid: Option<Duration>,
}

async fn must(shop: &Shop, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, answer) = shop
        .stack
        .call_retrying(method, path, Some(token), body)
        .await;
    assert!(status < 300, "{method} {path}: {status} {answer}");
    answer
}

async fn place(shop: &Shop, products: &[String], n: usize, order: &Order) -> Outcome {
    for (product, quantity) in &order.lines {
        must(
            shop,
            "PUT",
            &format!("/basket/items/{}", products[*product]),
            &order.shopper,
            Some(json!({"quantity": quantity})),
        )
        .await;
    }
    let token = if order.decline {
        "tok_decline_do_not_honor"
    } else {
        "tok_visa"
    };
    let started = Instant::now();
    // A checkout whose answer was lost is repeated with the same key: the same order.
    let answer = eventually("the checkout is answered", async || {
        let (status, answer) = shop
            .stack
            .call_with_headers(
                "POST",
                "/basket/checkout",
                Some(&order.shopper),
                Some(checkout_body(token)),
                &[("idempotency-key", &format!("mixed-order-{n:04}"))],
            )
            .await;
        (status < 500).then_some((status, answer))
    })
    .await;
    assert_eq!(answer.0, 202, "checkout {n}: {}", answer.1);
    let order_id = answer.1["orderId"].as_str().unwrap().to_owned();
    let path = format!("/orders/{order_id}");

    if matches!(order.plan, Plan::CancelAtOnce | Plan::CancelDuringCharge) {
        let during_charge = order.plan == Plan::CancelDuringCharge;
        eventually("the order is there to be cancelled", async || {
            if during_charge {
                let (_, current) = shop.order(&order.shopper, &order_id).await;
                if current["status"] == "submitted" || current.get("status").is_none() {
                    return None;
                }
            }
            let (status, answer) = shop
                .stack
                .call_retrying(
                    "POST",
                    &format!("{path}/cancel"),
                    Some(&order.shopper),
                    None,
                )
                .await;
            match status {
                404 => None,
                // 409: it shipped? Not before an admin's step; paid orders say 202.
                200 | 202 => Some(()),
                other => panic!("cancel {order_id}: {other} {answer}"),
            }
        })
        .await;
    }
    let settled = shop.settled(&order.shopper, &order_id).await;
    let checkout_to_paid = (settled["status"] == "paid"
        || settled["status"] == "shipped"
        || settled["status"] == "delivered")
        .then(|| started.elapsed());
    if settled["status"] == "paid" {
        match order.plan {
            Plan::CancelWhenPaid => {
                must(
                    shop,
                    "POST",
                    &format!("{path}/cancel"),
                    &order.shopper,
                    None,
                )
                .await;
            }
            Plan::CancelRacingDispatch => {
                shop.pending_shipment(&order_id).await;
                let cancel = async {
                    let (status, answer) = shop
                        .stack
                        .call_retrying(
                            "POST",
                            &format!("{path}/cancel"),
                            Some(&order.shopper),
                            None,
                        )
                        .await;
                    assert!(
                        [200, 202, 409].contains(&status),
                        "cancel {order_id}: {status} {answer}"
                    );
                };
                let dispatch = async {
                    let (status, answer) = shop.shipment_step(&order_id, "dispatch").await;
                    if status >= 500 {
                        // Lost to a fault: the shipment says whether it went through.
                        let (_, shipment) = shop.shipment(&order_id).await;
                        if shipment["status"] == "pending" {
                            admin_step(shop, &order_id, "dispatch", "dispatched").await;
                        }
                    } else {
                        assert!(
                            [200, 409].contains(&status),
                            "dispatch {order_id}: {status} {answer}"
                        );
                    }
                };
                tokio::join!(cancel, dispatch);
            }
            Plan::Dispatch | Plan::Deliver => {
                shop.pending_shipment(&order_id).await;
                admin_step(shop, &order_id, "dispatch", "dispatched").await;
                if order.plan == Plan::Deliver {
                    admin_step(shop, &order_id, "deliver", "delivered").await;
                }
            }
            Plan::Keep | Plan::CancelAtOnce | Plan::CancelDuringCharge => {}
        }
    }
    Outcome {
        order_id,
        shopper: order.shopper.clone(),
        checkout_to_paid,
    }
}

/// An admin's step on a shipment. A 409 after a lost answer means the first attempt
/// went through: the shipment says so.
async fn admin_step(shop: &Shop, order_id: &str, step: &str, reached: &str) {
    let (status, answer) = shop.shipment_step(order_id, step).await;
    if status == 200 {
        return;
    }
    let (_, shipment) = shop.shipment(order_id).await;
    assert!(
        status >= 500 || shipment["status"] == reached,
        "{step} {order_id}: {status} {answer}"
    );
    if shipment["status"] != reached {
        eventually("the admin's step goes through", async || {
            let (status, _) = shop.shipment_step(order_id, step).await;
            let (_, shipment) = shop.shipment(order_id).await;
            (status == 200 || shipment["status"] == reached).then_some(())
        })
        .await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chaos_run_of_mixed_orders_under_faults_keeps_every_invariant() {
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seed = setting("SHOP_CHAOS_SEED", 7);
    let orders_count = usize::try_from(setting("SHOP_CHAOS_ORDERS", DEFAULT_ORDERS as u64))
        .unwrap_or(DEFAULT_ORDERS);
    let fault_seed = seed.to_string();
    let shop = Shop::start(&[
        "--kill-probability",
        "0.02",
        "--duplicate-probability",
        "0.1",
        "--max-delay-ms",
        "100",
        "--fault-seed",
        &fault_seed,
    ]);
    // A card processor slower than most answers (but within payment's attempts): charges
    // stay in flight long enough for cancellations to land during them.
    let provider = crate::support::invariants::Provider::of(&shop.stack).await;
    provider
        .set_test_mode(&shop.stack, json!({"delayMs": 250}))
        .await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut scenario = Scenario::default();
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let stock = rng.u32(5..=30) * u32::try_from(orders_count.div_ceil(100)).unwrap_or(1);
        let product = create_product(&shop, n, rng.i64(500..=20_000)).await;
        let (status, answer) = shop
            .stack
            .call_retrying(
                "PUT",
                &format!("/inventory/{product}"),
                Some(&shop.admin),
                Some(json!({"available": stock})),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        scenario.stock_set.insert(product.clone(), stock);
        products.push(product);
    }
    let orders: Vec<Order> = (0..orders_count)
        .map(|n| {
            let mut lines: BTreeMap<usize, u32> = BTreeMap::new();
            for _ in 0..rng.usize(1..=3) {
                lines.insert(rng.usize(0..PRODUCTS), rng.u32(1..=3));
            }
            let plan = match rng.u32(0..100) {
                0..12 => Plan::CancelAtOnce,
                12..22 => Plan::CancelDuringCharge,
                22..32 => Plan::CancelWhenPaid,
                32..44 => Plan::CancelRacingDispatch,
                44..56 => Plan::Dispatch,
                56..66 => Plan::Deliver,
                _ => Plan::Keep,
            };
            Order {
                shopper: shop.stack.token(&format!("mixed-{n}"), false),
                lines: lines.into_iter().collect(),
                decline: rng.u32(0..100) < 15,
                plan,
            }
        })
        .collect();
    // Basket must know every product before anyone can add it.
    let probe = shop.stack.token("mixed-probe", false);
    for product in &products {
        let path = format!("/basket/items/{product}");
        eventually("basket knows the product", async || {
            let (status, _) = shop
                .stack
                .call_retrying("PUT", &path, Some(&probe), Some(json!({"quantity": 1})))
                .await;
            (status == 200).then_some(())
        })
        .await;
        shop.stack
            .call_retrying("DELETE", &path, Some(&probe), None)
            .await;
    }

    let started = Instant::now();
    let outcomes: Vec<Outcome> = futures::stream::iter(orders.iter().enumerate())
        .map(|(n, order)| place(&shop, &products, n, order))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    scenario.orders = outcomes
        .iter()
        .map(|o| (o.order_id.clone(), o.shopper.clone()))
        .collect();
    assert_invariants(&shop, &scenario).await;
    let settled_after = started.elapsed();

    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for (order, shopper) in &scenario.orders {
        let (_, order) = shop.order(shopper, order).await;
        let status = order["status"].as_str().unwrap_or("?");
        assert!(is_settled(status));
        let asked = crate::support::shop::history(&order).contains(&"cancelling".to_owned());
        let key = match order["cancellationReason"].as_str() {
            Some(reason) => format!("cancelled ({reason})"),
            None if asked => format!("{status} (cancellation refused)"),
            None => status.to_owned(),
        };
        *statuses.entry(key).or_default() += 1;
    }
    let mut plans: BTreeMap<String, usize> = BTreeMap::new();
    for order in &orders {
        *plans.entry(format!("{:?}", order.plan)).or_default() += 1;
    }
    let mut paid_ms: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.checkout_to_paid)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    paid_ms.sort_by(f64::total_cmp);
    let (_, stats) = shop.stack.call("GET", "/_local/stats", None, None).await;
    println!("chaos run (seed {seed}): {orders_count} orders, {CONCURRENCY} shoppers at a time");
    println!("  plans: {plans:?}");
    println!("  outcomes: {statuses:?}");
    println!("  faults injected: {}", stats["faults"]["injected"]);
    println!(
        "  first checkout to quiet and checked: {:.1} s",
        settled_after.as_secs_f64()
    );
    println!(
        "  checkout -> paid over {} orders: p50 {:.0} ms, p99 {:.0} ms",
        paid_ms.len(),
        percentile(&paid_ms, 50.0),
        percentile(&paid_ms, 99.0)
    );
    let injected = &stats["faults"]["injected"];
    let count = |name: &str| injected[name].as_u64().unwrap_or(0);
    assert!(
        count("kills") > 0
            && count("killsBeforeAnswer") > 0
            && count("duplicates") > 0
            && count("delays") > 0,
        "the faults were on: {}",
        stats["faults"]
    );
    let started_pids = shop.stack.started_pids().await;
    shop.stack.stop_with("INT", &started_pids);
}

/// A product, created once even if the answer to the POST was lost to a fault: the
/// catalog is searched for the name before trying again.
async fn create_product(shop: &Shop, n: usize, price: i64) -> String {
    let name = format!("Mixed Product {n}");
    let body =
        json!({"name": name, "category": "mixed", "price": {"amount": price, "currency": "USD"}});
    loop {
        let (status, product) = shop
            .stack
            .call("POST", "/products", Some(&shop.admin), Some(body.clone()))
            .await;
        if status == 201 {
            return product["id"].as_str().unwrap().to_owned();
        }
        assert!(status >= 500, "{status} {product}");
        let (_, page) = shop
            .stack
            .call_retrying("GET", "/products?category=mixed&limit=100", None, None)
            .await;
        if let Some(found) = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name.as_str())
        {
            return found["id"].as_str().unwrap().to_owned();
        }
    }
}
