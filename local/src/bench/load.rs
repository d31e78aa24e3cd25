//! The load: virtual shoppers, each with its own token and seeded generator, doing the mix
//! of a shop's traffic with think time between steps, until the deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::client::ApiClient;
use crate::shop::checkout_body;

/// What a shopper does, one request each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Browse,
    ViewProduct,
    AddToBasket,
    ViewBasket,
    Checkout,
}

/// The shopper's mix: relative weights (issue 7).
pub const MIX: [(Action, u32); 5] = [
    (Action::Browse, 10),
    (Action::ViewProduct, 10),
    (Action::AddToBasket, 2),
    (Action::ViewBasket, 3),
    (Action::Checkout, 1),
];

impl Action {
    /// The API Gateway route key it exercises.
    pub fn route(self) -> &'static str {
        match self {
            Action::Browse => "GET /products",
            Action::ViewProduct => "GET /products/{productId}",
            Action::AddToBasket => "PUT /basket/items/{productId}",
            Action::ViewBasket => "GET /basket",
            Action::Checkout => "POST /basket/checkout",
        }
    }

    fn expected_status(self) -> u16 {
        match self {
            Action::Checkout => 202,
            _ => 200,
        }
    }

    fn draw(rng: &mut fastrand::Rng) -> Action {
        let total: u32 = MIX.iter().map(|(_, weight)| weight).sum();
        let mut ticket = rng.u32(0..total);
        for (action, weight) in MIX {
            if ticket < weight {
                return action;
            }
            ticket -= weight;
        }
        Action::Browse
    }
}

/// What the shoppers can look at.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub products: Vec<String>,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub users: usize,
    pub duration: Duration,
    /// The mean pause between a shopper's steps (drawn uniformly from half to 1.5 times).
    pub think: Duration,
    pub seed: u64,
    /// A request that has not answered by then counts as an error.
    pub request_timeout: Duration,
}

/// Counters the progress line reads while the load runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub orders: AtomicU64,
}

/// One route's samples.
#[derive(Debug, Clone, Default)]
pub struct RouteSamples {
    pub latencies_ms: Vec<f64>,
    pub errors: u64,
}

#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order_id: String,
    /// The wall clock when the checkout request was sent: compared with the `occurredAt`
    /// of the order's OrderPaid, stamped by the same machine's clock.
    pub checkout_sent: SystemTime,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub routes: BTreeMap<Action, RouteSamples>,
    pub orders: Vec<PlacedOrder>,
}

/// Runs `tokens.len()` shoppers (one token each) until `settings.duration` has passed;
/// requests in flight at the deadline are finished (within the request timeout).
pub async fn run(
    api: &ApiClient,
    tokens: Vec<String>,
    catalog: Arc<Catalog>,
    settings: &LoadSettings,
    progress: Arc<Progress>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> LoadResult {
    let deadline = Instant::now() + settings.duration;
    let shoppers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(number, token)| {
            let shopper = Shopper {
                api: api.clone(),
                token,
                plan: Plan::new(settings.seed, number, catalog.clone(), settings.think),
                request_timeout: settings.request_timeout,
                progress: progress.clone(),
                log: log.clone(),
                result: LoadResult::default(),
            };
            tokio::spawn(shopper.shop_until(deadline))
        })
        .collect();
    let mut merged = LoadResult::default();
    for shopper in shoppers {
        let Ok(result) = shopper.await else {
            log("a shopper's task failed");
            continue;
        };
        for (action, samples) in result.routes {
            let route = merged.routes.entry(action).or_default();
            route.latencies_ms.extend(samples.latencies_ms);
            route.errors += samples.errors;
        }
        merged.orders.extend(result.orders);
    }
    merged
}

/// A shopper's choices: what to do next, and how long to think after it. Deterministic
/// for a seed and shopper number whatever the answers' timing, so runs are comparable.
pub struct Plan {
    seed: u64,
    number: usize,
    catalog: Arc<Catalog>,
    think: Duration,
    /// Draws the actions only, so that their sequence depends on the seed and the
    /// shopper alone, not on the catalog's size or anything else drawn.
    actions: fastrand::Rng,
    /// Draws the rest: products, categories, quantities, pauses.
    details: fastrand::Rng,
    /// Lines added since the last checkout: without one, a checkout would be a 422.
    free_lines: bool,
    /// A checkout drawn on a basket with nothing to order: it follows the add it needs.
    checkout_next: bool,
    checkouts: u64,
}

/// The seed of one of a shopper's random streams.
fn stream(seed: u64, shopper: usize, stream: u64) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    seed.wrapping_add((shopper as u64 * 2 + stream + 1).wrapping_mul(GOLDEN))
}

/// One request of a shopper's.
pub struct Step {
    pub action: Action,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
}

impl Plan {
    pub fn new(seed: u64, number: usize, catalog: Arc<Catalog>, think: Duration) -> Plan {
        Plan {
            seed,
            number,
            catalog,
            think,
            actions: fastrand::Rng::with_seed(stream(seed, number, 0)),
            details: fastrand::Rng::with_seed(stream(seed, number, 1)),
            free_lines: false,
            checkout_next: false,
            checkouts: 0,
        }
    }

    /// A pause drawn uniformly from half to one and a half times the mean think time.
    pub fn think(&mut self) -> Duration {
        self.think.mul_f64(0.5 + self.details.f64())
    }

    fn product(&mut self) -> String {
        let products = &self.catalog.products;
        products[self.details.usize(0..products.len())].clone()
    }

    pub fn next_step(&mut self) -> Step {
        // A checkout waiting for its add goes ahead only if the add worked.
        let waiting = std::mem::take(&mut self.checkout_next) && self.free_lines;
        let mut action = if waiting {
            Action::Checkout
        } else {
            Action::draw(&mut self.actions)
        };
        if action == Action::Checkout && !self.free_lines {
            // Nothing to order yet: the shopper puts something in the basket first, then
            // checks out, so checkouts keep their weight in the mix.
            action = Action::AddToBasket;
            self.checkout_next = true;
        }
        let (method, path, body, idempotency_key) = match action {
            Action::Browse => {
                let categories = &self.catalog.categories;
                // One browse in three narrows to a category.
                let path = if !categories.is_empty() && self.details.u8(0..3) == 0 {
                    format!(
                        "/products?category={}",
                        categories[self.details.usize(0..categories.len())]
                    )
                } else {
                    "/products".to_owned()
                };
                ("GET", path, None, None)
            }
            Action::ViewProduct => ("GET", format!("/products/{}", self.product()), None, None),
            Action::AddToBasket => (
                "PUT",
                format!("/basket/items/{}", self.product()),
                Some(json!({"quantity": self.details.u32(1..=3)})),
                None,
            ),
            Action::ViewBasket => ("GET", "/basket".to_owned(), None, None),
            Action::Checkout => {
                self.checkouts += 1;
                (
                    "POST",
                    "/basket/checkout".to_owned(),
                    Some(checkout_body("tok_visa")),
                    Some(format!(
                        "bench-{}-{}-{}",
                        self.seed, self.number, self.checkouts
                    )),
                )
            }
        };
        Step {
            action,
            method,
            path,
            body,
            idempotency_key,
        }
    }

    /// What the step's success changed in the basket.
    pub fn succeeded(&mut self, action: Action) {
        match action {
            Action::AddToBasket => self.free_lines = true,
            Action::Checkout => self.free_lines = false,
            _ => {}
        }
    }
}

struct Shopper {
    api: ApiClient,
    token: String,
    plan: Plan,
    request_timeout: Duration,
    progress: Arc<Progress>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
    result: LoadResult,
}

impl Shopper {
    async fn shop_until(mut self, deadline: Instant) -> LoadResult {
        // Shoppers arrive over the first think time, not all in the same millisecond.
        let arrival = self.plan.think();
        tokio::time::sleep(arrival.min(deadline.saturating_duration_since(Instant::now()))).await;
        while Instant::now() < deadline {
            let step = self.plan.next_step();
            self.act(step).await;
            let pause = self.plan.think();
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
        }
        self.result
    }

    async fn act(&mut self, step: Step) {
        let Step {
            action,
            method,
            path,
            body,
            idempotency_key,
        } = step;
        let headers: Vec<(&str, &str)> = idempotency_key
            .as_deref()
            .map(|key| vec![("idempotency-key", key)])
            .unwrap_or_default();
        let sent = SystemTime::now();
        let started = Instant::now();
        let answer = tokio::time::timeout(
            self.request_timeout,
            self.api
                .call(method, &path, Some(&self.token), body.as_ref(), &headers),
        )
        .await;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        self.progress.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = match answer {
            Ok(Ok((status, body))) if status == action.expected_status() => Ok(body),
            Ok(Ok((status, body))) => Err(format!("{status} {}", snippet(&body))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(format!(
                "no answer within {}s",
                self.request_timeout.as_secs()
            )),
        };
        let outcome = match (action, outcome) {
            (Action::Checkout, Ok(body)) => match body["orderId"].as_str() {
                Some(order_id) => {
                    self.progress.orders.fetch_add(1, Ordering::Relaxed);
                    self.result.orders.push(PlacedOrder {
                        order_id: order_id.to_owned(),
                        checkout_sent: sent,
                    });
                    Ok(())
                }
                None => Err("202 without an orderId".to_owned()),
            },
            (_, outcome) => outcome.map(|_| ()),
        };
        let route = self.result.routes.entry(action).or_default();
        route.latencies_ms.push(millis);
        match outcome {
            Ok(()) => self.plan.succeeded(action),
            Err(error) => {
                route.errors += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                (self.log)(&format!("{method} {path}: {error}"));
            }
        }
    }
}

fn snippet(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_its_weights() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut drawn: BTreeMap<Action, u32> = BTreeMap::new();
        for _ in 0..26_000 {
            *drawn.entry(Action::draw(&mut rng)).or_default() += 1;
        }
        for (action, weight) in MIX {
            let share = f64::from(drawn[&action]) / 1000.0;
            assert!(
                (share - f64::from(weight)).abs() < f64::from(weight) * 0.1 + 0.3,
                "{action:?}: {share} per 1000 draws for weight {weight}"
            );
        }
    }

    fn plan(seed: u64, number: usize) -> Plan {
        let catalog = Catalog {
            products: vec!["p1".into(), "p2".into()],
            categories: vec!["books".into()],
        };
        Plan::new(seed, number, Arc::new(catalog), Duration::from_millis(100))
    }

    #[test]
    fn the_actions_do_not_depend_on_the_catalog() {
        let bigger = Catalog {
            products: (0..9).map(|n| format!("p{n}")).collect(),
            categories: vec!["a".into(), "b".into(), "c".into()],
        };
        let mut other = Plan::new(1, 0, Arc::new(bigger), Duration::from_millis(5));
        assert_eq!(steps(&mut other, 100), steps(&mut plan(1, 0), 100));
    }

    /// Its steps, every one succeeding.
    fn steps(plan: &mut Plan, count: usize) -> Vec<Action> {
        (0..count)
            .map(|_| {
                let step = plan.next_step();
                plan.succeeded(step.action);
                step.action
            })
            .collect()
    }

    /// A checkout drawn on an empty basket comes right after the add it needs: checkouts
    /// keep their weight of 1 in 26, and adds gain what those checkouts needed.
    #[test]
    fn checkouts_keep_their_weight() {
        let taken = steps(&mut plan(3, 1), 26_000);
        let checkouts = taken.iter().filter(|a| **a == Action::Checkout).count();
        assert!(
            (900..=1100).contains(&checkouts),
            "{checkouts} checkouts in 26 000 steps"
        );
        for pair in taken.windows(2) {
            if pair[1] == Action::Checkout {
                assert!(pair[0] != Action::Checkout, "two checkouts in a row");
            }
        }
    }

    #[test]
    fn a_plan_replays_for_its_seed_and_never_checks_out_an_empty_basket() {
        assert_eq!(steps(&mut plan(7, 0), 200), steps(&mut plan(7, 0), 200));
        assert_ne!(steps(&mut plan(7, 0), 50), steps(&mut plan(7, 1), 50));
        let mut free = false;
        for action in steps(&mut plan(11, 3), 2000) {
            assert!(
                action != Action::Checkout || free,
                "a checkout with nothing added"
            );
            free = match action {
                Action::AddToBasket => true,
                Action::Checkout => false,
                _ => free,
            };
        }
    }

    /// local/tests/integration/bench.rs runs two shoppers with the default seed (1) for a few seconds
    /// and expects every route of the mix: shopper 0 takes each within its first 12 steps.
    #[test]
    fn the_default_seeds_first_shopper_takes_every_route_early() {
        let early = steps(&mut plan(1, 0), 12);
        for (action, _) in MIX {
            assert!(early.contains(&action), "{action:?} not in {early:?}");
        }
    }
}
