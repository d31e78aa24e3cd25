//! Stock, reservations and the rules that move units between them. No I/O and no AWS
//! type here: the consumer and the API call these functions, and the store turns what
//! they return into conditional writes.
//!
//! A product's units sit in three counters. `available` units may be promised to a new
//! order, `reserved` units are promised to an order that is not shipped yet, `shipped`
//! units have left. Orders only ever move units from one counter to another
//! ([`Movement`]), so `available + reserved + shipped` changes only when an admin sets the
//! stock — the invariant of DESIGN §3.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use shop_events::inventory::{StockReleased, StockReservationFailed, StockReserved};
use shop_events::{LineQuantity, OrderLine, timestamp};

/// The most units an admin may make available at once.
pub const MAX_AVAILABLE: i64 = 1_000_000;

/// The most distinct products one reservation may hold. A reservation commits in one
/// DynamoDB transaction of at most 100 writes: one stock update per product, plus the
/// reservation, its event and the consumer's processed-event marker.
pub const MAX_PRODUCTS_PER_RESERVATION: usize = 97;

/// One product's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    pub product_id: String,
    pub available: u64,
    pub reserved: u64,
    pub shipped: u64,
    /// The catalog deleted the product: it can never be promised to an order again, but
    /// units already promised can still be released or shipped.
    pub deleted: bool,
    /// Grows with every change to the item.
    pub version: u64,
}

/// One of a product's three counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Available,
    Reserved,
    Shipped,
}

impl Counter {
    /// The [`Stock`] field that holds it.
    pub fn field(self) -> &'static str {
        match self {
            Counter::Available => "available",
            Counter::Reserved => "reserved",
            Counter::Shipped => "shipped",
        }
    }
}

/// What an order does to a product's units. Each takes units from one counter and adds
/// them to another, which is what keeps a product's total constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// Promises available units to an order.
    Reserve,
    /// Gives an order's promised units back, when the order is cancelled.
    Release,
    /// Turns an order's promised units into shipped ones, when its shipment leaves.
    Ship,
}

impl Movement {
    pub fn source(self) -> Counter {
        match self {
            Movement::Reserve => Counter::Available,
            Movement::Release | Movement::Ship => Counter::Reserved,
        }
    }

    pub fn target(self) -> Counter {
        match self {
            Movement::Reserve => Counter::Reserved,
            Movement::Release => Counter::Available,
            Movement::Ship => Counter::Shipped,
        }
    }

    /// Only a product the catalog still sells may be promised to a new order; what was
    /// promised before its deletion is the customer's and keeps moving.
    pub fn requires_listed_product(self) -> bool {
        matches!(self, Movement::Reserve)
    }
}

/// Why a movement cannot happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MovementError {
    #[error("product {product_id} has {has} {counter} units, {wanted} are needed")]
    Insufficient {
        product_id: String,
        counter: &'static str,
        has: u64,
        wanted: u64,
    },
    #[error("product {product_id} was deleted from the catalog")]
    Deleted { product_id: String },
}

impl Stock {
    /// A product the shop has no units of yet.
    pub fn new(product_id: impl Into<String>) -> Self {
        Self {
            product_id: product_id.into(),
            available: 0,
            reserved: 0,
            shipped: 0,
            deleted: false,
            version: 0,
        }
    }

    pub fn count(&self, counter: Counter) -> u64 {
        match counter {
            Counter::Available => self.available,
            Counter::Reserved => self.reserved,
            Counter::Shipped => self.shipped,
        }
    }

    fn count_mut(&mut self, counter: Counter) -> &mut u64 {
        match counter {
            Counter::Available => &mut self.available,
            Counter::Reserved => &mut self.reserved,
            Counter::Shipped => &mut self.shipped,
        }
    }

    /// Every unit the product has, wherever it is; only an admin changes it.
    pub fn total(&self) -> u64 {
        self.available + self.reserved + self.shipped
    }

    /// This stock after `quantity` units moved, if the movement's guard holds. The store
    /// writes the same guard as the condition of its update, so that the check and the
    /// move are one atomic step there.
    pub fn apply(&self, movement: Movement, quantity: u64) -> Result<Stock, MovementError> {
        if movement.requires_listed_product() && self.deleted {
            return Err(MovementError::Deleted {
                product_id: self.product_id.clone(),
            });
        }
        let source = movement.source();
        let has = self.count(source);
        if has < quantity {
            return Err(MovementError::Insufficient {
                product_id: self.product_id.clone(),
                counter: source.field(),
                has,
                wanted: quantity,
            });
        }
        let mut moved = self.clone();
        *moved.count_mut(source) -= quantity;
        *moved.count_mut(movement.target()) += quantity;
        moved.version += 1;
        Ok(moved)
    }

    /// What `GET` and `PUT /inventory/{productId}` answer.
    pub fn levels(&self) -> StockLevels {
        StockLevels {
            product_id: self.product_id.clone(),
            available: self.available,
            reserved: self.reserved,
            shipped: self.shipped,
        }
    }
}

/// A product's stock as the HTTP API shows it (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLevels {
    pub product_id: String,
    pub available: u64,
    pub reserved: u64,
    pub shipped: u64,
}

/// The body of `PUT /inventory/{productId}`: how many units are free to sell. Any other
/// field is refused, so a client that believes it can set `reserved` learns otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct StockInput {
    #[garde(range(min = 0, max = MAX_AVAILABLE))]
    #[serde(deserialize_with = "shop_events::limits::whole_number")]
    pub available: i64,
}

impl StockInput {
    /// The validated quantity; validation has ruled out negatives.
    pub fn units(&self) -> u64 {
        u64::try_from(self.available).unwrap_or(0)
    }
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Every line is held in `reserved`.
    Reserved,
    /// Nothing was held: some product was short. Final.
    Failed,
    /// The order was cancelled and its units went back to `available`. Final.
    Released,
    /// The order's shipment left with its units. Final.
    Shipped,
    /// The order was cancelled before inventory saw it submitted, so its submission,
    /// when it arrives, must reserve nothing. Final.
    CancelledBeforeReservation,
}

/// What inventory decided for one order; one per order, for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: String,
    pub status: ReservationStatus,
    /// What the order asked for: one line per product, sorted by product id.
    pub lines: Vec<LineQuantity>,
    /// For a failed reservation, the products that were short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_product_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1; every transition is written conditionally on the version it read.
    pub version: u64,
}

/// Units of one product that a reservation's transition moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    pub product_id: String,
    pub movement: Movement,
    pub quantity: u64,
}

/// A reservation's new state, the stock it moves and the event it raises: all of it
/// commits together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<E> {
    pub reservation: Reservation,
    pub moves: Vec<StockMove>,
    pub event: E,
}

/// The outcome of a submitted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reserve(Change<StockReserved>),
    Fail(Change<StockReservationFailed>),
}

/// An OrderSubmitted that breaks its contract (ordering only submits lines with a
/// quantity of 1..=99); no decision can be made from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrder {
    #[error("the order has no lines")]
    NoLines,
    #[error("the order asks for 0 units of {product_id}")]
    ZeroQuantity { product_id: String },
    #[error("the order asks for more units of {product_id} than can be counted")]
    Overflow { product_id: String },
}

/// A transition that the reservation's status does not allow; nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reservation is {status:?}, not reserved")]
pub struct NotReserved {
    pub status: ReservationStatus,
}

/// The order's lines as a reservation holds them: one per product (an order may list a
/// product twice), sorted by product id so every decision about them reads the same.
pub fn requested_lines(lines: &[OrderLine]) -> Result<Vec<LineQuantity>, InvalidOrder> {
    if lines.is_empty() {
        return Err(InvalidOrder::NoLines);
    }
    if let Some(empty) = lines.iter().find(|line| line.quantity == 0) {
        return Err(InvalidOrder::ZeroQuantity {
            product_id: empty.product_id.clone(),
        });
    }
    merge(
        lines
            .iter()
            .map(|line| (line.product_id.as_str(), line.quantity)),
    )
}

fn merge<'a>(
    lines: impl IntoIterator<Item = (&'a str, u32)>,
) -> Result<Vec<LineQuantity>, InvalidOrder> {
    let mut merged: BTreeMap<&str, u32> = BTreeMap::new();
    for (product_id, quantity) in lines {
        let total = merged.entry(product_id).or_default();
        *total = total
            .checked_add(quantity)
            .ok_or_else(|| InvalidOrder::Overflow {
                product_id: product_id.to_owned(),
            })?;
    }
    Ok(merged
        .into_iter()
        .map(|(product_id, quantity)| LineQuantity {
            product_id: product_id.to_owned(),
            quantity,
        })
        .collect())
}

fn moves(lines: &[LineQuantity], movement: Movement) -> Vec<StockMove> {
    lines
        .iter()
        .map(|line| StockMove {
            product_id: line.product_id.clone(),
            movement,
            quantity: u64::from(line.quantity),
        })
        .collect()
}

impl Reservation {
    fn first(
        order_id: &str,
        status: ReservationStatus,
        lines: Vec<LineQuantity>,
        short_product_ids: Vec<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let at = timestamp(now);
        Self {
            order_id: order_id.to_owned(),
            status,
            lines,
            short_product_ids,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
        }
    }

    /// Reserves every line or none. `stock_of` answers a product's current stock, `None`
    /// for a product that was never stocked. A line is short when its product was never
    /// stocked, was deleted, or has fewer units available than the line asks for.
    pub fn decide<'a>(
        order_id: &str,
        lines: Vec<LineQuantity>,
        stock_of: impl Fn(&str) -> Option<&'a Stock>,
        now: DateTime<Utc>,
    ) -> Decision {
        let short_product_ids: Vec<String> = if lines.len() > MAX_PRODUCTS_PER_RESERVATION {
            // Cannot be held atomically; better to refuse the order than to hold half of it.
            lines.iter().map(|line| line.product_id.clone()).collect()
        } else {
            lines
                .iter()
                .filter(|line| {
                    stock_of(&line.product_id).is_none_or(|stock| {
                        stock
                            .apply(Movement::Reserve, u64::from(line.quantity))
                            .is_err()
                    })
                })
                .map(|line| line.product_id.clone())
                .collect()
        };
        if short_product_ids.is_empty() {
            let event = StockReserved {
                order_id: order_id.to_owned(),
                lines: lines.clone(),
            };
            Decision::Reserve(Change {
                moves: moves(&lines, Movement::Reserve),
                reservation: Reservation::first(
                    order_id,
                    ReservationStatus::Reserved,
                    lines,
                    Vec::new(),
                    now,
                ),
                event,
            })
        } else {
            // Lines are sorted and unique per product, so the short ids are too.
            let event = StockReservationFailed {
                order_id: order_id.to_owned(),
                short_product_ids: short_product_ids.clone(),
            };
            Decision::Fail(Change {
                reservation: Reservation::first(
                    order_id,
                    ReservationStatus::Failed,
                    lines,
                    short_product_ids,
                    now,
                ),
                moves: Vec::new(),
                event,
            })
        }
    }

    /// The record of an order cancelled before its submission was seen, so that the
    /// submission, if it ever arrives, finds its order decided.
    pub fn cancelled_before_reservation(order_id: &str, now: DateTime<Utc>) -> Self {
        Self::first(
            order_id,
            ReservationStatus::CancelledBeforeReservation,
            Vec::new(),
            Vec::new(),
            now,
        )
    }

    fn moved_to(&self, status: ReservationStatus, now: DateTime<Utc>) -> Self {
        Self {
            status,
            updated_at: timestamp(now),
            version: self.version + 1,
            ..self.clone()
        }
    }

    fn require_reserved(&self) -> Result<(), NotReserved> {
        match self.status {
            ReservationStatus::Reserved => Ok(()),
            status => Err(NotReserved { status }),
        }
    }

    /// The order was cancelled: its units go back to available.
    pub fn release(&self, now: DateTime<Utc>) -> Result<Change<StockReleased>, NotReserved> {
        self.require_reserved()?;
        Ok(Change {
            reservation: self.moved_to(ReservationStatus::Released, now),
            moves: moves(&self.lines, Movement::Release),
            event: StockReleased {
                order_id: self.order_id.clone(),
                lines: self.lines.clone(),
            },
        })
    }

    /// Whether `lines` (in any order, a product possibly listed twice) are exactly the
    /// units this reservation holds.
    pub fn holds_exactly(&self, lines: &[LineQuantity]) -> bool {
        merge(
            lines
                .iter()
                .map(|line| (line.product_id.as_str(), line.quantity)),
        )
        .is_ok_and(|merged| merged == self.lines)
    }

    /// The order's shipment left: its units are shipped. Nobody needs to hear of it.
    pub fn ship(&self, now: DateTime<Utc>) -> Result<Change<()>, NotReserved> {
        self.require_reserved()?;
        Ok(Change {
            reservation: self.moved_to(ReservationStatus::Shipped, now),
            moves: moves(&self.lines, Movement::Ship),
            event: (),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use shop_events::Money;

    use super::*;

    const MOVEMENTS: [Movement; 3] = [Movement::Reserve, Movement::Release, Movement::Ship];

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn stock(product_id: &str, available: u64, reserved: u64, shipped: u64) -> Stock {
        Stock {
            available,
            reserved,
            shipped,
            ..Stock::new(product_id)
        }
    }

    fn line(product_id: &str, quantity: u32) -> OrderLine {
        OrderLine {
            product_id: product_id.to_owned(),
            name: format!("product {product_id}"),
            unit_price: Money::usd(100),
            quantity,
        }
    }

    fn quantity(product_id: &str, quantity: u32) -> LineQuantity {
        LineQuantity {
            product_id: product_id.to_owned(),
            quantity,
        }
    }

    fn decide(lines: Vec<LineQuantity>, stocks: &[Stock]) -> Decision {
        let by_id: HashMap<&str, &Stock> = stocks
            .iter()
            .map(|stock| (stock.product_id.as_str(), stock))
            .collect();
        Reservation::decide("o1", lines, |id| by_id.get(id).copied(), at(1_000))
    }

    fn reserved(lines: Vec<LineQuantity>) -> Reservation {
        match decide(
            lines.clone(),
            &lines
                .iter()
                .map(|l| stock(&l.product_id, 100, 0, 0))
                .collect::<Vec<_>>(),
        ) {
            Decision::Reserve(change) => change.reservation,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    #[test]
    fn every_movement_keeps_the_total_and_moves_between_the_counters_it_names() {
        let before = stock("p", 10, 10, 10);
        for movement in MOVEMENTS {
            let after = before.apply(movement, 4).unwrap();
            assert_eq!(after.total(), before.total(), "{movement:?}");
            assert_eq!(after.count(movement.source()), 6, "{movement:?}");
            assert_eq!(after.count(movement.target()), 14, "{movement:?}");
            assert_eq!(after.version, before.version + 1);
        }
    }

    #[test]
    fn each_movement_follows_the_order_life() {
        use Counter::*;
        let paths: Vec<_> = MOVEMENTS.iter().map(|m| (m.source(), m.target())).collect();
        assert_eq!(
            paths,
            [
                (Available, Reserved),
                (Reserved, Available),
                (Reserved, Shipped)
            ]
        );
    }

    #[test]
    fn no_movement_takes_more_than_its_source_counter_holds() {
        let before = stock("p", 3, 3, 0);
        for movement in MOVEMENTS {
            assert!(before.apply(movement, 3).is_ok(), "{movement:?}: all of it");
            assert_eq!(
                before.apply(movement, 4),
                Err(MovementError::Insufficient {
                    product_id: "p".into(),
                    counter: movement.source().field(),
                    has: 3,
                    wanted: 4,
                }),
                "{movement:?}"
            );
        }
    }

    #[test]
    fn a_deleted_product_cannot_be_reserved_but_what_it_promised_still_moves() {
        let deleted = Stock {
            deleted: true,
            ..stock("p", 5, 2, 0)
        };
        assert_eq!(
            deleted.apply(Movement::Reserve, 1),
            Err(MovementError::Deleted {
                product_id: "p".into()
            })
        );
        assert!(deleted.apply(Movement::Release, 2).is_ok());
        assert!(deleted.apply(Movement::Ship, 2).is_ok());
    }

    #[test]
    fn requested_lines_merge_one_product_and_sort_by_product() {
        let lines = requested_lines(&[line("b", 2), line("a", 1), line("b", 3)]).unwrap();
        assert_eq!(lines, vec![quantity("a", 1), quantity("b", 5)]);
    }

    #[test]
    fn an_order_without_lines_or_with_an_empty_line_is_refused() {
        assert_eq!(requested_lines(&[]), Err(InvalidOrder::NoLines));
        assert_eq!(
            requested_lines(&[line("a", 1), line("b", 0)]),
            Err(InvalidOrder::ZeroQuantity {
                product_id: "b".into()
            })
        );
        assert_eq!(
            requested_lines(&[line("a", u32::MAX), line("a", 1)]),
            Err(InvalidOrder::Overflow {
                product_id: "a".into()
            })
        );
    }

    #[test]
    fn an_order_with_enough_of_everything_reserves_every_line() {
        let lines = vec![quantity("a", 2), quantity("b", 5)];
        let Decision::Reserve(change) =
            decide(lines.clone(), &[stock("a", 2, 0, 0), stock("b", 9, 1, 1)])
        else {
            panic!("expected a reservation");
        };
        assert_eq!(change.reservation.status, ReservationStatus::Reserved);
        assert_eq!(change.reservation.lines, lines);
        assert_eq!(change.reservation.version, 1);
        assert_eq!(change.reservation.created_at, "1970-01-01T00:16:40.000Z");
        assert_eq!(
            change.moves,
            vec![
                StockMove {
                    product_id: "a".into(),
                    movement: Movement::Reserve,
                    quantity: 2
                },
                StockMove {
                    product_id: "b".into(),
                    movement: Movement::Reserve,
                    quantity: 5
                },
            ]
        );
        assert_eq!(
            change.event,
            StockReserved {
                order_id: "o1".into(),
                lines
            }
        );
    }

    #[test]
    fn one_short_line_fails_the_whole_order_and_names_every_short_product() {
        let lines = vec![
            quantity("a", 1),
            quantity("b", 3),
            quantity("c", 1),
            quantity("d", 1),
            quantity("e", 1),
        ];
        let stocks = [
            stock("a", 1, 0, 0),
            stock("b", 2, 5, 0), // too few available; reserved units do not count
            Stock {
                deleted: true,
                ..stock("c", 10, 0, 0)
            },
            // d was never stocked
            stock("e", 1, 0, 0),
        ];
        let Decision::Fail(change) = decide(lines.clone(), &stocks) else {
            panic!("expected a failure");
        };
        assert_eq!(change.event.short_product_ids, ["b", "c", "d"]);
        assert!(change.moves.is_empty(), "none is reserved");
        assert_eq!(change.reservation.status, ReservationStatus::Failed);
        assert_eq!(change.reservation.lines, lines);
        assert_eq!(change.reservation.short_product_ids, ["b", "c", "d"]);
    }

    #[test]
    fn an_order_too_large_to_hold_at_once_fails_on_every_product() {
        let lines: Vec<_> = (0..=MAX_PRODUCTS_PER_RESERVATION)
            .map(|i| quantity(&format!("p{i:03}"), 1))
            .collect();
        let stocks: Vec<_> = lines
            .iter()
            .map(|l| stock(&l.product_id, 10, 0, 0))
            .collect();
        let Decision::Fail(change) = decide(lines.clone(), &stocks) else {
            panic!("expected a failure");
        };
        assert_eq!(change.event.short_product_ids.len(), lines.len());

        let fitting = lines[..MAX_PRODUCTS_PER_RESERVATION].to_vec();
        assert!(matches!(decide(fitting, &stocks), Decision::Reserve(_)));
    }

    #[test]
    fn a_reserved_reservation_releases_its_lines_once() {
        let reservation = reserved(vec![quantity("a", 2), quantity("b", 1)]);
        let change = reservation.release(at(2_000)).unwrap();
        assert_eq!(change.reservation.status, ReservationStatus::Released);
        assert_eq!(change.reservation.version, 2);
        assert_eq!(change.reservation.created_at, reservation.created_at);
        assert_ne!(change.reservation.updated_at, reservation.updated_at);
        assert_eq!(change.event.lines, reservation.lines);
        assert!(change.moves.iter().all(|m| m.movement == Movement::Release));
        assert_eq!(change.moves.len(), 2);
        assert_eq!(
            change.reservation.release(at(3_000)),
            Err(NotReserved {
                status: ReservationStatus::Released
            })
        );
    }

    #[test]
    fn a_reservation_recognises_its_lines_however_they_are_listed() {
        let reservation = reserved(vec![quantity("a", 2), quantity("b", 1)]);
        assert!(reservation.holds_exactly(&[quantity("b", 1), quantity("a", 1), quantity("a", 1)]));
        assert!(!reservation.holds_exactly(&[quantity("a", 2)]));
        assert!(!reservation.holds_exactly(&[quantity("a", 2), quantity("b", 2)]));
    }

    #[test]
    fn a_reserved_reservation_ships_its_lines_once() {
        let reservation = reserved(vec![quantity("a", 2)]);
        let change = reservation.ship(at(2_000)).unwrap();
        assert_eq!(change.reservation.status, ReservationStatus::Shipped);
        assert_eq!(
            change.moves,
            vec![StockMove {
                product_id: "a".into(),
                movement: Movement::Ship,
                quantity: 2
            }]
        );
        assert!(change.reservation.ship(at(3_000)).is_err());
    }

    #[test]
    fn only_a_reserved_reservation_can_be_released_or_shipped() {
        let reservation = reserved(vec![quantity("a", 1)]);
        let shipped = reservation.ship(at(2_000)).unwrap().reservation;
        let released = reservation.release(at(2_000)).unwrap().reservation;
        let failed = match decide(vec![quantity("a", 1)], &[]) {
            Decision::Fail(change) => change.reservation,
            other => panic!("{other:?}"),
        };
        let cancelled_first = Reservation::cancelled_before_reservation("o1", at(1_000));
        for final_state in [shipped, released, failed, cancelled_first] {
            let status = final_state.status;
            assert_eq!(
                final_state.release(at(5_000)),
                Err(NotReserved { status }),
                "{status:?}"
            );
            assert_eq!(
                final_state.ship(at(5_000)),
                Err(NotReserved { status }),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_cancellation_seen_first_records_an_empty_final_reservation() {
        let reservation = Reservation::cancelled_before_reservation("o9", at(1_000));
        assert_eq!(
            reservation.status,
            ReservationStatus::CancelledBeforeReservation
        );
        assert!(reservation.lines.is_empty());
        assert_eq!(reservation.version, 1);
    }

    #[test]
    fn statuses_are_stored_in_snake_case() {
        let names: Vec<String> = [
            ReservationStatus::Reserved,
            ReservationStatus::Failed,
            ReservationStatus::Released,
            ReservationStatus::Shipped,
            ReservationStatus::CancelledBeforeReservation,
        ]
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                "\"reserved\"",
                "\"failed\"",
                "\"released\"",
                "\"shipped\"",
                "\"cancelled_before_reservation\""
            ]
        );
    }

    #[test]
    fn the_stock_input_takes_zero_to_a_million_units_and_nothing_else() {
        let valid = |available| StockInput { available }.validate().is_ok();
        assert!(valid(0));
        assert!(valid(MAX_AVAILABLE));
        assert!(!valid(-1));
        assert!(!valid(MAX_AVAILABLE + 1));
        assert_eq!(StockInput { available: 42 }.units(), 42);
        assert!(serde_json::from_str::<StockInput>(r#"{"available": 1, "reserved": 0}"#).is_err());
    }

    #[test]
    fn levels_show_the_three_counters() {
        let levels = stock("p", 1, 2, 3).levels();
        assert_eq!(
            serde_json::to_value(levels).unwrap(),
            serde_json::json!({"productId": "p", "available": 1, "reserved": 2, "shipped": 3})
        );
    }
}
