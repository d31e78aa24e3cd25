//! The catalog's HTTP API function: every catalog route of DESIGN §2 and §6. API
//! Gateway has matched the route (and, for writes, verified the token); this module
//! authorizes, parses, calls the domain, persists and answers.

use chrono::Utc;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shop_events::{Envelope, is_ulid, new_ulid};
use shop_platform::Problem;
use shop_platform::http::page_request;
use shop_platform::http::{
    answer, empty_response, health, json_body, json_response, path_param, query_param,
    require_admin, route_key,
};
use shop_platform::pagination::{CursorKey, Page, encode_cursor};
use shop_platform::store::TableError;

use crate::domain::{Product, ProductInput};
use crate::store::ProductStore;

/// A product is a few kilobytes at most; anything far larger is not one.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The public reads may be served from a cache for this long: the listing is already
/// eventually consistent (DESIGN §6), and 5 s keeps an edit visible within seconds while
/// the storefront's CloudFront distribution answers almost every read itself. Browsers
/// honour it too, so a shopper going back to a page within 5 s asks nobody.
const PUBLIC_READ_CACHE: &str = "public, max-age=5";
/// An error is never cached: a product created a moment after someone asked for it must
/// not stay missing at the edge.
const NEVER_CACHE: &str = "no-store";

pub struct App {
    pub store: ProductStore,
    /// What its list's cursors are signed with: only what this API gave out decodes.
    pub cursors: CursorKey,
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let public_read = matches!(
        route_key(&request).as_str(),
        "GET /products" | "GET /products/{productId}"
    );
    let mut response = answer(
        request,
        async |request, route, correlation_id| match route {
            "GET /products" => list(app, request).await,
            "GET /products/{productId}" => get(app, request).await,
            "POST /products" => create(app, request, correlation_id).await,
            "PUT /products/{productId}" => replace(app, request, correlation_id).await,
            "DELETE /products/{productId}" => delete(app, request, correlation_id).await,
            "GET /health/catalog" => health("catalog", app.store.table()).await,
            _ => Err(Problem::no_route(route)),
        },
    )
    .await;
    if public_read {
        let policy = if response.status().is_success() {
            PUBLIC_READ_CACHE
        } else {
            NEVER_CACHE
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

async fn list(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let category = query_param(request, "category");
    let category = category.as_deref();
    let page = page_request(
        request,
        &app.cursors,
        ProductStore::cursor_attributes(category),
    )?;
    if let Some(after) = &page.after
        && !ProductStore::cursor_matches(category, after)
    {
        return Err(Problem::bad_request(
            "the cursor belongs to another listing",
        ));
    }
    let (items, last_key) = app
        .store
        .list(category, page)
        .await
        .map_err(Problem::internal)?;
    let next_cursor = last_key
        .as_ref()
        .and_then(|key| encode_cursor(&app.cursors, key));
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
    let (product, created) = Product::create(new_ulid(), input, Utc::now());
    let event = Envelope::new(created, correlation_id);
    app.store
        .create(product.clone(), &event)
        .await
        .map_err(Problem::internal)?;
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

async fn load(app: &App, id: &str) -> Result<Product, Problem> {
    if !is_ulid(id) {
        return Err(not_found(id));
    }
    app.store
        .get(id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("no product {id}"))
}

fn write_error(error: TableError) -> Problem {
    match error {
        TableError::Conflict => {
            Problem::conflict("the product changed while this request ran; read it again and retry")
        }
        other => Problem::internal(other),
    }
}
