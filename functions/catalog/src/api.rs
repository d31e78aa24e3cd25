//! The catalog's HTTP API function: every catalog route of DESIGN §2 and §6. API
//! Gateway has matched the route (and, for writes, verified the token); this module
//! authorizes, parses, calls the domain, persists and answers.

use chrono::Utc;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shop_events::Envelope;
use shop_platform::Problem;
use shop_platform::http::{
    correlation_id, empty_response, json_body, json_response, path_param, query_param,
    require_admin, respond, route_key,
};
use shop_platform::pagination::{Page, encode_cursor, page_request};
use tracing::Instrument;

use crate::domain::{Product, ProductInput, is_product_id, new_product_id};
use crate::store::{ProductStore, StoreError};

/// A product is a few kilobytes at most; anything far larger is not one.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct App {
    pub store: ProductStore,
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
        "GET /products" => list(app, request).await,
        "GET /products/{productId}" => get(app, request).await,
        "POST /products" => create(app, request, correlation_id).await,
        "PUT /products/{productId}" => replace(app, request, correlation_id).await,
        "DELETE /products/{productId}" => delete(app, request, correlation_id).await,
        "GET /health/catalog" => health(app).await,
        _ => Err(Problem::not_found(format!("no route {route}"))),
    }
}

async fn list(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let category = query_param(request, "category");
    let category = category.as_deref();
    let page = page_request(request, ProductStore::cursor_attributes(category))?;
    if let Some(after) = &page.after
        && !ProductStore::cursor_matches(category, after)
    {
        return Err(Problem::bad_request(
            "the cursor belongs to another listing",
        ));
    }
    let (items, last_key) = app.store.list(category, page).await.map_err(internal)?;
    let next_cursor = last_key.as_ref().and_then(encode_cursor);
    Ok(json_response(StatusCode::OK, &Page { items, next_cursor }))
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let product = load(app, &path_param(request, "productId")?).await?;
    Ok(json_response(StatusCode::OK, &product))
}

async fn create(
    app: &App,
    request: &Request,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let input: ProductInput = json_body(request, MAX_BODY_BYTES)?;
    let (product, created) = Product::create(new_product_id(), input, Utc::now());
    let event = Envelope::new(created, correlation_id);
    app.store
        .create(product.clone(), &event)
        .await
        .map_err(internal)?;
    tracing::info!(product_id = %product.id, event_id = %event.metadata.event_id, "product created");
    let mut response = json_response(StatusCode::CREATED, &product);
    if let Ok(location) = HeaderValue::from_str(&format!("/products/{}", product.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn replace(
    app: &App,
    request: &Request,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let id = path_param(request, "productId")?;
    let input: ProductInput = json_body(request, MAX_BODY_BYTES)?;
    let current = load(app, &id).await?;
    let (product, updated) = current.replace(input, Utc::now());
    let event = Envelope::new(updated, correlation_id);
    app.store
        .replace(product.clone(), current.version, &event)
        .await
        .map_err(write_error)?;
    tracing::info!(product_id = %product.id, version = product.version, "product replaced");
    Ok(json_response(StatusCode::OK, &product))
}

async fn delete(
    app: &App,
    request: &Request,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let current = load(app, &path_param(request, "productId")?).await?;
    let event = Envelope::new(current.delete(), correlation_id);
    app.store
        .delete(&current.id, current.version, &event)
        .await
        .map_err(write_error)?;
    tracing::info!(product_id = %current.id, "product deleted");
    Ok(empty_response(StatusCode::NO_CONTENT))
}

async fn health(app: &App) -> Result<Response<Body>, Problem> {
    if app.store.is_reachable().await {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "capability": "catalog"}),
        ))
    } else {
        Err(Problem::service_unavailable(
            "the catalog table is not reachable",
        ))
    }
}

async fn load(app: &App, id: &str) -> Result<Product, Problem> {
    if !is_product_id(id) {
        return Err(not_found(id));
    }
    app.store
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("no product {id}"))
}

fn write_error(error: StoreError) -> Problem {
    match error {
        StoreError::Conflict => {
            Problem::conflict("the product changed while this request ran; read it again and retry")
        }
        StoreError::NotFound => Problem::not_found("no such product"),
        other => internal(other),
    }
}

fn internal(error: StoreError) -> Problem {
    Problem::internal(&error)
}
