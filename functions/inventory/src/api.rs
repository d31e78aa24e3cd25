//! The inventory's HTTP API function: the stock routes of DESIGN §2 and §6, for admins,
//! and its health check. API Gateway has matched the route and verified the token; this
//! module authorizes, parses, persists and answers.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shop_platform::Problem;
use shop_platform::http::{
    correlation_id, json_body, json_response, path_param, require_admin, respond, route_key,
};
use tracing::Instrument;

use crate::domain::{StockInput, is_product_id};
use crate::store::{InventoryStore, StoreError};

/// `{"available": 1000000}` and some whitespace; anything far larger is not a stock level.
const MAX_BODY_BYTES: usize = 1024;

pub struct App {
    pub store: InventoryStore,
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
        let response = respond(dispatch(app, &request, &route).await);
        tracing::info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

async fn dispatch(app: &App, request: &Request, route: &str) -> Result<Response<Body>, Problem> {
    match route {
        "GET /inventory/{productId}" => get(app, request).await,
        "PUT /inventory/{productId}" => set(app, request).await,
        "GET /health/inventory" => health(app).await,
        _ => Err(Problem::not_found(format!("no route {route}"))),
    }
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let product_id = product_id(request)?;
    let stock = app
        .store
        .stock(&product_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_stocked(&product_id))?;
    Ok(json_response(StatusCode::OK, &stock.levels()))
}

/// Creates or replaces the quantity free to sell. It may come before the catalog's
/// ProductCreated reaches inventory: an admin stocking a product just created must not
/// have to wait for the bus.
async fn set(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let product_id = product_id(request)?;
    let input: StockInput = json_body(request, MAX_BODY_BYTES)?;
    let stock = app
        .store
        .set_available(&product_id, input.units())
        .await
        .map_err(|error| match error {
            StoreError::Discontinued => Problem::conflict(format!(
                "product {product_id} was deleted from the catalog; its stock can no longer be set"
            )),
            other => internal(other),
        })?;
    tracing::info!(
        product_id,
        available = stock.available,
        version = stock.version,
        "stock set"
    );
    Ok(json_response(StatusCode::OK, &stock.levels()))
}

async fn health(app: &App) -> Result<Response<Body>, Problem> {
    if app.store.is_reachable().await {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "capability": "inventory"}),
        ))
    } else {
        Err(Problem::service_unavailable(
            "the inventory table is not reachable",
        ))
    }
}

/// The product in the path; an id that cannot name a product has no stock either.
fn product_id(request: &Request) -> Result<String, Problem> {
    let id = path_param(request, "productId")?;
    if is_product_id(&id) {
        Ok(id)
    } else {
        Err(not_stocked(&id))
    }
}

fn not_stocked(product_id: &str) -> Problem {
    Problem::not_found(format!("no stock for product {product_id}"))
}

fn internal(error: StoreError) -> Problem {
    Problem::internal(&error)
}
