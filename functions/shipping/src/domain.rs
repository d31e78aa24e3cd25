//! Shipments and their life (DESIGN §3, steps 7 and 8). No I/O and no AWS type here: the
//! consumer and the API load a shipment, call one of these methods and persist what it
//! returns.
//!
//! Every status change is a guarded method on [`Shipment`]: it checks that the current
//! status allows it, records the change in the status history, moves the version on, and
//! returns the event the change raises (cancelling raises none: the contract has no event
//! for it). A change the current status does not allow changes nothing and says so
//! ([`NotAllowed`]); that is how an admin's second click, or a late event, is recognised.
//!
//! ```text
//!  (OrderPaid) ──prepare──▶ pending ──dispatch──▶ dispatched ──deliver──▶ delivered
//!                              │
//!                              │ cancel (OrderCancelled)
//!                              ▼
//!  (OrderCancelled first) ──▶ cancelled
//! ```
//!
//! The bus does not keep order: a customer's OrderCancelled can overtake the OrderPaid it
//! follows. When it does, shipping records a cancelled tombstone ([`Shipment::tombstone`])
//! in the place of the shipment, so the late OrderPaid finds a shipment and prepares none.
//!
//! From `paid` on, a customer's cancellation is a request that shipping answers
//! ([`Shipment::answer_cancellation`], DESIGN §3 step 8): only shipping knows whether the
//! parcel has left. A shipment that has not left is cancelled (it can no longer be
//! dispatched) and the answer is ShipmentCancelled; one that has is left alone and the
//! answer is ShipmentCancellationRefused. The cancel and an admin's dispatch both write
//! conditionally on the version they read, so exactly one of them wins.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shop_events::ordering::OrderPaid;
use shop_events::shipping::{
    ShipmentCancellationRefused, ShipmentCancelled, ShipmentDelivered, ShipmentDispatched,
};
use shop_events::{Address, LineQuantity, is_ulid, timestamp};

/// How long a tombstone is kept. The OrderPaid it stands in the way of can come back at
/// most as long as SQS keeps a message (14 days) plus a re-drive from the dead-letter
/// queue after someone looked at it: a month covers both, and then TTL removes it.
pub const TOMBSTONE_RETENTION_DAYS: i64 = 30;

/// Where a shipment is in its life. Stored, answered and asked for (`?status=`) in
/// snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    Pending,
    Dispatched,
    Delivered,
    Cancelled,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 4] = [
        ShipmentStatus::Pending,
        ShipmentStatus::Dispatched,
        ShipmentStatus::Delivered,
        ShipmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Pending => "pending",
            ShipmentStatus::Dispatched => "dispatched",
            ShipmentStatus::Delivered => "delivered",
            ShipmentStatus::Cancelled => "cancelled",
        }
    }

    /// The status a client names, spelt exactly as the API answers it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Whether the parcel has left the warehouse: nothing can call it back.
    pub fn has_left(self) -> bool {
        matches!(self, ShipmentStatus::Dispatched | ShipmentStatus::Delivered)
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One product of the parcel. Prices stay with ordering and payment: the warehouse needs
/// to know what to pack, not what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentLine {
    pub product_id: String,
    pub name: String,
    pub quantity: u32,
}

/// One entry of a shipment's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: ShipmentStatus,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
}

/// A shipment: one per paid order, keyed by the order's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    pub order_id: String,
    pub user_id: String,
    pub status: ShipmentStatus,
    /// Where the parcel goes; `None` only on a tombstone, which never knew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    pub lines: Vec<ShipmentLine>,
    /// Every status the shipment has been in, oldest first; the last entry is `status`.
    pub status_history: Vec<StatusChange>,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1 and grows with every status change; writes are conditional on it, so an
    /// admin's dispatch and a customer's cancellation never both win.
    pub version: u64,
    /// When DynamoDB's TTL may remove the item (epoch seconds). Only a tombstone expires:
    /// a real shipment is the record of what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The status changes a shipment knows, by the name of the method that makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    Dispatch,
    Deliver,
    Cancel,
}

impl Transition {
    pub const ALL: [Transition; 3] = [
        Transition::Dispatch,
        Transition::Deliver,
        Transition::Cancel,
    ];

    /// The rules of DESIGN §6 in one place: the status each change may start from.
    fn allowed_from(self) -> ShipmentStatus {
        match self {
            Transition::Dispatch => ShipmentStatus::Pending,
            Transition::Deliver => ShipmentStatus::Dispatched,
            // Until the parcel has left; after that the customer's cancellation is too late.
            Transition::Cancel => ShipmentStatus::Pending,
        }
    }

    fn target(self) -> ShipmentStatus {
        match self {
            Transition::Dispatch => ShipmentStatus::Dispatched,
            Transition::Deliver => ShipmentStatus::Delivered,
            Transition::Cancel => ShipmentStatus::Cancelled,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Transition::Dispatch => "dispatch",
            Transition::Deliver => "deliver",
            Transition::Cancel => "cancel",
        }
    }
}

/// A status change the shipment's current status does not allow. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a shipment that is {status}", .transition.verb())]
pub struct NotAllowed {
    pub transition: Transition,
    pub status: ShipmentStatus,
}

/// Shipping's answer to a customer's request to cancel a paid order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancellationAnswer {
    /// The shipment can no longer be dispatched: cancelled now (`changed`), or already.
    Cancelled {
        event: ShipmentCancelled,
        changed: bool,
    },
    /// The parcel had left: nothing changed.
    Refused(ShipmentCancellationRefused),
}

/// An OrderPaid no parcel could be packed from. Ordering validates orders, so this is a
/// broken or forged event, never a customer's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot ship order {order_id:?}: {why}")]
pub struct InvalidOrder {
    pub order_id: String,
    pub why: String,
}

impl Shipment {
    /// The shipment a paid order asks for, `pending` until an admin dispatches it.
    pub fn prepare(paid: OrderPaid, now: DateTime<Utc>) -> Result<Shipment, InvalidOrder> {
        let invalid = |why: &str| InvalidOrder {
            order_id: paid.order_id.clone(),
            why: why.to_owned(),
        };
        if !is_order_id(&paid.order_id) {
            return Err(invalid("not an order id"));
        }
        if paid.lines.is_empty() {
            return Err(invalid("the order has no lines"));
        }
        if paid
            .lines
            .iter()
            .any(|line| line.product_id.is_empty() || line.quantity == 0)
        {
            return Err(invalid("a line names no product or no quantity"));
        }
        let lines = paid
            .lines
            .into_iter()
            .map(|line| ShipmentLine {
                product_id: line.product_id,
                name: line.name,
                quantity: line.quantity,
            })
            .collect();
        Ok(Self::first(
            paid.order_id,
            paid.user_id,
            ShipmentStatus::Pending,
            Some(paid.shipping_address),
            lines,
            None,
            now,
        ))
    }

    /// What stands in for the shipment of an order cancelled before its OrderPaid was seen
    /// (or never paid at all): cancelled from the start, with nothing to send, and expiring
    /// once no OrderPaid for it can still arrive.
    pub fn tombstone(order_id: &str, user_id: &str, now: DateTime<Utc>) -> Shipment {
        let expires_at = (now + Duration::days(TOMBSTONE_RETENTION_DAYS)).timestamp();
        Self::first(
            order_id.to_owned(),
            user_id.to_owned(),
            ShipmentStatus::Cancelled,
            None,
            Vec::new(),
            Some(expires_at),
            now,
        )
    }

    fn first(
        order_id: String,
        user_id: String,
        status: ShipmentStatus,
        shipping_address: Option<Address>,
        lines: Vec<ShipmentLine>,
        expires_at: Option<i64>,
        now: DateTime<Utc>,
    ) -> Shipment {
        let at = timestamp(now);
        Shipment {
            order_id,
            user_id,
            status,
            shipping_address,
            lines,
            status_history: vec![StatusChange {
                status,
                at: at.clone(),
            }],
            created_at: at.clone(),
            updated_at: at,
            version: 1,
            expires_at,
        }
    }

    /// The parcel left: inventory turns the order's reservation into shipped stock and
    /// ordering marks the order shipped.
    pub fn dispatch(&mut self, now: DateTime<Utc>) -> Result<ShipmentDispatched, NotAllowed> {
        self.change(Transition::Dispatch, now)?;
        Ok(ShipmentDispatched {
            order_id: self.order_id.clone(),
            lines: self
                .lines
                .iter()
                .map(|line| LineQuantity {
                    product_id: line.product_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        })
    }

    /// The parcel arrived.
    pub fn deliver(&mut self, now: DateTime<Utc>) -> Result<ShipmentDelivered, NotAllowed> {
        self.change(Transition::Deliver, now)?;
        Ok(ShipmentDelivered {
            order_id: self.order_id.clone(),
        })
    }

    /// The order was cancelled before the parcel left: nothing will be sent. No event: the
    /// other capabilities learn of the cancellation from ordering's OrderCancelled.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), NotAllowed> {
        self.change(Transition::Cancel, now)
    }

    /// The customer asked to cancel the paid order: cancel the shipment unless the parcel
    /// has left, and say which. Asked again, the answer is the same.
    pub fn answer_cancellation(&mut self, now: DateTime<Utc>) -> CancellationAnswer {
        let order_id = self.order_id.clone();
        match self.cancel(now) {
            Ok(()) => CancellationAnswer::Cancelled {
                event: ShipmentCancelled { order_id },
                changed: true,
            },
            Err(refused) if refused.status.has_left() => {
                CancellationAnswer::Refused(ShipmentCancellationRefused { order_id })
            }
            Err(_) => CancellationAnswer::Cancelled {
                event: ShipmentCancelled { order_id },
                changed: false,
            },
        }
    }

    /// Whether this is a tombstone rather than a shipment that was ever prepared.
    pub fn is_tombstone(&self) -> bool {
        self.expires_at.is_some()
    }

    /// The one place a shipment's status moves: guarded, recorded, versioned.
    fn change(&mut self, transition: Transition, now: DateTime<Utc>) -> Result<(), NotAllowed> {
        if self.status != transition.allowed_from() {
            return Err(NotAllowed {
                transition,
                status: self.status,
            });
        }
        let at = timestamp(now);
        self.status = transition.target();
        self.status_history.push(StatusChange {
            status: self.status,
            at: at.clone(),
        });
        self.updated_at = at;
        self.version += 1;
        Ok(())
    }
}

/// Order ids are ULIDs minted by basket at checkout, in their one canonical spelling;
/// anything else cannot name a shipment.
pub fn is_order_id(id: &str) -> bool {
    is_ulid(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShipmentStatus::*;
    use shop_events::{Money, OrderLine};

    const ORDER: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn address() -> Address {
        Address {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    fn paid() -> OrderPaid {
        OrderPaid {
            order_id: ORDER.into(),
            user_id: "user-1".into(),
            lines: vec![
                OrderLine {
                    product_id: "01JDKQ8M3ZP7G5V4X2N6R9T1CB".into(),
                    name: "The Rust Programming Language".into(),
                    unit_price: Money::usd(3999),
                    quantity: 1,
                },
                OrderLine {
                    product_id: "01JDKQ9T6WB2C4D6F8H0J2K4M6".into(),
                    name: "Ferris mug".into(),
                    unit_price: Money::usd(1250),
                    quantity: 2,
                },
            ],
            total: Money::usd(6499),
            shipping_address: address(),
        }
    }

    fn pending() -> Shipment {
        Shipment::prepare(paid(), at(1_000)).unwrap()
    }

    /// A shipment brought to `status` through the methods themselves, the way it gets there
    /// in production; `cancelled` is a prepared shipment that was cancelled, not a tombstone.
    fn shipment_in(status: ShipmentStatus) -> Shipment {
        let mut shipment = pending();
        let path: &[Transition] = match status {
            Pending => &[],
            Dispatched => &[Transition::Dispatch],
            Delivered => &[Transition::Dispatch, Transition::Deliver],
            Cancelled => &[Transition::Cancel],
        };
        for transition in path {
            apply(&mut shipment, *transition, at(2_000)).unwrap();
        }
        assert_eq!(shipment.status, status);
        shipment
    }

    /// Runs one transition by its method.
    fn apply(
        shipment: &mut Shipment,
        transition: Transition,
        now: DateTime<Utc>,
    ) -> Result<(), NotAllowed> {
        match transition {
            Transition::Dispatch => shipment.dispatch(now).map(drop),
            Transition::Deliver => shipment.deliver(now).map(drop),
            Transition::Cancel => shipment.cancel(now),
        }
    }

    #[test]
    fn a_paid_order_becomes_a_pending_shipment_of_its_lines_to_its_address() {
        let shipment = pending();
        assert_eq!(shipment.order_id, ORDER);
        assert_eq!(shipment.user_id, "user-1");
        assert_eq!(shipment.status, Pending);
        assert_eq!(shipment.shipping_address, Some(address()));
        assert_eq!(
            shipment.lines,
            [
                ShipmentLine {
                    product_id: "01JDKQ8M3ZP7G5V4X2N6R9T1CB".into(),
                    name: "The Rust Programming Language".into(),
                    quantity: 1
                },
                ShipmentLine {
                    product_id: "01JDKQ9T6WB2C4D6F8H0J2K4M6".into(),
                    name: "Ferris mug".into(),
                    quantity: 2
                },
            ]
        );
        assert_eq!(shipment.created_at, "1970-01-01T00:16:40.000Z");
        assert_eq!(shipment.updated_at, shipment.created_at);
        assert_eq!(
            shipment.status_history,
            [StatusChange {
                status: Pending,
                at: shipment.created_at.clone()
            }]
        );
        assert_eq!(shipment.version, 1);
        assert_eq!(shipment.expires_at, None, "a real shipment never expires");
        assert!(!shipment.is_tombstone());
    }

    /// The whole state machine: every status against every transition. The expected
    /// table is written out here rather than derived from the rules it checks.
    #[test]
    fn every_transition_from_every_status_does_exactly_what_the_design_allows() {
        let expected = |from: ShipmentStatus, transition: Transition| match (from, transition) {
            (Pending, Transition::Dispatch) => Some(Dispatched),
            (Pending, Transition::Cancel) => Some(Cancelled),
            (Dispatched, Transition::Deliver) => Some(Delivered),
            _ => None,
        };
        let mut allowed = 0;
        for from in ShipmentStatus::ALL {
            for transition in Transition::ALL {
                let before = shipment_in(from);
                let mut shipment = before.clone();
                let outcome = apply(&mut shipment, transition, at(9_000));
                match expected(from, transition) {
                    Some(to) => {
                        allowed += 1;
                        assert_eq!(outcome, Ok(()), "{from} × {transition:?}");
                        assert_eq!(shipment.status, to, "{from} × {transition:?}");
                        assert_eq!(shipment.version, before.version + 1);
                        assert_eq!(shipment.updated_at, "1970-01-01T02:30:00.000Z");
                        assert_eq!(shipment.created_at, before.created_at);
                        assert_eq!(
                            shipment.status_history.len(),
                            before.status_history.len() + 1
                        );
                        assert_eq!(
                            shipment.status_history.last(),
                            Some(&StatusChange {
                                status: to,
                                at: shipment.updated_at.clone()
                            })
                        );
                    }
                    None => {
                        assert_eq!(
                            outcome,
                            Err(NotAllowed {
                                transition,
                                status: from
                            }),
                            "{from} × {transition:?} must be refused"
                        );
                        assert_eq!(shipment, before, "{from} × {transition:?} changed it");
                    }
                }
            }
        }
        assert_eq!(allowed, 3);
    }

    #[test]
    fn dispatch_tells_inventory_which_units_leave() {
        let mut shipment = pending();
        let event = shipment.dispatch(at(2_000)).unwrap();
        assert_eq!(
            event,
            ShipmentDispatched {
                order_id: ORDER.into(),
                lines: vec![
                    LineQuantity {
                        product_id: "01JDKQ8M3ZP7G5V4X2N6R9T1CB".into(),
                        quantity: 1
                    },
                    LineQuantity {
                        product_id: "01JDKQ9T6WB2C4D6F8H0J2K4M6".into(),
                        quantity: 2
                    },
                ]
            }
        );
        assert_eq!(
            shipment.deliver(at(3_000)),
            Ok(ShipmentDelivered {
                order_id: ORDER.into()
            })
        );
    }

    #[test]
    fn a_second_dispatch_is_refused_and_names_the_current_status() {
        let mut shipment = pending();
        shipment.dispatch(at(2_000)).unwrap();
        let once = shipment.clone();
        let refused = shipment.dispatch(at(3_000)).unwrap_err();
        assert_eq!(refused.status, Dispatched);
        assert_eq!(
            refused.to_string(),
            "cannot dispatch a shipment that is dispatched"
        );
        assert_eq!(shipment, once);
    }

    #[test]
    fn a_tombstone_is_cancelled_empty_and_expires_after_thirty_days() {
        let tombstone = Shipment::tombstone(ORDER, "user-1", at(1_000));
        assert_eq!(tombstone.status, Cancelled);
        assert_eq!(tombstone.shipping_address, None);
        assert!(tombstone.lines.is_empty());
        assert_eq!(tombstone.version, 1);
        assert_eq!(
            tombstone.status_history,
            [StatusChange {
                status: Cancelled,
                at: "1970-01-01T00:16:40.000Z".into()
            }]
        );
        assert_eq!(tombstone.expires_at, Some(1_000 + 30 * 24 * 3600));
        assert!(tombstone.is_tombstone());

        // Nothing moves it on: it is final until TTL removes it.
        for transition in Transition::ALL {
            let mut moved = tombstone.clone();
            assert!(apply(&mut moved, transition, at(2_000)).is_err());
            assert_eq!(moved, tombstone);
        }
    }

    #[test]
    fn a_cancellation_request_cancels_what_has_not_left_and_is_refused_once_it_has() {
        let cancelled = |changed| CancellationAnswer::Cancelled {
            event: ShipmentCancelled {
                order_id: ORDER.into(),
            },
            changed,
        };
        let mut shipment = pending();
        assert_eq!(shipment.answer_cancellation(at(2_000)), cancelled(true));
        assert_eq!(shipment.status, Cancelled);
        assert_eq!(shipment.version, 2);
        assert!(shipment.dispatch(at(3_000)).is_err(), "can no longer leave");
        let answered = shipment.clone();
        assert_eq!(shipment.answer_cancellation(at(4_000)), cancelled(false));
        assert_eq!(shipment, answered, "asked again: same answer, no change");

        let mut tombstone = Shipment::tombstone(ORDER, "user-1", at(1_000));
        assert_eq!(tombstone.answer_cancellation(at(2_000)), cancelled(false));

        for status in [Dispatched, Delivered] {
            let mut shipment = shipment_in(status);
            let before = shipment.clone();
            assert_eq!(
                shipment.answer_cancellation(at(5_000)),
                CancellationAnswer::Refused(ShipmentCancellationRefused {
                    order_id: ORDER.into()
                })
            );
            assert_eq!(shipment, before);
        }
    }

    #[test]
    fn only_a_parcel_that_left_is_beyond_cancelling() {
        let left: Vec<_> = ShipmentStatus::ALL
            .into_iter()
            .filter(|s| s.has_left())
            .collect();
        assert_eq!(left, [Dispatched, Delivered]);
    }

    #[test]
    fn an_order_paid_that_cannot_be_shipped_is_refused() {
        type Breakage = Box<dyn Fn(&mut OrderPaid)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("empty id", Box::new(|p| p.order_id = String::new())),
            ("path in id", Box::new(|p| p.order_id = "../x".into())),
            (
                "lower-case id",
                Box::new(|p| p.order_id = ORDER.to_lowercase()),
            ),
            ("no lines", Box::new(|p| p.lines.clear())),
            ("no product", Box::new(|p| p.lines[0].product_id.clear())),
            ("no quantity", Box::new(|p| p.lines[1].quantity = 0)),
        ];
        for (case, break_it) in cases {
            let mut broken = paid();
            break_it(&mut broken);
            assert!(Shipment::prepare(broken, at(1)).is_err(), "{case}");
        }
    }

    #[test]
    fn statuses_are_spelt_in_snake_case_everywhere() {
        for status in ShipmentStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
            assert_eq!(ShipmentStatus::parse(status.as_str()), Some(status));
        }
        for unknown in ["", "Pending", "shipped", "pending "] {
            assert_eq!(ShipmentStatus::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_shipment_round_trips_and_only_a_tombstone_stores_an_expiry() {
        let shipment = shipment_in(Delivered);
        let json = serde_json::to_value(&shipment).unwrap();
        assert!(json.get("expiresAt").is_none());
        assert_eq!(json["statusHistory"][1]["status"], "dispatched");
        assert_eq!(serde_json::from_value::<Shipment>(json).unwrap(), shipment);

        let tombstone = Shipment::tombstone(ORDER, "user-1", at(1_000));
        let json = serde_json::to_value(&tombstone).unwrap();
        assert_eq!(json["expiresAt"], 1_000 + 30 * 24 * 3600);
        assert_eq!(serde_json::from_value::<Shipment>(json).unwrap(), tombstone);
    }
}
