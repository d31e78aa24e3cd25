//! The basket's HTTP API function: the basket routes of DESIGN §2 and §6. API Gateway has
//! matched the route and verified the token; this module finds the user, parses, calls the
//! domain, persists and answers. Every basket route is the caller's own basket: there is
//! no way to name another user's.

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shop_events::Envelope;
use shop_platform::http::{
    correlation_id, json_body, json_response, path_param, require_user, respond, route_key,
};
use shop_platform::{FieldError, Problem};
use tracing::Instrument;

use crate::domain::{
    Basket, BasketError, Catalog, Checkout, CheckoutInput, IdempotencyKey, SetQuantity, is_ulid,
    new_order_id,
};
use crate::store::{BasketStore, StoreError};

/// A checkout body is well under a kilobyte; anything far larger is not one.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// A user's basket seldom has two writers at once (two tabs); when it does, the loser
/// reads again and reapplies its change, up to this many times in all, before a 409. A
/// writer only loses to another's commit, so this many is enough for that many writers.
const WRITE_ATTEMPTS: u32 = 5;
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

pub struct App {
    pub store: BasketStore,
}

impl shop_platform::entrypoint::HttpApi for App {
    async fn handle(&self, request: Request) -> Response<Body> {
        handle(self, request).await
    }
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let correlation_id = correlation_id(&request);
    let route = route_key(&request);
    let span = tracing::info_span!("request", correlation_id = %correlation_id, route = %route);
    async {
        let response = respond(dispatch(app, &request, &route, &correlation_id).await);
        tracing::info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

async fn dispatch(
    app: &App,
    request: &Request,
    route: &str,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    match route {
        "GET /basket" => view(app, request).await,
        "PUT /basket/items/{productId}" => set_item(app, request).await,
        "DELETE /basket/items/{productId}" => remove_item(app, request).await,
        "POST /basket/checkout" => checkout(app, request, correlation_id).await,
        "GET /health/basket" => health(app).await,
        _ => Err(Problem::not_found(format!("no route {route}"))),
    }
}

async fn view(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let user = require_user(request)?;
    let (basket, catalog) = load(app, &user.user_id, None, Utc::now()).await?;
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
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            // Spread the writers that collided, so they do not collide again.
            let pause = fastrand::u64(5..=25) * u64::from(attempt);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        let now = Utc::now();
        let (basket, catalog) = load(app, user_id, product_id, now).await?;
        let Some(changed) = apply(&basket, &catalog, now).map_err(basket_problem)? else {
            return priced(&basket, &catalog);
        };
        // Priced before it is stored: a basket that cannot be priced is not kept.
        let answer = priced(&changed, &catalog)?;
        match app.store.save_basket(&changed, basket.version).await {
            Ok(()) => return Ok(answer),
            Err(StoreError::Conflict) => tracing::info!("basket changed concurrently; retrying"),
            Err(other) => return Err(internal(other)),
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
    // Before the basket is even read: once the order exists its lines leave the basket,
    // and a retry must still get its order, not "the basket is empty".
    if let Some(done) = app
        .store
        .checkout_by_key(&user.user_id, &key)
        .await
        .map_err(internal)?
    {
        tracing::info!(order_id = %done.order_id, "checkout replayed");
        return Ok(accepted(&done.order_id));
    }
    let now = Utc::now();
    let (basket, catalog) = load(app, &user.user_id, None, now).await?;
    let (checkout, requested) =
        Checkout::place(new_order_id(), &basket, &catalog, input, now).map_err(basket_problem)?;
    let event = Envelope::new(requested, correlation_id);
    match app.store.record_checkout(&checkout, &key, &event).await {
        Ok(()) => {
            tracing::info!(
                order_id = %checkout.order_id,
                event_id = %event.metadata.event_id,
                lines = checkout.lines.len(),
                "checkout requested"
            );
            Ok(accepted(&checkout.order_id))
        }
        // A concurrent request with the same key won the race: its order is the answer.
        Err(StoreError::AlreadyCheckedOut | StoreError::Conflict) => {
            match app
                .store
                .checkout_by_key(&user.user_id, &key)
                .await
                .map_err(internal)?
            {
                Some(done) => Ok(accepted(&done.order_id)),
                None => Err(Problem::conflict(
                    "a concurrent request interfered; retry with the same Idempotency-Key",
                )),
            }
        }
        Err(other) => Err(internal(other)),
    }
}

async fn health(app: &App) -> Result<Response<Body>, Problem> {
    if app.store.is_reachable().await {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "capability": "basket"}),
        ))
    } else {
        Err(Problem::service_unavailable(
            "the basket table is not reachable",
        ))
    }
}

/// The user's basket as of `now` (empty if they have none) and the projection of its
/// products, plus `product_id`'s.
async fn load(
    app: &App,
    user_id: &str,
    product_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Basket, Catalog), Problem> {
    let basket = app
        .store
        .basket(user_id)
        .await
        .map_err(internal)?
        .unwrap_or_else(|| Basket::empty(user_id, now))
        .as_of(now);
    let wanted = basket
        .lines
        .iter()
        .map(|line| line.product_id.as_str())
        .chain(product_id);
    let catalog = app.store.catalog(wanted).await.map_err(internal)?;
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

/// [`json_body`], with garde's field paths (Rust's snake_case) spelt as the client sent
/// them (camelCase): `shippingAddress.postalCode`, not `shipping_address.postal_code`.
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
        BasketError::TooManyLines | BasketError::TotalTooLarge | BasketError::Empty => {
            Problem::unprocessable(error.to_string())
        }
    }
}

fn internal(error: StoreError) -> Problem {
    Problem::internal(&error)
}
