//! Orders and their life (DESIGN §3). No I/O and no AWS type here: the consumer and the
//! API load an order, call one of these methods and persist what it returns.
//!
//! Every status change is a guarded method on [`Order`]: it checks that the current status
//! allows it, records the change in the status history, moves the version on, and returns
//! the domain event the change raises. A transition the current status does not allow
//! changes nothing and says so ([`NotAllowed`]); that is how a late, repeated or reordered
//! event is recognised and ignored.
//!
//! ```text
//!  submitted ──confirm_stock──▶ stock_confirmed ──mark_paid──▶ paid ──mark_shipped──▶ shipped ──mark_delivered──▶ delivered
//!      │                              │                          │                        ▲
//!      │ reject_for_stock             │ fail_payment             │ cancel_by_customer     │ refuse_cancellation,
//!      │ cancel_by_customer           │ cancel_by_customer       ▼                        │ mark_shipped
//!      │                              │                      cancelling ──────────────────┘
//!      │                              │                          │ confirm_cancellation
//!      ▼                              ▼                          ▼
//!  cancelled ◀────────────────────────┴──────────────────────────┘
//! ```
//!
//! Until the order is paid, ordering decides a customer's cancellation alone. From `paid`
//! on, only shipping knows whether the parcel has left, so the order waits in `cancelling`
//! for shipping's answer (DESIGN §3 step 8): ShipmentCancelled confirms the cancellation,
//! ShipmentCancellationRefused (or the dispatch itself) sends the order on to `shipped`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_events::basket::CheckoutRequested;
use shop_events::ordering::{
    CancellationReason, OrderCancellationRequested, OrderCancelled, OrderDelivered, OrderPaid,
    OrderShipped, OrderStockConfirmed, OrderSubmitted,
};
use shop_events::payment::PaymentFailureReason;
use shop_events::{Address, Money, OrderLine, timestamp};

/// Where an order is in its life. Stored and answered in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Submitted,
    StockConfirmed,
    Paid,
    /// The customer asked to cancel a paid order; shipping has the last word.
    Cancelling,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Submitted,
        OrderStatus::StockConfirmed,
        OrderStatus::Paid,
        OrderStatus::Cancelling,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Submitted => "submitted",
            OrderStatus::StockConfirmed => "stock_confirmed",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelling => "cancelling",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl OrderStatus {
    /// How far along the happy path the status is; `None` for cancelled, which ends it.
    /// A cancelling order is as far as a paid one: it may still ship.
    fn progress(self) -> Option<u8> {
        match self {
            OrderStatus::Submitted => Some(0),
            OrderStatus::StockConfirmed => Some(1),
            OrderStatus::Paid | OrderStatus::Cancelling => Some(2),
            OrderStatus::Shipped => Some(3),
            OrderStatus::Delivered => Some(4),
            OrderStatus::Cancelled => None,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: OrderStatus,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// Why the order was cancelled; only on the `cancelled` entry, and on the `cancelling`
    /// entry of a cancellation that was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancellationReason>,
}

/// The payment provider's token for the order (never card data). The order keeps it only
/// because payment charges it when the stock is confirmed; `Debug` hides it so that it
/// cannot reach a log by accident, and the API's view of an order has no field for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentToken(String);

impl PaymentToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the one event that hands it to payment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentToken(<redacted>)")
    }
}

/// An order, as ordering stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub shipping_address: Address,
    /// The provider's token, kept only until the charge's outcome is known (DESIGN §6: the
    /// shop stores and forwards it only until the charge is made): every change to a
    /// status past `stock_confirmed` drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_token: Option<PaymentToken>,
    /// Every status the order has been in, oldest first; the last entry is `status`.
    pub status_history: Vec<StatusChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<CancellationReason>,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1 and grows with every status change; writes are conditional on it, so
    /// two writers (a consumer and a customer's cancel) never both win.
    pub version: u64,
}

/// The status changes an order knows, by the name of the method that makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    ConfirmStock,
    RejectForStock,
    MarkPaid,
    FailPayment,
    MarkShipped,
    MarkDelivered,
    CancelByCustomer,
    RequestCancellation,
    ConfirmCancellation,
    RefuseCancellation,
}

impl Transition {
    pub const ALL: [Transition; 10] = [
        Transition::ConfirmStock,
        Transition::RejectForStock,
        Transition::MarkPaid,
        Transition::FailPayment,
        Transition::MarkShipped,
        Transition::MarkDelivered,
        Transition::CancelByCustomer,
        Transition::RequestCancellation,
        Transition::ConfirmCancellation,
        Transition::RefuseCancellation,
    ];

    /// The rules of DESIGN §3 in one place: the statuses each change may start from.
    fn allowed_from(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Transition::ConfirmStock | Transition::RejectForStock => &[Submitted],
            Transition::MarkPaid | Transition::FailPayment => &[StockConfirmed],
            // The parcel left: shipping's word, even over a cancellation it was asked for.
            Transition::MarkShipped => &[Paid, Cancelling],
            Transition::MarkDelivered => &[Shipped],
            // Before the order is paid, nothing has been handed to shipping.
            Transition::CancelByCustomer => &[Submitted, StockConfirmed],
            // From paid on, shipping decides.
            Transition::RequestCancellation => &[Paid],
            Transition::ConfirmCancellation | Transition::RefuseCancellation => &[Cancelling],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transition::ConfirmStock => "confirm the stock of",
            Transition::RejectForStock => "cancel for missing stock",
            Transition::MarkPaid => "mark as paid",
            Transition::FailPayment => "fail the payment of",
            Transition::MarkShipped => "mark as shipped",
            Transition::MarkDelivered => "mark as delivered",
            Transition::CancelByCustomer => "cancel on the customer's request",
            Transition::RequestCancellation => "ask shipping to cancel",
            Transition::ConfirmCancellation => "confirm the cancellation of",
            Transition::RefuseCancellation => "refuse the cancellation of",
        }
    }
}

/// A status change the order's current status does not allow. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an order that is {status}", .transition.name())]
pub struct NotAllowed {
    pub transition: Transition,
    pub status: OrderStatus,
}

impl NotAllowed {
    /// The event came ahead of the one that makes it applicable (ShipmentDelivered
    /// overtaking ShipmentDispatched on the bus): the order has not got there *yet* and
    /// still can, so the event must wait, not be dropped. A refusal that is not premature
    /// is final: the order is past that point or cancelled.
    pub fn is_premature(&self) -> bool {
        // Shipping answers a cancellation only after the order asked for it, in the same
        // write that made it `cancelling`: its answer cannot overtake anything. And the
        // customer's own request is no event to wait for.
        if matches!(
            self.transition,
            Transition::CancelByCustomer
                | Transition::RequestCancellation
                | Transition::ConfirmCancellation
                | Transition::RefuseCancellation
        ) {
            return false;
        }
        let Some(now) = self.status.progress() else {
            return false;
        };
        self.transition
            .allowed_from()
            .iter()
            .filter_map(|from| from.progress())
            .all(|from| now < from)
    }
}

/// What a customer's cancellation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The order is now cancelled; the event tells inventory, payment and shipping.
    Cancelled(OrderCancelled),
    /// The order was paid: it is now `cancelling`, and shipping is asked.
    Requested(OrderCancellationRequested),
    /// It already was cancelled (by the customer or the checkout's choreography) or is
    /// being cancelled; nothing changed.
    AlreadyCancelled,
    /// It has shipped or been delivered; nothing changed.
    TooLate,
}

/// A CheckoutRequested that cannot become an order. Basket validates checkouts, so this
/// is a broken or forged event, never a customer's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid checkout: {0}")]
pub struct InvalidCheckout(String);

impl Order {
    /// The order a checkout asks for, `submitted`, and the event that announces it.
    pub fn submit(
        checkout: CheckoutRequested,
        now: DateTime<Utc>,
    ) -> Result<(Order, OrderSubmitted), InvalidCheckout> {
        validate(&checkout)?;
        let at = timestamp(now);
        let order = Order {
            id: checkout.order_id,
            user_id: checkout.user_id,
            status: OrderStatus::Submitted,
            lines: checkout.lines,
            total: checkout.total,
            shipping_address: checkout.shipping_address,
            payment_token: Some(PaymentToken::new(checkout.payment_token)),
            status_history: vec![StatusChange {
                status: OrderStatus::Submitted,
                at: at.clone(),
                reason: None,
            }],
            cancellation_reason: None,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
        };
        let event = OrderSubmitted {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            lines: order.lines.clone(),
            total: order.total.clone(),
        };
        Ok((order, event))
    }

    /// Inventory reserved every line: payment may charge the order.
    pub fn confirm_stock(&mut self, now: DateTime<Utc>) -> Result<OrderStockConfirmed, NotAllowed> {
        self.change(
            Transition::ConfirmStock,
            OrderStatus::StockConfirmed,
            None,
            now,
        )?;
        Ok(OrderStockConfirmed {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
            total: self.total.clone(),
            payment_token: self
                .payment_token
                .as_ref()
                .map(|token| token.expose().to_owned())
                .unwrap_or_default(),
        })
    }

    /// Inventory could not reserve every line: the order ends here.
    pub fn reject_for_stock(&mut self, now: DateTime<Utc>) -> Result<OrderCancelled, NotAllowed> {
        self.cancel(
            Transition::RejectForStock,
            CancellationReason::OutOfStock,
            now,
        )
    }

    /// Payment charged the order: shipping may prepare it.
    pub fn mark_paid(&mut self, now: DateTime<Utc>) -> Result<OrderPaid, NotAllowed> {
        self.change(Transition::MarkPaid, OrderStatus::Paid, None, now)?;
        Ok(OrderPaid {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
            lines: self.lines.clone(),
            total: self.total.clone(),
            shipping_address: self.shipping_address.clone(),
        })
    }

    /// Payment could not charge the order: it is cancelled, and inventory releases it.
    pub fn fail_payment(
        &mut self,
        failure: PaymentFailureReason,
        now: DateTime<Utc>,
    ) -> Result<OrderCancelled, NotAllowed> {
        let reason = match failure {
            PaymentFailureReason::Declined => CancellationReason::PaymentFailed,
            PaymentFailureReason::ProviderUnavailable => CancellationReason::ProviderUnavailable,
        };
        self.cancel(Transition::FailPayment, reason, now)
    }

    /// The parcel left the warehouse.
    pub fn mark_shipped(&mut self, now: DateTime<Utc>) -> Result<OrderShipped, NotAllowed> {
        self.change(Transition::MarkShipped, OrderStatus::Shipped, None, now)?;
        Ok(OrderShipped {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
        })
    }

    /// The parcel arrived.
    pub fn mark_delivered(&mut self, now: DateTime<Utc>) -> Result<OrderDelivered, NotAllowed> {
        self.change(Transition::MarkDelivered, OrderStatus::Delivered, None, now)?;
        Ok(OrderDelivered {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
        })
    }

    /// The customer asks to cancel. Before the order is paid it is cancelled at once; a
    /// paid one becomes `cancelling` until shipping answers. Asking again once it is
    /// cancelled (for whatever reason) or cancelling is answered as done; once shipped,
    /// it is too late.
    pub fn cancel_by_customer(&mut self, now: DateTime<Utc>) -> CancelOutcome {
        let reason = CancellationReason::CustomerRequest;
        match self.status {
            OrderStatus::Submitted | OrderStatus::StockConfirmed => {
                match self.cancel(Transition::CancelByCustomer, reason, now) {
                    Ok(event) => CancelOutcome::Cancelled(event),
                    Err(_) => CancelOutcome::TooLate,
                }
            }
            OrderStatus::Paid => {
                match self.change(
                    Transition::RequestCancellation,
                    OrderStatus::Cancelling,
                    Some(reason),
                    now,
                ) {
                    Ok(()) => CancelOutcome::Requested(OrderCancellationRequested {
                        order_id: self.id.clone(),
                        user_id: self.user_id.clone(),
                    }),
                    Err(_) => CancelOutcome::TooLate,
                }
            }
            OrderStatus::Cancelled | OrderStatus::Cancelling => CancelOutcome::AlreadyCancelled,
            OrderStatus::Shipped | OrderStatus::Delivered => CancelOutcome::TooLate,
        }
    }

    /// Shipping cancelled the shipment (or its tombstone) the customer's request named:
    /// the order is cancelled, and inventory and payment give back what they hold.
    pub fn confirm_cancellation(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<OrderCancelled, NotAllowed> {
        self.cancel(
            Transition::ConfirmCancellation,
            CancellationReason::CustomerRequest,
            now,
        )
    }

    /// Shipping refused the cancellation: the parcel had left. The order ships, its
    /// history keeping the request.
    pub fn refuse_cancellation(&mut self, now: DateTime<Utc>) -> Result<OrderShipped, NotAllowed> {
        self.change(
            Transition::RefuseCancellation,
            OrderStatus::Shipped,
            None,
            now,
        )?;
        Ok(OrderShipped {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
        })
    }

    pub fn is_owned_by(&self, user_id: &str) -> bool {
        self.user_id == user_id
    }

    fn cancel(
        &mut self,
        transition: Transition,
        reason: CancellationReason,
        now: DateTime<Utc>,
    ) -> Result<OrderCancelled, NotAllowed> {
        self.change(transition, OrderStatus::Cancelled, Some(reason), now)?;
        self.cancellation_reason = Some(reason);
        Ok(OrderCancelled {
            order_id: self.id.clone(),
            user_id: self.user_id.clone(),
            reason,
        })
    }

    /// The one place an order's status moves: guarded, recorded, versioned.
    fn change(
        &mut self,
        transition: Transition,
        to: OrderStatus,
        reason: Option<CancellationReason>,
        now: DateTime<Utc>,
    ) -> Result<(), NotAllowed> {
        if !transition.allowed_from().contains(&self.status) {
            return Err(NotAllowed {
                transition,
                status: self.status,
            });
        }
        let at = timestamp(now);
        self.status = to;
        if !matches!(to, OrderStatus::Submitted | OrderStatus::StockConfirmed) {
            // The charge was made, failed, or will never be asked for.
            self.payment_token = None;
        }
        self.status_history.push(StatusChange {
            status: to,
            at: at.clone(),
            reason,
        });
        self.updated_at = at;
        self.version += 1;
        Ok(())
    }
}

pub use shop_events::limits::{MAX_LINES, MAX_QUANTITY};

/// What a checkout must be to become an order: a reachable id, an owner, one to
/// [`MAX_LINES`] lines of distinct products in quantities of 1..=[`MAX_QUANTITY`], and a
/// total that is what its lines add up to, all in one currency. Anything else would become
/// an order no other capability could process, stuck short of `paid` or `cancelled`.
fn validate(checkout: &CheckoutRequested) -> Result<(), InvalidCheckout> {
    let invalid = |why: String| Err(InvalidCheckout(why));
    let overflow = || InvalidCheckout("the total overflows".into());
    if !is_order_id(&checkout.order_id) {
        return invalid(format!("{:?} is not an order id", checkout.order_id));
    }
    if checkout.user_id.trim().is_empty() {
        return invalid("no user".into());
    }
    if checkout.payment_token.trim().is_empty() {
        return invalid("no payment token".into());
    }
    if checkout.lines.is_empty() || checkout.lines.len() > MAX_LINES {
        return invalid(format!(
            "{} lines; an order has 1 to {MAX_LINES}",
            checkout.lines.len()
        ));
    }
    let mut products: Vec<&str> = checkout
        .lines
        .iter()
        .map(|line| line.product_id.as_str())
        .collect();
    products.sort_unstable();
    if products.windows(2).any(|pair| pair[0] == pair[1]) {
        return invalid("a product appears on two lines".into());
    }
    let currency = &checkout.total.currency;
    let mut sum: i64 = 0;
    for line in &checkout.lines {
        if line.product_id.is_empty()
            || !(1..=MAX_QUANTITY).contains(&line.quantity)
            || line.unit_price.amount <= 0
        {
            return invalid(format!("line {:?} is empty or unpriced", line.product_id));
        }
        if &line.unit_price.currency != currency {
            return invalid(format!("line {:?} is not in {currency}", line.product_id));
        }
        sum = line
            .unit_price
            .amount
            .checked_mul(i64::from(line.quantity))
            .and_then(|amount| sum.checked_add(amount))
            .ok_or_else(overflow)?;
    }
    if sum != checkout.total.amount {
        return invalid(format!(
            "the total is {} but the lines add up to {sum}",
            checkout.total.amount
        ));
    }
    Ok(())
}

/// Order ids are minted by basket at checkout; like every id of the shop (DESIGN §4) they
/// are short URL-safe strings. Anything else cannot name an order.
pub fn is_order_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn checkout() -> CheckoutRequested {
        CheckoutRequested {
            order_id: "01JDKR3B5X8Q2W4E6R8T0Y2V4N".into(),
            user_id: "user-1".into(),
            lines: vec![
                OrderLine {
                    product_id: "p1".into(),
                    name: "Mug".into(),
                    unit_price: Money::usd(1200),
                    quantity: 2,
                },
                OrderLine {
                    product_id: "p2".into(),
                    name: "Tea".into(),
                    unit_price: Money::usd(350),
                    quantity: 1,
                },
            ],
            total: Money::usd(2750),
            shipping_address: Address {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: None,
                city: "London".into(),
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
            },
            payment_token: "tok_visa_4242".into(),
        }
    }

    fn submitted() -> Order {
        Order::submit(checkout(), at(1_000)).unwrap().0
    }

    /// An order brought to `status` through the methods themselves, the way it gets there
    /// in production.
    fn order_in(status: OrderStatus) -> Order {
        let mut order = submitted();
        let now = at(2_000);
        let path: &[Transition] = match status {
            Submitted => &[],
            StockConfirmed => &[Transition::ConfirmStock],
            Paid => &[Transition::ConfirmStock, Transition::MarkPaid],
            Cancelling => &[
                Transition::ConfirmStock,
                Transition::MarkPaid,
                Transition::RequestCancellation,
            ],
            Shipped => &[
                Transition::ConfirmStock,
                Transition::MarkPaid,
                Transition::MarkShipped,
            ],
            Delivered => &[
                Transition::ConfirmStock,
                Transition::MarkPaid,
                Transition::MarkShipped,
                Transition::MarkDelivered,
            ],
            Cancelled => &[Transition::RejectForStock],
        };
        for transition in path {
            apply(&mut order, *transition, now).unwrap();
        }
        assert_eq!(order.status, status);
        order
    }

    /// Runs one transition by its method; `Ok` holds the status and reason its event
    /// announces, to check that the event matches what happened.
    fn apply(
        order: &mut Order,
        transition: Transition,
        now: DateTime<Utc>,
    ) -> Result<(OrderStatus, Option<CancellationReason>), NotAllowed> {
        match transition {
            Transition::ConfirmStock => order.confirm_stock(now).map(|_| (StockConfirmed, None)),
            Transition::RejectForStock => order
                .reject_for_stock(now)
                .map(|e| (Cancelled, Some(e.reason))),
            Transition::MarkPaid => order.mark_paid(now).map(|_| (Paid, None)),
            Transition::FailPayment => order
                .fail_payment(PaymentFailureReason::Declined, now)
                .map(|e| (Cancelled, Some(e.reason))),
            Transition::MarkShipped => order.mark_shipped(now).map(|_| (Shipped, None)),
            Transition::MarkDelivered => order.mark_delivered(now).map(|_| (Delivered, None)),
            // Both are the customer's one entry point, which picks by status: the table
            // asks for the one the status does not pick as a refusal.
            Transition::CancelByCustomer | Transition::RequestCancellation => {
                let refused = NotAllowed {
                    transition,
                    status: order.status,
                };
                let picked = match order.status {
                    Submitted | StockConfirmed => Transition::CancelByCustomer,
                    _ => Transition::RequestCancellation,
                };
                if picked != transition {
                    return Err(refused);
                }
                match order.cancel_by_customer(now) {
                    CancelOutcome::Cancelled(e) => Ok((Cancelled, Some(e.reason))),
                    CancelOutcome::Requested(e) => {
                        assert_eq!(e.order_id, order.id);
                        Ok((Cancelling, Some(CancellationReason::CustomerRequest)))
                    }
                    CancelOutcome::AlreadyCancelled | CancelOutcome::TooLate => Err(refused),
                }
            }
            Transition::ConfirmCancellation => order
                .confirm_cancellation(now)
                .map(|e| (Cancelled, Some(e.reason))),
            Transition::RefuseCancellation => {
                order.refuse_cancellation(now).map(|_| (Shipped, None))
            }
        }
    }

    #[test]
    fn a_submitted_order_starts_its_history_at_version_one_and_announces_itself() {
        let (order, event) = Order::submit(checkout(), at(1_000)).unwrap();
        assert_eq!(order.status, Submitted);
        assert_eq!(order.version, 1);
        assert_eq!(order.created_at, "1970-01-01T00:16:40.000Z");
        assert_eq!(order.updated_at, order.created_at);
        assert_eq!(
            order.status_history,
            [StatusChange {
                status: Submitted,
                at: order.created_at.clone(),
                reason: None
            }]
        );
        assert_eq!(order.cancellation_reason, None);
        assert_eq!(
            event,
            OrderSubmitted {
                order_id: checkout().order_id,
                user_id: "user-1".into(),
                lines: checkout().lines,
                total: Money::usd(2750),
            }
        );
    }

    /// The whole state machine: every status against every transition. The expected
    /// table is written out here rather than derived from the rules it checks.
    #[test]
    fn every_transition_from_every_status_does_exactly_what_the_design_allows() {
        let customer = Some(CancellationReason::CustomerRequest);
        let expected = |from: OrderStatus, transition: Transition| match (from, transition) {
            (Submitted, Transition::ConfirmStock) => Some((StockConfirmed, None)),
            (Submitted, Transition::RejectForStock) => {
                Some((Cancelled, Some(CancellationReason::OutOfStock)))
            }
            (Submitted, Transition::CancelByCustomer) => Some((Cancelled, customer)),
            (StockConfirmed, Transition::MarkPaid) => Some((Paid, None)),
            (StockConfirmed, Transition::FailPayment) => {
                Some((Cancelled, Some(CancellationReason::PaymentFailed)))
            }
            (StockConfirmed, Transition::CancelByCustomer) => Some((Cancelled, customer)),
            (Paid, Transition::MarkShipped) => Some((Shipped, None)),
            (Paid, Transition::RequestCancellation) => Some((Cancelling, customer)),
            (Cancelling, Transition::ConfirmCancellation) => Some((Cancelled, customer)),
            (Cancelling, Transition::RefuseCancellation) => Some((Shipped, None)),
            (Cancelling, Transition::MarkShipped) => Some((Shipped, None)),
            (Shipped, Transition::MarkDelivered) => Some((Delivered, None)),
            _ => None,
        };
        let mut allowed = 0;
        for from in OrderStatus::ALL {
            for transition in Transition::ALL {
                let before = order_in(from);
                let mut order = before.clone();
                let outcome = apply(&mut order, transition, at(9_000));
                match expected(from, transition) {
                    Some((to, reason)) => {
                        allowed += 1;
                        assert_eq!(
                            outcome,
                            Ok((to, reason)),
                            "{from} × {transition:?}: the event"
                        );
                        assert_eq!(order.status, to, "{from} × {transition:?}");
                        assert_eq!(order.version, before.version + 1);
                        assert_eq!(order.updated_at, "1970-01-01T02:30:00.000Z");
                        assert_eq!(order.created_at, before.created_at);
                        assert_eq!(order.status_history.len(), before.status_history.len() + 1);
                        assert_eq!(
                            order.status_history.last(),
                            Some(&StatusChange {
                                status: to,
                                at: order.updated_at.clone(),
                                reason
                            })
                        );
                        let cancelled_for = (to == Cancelled).then_some(reason).flatten();
                        assert_eq!(order.cancellation_reason, cancelled_for);
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
                        assert_eq!(order, before, "{from} × {transition:?} changed the order");
                    }
                }
            }
        }
        assert_eq!(allowed, 12);
    }

    /// An event that overtook its predecessor waits; one that came too late, or after a
    /// cancellation, is dropped. Written out, like the table above.
    #[test]
    fn only_refusals_of_events_ahead_of_the_order_are_premature() {
        let premature = [
            (Submitted, Transition::MarkPaid),
            (Submitted, Transition::FailPayment),
            (Submitted, Transition::MarkShipped),
            (StockConfirmed, Transition::MarkShipped),
            (Submitted, Transition::MarkDelivered),
            (StockConfirmed, Transition::MarkDelivered),
            (Paid, Transition::MarkDelivered),
            (Cancelling, Transition::MarkDelivered),
        ];
        for from in OrderStatus::ALL {
            for transition in Transition::ALL {
                let mut order = order_in(from);
                if let Err(refused) = apply(&mut order, transition, at(9_000)) {
                    assert_eq!(
                        refused.is_premature(),
                        premature.contains(&(from, transition)),
                        "{from} × {transition:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_repeated_transition_is_refused_the_second_time() {
        let mut order = submitted();
        assert!(order.confirm_stock(at(2_000)).is_ok());
        let once = order.clone();
        assert_eq!(
            order.confirm_stock(at(3_000)),
            Err(NotAllowed {
                transition: Transition::ConfirmStock,
                status: StockConfirmed
            })
        );
        assert_eq!(order, once);
    }

    #[test]
    fn stock_confirmation_hands_payment_the_token_and_the_total() {
        let mut order = submitted();
        let event = order.confirm_stock(at(2_000)).unwrap();
        assert_eq!(
            event,
            OrderStockConfirmed {
                order_id: order.id.clone(),
                user_id: "user-1".into(),
                total: Money::usd(2750),
                payment_token: "tok_visa_4242".into(),
            }
        );
    }

    #[test]
    fn payment_tells_shipping_what_to_send_where() {
        let mut order = order_in(StockConfirmed);
        let event = order.mark_paid(at(3_000)).unwrap();
        assert_eq!(event.lines, checkout().lines);
        assert_eq!(event.shipping_address, checkout().shipping_address);
        assert_eq!(event.total, Money::usd(2750));
    }

    #[test]
    fn a_failed_payment_names_its_cause_in_the_cancellation() {
        for (failure, reason) in [
            (
                PaymentFailureReason::Declined,
                CancellationReason::PaymentFailed,
            ),
            (
                PaymentFailureReason::ProviderUnavailable,
                CancellationReason::ProviderUnavailable,
            ),
        ] {
            let mut order = order_in(StockConfirmed);
            let event = order.fail_payment(failure, at(3_000)).unwrap();
            assert_eq!(event.reason, reason);
            assert_eq!(order.cancellation_reason, Some(reason));
        }
    }

    #[test]
    fn a_customer_cancels_until_shipped_and_twice_is_the_same_as_once() {
        for status in [Submitted, StockConfirmed] {
            let mut order = order_in(status);
            match order.cancel_by_customer(at(5_000)) {
                CancelOutcome::Cancelled(event) => {
                    assert_eq!(event.reason, CancellationReason::CustomerRequest);
                    assert_eq!(event.order_id, order.id);
                }
                other => panic!("{status}: {other:?}"),
            }
            let cancelled = order.clone();
            assert_eq!(
                order.cancel_by_customer(at(6_000)),
                CancelOutcome::AlreadyCancelled
            );
            assert_eq!(order, cancelled);
        }
        for status in [Shipped, Delivered] {
            let mut order = order_in(status);
            let before = order.clone();
            assert_eq!(order.cancel_by_customer(at(5_000)), CancelOutcome::TooLate);
            assert_eq!(order, before);
        }
        let mut cancelling = order_in(Cancelling);
        let asked = cancelling.clone();
        assert_eq!(
            cancelling.cancel_by_customer(at(6_000)),
            CancelOutcome::AlreadyCancelled,
            "asked once, answered as done while shipping decides"
        );
        assert_eq!(cancelling, asked);
        let mut out_of_stock = order_in(Cancelled);
        assert_eq!(
            out_of_stock.cancel_by_customer(at(5_000)),
            CancelOutcome::AlreadyCancelled
        );
        assert_eq!(
            out_of_stock.cancellation_reason,
            Some(CancellationReason::OutOfStock),
            "the first reason stands"
        );
    }

    #[test]
    fn a_paid_order_waits_for_shippings_word_and_either_answer_is_kept_in_its_history() {
        let mut order = order_in(Paid);
        let asked = match order.cancel_by_customer(at(5_000)) {
            CancelOutcome::Requested(event) => event,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            asked,
            OrderCancellationRequested {
                order_id: order.id.clone(),
                user_id: "user-1".into()
            }
        );
        assert_eq!(order.status, Cancelling);
        assert_eq!(order.cancellation_reason, None, "not cancelled yet");

        let mut confirmed = order.clone();
        let cancelled = confirmed.confirm_cancellation(at(6_000)).unwrap();
        assert_eq!(cancelled.reason, CancellationReason::CustomerRequest);
        assert_eq!(
            confirmed.cancellation_reason,
            Some(CancellationReason::CustomerRequest)
        );

        let mut refused = order.clone();
        refused.refuse_cancellation(at(6_000)).unwrap();
        let statuses: Vec<_> = refused.status_history.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [Submitted, StockConfirmed, Paid, Cancelling, Shipped]
        );
        assert_eq!(
            refused.status_history[3].reason,
            Some(CancellationReason::CustomerRequest),
            "the refused request stays on record"
        );
        assert_eq!(refused.cancellation_reason, None);
        // Shipping's two ways of saying the parcel left: whichever comes second is late.
        assert!(refused.mark_shipped(at(7_000)).is_err());
        let mut dispatched_first = order.clone();
        dispatched_first.mark_shipped(at(6_000)).unwrap();
        assert!(dispatched_first.refuse_cancellation(at(7_000)).is_err());
        assert_eq!(dispatched_first.status, Shipped);
    }

    #[test]
    fn the_history_tells_the_whole_story_in_order() {
        let mut order = submitted();
        order.confirm_stock(at(2_000)).unwrap();
        order.mark_paid(at(3_000)).unwrap();
        order.mark_shipped(at(4_000)).unwrap();
        order.mark_delivered(at(5_000)).unwrap();
        let statuses: Vec<_> = order.status_history.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [Submitted, StockConfirmed, Paid, Shipped, Delivered]
        );
        assert_eq!(order.version, 5);
        let times: Vec<_> = order.status_history.iter().map(|c| c.at.as_str()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[test]
    fn a_checkout_that_cannot_be_an_order_is_refused() {
        type Breakage = Box<dyn Fn(&mut CheckoutRequested)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("empty id", Box::new(|c| c.order_id = String::new())),
            ("id with a slash", Box::new(|c| c.order_id = "a/b".into())),
            ("overlong id", Box::new(|c| c.order_id = "A".repeat(65))),
            ("no user", Box::new(|c| c.user_id = " ".into())),
            ("no token", Box::new(|c| c.payment_token = String::new())),
            ("no lines", Box::new(|c| c.lines.clear())),
            ("zero quantity", Box::new(|c| c.lines[0].quantity = 0)),
            (
                "quantity over 99",
                Box::new(|c| {
                    c.total.amount += c.lines[0].unit_price.amount * 99;
                    c.lines[0].quantity += 99;
                }),
            ),
            (
                "one product on two lines",
                Box::new(|c| {
                    c.lines[1].product_id = c.lines[0].product_id.clone();
                }),
            ),
            (
                "too many lines",
                Box::new(|c| {
                    let line = c.lines[0].clone();
                    while c.lines.len() <= MAX_LINES {
                        c.total.amount += line.unit_price.amount * i64::from(line.quantity);
                        let mut more = line.clone();
                        more.product_id = format!("p{}", c.lines.len());
                        c.lines.push(more);
                    }
                }),
            ),
            ("free line", Box::new(|c| c.lines[0].unit_price.amount = 0)),
            (
                "negative line",
                Box::new(|c| c.lines[1].unit_price.amount = -350),
            ),
            ("no product", Box::new(|c| c.lines[0].product_id.clear())),
            (
                "mixed currencies",
                Box::new(|c| c.lines[1].unit_price.currency = "EUR".into()),
            ),
            ("wrong total", Box::new(|c| c.total.amount += 1)),
            (
                "overflowing total",
                Box::new(|c| {
                    c.lines[0].unit_price.amount = i64::MAX;
                    c.lines[0].quantity = 2;
                }),
            ),
        ];
        for (case, break_it) in cases {
            let mut broken = checkout();
            break_it(&mut broken);
            assert!(Order::submit(broken, at(1)).is_err(), "{case}");
        }
    }

    #[test]
    fn order_ids_are_short_url_safe_strings() {
        assert!(is_order_id("01JDKR3B5X8Q2W4E6R8T0Y2V4N"));
        assert!(is_order_id("order_42-a"));
        for bad in ["", "../x", "a b", "é", "a%2F", &"x".repeat(65)] {
            assert!(!is_order_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn statuses_and_reasons_are_stored_in_snake_case() {
        let mut order = order_in(StockConfirmed);
        order
            .fail_payment(PaymentFailureReason::ProviderUnavailable, at(3_000))
            .unwrap();
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["status"], "cancelled");
        assert_eq!(json["statusHistory"][1]["status"], "stock_confirmed");
        assert_eq!(json["statusHistory"][2]["reason"], "provider_unavailable");
        assert!(json["statusHistory"][0].get("reason").is_none());
        assert_eq!(json["cancellationReason"], "provider_unavailable");
        let back: Order = serde_json::from_value(json).unwrap();
        assert_eq!(back, order);
        let names: Vec<_> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        let serialised: Vec<_> = OrderStatus::ALL
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(
            serde_json::to_value(names).unwrap(),
            serde_json::json!(serialised)
        );
    }

    #[test]
    fn the_payment_token_is_kept_only_until_the_charge_has_an_outcome() {
        assert!(submitted().payment_token.is_some());
        assert!(
            order_in(StockConfirmed).payment_token.is_some(),
            "payment still needs it"
        );
        for status in [Paid, Cancelled, Cancelling, Shipped, Delivered] {
            let order = order_in(status);
            assert_eq!(order.payment_token, None, "{status}");
            assert!(
                serde_json::to_value(&order)
                    .unwrap()
                    .get("paymentToken")
                    .is_none(),
                "not stored once {status}"
            );
        }
        let mut failed = order_in(StockConfirmed);
        failed
            .fail_payment(PaymentFailureReason::Declined, at(3_000))
            .unwrap();
        assert_eq!(failed.payment_token, None);
    }

    #[test]
    fn the_payment_token_never_shows_in_debug_output() {
        let order = submitted();
        assert!(!format!("{order:?}").contains("tok_visa_4242"));
    }
}
