//! The basket's HTTP API function: the basket routes of DESIGN §2 and §6. API Gateway has
//! matched the route and verified the token; this module finds the user, parses, calls the
//! domain, persists and answers. Every basket route is the caller's own basket: there is
//! no way to name another user's.

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shop_events::{Envelope, is_ulid, new_ulid};
use shop_platform::http::{answer, health, json_body, json_response, path_param, require_user};
use shop_platform::store::Read;
use shop_platform::{FieldError, Problem};

use crate::domain::{Basket, BasketError, Catalog, CheckoutInput, IdempotencyKey, SetQuantity};
use crate::store::{BasketStore, StoreError};

/// A checkout body is well under a kilobyte; anything far larger is not one.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// A user's basket seldom has two writers at once (two tabs, a double-clicked checkout);
/// when it does, the loser reads again and reapplies its change, up to this many times in
/// all, before a 409. A writer only loses to another's commit, so this many is enough for
/// that many writers.
const WRITE_ATTEMPTS: u32 = 5;
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

pub struct App {
    pub store: BasketStore,
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(
        request,
        async |request, route, correlation_id| match route {
            "GET /basket" => view(app, request).await,
            "PUT /basket/items/{productId}" => set_item(app, request).await,
            "DELETE /basket/items/{productId}" => remove_item(app, request).await,
            "POST /basket/checkout" => checkout(app, request, correlation_id).await,
            "GET /health/basket" => health("basket", app.store.table()).await,
            _ => Err(Problem::no_route(route)),
        },
    )
    .await
}

/// Only shows the basket, so the projection may be read eventually consistent: a line
/// whose product the read misses is left out of this answer, and only of this answer.
async fn view(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let user = require_user(request)?;
    let (basket, catalog) = load(app, &user.user_id, None, Utc::now(), Read::Eventual).await?;
    priced(&basket, &catalog)
}

async fn set_item(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let user = require_user(request)?;
    let product_id = path_param(request, "productId")?;
    let SetQuantity { quantity } = json_body(request, MAX_BODY_BYTES)?;
    if !is_ulid(&product_id) {
        return Err(basket_problem(BasketError::NotForSale(product_id)));
    }
    change(
        app,
        &user.user_id,
        Some(&product_id),
        |basket, catalog, now| {
            basket
                .set_line(&product_id, quantity, catalog, now)
                .map(Some)
        },
    )
    .await
}

/// Removing a line that is not there is a success: the basket is as asked.
async fn remove_item(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let user = require_user(request)?;
    let product_id = path_param(request, "productId")?;
    let known_shape = is_ulid(&product_id).then_some(product_id.as_str());
    change(app, &user.user_id, known_shape, |basket, catalog, now| {
        Ok(basket.remove_line(&product_id, catalog, now))
    })
    .await
}

/// Read, apply, write conditionally on the version read; on a conflict, all again.
/// `apply` answers `None` when there is nothing to write. Answers the basket priced.
async fn change<F>(
    app: &App,
    user_id: &str,
    product_id: Option<&str>,
    apply: F,
) -> Result<Response<Body>, Problem>
where
    F: Fn(&Basket, &Catalog, DateTime<Utc>) -> Result<Option<Basket>, BasketError>,
{
    let apply = &apply;
    until_no_conflict(|| async move {
        let now = Utc::now();
        let (basket, catalog) = load(app, user_id, product_id, now, Read::Latest).await?;
        let Some(changed) = apply(&basket, &catalog, now).map_err(basket_problem)? else {
            return priced(&basket, &catalog).map(Some);
        };
        // Priced before it is stored: a basket that cannot be priced is not kept.
        let answer = priced(&changed, &catalog)?;
        match app.store.save_basket(&changed, basket.version).await {
            Ok(()) => Ok(Some(answer)),
            Err(StoreError::Conflict) => Ok(None),
            Err(other) => Err(Problem::internal(other)),
        }
    })
    .await
}

/// Runs `attempt` (read the basket, decide, write conditionally on the version read)
/// until it is not beaten by a concurrent write, up to [`WRITE_ATTEMPTS`] times; then a
/// 409. `attempt` answers `None` when a concurrent write won and it must read again.
async fn until_no_conflict<T, F, A>(mut attempt: F) -> Result<T, Problem>
where
    F: FnMut() -> A,
    A: Future<Output = Result<Option<T>, Problem>>,
{
    for n in 0..WRITE_ATTEMPTS {
        if n > 0 {
            tracing::info!("basket changed concurrently; retrying");
            // Spread the writers that collided, so they do not collide again.
            let pause = fastrand::u64(5..=25) * u64::from(n);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(Problem::conflict(
        "the basket kept changing while this request ran; try again",
    ))
}

async fn checkout(
    app: &App,
    request: &Request,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    let user = require_user(request)?;
    let key = idempotency_key(request)?;
    let input: CheckoutInput = json_body(request, MAX_BODY_BYTES)?;
    let (user_id, key, input) = (user.user_id.as_str(), &key, &input);
    let order_id = new_ulid();
    let order_id = order_id.as_str();
    until_no_conflict(|| async move {
        // Before the basket is even read: once the order exists its lines leave the
        // basket, and a retry must still get its order, not "the basket is empty"; nor,
        // before that, "a checkout is in progress".
        if let Some(done) = replayed(app, user_id, key).await? {
            return Ok(Some(done));
        }
        let now = Utc::now();
        let (basket, catalog) = load(app, user_id, None, now, Read::Latest).await?;
        let (frozen, checkout, requested) =
            match basket.check_out(order_id.to_owned(), &catalog, input.clone(), now) {
                Ok(placed) => placed,
                // Nothing new to order: perhaps because a concurrent request with this
                // same key committed between the look-up above and the read of the
                // basket. Then its order is the answer.
                Err(error @ (BasketError::CheckoutInProgress | BasketError::Empty)) => {
                    return match replayed(app, user_id, key).await? {
                        Some(done) => Ok(Some(done)),
                        None => Err(basket_problem(error)),
                    };
                }
                Err(error) => return Err(basket_problem(error)),
            };
        let event = Envelope::new(requested, correlation_id);
        let recorded = app
            .store
            .record_checkout(&checkout, key, &event, &frozen, basket.version)
            .await;
        match recorded {
            Ok(()) => {
                tracing::info!(
                    order_id = %checkout.order_id,
                    event_id = %event.metadata.event_id,
                    lines = checkout.lines.len(),
                    "checkout requested"
                );
                Ok(Some(accepted(&checkout.order_id)))
            }
            // The basket changed since it was read (another tab, another click): check out
            // what it holds now. Or a concurrent request with the same key won the race:
            // the next attempt finds its order, which is the answer.
            Err(StoreError::Conflict | StoreError::AlreadyCheckedOut) => Ok(None),
            Err(other) => Err(Problem::internal(other)),
        }
    })
    .await
}

/// The answer to a checkout this key has already made, if it has.
async fn replayed(
    app: &App,
    user_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Response<Body>>, Problem> {
    let done = app
        .store
        .checkout_by_key(user_id, key)
        .await
        .map_err(Problem::internal)?;
    Ok(done.map(|done| {
        tracing::info!(order_id = %done.order_id, "checkout replayed");
        accepted(&done.order_id)
    }))
}

/// The user's basket as of `now` (empty if they have none) and the projection of its
/// products, plus `product_id`'s, read as `read` says: [`Read::Latest`] whenever a write
/// or a checkout follows.
async fn load(
    app: &App,
    user_id: &str,
    product_id: Option<&str>,
    now: DateTime<Utc>,
    read: Read,
) -> Result<(Basket, Catalog), Problem> {
    let basket = app
        .store
        .basket(user_id)
        .await
        .map_err(Problem::internal)?
        .unwrap_or_else(|| Basket::empty(user_id, now))
        .as_of(now);
    let wanted = basket
        .lines
        .iter()
        .map(|line| line.product_id.as_str())
        .chain(product_id);
    let catalog = app
        .store
        .catalog(wanted, read)
        .await
        .map_err(Problem::internal)?;
    Ok((basket, catalog))
}

fn priced(basket: &Basket, catalog: &Catalog) -> Result<Response<Body>, Problem> {
    let priced = basket.price(catalog).map_err(basket_problem)?;
    Ok(json_response(StatusCode::OK, &priced))
}

/// 202 with the order id and where the order will be (it may take a moment to exist).
fn accepted(order_id: &str) -> Response<Body> {
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "orderId": order_id }),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{order_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The checkout's `Idempotency-Key`: required, so that a retried checkout is never a
/// second order.
fn idempotency_key(request: &Request) -> Result<IdempotencyKey, Problem> {
    let header = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| bad_key("is required: a checkout must be safe to retry"))?;
    header
        .to_str()
        .ok()
        .and_then(|raw| IdempotencyKey::parse(raw).ok())
        .ok_or_else(|| bad_key("must be 8 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"))
}

fn bad_key(message: &str) -> Problem {
    let mut problem = Problem::bad_request(format!("the {IDEMPOTENCY_KEY} header {message}"));
    problem.errors.push(FieldError {
        field: IDEMPOTENCY_KEY.to_owned(),
        message: message.to_owned(),
    });
    problem
}

fn basket_problem(error: BasketError) -> Problem {
    match error {
        BasketError::NotForSale(product_id) => Problem::not_found(format!(
            "the basket does not know product {product_id}; a product created moments ago \
             reaches the basket within seconds, so retry shortly"
        )),
        BasketError::QuantityOutOfRange => Problem::validation(vec![FieldError {
            field: "quantity".to_owned(),
            message: error.to_string(),
        }]),
        BasketError::TooManyLines
        | BasketError::TotalTooLarge
        | BasketError::Empty
        | BasketError::Unpriced(_) => Problem::unprocessable(error.to_string()),
        BasketError::CheckoutInProgress => Problem::conflict(error.to_string()),
    }
}
