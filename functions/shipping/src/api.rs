//! Shipping's HTTP API function: the admin routes of DESIGN §2 and §6 and its health
//! check. API Gateway has matched the route and, on every shipment route, verified the
//! token; this module checks the caller is an admin, calls the domain, persists and
//! answers.

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shop_events::{Address, DomainEvent, Envelope};
use shop_platform::http::page_request;
use shop_platform::http::{answer, health, json_response, path_param, query_param, require_admin};
use shop_platform::pagination::{CursorKey, Page, encode_cursor};
use shop_platform::store::TableError;
use shop_platform::{FieldError, Problem};

use crate::domain::{
    NotAllowed, Shipment, ShipmentLine, ShipmentStatus, StatusChange, is_order_id,
};
use crate::store::ShipmentStore;

/// A dispatch or delivery that loses a race with a cancellation (or another admin) reads
/// the shipment again and decides anew; this many times before answering 409.
const CHANGE_ATTEMPTS: usize = 3;

pub struct App {
    pub store: ShipmentStore,
    /// What its list's cursors are signed with: only what this API gave out decodes.
    pub cursors: CursorKey,
}

/// A shipment as the API shows it (DESIGN §6). Built field by field, so what is only for
/// the shop's own use (the version, the tombstone's expiry) cannot leak into an answer by
/// someone adding a field to [`Shipment`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentView<'a> {
    order_id: &'a str,
    status: ShipmentStatus,
    /// `null` for an order cancelled before shipping knew where it was going.
    shipping_address: Option<&'a Address>,
    lines: &'a [ShipmentLine],
    status_history: &'a [StatusChange],
    created_at: &'a str,
    updated_at: &'a str,
}

impl<'a> From<&'a Shipment> for ShipmentView<'a> {
    fn from(shipment: &'a Shipment) -> Self {
        Self {
            order_id: &shipment.order_id,
            status: shipment.status,
            shipping_address: shipment.shipping_address.as_ref(),
            lines: &shipment.lines,
            status_history: &shipment.status_history,
            created_at: &shipment.created_at,
            updated_at: &shipment.updated_at,
        }
    }
}

/// Answers one request. Never fails: every error is a problem+json response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(
        request,
        async |request, route, correlation_id| match route {
            "GET /shipments" => list(app, request).await,
            "GET /shipments/{orderId}" => get(app, request).await,
            "POST /shipments/{orderId}/dispatch" => {
                change(app, request, correlation_id, Shipment::dispatch).await
            }
            "POST /shipments/{orderId}/deliver" => {
                change(app, request, correlation_id, Shipment::deliver).await
            }
            "GET /health/shipping" => health("shipping", app.store.table()).await,
            _ => Err(Problem::no_route(route)),
        },
    )
    .await
}

/// The shipments in one status, most recently changed first: an admin's work list.
async fn list(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let status = listed_status(request)?;
    let page = page_request(request, &app.cursors, ShipmentStore::CURSOR_ATTRIBUTES)?;
    if let Some(after) = &page.after
        && !ShipmentStore::cursor_belongs_to(status, after)
    {
        return Err(invalid(
            "cursor",
            format!("is not a cursor this list of {status} shipments gave out"),
        ));
    }
    let (shipments, last_key) = app
        .store
        .list_by_status(status, page)
        .await
        .map_err(Problem::internal)?;
    let page = Page {
        items: shipments.iter().map(ShipmentView::from).collect(),
        next_cursor: last_key
            .as_ref()
            .and_then(|key| encode_cursor(&app.cursors, key)),
    };
    Ok(json_response(StatusCode::OK, &page))
}

/// `?status=`, required: the index holds shipments by status, and a list of every
/// shipment there ever was is nobody's work list.
fn listed_status(request: &Request) -> Result<ShipmentStatus, Problem> {
    let allowed = || {
        let names: Vec<&str> = ShipmentStatus::ALL.iter().map(|s| s.as_str()).collect();
        names.join(", ")
    };
    match query_param(request, "status") {
        None => Err(invalid(
            "status",
            format!("is required: one of {}", allowed()),
        )),
        Some(name) => ShipmentStatus::parse(&name)
            .ok_or_else(|| invalid("status", format!("must be one of {}", allowed()))),
    }
}

fn invalid(field: &str, message: String) -> Problem {
    Problem::validation(vec![FieldError {
        field: field.to_owned(),
        message,
    }])
}

async fn get(app: &App, request: &Request) -> Result<Response<Body>, Problem> {
    require_admin(request)?;
    let shipment = load(app, request).await?;
    Ok(json_response(
        StatusCode::OK,
        &ShipmentView::from(&shipment),
    ))
}

/// Dispatch or delivery: 200 with the shipment as changed, 409 when its status does not
/// allow it (saying which status it is in), 404 when the order has no shipment.
async fn change<T: DomainEvent>(
    app: &App,
    request: &Request,
    correlation_id: &str,
    transition: fn(&mut Shipment, DateTime<Utc>) -> Result<T, NotAllowed>,
) -> Result<Response<Body>, Problem> {
    let admin = require_admin(request)?;
    for _ in 0..CHANGE_ATTEMPTS {
        let mut shipment = load(app, request).await?;
        let read_version = shipment.version;
        let raised = transition(&mut shipment, Utc::now())
            .map_err(|refused| Problem::conflict(format!("{refused}")))?;
        let event = Envelope::new(raised, correlation_id);
        match app.store.change(&shipment, read_version, &event).await {
            Ok(()) => {
                tracing::info!(order_id = %shipment.order_id, status = %shipment.status, admin = %admin.user_id, event_id = %event.metadata.event_id, "shipment moved on");
                return Ok(json_response(
                    StatusCode::OK,
                    &ShipmentView::from(&shipment),
                ));
            }
            Err(TableError::Conflict) => {
                tracing::info!(order_id = %shipment.order_id, "shipment changed meanwhile; reading it again");
            }
            Err(other) => return Err(Problem::internal(other)),
        }
    }
    Err(Problem::conflict(
        "the shipment kept changing while this request ran; read it again and retry",
    ))
}

/// The shipment the path names; 404 for an id that cannot name one, as for an order
/// without a shipment.
async fn load(app: &App, request: &Request) -> Result<Shipment, Problem> {
    let order_id = path_param(request, "orderId")?;
    let not_found = || Problem::not_found(format!("no shipment for order {order_id}"));
    if !is_order_id(&order_id) {
        return Err(not_found());
    }
    app.store
        .get(&order_id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(not_found)
}
