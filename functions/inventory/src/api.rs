//! The inventory's HTTP API function: the stock routes of DESIGN §2 and §6, for admins,
//! and its health check. API Gateway has matched the route and verified the token; this
//! module authorizes, parses, persists and answers.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shop_events::is_ulid;
use shop_platform::Problem;
use shop_platform::http::{answer, health, json_body, json_response, path_param, require_admin};
use shop_platform::store::TableError;

use crate::domain::StockInput;
use crate::store::{InventoryStore, StoreError};

/// `{"available": 1000000}` and some whitespace; anything far larger is not a stock level.
const MAX_BODY_BYTES: usize = 1024;

pub struct App {
    pub store: InventoryStore,
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(request, async |request, route, _| match route {
        "GET /inventory/{productId}" => get(app, request).await,
        "PUT /inventory/{productId}" => set(app, request).await,
        "GET /health/inventory" => health("inventory", app.store.table()).await,
        _ => Err(Problem::no_route(route)),
    })
    .await
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let product_id = product_id(request)?;
    let stock = app
        .store
        .stock(&product_id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| not_stocked(&product_id))?;
    Ok(json_response(StatusCode::OK, &stock.levels()))
}

/// Creates or replaces the quantity free to sell, and the number of shards it is spread
/// over when the body says. It may come before the catalog's
/// ProductCreated reaches inventory: an admin stocking a product just created must not
/// have to wait for the bus.
async fn set(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let product_id = product_id(request)?;
    let input: StockInput = json_body(request, MAX_BODY_BYTES)?;
    let stock = app
        .store
        .set_available(&product_id, input.units(), input.shard_count())
        .await
        .map_err(|error| match error {
            StoreError::Discontinued => Problem::conflict(format!(
                "product {product_id} was deleted from the catalog; its stock can no longer be set"
            )),
            StoreError::Table(TableError::Conflict) => Problem::conflict(format!(
                "the stock of product {product_id} kept changing while it was being set; nothing was set, try again"
            )),
            other => Problem::internal(other),
        })?;
    tracing::info!(
        product_id,
        available = stock.available(),
        shards = stock.active_shards,
        "stock set"
    );
    Ok(json_response(StatusCode::OK, &stock.levels()))
}

/// The product in the path; an id that cannot name a product has no stock either.
fn product_id(request: &Request) -> Result<String, Problem> {
    let id = path_param(request, "productId")?;
    if is_ulid(&id) {
        Ok(id)
    } else {
        Err(not_stocked(&id))
    }
}

fn not_stocked(product_id: &str) -> Problem {
    Problem::not_found(format!("no stock for product {product_id}"))
}
