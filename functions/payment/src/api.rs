//! Payment's HTTP API function: `GET /payments/{orderId}` for admins (DESIGN §2 and §6)
//! and its health check. API Gateway has matched the route and verified the token; this
//! module authorizes, reads and answers.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shop_events::is_ulid;
use shop_platform::Problem;
use shop_platform::http::{answer, health, json_response, path_param, require_admin};

use crate::store::PaymentStore;

pub struct App {
    pub store: PaymentStore,
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(request, async |request, route, _| match route {
        "GET /payments/{orderId}" => get(app, request).await,
        "GET /health/payment" => health("payment", app.store.table()).await,
        _ => Err(Problem::no_route(route)),
    })
    .await
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let order_id = path_param(request, "orderId")?;
    // An id that cannot name an order has no payment either, and never reaches the table.
    if !is_ulid(&order_id) {
        return Err(no_payment(&order_id));
    }
    let payment = app
        .store
        .get(&order_id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| no_payment(&order_id))?;
    let view = payment.view().ok_or_else(|| {
        Problem::not_found(format!(
            "order {order_id} was cancelled before any charge; it has no payment"
        ))
    })?;
    Ok(json_response(StatusCode::OK, &view))
}

fn no_payment(order_id: &str) -> Problem {
    Problem::not_found(format!("no payment for order {order_id}"))
}
