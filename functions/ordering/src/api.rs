//! Ordering's HTTP API function: the order routes of DESIGN §2 and §6. API Gateway has
//! matched the route and, on every order route, verified the token; this module decides
//! who may see what, calls the domain, persists and answers.
//!
//! An order is visible to its owner (and to admins, who read but do not act); to anyone
//! else it does not exist: 404, never a 403 that would confirm it does.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shop_events::ordering::CancellationReason;
use shop_events::{Address, Envelope, Money, OrderLine};
use shop_platform::Problem;
use shop_platform::http::page_request;
use shop_platform::http::{Identity, answer, health, json_response, path_param, require_user};
use shop_platform::metrics::Metrics;
use shop_platform::pagination::{CursorKey, Page, encode_cursor};
use shop_platform::store::TableError;

use crate::domain::{CancelOutcome, Order, OrderStatus, StatusChange, is_order_id};
use crate::metrics::Counted;
use crate::store::OrderStore;

/// A cancellation that loses a race with a consumer (stock confirmed, payment taken) reads
/// the order again and decides anew; this many times before answering 409.
const CANCEL_ATTEMPTS: usize = 3;

pub struct App {
    pub store: OrderStore,
    /// What its list's cursors are signed with: only what this API gave out decodes.
    pub cursors: CursorKey,
    /// Where a cancellation is counted (OrdersCancelled, `customer_request`).
    pub metrics: Metrics,
}

/// An order as the API shows it (DESIGN §6). Built from the stored order field by field,
/// so what is only for the shop's own use (the payment token, the version) cannot leak
/// into an answer by someone adding a field to [`Order`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView<'a> {
    id: &'a str,
    user_id: &'a str,
    status: OrderStatus,
    lines: &'a [OrderLine],
    total: &'a Money,
    shipping_address: &'a Address,
    status_history: &'a [StatusChange],
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<CancellationReason>,
    created_at: &'a str,
    updated_at: &'a str,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            id: &order.id,
            user_id: &order.user_id,
            status: order.status,
            lines: &order.lines,
            total: &order.total,
            shipping_address: &order.shipping_address,
            status_history: &order.status_history,
            cancellation_reason: order.cancellation_reason,
            created_at: &order.created_at,
            updated_at: &order.updated_at,
        }
    }
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(
        request,
        async |request, route, correlation_id| match route {
            "GET /orders" => list(app, request).await,
            "GET /orders/{orderId}" => get(app, request).await,
            "POST /orders/{orderId}/cancel" => cancel(app, request, correlation_id).await,
            "GET /health/ordering" => health("ordering", app.store.table()).await,
            _ => Err(Problem::no_route(route)),
        },
    )
    .await
}

/// The caller's orders, newest first.
async fn list(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let caller = require_user(request)?;
    let page = page_request(request, &app.cursors, OrderStore::CURSOR_ATTRIBUTES)?;
    if let Some(after) = &page.after
        && !OrderStore::cursor_belongs_to(&caller.user_id, after)
    {
        return Err(Problem::validation(vec![shop_platform::FieldError {
            field: "cursor".into(),
            message: "is not a cursor this list gave out".into(),
        }]));
    }
    let (orders, last_key) = app
        .store
        .list_for_user(&caller.user_id, page)
        .await
        .map_err(Problem::internal)?;
    let page = Page {
        items: orders.iter().map(OrderView::from).collect(),
        next_cursor: last_key
            .as_ref()
            .and_then(|key| encode_cursor(&app.cursors, key)),
    };
    Ok(json_response(StatusCode::OK, &page))
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    let caller = require_user(request)?;
    let order = load_visible(app, request, &caller, |order| {
        order.is_owned_by(&caller.user_id) || caller.is_admin
    })
    .await?;
    Ok(json_response(StatusCode::OK, &OrderView::from(&order)))
}

/// 202 with the order when the cancellation is accepted: `cancelled` before payment
/// (inventory, payment and shipping follow through its OrderCancelled), `cancelling` from
/// `paid` on (shipping is asked, and has the last word); 200 when it already was
/// cancelled or cancelling; 409 once it has shipped.
async fn cancel(
    app: &App,
    request: &Request,
    correlation_id: &str,
) -> Result<Response<Body>, Problem> {
    let caller = require_user(request)?;
    for _ in 0..CANCEL_ATTEMPTS {
        let mut order = load_visible(app, request, &caller, |order| {
            order.is_owned_by(&caller.user_id)
        })
        .await?;
        let read_version = order.version;
        let committed = match order.cancel_by_customer(Utc::now()) {
            CancelOutcome::Cancelled(event) => {
                let event = Envelope::new(event, correlation_id);
                let facts = event.data.counted();
                app.store
                    .change(&order, read_version, &event)
                    .await
                    .map(|()| (facts, event.metadata.event_id))
            }
            CancelOutcome::Requested(event) => {
                let event = Envelope::new(event, correlation_id);
                app.store
                    .change(&order, read_version, &event)
                    .await
                    .map(|()| (None, event.metadata.event_id))
            }
            CancelOutcome::AlreadyCancelled => {
                return Ok(json_response(StatusCode::OK, &OrderView::from(&order)));
            }
            CancelOutcome::TooLate => {
                return Err(Problem::conflict(format!(
                    "the order is {} and can no longer be cancelled",
                    order.status
                )));
            }
        };
        match committed {
            Ok((facts, event_id)) => {
                app.metrics.count_all(facts.as_slice());
                tracing::info!(order_id = %order.id, status = %order.status, event_id = %event_id, "cancellation asked by the owner");
                return Ok(json_response(
                    StatusCode::ACCEPTED,
                    &OrderView::from(&order),
                ));
            }
            Err(TableError::Conflict) => {
                tracing::info!(order_id = %order.id, "order changed while cancelling; reading it again");
            }
            Err(other) => return Err(Problem::internal(other)),
        }
    }
    Err(Problem::conflict(
        "the order kept changing while this request ran; read it again and retry",
    ))
}

/// The order the path names, if `may_see` lets the caller see it; otherwise the same 404
/// as for an order that does not exist.
async fn load_visible(
    app: &App,
    request: &Request,
    caller: &Identity,
    may_see: impl Fn(&Order) -> bool,
) -> Result<Order, Problem> {
    let id = path_param(request, "orderId")?;
    let not_found = || Problem::not_found(format!("no order {id}"));
    if !is_order_id(&id) {
        return Err(not_found());
    }
    let order = app.store.get(&id).await.map_err(Problem::internal)?;
    match order {
        Some(order) if may_see(&order) => Ok(order),
        Some(_) => {
            tracing::info!(order_id = %id, user_id = %caller.user_id, "order of another user asked for");
            Err(not_found())
        }
        None => Err(not_found()),
    }
}
