//! Who hears about an order, and what they hear (DESIGN §6, live updates). No I/O and no
//! AWS type here: the socket function and the consumer load connections, call these
//! functions and persist or push what they return.
//!
//! A connection belongs to the user whose token opened it. It hears its owner's orders,
//! and, once an admin's connection has asked for it ([`ClientRequest::SubscribeAll`]),
//! every order's: the operations view. Nothing else reaches it: a message names one
//! order, and the recipients of an update are computed from the order's owner, never
//! from what a client asked for.
//!
//! ```text
//!  $connect (token verified) ──▶ open ──{"action":"subscribe","scope":"all"} (admin)──▶ watching all
//!        │                        │
//!        ▼ refused                ▼ $disconnect, 410 Gone on a push, or TTL
//!   (no connection)             removed
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shop_events::ordering::{
    CancellationReason, OrderCancellationRequested, OrderCancelled, OrderDelivered, OrderPaid,
    OrderShipped, OrderStockConfirmed, OrderSubmitted,
};

/// API Gateway closes a WebSocket connection after two hours whatever happens; a
/// connection whose `$disconnect` never arrived (it is best effort) is forgotten by TTL a
/// little after that, and sooner by the first push that meets 410 Gone.
pub const CONNECTION_LIFETIME: Duration = Duration::hours(2);
const TTL_SLACK: Duration = Duration::minutes(10);

/// The group whose members are admins (Cognito's `cognito:groups` claim).
pub const ADMIN_GROUP: &str = "admin";

/// Who opened a connection, from the claims of the token it was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub admin: bool,
}

impl Identity {
    /// The user is `sub`; `cognito:groups` holding `admin` makes an admin (DESIGN §4),
    /// whether the claim is an array (a JWT's) or API Gateway's flattened `[a b]`.
    pub fn from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        let user_id = claims.get("sub")?.as_str()?.trim();
        if user_id.is_empty() {
            return None;
        }
        let admin = match claims.get("cognito:groups") {
            Some(serde_json::Value::Array(groups)) => groups
                .iter()
                .any(|group| group.as_str() == Some(ADMIN_GROUP)),
            Some(serde_json::Value::String(groups)) => groups
                .trim_matches(|c| c == '[' || c == ']')
                .split([' ', ','])
                .any(|group| group == ADMIN_GROUP),
            _ => false,
        };
        Some(Self {
            user_id: user_id.to_owned(),
            admin,
        })
    }
}

/// An open connection, as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub connection_id: String,
    pub user_id: String,
    pub admin: bool,
    pub connected_at: String,
    /// When the table may forget it (epoch seconds, DynamoDB's TTL attribute).
    pub expires_at: i64,
}

impl Connection {
    pub fn open(connection_id: &str, identity: Identity, now: DateTime<Utc>) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            user_id: identity.user_id,
            admin: identity.admin,
            connected_at: shop_events::timestamp(now),
            expires_at: (now + CONNECTION_LIFETIME + TTL_SLACK).timestamp(),
        }
    }

    /// Whether this connection may hear every order's updates.
    pub fn may_watch_all(&self) -> bool {
        self.admin
    }
}

/// What a client may send (`$default`, chosen by `action`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientRequest {
    /// The operations view: every order's updates. Admins only.
    Subscribe { scope: Scope },
    /// A keep-alive: API Gateway closes a connection idle for ten minutes.
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    All,
}

/// The answer to a client's message, sent back on its connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Reply {
    Subscribed { scope: &'static str },
    Pong,
    Error { status: u16, message: String },
}

/// What a client's message asks for, once decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Add the connection to the watchers of every order, then answer.
    WatchAll(Reply),
    /// Only answer.
    Answer(Reply),
}

/// Decides a client's message on `connection`: garbage and a shopper's request for
/// everyone's orders are answered with an error and change nothing.
pub fn decide(connection: &Connection, body: &str) -> Decision {
    if body.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Decision::Answer(Reply::Error {
            status: 413,
            message: format!("a message is at most {MAX_CLIENT_MESSAGE_BYTES} bytes"),
        });
    }
    match serde_json::from_str::<ClientRequest>(body) {
        Ok(ClientRequest::Ping) => Decision::Answer(Reply::Pong),
        Ok(ClientRequest::Subscribe { scope: Scope::All }) if connection.may_watch_all() => {
            Decision::WatchAll(Reply::Subscribed { scope: "all" })
        }
        Ok(ClientRequest::Subscribe { .. }) => Decision::Answer(Reply::Error {
            status: 403,
            message: "only an admin may follow every order".into(),
        }),
        Err(error) => Decision::Answer(Reply::Error {
            status: 400,
            message: format!(
                "expected {{\"action\": \"subscribe\", \"scope\": \"all\"}} or {{\"action\": \"ping\"}}: {error}"
            ),
        }),
    }
}

/// Nothing a client may send needs more.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 1024;

/// An order's status, as ordering names it (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Submitted,
    StockConfirmed,
    Paid,
    Cancelling,
    Cancelled,
    Shipped,
    Delivered,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Submitted => "submitted",
            OrderStatus::StockConfirmed => "stock_confirmed",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelling => "cancelling",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
        }
    }
}

/// The message a connection receives: `{"type": "orderStatus", "orderId", "status", "at",
/// "reason"?}`. `at` is when ordering recorded the change (the event's `occurredAt`):
/// pushes may arrive out of order, and a client orders them by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderUpdate {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub order_id: String,
    pub status: OrderStatus,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancellationReason>,
    /// Whose order it is: decides the recipients, never sent (a watcher sees the order id).
    #[serde(skip)]
    pub owner: String,
}

/// One of the order events notifications follows, already checked against its contract.
#[derive(Debug, Clone)]
pub enum OrderEvent {
    Submitted(OrderSubmitted),
    StockConfirmed(OrderStockConfirmed),
    Paid(OrderPaid),
    CancellationRequested(OrderCancellationRequested),
    Cancelled(OrderCancelled),
    Shipped(OrderShipped),
    Delivered(OrderDelivered),
}

impl OrderEvent {
    /// The update it announces; `occurred_at` is the event's own instant.
    pub fn update(self, occurred_at: &str) -> OrderUpdate {
        let (order_id, owner, status, reason) = match self {
            OrderEvent::Submitted(e) => (e.order_id, e.user_id, OrderStatus::Submitted, None),
            OrderEvent::StockConfirmed(e) => {
                (e.order_id, e.user_id, OrderStatus::StockConfirmed, None)
            }
            OrderEvent::Paid(e) => (e.order_id, e.user_id, OrderStatus::Paid, None),
            OrderEvent::CancellationRequested(e) => {
                (e.order_id, e.user_id, OrderStatus::Cancelling, None)
            }
            OrderEvent::Cancelled(e) => (
                e.order_id,
                e.user_id,
                OrderStatus::Cancelled,
                Some(e.reason),
            ),
            OrderEvent::Shipped(e) => (e.order_id, e.user_id, OrderStatus::Shipped, None),
            OrderEvent::Delivered(e) => (e.order_id, e.user_id, OrderStatus::Delivered, None),
        };
        OrderUpdate {
            kind: "orderStatus",
            order_id,
            status,
            at: occurred_at.to_owned(),
            reason,
            owner,
        }
    }
}

/// The connections an update goes to: the owner's own, and those watching every order
/// (an admin's), each once. A connection listed under the owner but opened by someone
/// else (a corrupted or hand-written item) is left out: a user only ever hears their own
/// orders.
pub fn recipients<'a>(
    update: &OrderUpdate,
    owners: &'a [Connection],
    watchers: &'a [Connection],
) -> Vec<&'a Connection> {
    let mut seen = BTreeSet::new();
    owners
        .iter()
        .filter(|connection| connection.user_id == update.owner)
        .chain(
            watchers
                .iter()
                .filter(|connection| connection.may_watch_all()),
        )
        .filter(|connection| seen.insert(connection.connection_id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(id: &str, user: &str, admin: bool) -> Connection {
        Connection::open(
            id,
            Identity {
                user_id: user.into(),
                admin,
            },
            Utc::now(),
        )
    }

    fn claims(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    const ORDER: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

    fn cancelled(owner: &str) -> OrderUpdate {
        OrderEvent::Cancelled(OrderCancelled {
            order_id: ORDER.into(),
            user_id: owner.into(),
            reason: CancellationReason::CustomerRequest,
        })
        .update("2026-12-07T10:00:00.000Z")
    }

    #[test]
    fn the_identity_is_the_subject_and_the_admin_group() {
        let shopper = Identity::from_claims(&claims(json!({"sub": "ann"})));
        assert_eq!(
            shopper,
            Some(Identity {
                user_id: "ann".into(),
                admin: false
            })
        );
        let admin = Identity::from_claims(&claims(
            json!({"sub": "op", "cognito:groups": ["staff", "admin"]}),
        ));
        assert_eq!(admin.map(|identity| identity.admin), Some(true));
        let flattened = Identity::from_claims(&claims(
            json!({"sub": "op", "cognito:groups": "[staff admin]"}),
        ));
        assert_eq!(flattened.map(|identity| identity.admin), Some(true));
        let lookalike = Identity::from_claims(&claims(
            json!({"sub": "op", "cognito:groups": ["administrators"]}),
        ));
        assert_eq!(lookalike.map(|identity| identity.admin), Some(false));
        assert_eq!(Identity::from_claims(&claims(json!({"sub": "  "}))), None);
        assert_eq!(Identity::from_claims(&claims(json!({"sub": 7}))), None);
        assert_eq!(Identity::from_claims(&claims(json!({}))), None);
    }

    #[test]
    fn a_connection_is_forgotten_after_api_gateways_two_hours() {
        let now = Utc::now();
        let open = Connection::open(
            "c1",
            Identity {
                user_id: "ann".into(),
                admin: false,
            },
            now,
        );
        assert!(open.expires_at > (now + CONNECTION_LIFETIME).timestamp());
        assert!(open.expires_at <= (now + CONNECTION_LIFETIME + Duration::hours(1)).timestamp());
    }

    #[test]
    fn only_an_admin_may_watch_every_order() {
        let subscribe = r#"{"action": "subscribe", "scope": "all"}"#;
        assert_eq!(
            decide(&connection("a", "op", true), subscribe),
            Decision::WatchAll(Reply::Subscribed { scope: "all" })
        );
        match decide(&connection("s", "ann", false), subscribe) {
            Decision::Answer(Reply::Error { status: 403, .. }) => {}
            other => panic!("a shopper must be refused: {other:?}"),
        }
    }

    #[test]
    fn garbage_is_answered_and_changes_nothing() {
        let shopper = connection("s", "ann", false);
        for body in [
            "",
            "not json",
            "[]",
            r#"{"action": "subscribe"}"#,
            r#"{"action": "subscribe", "scope": "mine"}"#,
            r#"{"action": "subscribe", "scope": "all", "userId": "bob"}"#,
            r#"{"action": "unsubscribe"}"#,
        ] {
            match decide(&shopper, body) {
                Decision::Answer(Reply::Error { status: 400, .. }) => {}
                other => panic!("{body:?} must be refused as a bad request: {other:?}"),
            }
        }
        let huge = format!(r#"{{"action": "ping", "pad": "{}"}}"#, "x".repeat(4096));
        assert!(matches!(
            decide(&shopper, &huge),
            Decision::Answer(Reply::Error { status: 413, .. })
        ));
        assert_eq!(
            decide(&shopper, r#"{"action":"ping"}"#),
            Decision::Answer(Reply::Pong)
        );
    }

    #[test]
    fn an_update_is_the_contracts_message_and_never_names_the_owner() {
        let message = serde_json::to_value(cancelled("ann")).unwrap_or_default();
        assert_eq!(
            message,
            json!({"type": "orderStatus", "orderId": ORDER, "status": "cancelled",
                   "at": "2026-12-07T10:00:00.000Z", "reason": "customer_request"})
        );
        let shipped = OrderEvent::Shipped(OrderShipped {
            order_id: ORDER.into(),
            user_id: "ann".into(),
        })
        .update("2026-12-07T10:00:00.000Z");
        let message = serde_json::to_value(shipped).unwrap_or_default();
        assert_eq!(message.get("reason"), None);
        assert_eq!(message.get("status"), Some(&json!("shipped")));
    }

    #[test]
    fn a_status_reads_in_a_log_as_it_does_in_a_message() {
        for status in [
            OrderStatus::Submitted,
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Cancelling,
            OrderStatus::Cancelled,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(json!(status.as_str()))
            );
        }
    }

    #[test]
    fn every_followed_event_names_its_status() {
        let cases = [
            (
                OrderEvent::CancellationRequested(OrderCancellationRequested {
                    order_id: ORDER.into(),
                    user_id: "u".into(),
                }),
                OrderStatus::Cancelling,
            ),
            (
                OrderEvent::Delivered(OrderDelivered {
                    order_id: ORDER.into(),
                    user_id: "u".into(),
                }),
                OrderStatus::Delivered,
            ),
            (
                OrderEvent::Shipped(OrderShipped {
                    order_id: ORDER.into(),
                    user_id: "u".into(),
                }),
                OrderStatus::Shipped,
            ),
        ];
        for (event, status) in cases {
            assert_eq!(event.update("2026-12-07T10:00:00.000Z").status, status);
        }
    }

    #[test]
    fn an_update_reaches_its_owner_and_the_watchers_only_once_each() {
        let update = cancelled("ann");
        let owners = [
            connection("ann-phone", "ann", false),
            connection("ann-laptop", "ann", false),
        ];
        let watchers = [
            connection("ops", "op", true),
            connection("ann-phone", "ann", false),
        ];
        let ids: Vec<&str> = recipients(&update, &owners, &watchers)
            .iter()
            .map(|connection| connection.connection_id.as_str())
            .collect();
        // ann-phone is listed as a watcher by a forged item, but ann is no admin: it still
        // hears her order once, as its owner.
        assert_eq!(ids, ["ann-phone", "ann-laptop", "ops"]);
    }

    #[test]
    fn a_user_never_hears_another_users_order() {
        let update = cancelled("ann");
        // An item under ann's partition that says it is bob's, and a shopper among the
        // watchers: neither may hear ann's order.
        let owners = [connection("bob-phone", "bob", false)];
        let watchers = [connection("bob-laptop", "bob", false)];
        assert!(recipients(&update, &owners, &watchers).is_empty());
    }
}
