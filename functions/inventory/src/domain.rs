//! Stock, reservations and the rules that move units between them. No I/O and no AWS
//! type here: the consumer and the API call these functions, and the store turns what
//! they return into conditional writes.
//!
//! A product's units sit in three counters. `available` units may be promised to a new
//! order, `reserved` units are promised to an order that is not shipped yet, `shipped`
//! units have left. Orders only ever move units from one counter to another
//! ([`Movement`]), so `available + reserved + shipped` changes only when an admin sets the
//! stock — the invariant of DESIGN §3.
//!
//! A best-selling product's counters are split over several shards (items), so that
//! concurrent orders update different items instead of queueing on one: DynamoDB runs the
//! transactions on one item one at a time. A reservation takes each line from one shard
//! when one has enough, from several when none does, and records which, so that release
//! and shipping move exactly those units on. Every figure shown is the sum of the shards.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use shop_events::inventory::{StockReleased, StockReservationFailed, StockReserved};
use shop_events::{LineQuantity, OrderLine, timestamp};

/// The most units an admin may make available at once.
pub const MAX_AVAILABLE: i64 = 1_000_000;

/// The most shards one product's stock may be split into. An admin's restock writes every
/// shard in one transaction, and 32 shards take a product past 5,000 orders per second
/// (DynamoDB's 1,000 writes per second per partition, 4 units per order).
pub const MAX_SHARDS: u32 = 32;

/// The most stock writes one reservation may make. A reservation commits in one DynamoDB
/// transaction of at most 100 writes: one per shard it takes units from (one per product
/// unless a line is split), plus the reservation, its event and the consumer's
/// processed-event marker.
pub const MAX_STOCK_WRITES_PER_RESERVATION: usize = 97;

/// One product's stock: every shard that may hold its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    pub product_id: String,
    /// By shard number. Shard 0 is the item every product has had from the start, so a
    /// product that was never sharded is exactly what it was before sharding existed.
    pub shards: Vec<Shard>,
    /// How many shards (from 0) an admin's restock spreads `available` over. Shards past
    /// it held units before an admin lowered the count: they keep what orders hold there
    /// and sell what comes back to them, and a restock sets their `available` to 0.
    pub active_shards: u32,
    /// The catalog deleted the product: it can never be promised to an order again, but
    /// units already promised can still be released or shipped.
    pub deleted: bool,
}

/// One shard's counters: one item in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shard {
    pub available: u64,
    pub reserved: u64,
    pub shipped: u64,
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
    /// The stored attribute (and [`StockLevels`] field) that holds it.
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
    #[error("product {product_id} has no shard {shard}")]
    NoSuchShard { product_id: String, shard: u32 },
}

impl Shard {
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
}

impl Stock {
    /// A product the shop has no units of yet, in one shard.
    pub fn new(product_id: impl Into<String>) -> Self {
        Self {
            product_id: product_id.into(),
            shards: vec![Shard::default()],
            active_shards: 1,
            deleted: false,
        }
    }

    /// A counter summed over every shard.
    pub fn count(&self, counter: Counter) -> u64 {
        self.shards.iter().map(|shard| shard.count(counter)).sum()
    }

    pub fn available(&self) -> u64 {
        self.count(Counter::Available)
    }

    pub fn reserved(&self) -> u64 {
        self.count(Counter::Reserved)
    }

    pub fn shipped(&self) -> u64 {
        self.count(Counter::Shipped)
    }

    /// Every unit the product has, wherever it is; only an admin changes it.
    pub fn total(&self) -> u64 {
        self.available() + self.reserved() + self.shipped()
    }

    /// This stock after `quantity` units moved within one shard, if the movement's guard
    /// holds. The store writes the same guard as the condition of its update, so that
    /// the check and the move are one atomic step there.
    pub fn apply(
        &self,
        shard: u32,
        movement: Movement,
        quantity: u64,
    ) -> Result<Stock, MovementError> {
        if movement.requires_listed_product() && self.deleted {
            return Err(MovementError::Deleted {
                product_id: self.product_id.clone(),
            });
        }
        let Some(counters) = self.shards.get(shard as usize) else {
            return Err(MovementError::NoSuchShard {
                product_id: self.product_id.clone(),
                shard,
            });
        };
        let source = movement.source();
        let has = counters.count(source);
        if has < quantity {
            return Err(MovementError::Insufficient {
                product_id: self.product_id.clone(),
                counter: source.field(),
                has,
                wanted: quantity,
            });
        }
        let mut moved = self.clone();
        let counters = &mut moved.shards[shard as usize];
        *counters.count_mut(source) -= quantity;
        *counters.count_mut(movement.target()) += quantity;
        counters.version += 1;
        Ok(moved)
    }

    /// The shards a new order's `quantity` units would come from. One shard when one
    /// holds enough, looking from shard `start` (modulo the active shards) on, so that
    /// concurrent orders drawing different starts update different items; otherwise as
    /// few shards as that walk needs. All or nothing: an error when the product is
    /// deleted or all its shards together hold too few.
    pub fn allocate(&self, quantity: u64, start: u32) -> Result<Vec<(u32, u64)>, MovementError> {
        if self.deleted {
            return Err(MovementError::Deleted {
                product_id: self.product_id.clone(),
            });
        }
        let has = self.available();
        if has < quantity || self.shards.is_empty() {
            return Err(MovementError::Insufficient {
                product_id: self.product_id.clone(),
                counter: Counter::Available.field(),
                has,
                wanted: quantity,
            });
        }
        let count = self.shards.len();
        let first = start as usize % self.active_shards.clamp(1, count as u32) as usize;
        let walk = || (0..count).map(move |step| (first + step) % count);
        if let Some(shard) = walk().find(|&shard| self.shards[shard].available >= quantity) {
            return Ok(vec![(shard as u32, quantity)]);
        }
        let mut wanted = quantity;
        let mut taken = Vec::new();
        for shard in walk() {
            let take = self.shards[shard].available.min(wanted);
            if take > 0 {
                taken.push((shard as u32, take));
                wanted -= take;
            }
            if wanted == 0 {
                break;
            }
        }
        Ok(taken)
    }

    /// This stock after an admin set `available` units free to sell over `active_shards`
    /// shards: spread evenly over them (the first ones take the remainder), 0 on any shard
    /// past them; what orders hold or have shipped stays where it is. More shards than
    /// before adds empty ones; fewer keeps the rest, since orders may hold units there.
    pub fn restocked(&self, available: u64, active_shards: u32) -> Stock {
        let active = active_shards.clamp(1, MAX_SHARDS);
        let mut restocked = self.clone();
        if restocked.shards.len() < active as usize {
            restocked.shards.resize(active as usize, Shard::default());
        }
        let (share, remainder) = (available / u64::from(active), available % u64::from(active));
        for (number, shard) in restocked.shards.iter_mut().enumerate() {
            shard.available = match number as u64 {
                n if n < remainder => share + 1,
                n if n < u64::from(active) => share,
                _ => 0,
            };
            shard.version += 1;
        }
        restocked.active_shards = active;
        restocked
    }

    /// What `GET` and `PUT /inventory/{productId}` answer.
    pub fn levels(&self) -> StockLevels {
        StockLevels {
            product_id: self.product_id.clone(),
            available: self.available(),
            reserved: self.reserved(),
            shipped: self.shipped(),
            shards: self.active_shards,
        }
    }
}

/// A product's stock as the HTTP API shows it (DESIGN §6), summed over its shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLevels {
    pub product_id: String,
    pub available: u64,
    pub reserved: u64,
    pub shipped: u64,
    /// How many shards restocks spread the units over.
    pub shards: u32,
}

/// The body of `PUT /inventory/{productId}`: how many units are free to sell and,
/// optionally, over how many shards (kept as it was when absent). Any other field is
/// refused, so a client that believes it can set `reserved` learns otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct StockInput {
    #[garde(range(min = 0, max = MAX_AVAILABLE))]
    #[serde(deserialize_with = "shop_events::limits::whole_number")]
    pub available: i64,
    #[garde(inner(range(min = 1, max = i64::from(MAX_SHARDS))))]
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub shards: Option<i64>,
}

fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    shop_events::limits::whole_number(deserializer).map(Some)
}

impl StockInput {
    /// The validated quantity; validation has ruled out negatives.
    pub fn units(&self) -> u64 {
        u64::try_from(self.available).unwrap_or(0)
    }

    /// The validated shard count, if the admin gave one.
    pub fn shard_count(&self) -> Option<u32> {
        self.shards.and_then(|shards| u32::try_from(shards).ok())
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
    /// For a held reservation, which shards its units came from. Empty in reservations
    /// made before stock was sharded: those took every line from shard 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<ShardTake>,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1; every transition is written conditionally on the version it read.
    pub version: u64,
}

/// Units of one product a reservation took from one of its shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardTake {
    pub product_id: String,
    pub shard: u32,
    pub quantity: u64,
}

/// Units of one product, in one of its shards, that a reservation's transition moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    pub product_id: String,
    pub shard: u32,
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

fn moves(taken: &[ShardTake], movement: Movement) -> Vec<StockMove> {
    taken
        .iter()
        .map(|take| StockMove {
            product_id: take.product_id.clone(),
            shard: take.shard,
            movement,
            quantity: take.quantity,
        })
        .collect()
}

impl Reservation {
    fn first(
        order_id: &str,
        status: ReservationStatus,
        lines: Vec<LineQuantity>,
        short_product_ids: Vec<String>,
        taken: Vec<ShardTake>,
        now: DateTime<Utc>,
    ) -> Self {
        let at = timestamp(now);
        Self {
            order_id: order_id.to_owned(),
            status,
            lines,
            short_product_ids,
            taken,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
        }
    }

    /// Reserves every line or none. `stock_of` answers a product's current stock, `None`
    /// for a product that was never stocked. A line is short when its product was never
    /// stocked, was deleted, or has fewer units available (over all its shards) than the
    /// line asks for. `start` is where each product's search for a shard begins: the
    /// caller draws it at random, so that concurrent orders spread over the shards.
    pub fn decide<'a>(
        order_id: &str,
        lines: Vec<LineQuantity>,
        stock_of: impl Fn(&str) -> Option<&'a Stock>,
        start: u32,
        now: DateTime<Utc>,
    ) -> Decision {
        let mut taken = Vec::new();
        let mut short_product_ids = Vec::new();
        for line in &lines {
            let allocation = stock_of(&line.product_id)
                .map(|stock| stock.allocate(u64::from(line.quantity), start));
            match allocation {
                Some(Ok(shards)) => {
                    taken.extend(shards.into_iter().map(|(shard, quantity)| ShardTake {
                        product_id: line.product_id.clone(),
                        shard,
                        quantity,
                    }))
                }
                _ => short_product_ids.push(line.product_id.clone()),
            }
        }
        if taken.len() > MAX_STOCK_WRITES_PER_RESERVATION {
            // Cannot be held atomically; better to refuse the order than to hold half of it.
            short_product_ids = lines.iter().map(|line| line.product_id.clone()).collect();
        }
        if short_product_ids.is_empty() {
            let event = StockReserved {
                order_id: order_id.to_owned(),
                lines: lines.clone(),
            };
            Decision::Reserve(Change {
                moves: moves(&taken, Movement::Reserve),
                reservation: Reservation::first(
                    order_id,
                    ReservationStatus::Reserved,
                    lines,
                    Vec::new(),
                    taken,
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
                    Vec::new(),
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

    /// The units this reservation holds, shard by shard.
    pub fn held(&self) -> Vec<ShardTake> {
        if !self.taken.is_empty() {
            return self.taken.clone();
        }
        self.lines
            .iter()
            .map(|line| ShardTake {
                product_id: line.product_id.clone(),
                shard: 0,
                quantity: u64::from(line.quantity),
            })
            .collect()
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
            moves: moves(&self.held(), Movement::Release),
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
            moves: moves(&self.held(), Movement::Ship),
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
        sharded(product_id, &[(available, reserved, shipped)])
    }

    /// A product whose shards hold (available, reserved, shipped), all of them active.
    fn sharded(product_id: &str, shards: &[(u64, u64, u64)]) -> Stock {
        Stock {
            shards: shards
                .iter()
                .map(|&(available, reserved, shipped)| Shard {
                    available,
                    reserved,
                    shipped,
                    version: 1,
                })
                .collect(),
            active_shards: shards.len() as u32,
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
        Reservation::decide("o1", lines, |id| by_id.get(id).copied(), 0, at(1_000))
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
            let after = before.apply(0, movement, 4).unwrap();
            assert_eq!(after.total(), before.total(), "{movement:?}");
            assert_eq!(after.count(movement.source()), 6, "{movement:?}");
            assert_eq!(after.count(movement.target()), 14, "{movement:?}");
            assert_eq!(after.shards[0].version, before.shards[0].version + 1);
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
            assert!(
                before.apply(0, movement, 3).is_ok(),
                "{movement:?}: all of it"
            );
            assert_eq!(
                before.apply(0, movement, 4),
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
            deleted.apply(0, Movement::Reserve, 1),
            Err(MovementError::Deleted {
                product_id: "p".into()
            })
        );
        assert!(deleted.apply(0, Movement::Release, 2).is_ok());
        assert!(deleted.apply(0, Movement::Ship, 2).is_ok());
    }

    #[test]
    fn a_line_comes_from_one_shard_when_one_has_enough_looking_from_the_start() {
        let stock = sharded("p", &[(5, 0, 0), (1, 0, 0), (5, 0, 0), (0, 0, 0)]);
        assert_eq!(stock.allocate(3, 0), Ok(vec![(0, 3)]));
        assert_eq!(
            stock.allocate(3, 1),
            Ok(vec![(2, 3)]),
            "shard 1 is too small"
        );
        assert_eq!(stock.allocate(3, 2), Ok(vec![(2, 3)]));
        assert_eq!(stock.allocate(3, 3), Ok(vec![(0, 3)]), "the walk wraps");
        assert_eq!(
            stock.allocate(3, 6),
            Ok(vec![(2, 3)]),
            "start is taken modulo"
        );
    }

    #[test]
    fn a_line_no_shard_can_fill_alone_is_split_and_a_line_all_cannot_fill_is_short() {
        let stock = sharded("p", &[(2, 0, 0), (0, 4, 0), (3, 0, 0)]);
        assert_eq!(stock.allocate(5, 0), Ok(vec![(0, 2), (2, 3)]));
        assert_eq!(stock.allocate(4, 2), Ok(vec![(2, 3), (0, 1)]));
        assert_eq!(
            stock.allocate(6, 0),
            Err(MovementError::Insufficient {
                product_id: "p".into(),
                counter: "available",
                has: 5,
                wanted: 6,
            }),
            "reserved units in shard 1 do not count"
        );
        let deleted = Stock {
            deleted: true,
            ..stock
        };
        assert!(matches!(
            deleted.allocate(1, 0),
            Err(MovementError::Deleted { .. })
        ));
    }

    #[test]
    fn an_allocation_takes_exactly_the_line_from_distinct_shards_that_hold_it() {
        let layouts: [&[u64]; 5] = [
            &[0],
            &[7],
            &[1, 1, 1, 1],
            &[0, 9, 0, 2, 5],
            &[3, 0, 0, 0, 0, 0, 0, 4],
        ];
        for layout in layouts {
            let stock = sharded("p", &layout.iter().map(|&a| (a, 0, 0)).collect::<Vec<_>>());
            for quantity in 1..=stock.available() + 1 {
                for start in 0..10 {
                    let Ok(taken) = stock.allocate(quantity, start) else {
                        assert!(quantity > stock.available(), "{layout:?} {quantity}");
                        continue;
                    };
                    assert_eq!(taken.iter().map(|(_, q)| q).sum::<u64>(), quantity);
                    let mut shards: Vec<u32> = taken.iter().map(|(shard, _)| *shard).collect();
                    shards.dedup();
                    assert_eq!(shards.len(), taken.len(), "one write per shard");
                    let mut after = stock.clone();
                    for (shard, units) in &taken {
                        after = after.apply(*shard, Movement::Reserve, *units).unwrap();
                    }
                    assert_eq!(after.total(), stock.total());
                }
            }
        }
    }

    #[test]
    fn concurrent_orders_drawing_different_starts_take_different_shards() {
        let stock = sharded("p", &[(10, 0, 0); 8]);
        let shards: Vec<u32> = (0..8)
            .map(|start| stock.allocate(1, start).unwrap()[0].0)
            .collect();
        assert_eq!(shards, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_restock_spreads_available_over_the_active_shards_and_keeps_what_orders_hold() {
        let before = sharded("p", &[(1, 2, 3), (4, 5, 6)]);
        let more = before.restocked(10, 4);
        assert_eq!(more.active_shards, 4);
        let available: Vec<u64> = more.shards.iter().map(|s| s.available).collect();
        assert_eq!(
            available,
            [3, 3, 2, 2],
            "the first shards take the remainder"
        );
        assert_eq!((more.reserved(), more.shipped()), (7, 9));
        assert_eq!(more.total(), 10 + 7 + 9);

        let fewer = more.restocked(5, 1);
        assert_eq!(
            fewer.shards.len(),
            4,
            "shards keep the units orders hold there"
        );
        let available: Vec<u64> = fewer.shards.iter().map(|s| s.available).collect();
        assert_eq!(available, [5, 0, 0, 0]);
        assert_eq!(fewer.levels().shards, 1);
        assert_eq!((fewer.reserved(), fewer.shipped()), (7, 9));

        assert_eq!(
            Stock::new("q").restocked(3, 0).active_shards,
            1,
            "at least one"
        );
        assert_eq!(Stock::new("q").restocked(3, 99).active_shards, MAX_SHARDS);
    }

    #[test]
    fn a_sharded_reservation_records_its_shards_and_moves_exactly_them_back_or_on() {
        let stocks = [
            sharded("a", &[(1, 0, 0), (1, 0, 0), (0, 0, 0)]),
            stock("b", 4, 0, 0),
        ];
        let Decision::Reserve(change) = decide(vec![quantity("a", 2), quantity("b", 1)], &stocks)
        else {
            panic!("expected a reservation");
        };
        let takes = |moves: &[StockMove]| -> Vec<(String, u32, u64)> {
            moves
                .iter()
                .map(|m| (m.product_id.clone(), m.shard, m.quantity))
                .collect()
        };
        let expected = vec![
            ("a".to_owned(), 0, 1),
            ("a".to_owned(), 1, 1),
            ("b".to_owned(), 0, 1),
        ];
        assert_eq!(takes(&change.moves), expected);
        assert_eq!(
            change.event.lines,
            vec![quantity("a", 2), quantity("b", 1)],
            "the event speaks of products, not shards"
        );
        let reservation = change.reservation;
        let stored: Reservation =
            serde_json::from_value(serde_json::to_value(&reservation).unwrap()).unwrap();
        assert_eq!(stored, reservation);

        let release = reservation.release(at(2_000)).unwrap();
        assert_eq!(takes(&release.moves), expected);
        assert!(
            release
                .moves
                .iter()
                .all(|m| m.movement == Movement::Release)
        );
        let ship = reservation.ship(at(2_000)).unwrap();
        assert_eq!(takes(&ship.moves), expected);
    }

    #[test]
    fn a_reservation_stored_before_sharding_holds_its_lines_in_shard_zero() {
        let stored = serde_json::json!({
            "orderId": "o1", "status": "reserved",
            "lines": [{"productId": "a", "quantity": 2}],
            "createdAt": "2026-11-01T00:00:00.000Z", "updatedAt": "2026-11-01T00:00:00.000Z",
            "version": 1
        });
        let reservation: Reservation = serde_json::from_value(stored).unwrap();
        let release = reservation.release(at(2_000)).unwrap();
        assert_eq!(
            release.moves,
            vec![StockMove {
                product_id: "a".into(),
                shard: 0,
                movement: Movement::Release,
                quantity: 2
            }]
        );
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
                    shard: 0,
                    movement: Movement::Reserve,
                    quantity: 2
                },
                StockMove {
                    product_id: "b".into(),
                    shard: 0,
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
        let lines: Vec<_> = (0..=MAX_STOCK_WRITES_PER_RESERVATION)
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

        let fitting = lines[..MAX_STOCK_WRITES_PER_RESERVATION].to_vec();
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
                shard: 0,
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
        let valid = |available| {
            StockInput {
                available,
                shards: None,
            }
            .validate()
            .is_ok()
        };
        assert!(valid(0));
        assert!(valid(MAX_AVAILABLE));
        assert!(!valid(-1));
        assert!(!valid(MAX_AVAILABLE + 1));
        let input: StockInput = serde_json::from_str(r#"{"available": 42}"#).unwrap();
        assert_eq!((input.units(), input.shard_count()), (42, None));
        assert!(serde_json::from_str::<StockInput>(r#"{"available": 1, "reserved": 0}"#).is_err());
    }

    #[test]
    fn the_stock_input_takes_one_to_max_shards_when_given() {
        let parse = |body: &str| {
            serde_json::from_str::<StockInput>(body)
                .ok()
                .filter(|input| input.validate().is_ok())
                .and_then(|input| input.shard_count())
        };
        assert_eq!(parse(r#"{"available": 1, "shards": 1}"#), Some(1));
        assert_eq!(parse(r#"{"available": 1, "shards": 32}"#), Some(32));
        for refused in ["0", "33", "-1", "1.5", "\"4\"", "null"] {
            let body = format!(r#"{{"available": 1, "shards": {refused}}}"#);
            assert_eq!(parse(&body), None, "{body}");
        }
    }

    #[test]
    fn levels_show_the_three_counters() {
        let levels = stock("p", 1, 2, 3).levels();
        assert_eq!(
            serde_json::to_value(levels).unwrap(),
            serde_json::json!({"productId": "p", "available": 1, "reserved": 2, "shipped": 3, "shards": 1})
        );
    }
}
