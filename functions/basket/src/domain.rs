//! The basket's rules. No I/O and no AWS type here: the rest of the capability reads what
//! these functions need, calls them and persists what they return.
//!
//! - [`ProjectedProduct`]: the basket's own copy of what catalog announces about a product
//!   (name, price, deleted or not). The newest version wins, whatever order events arrive in.
//! - [`Basket`]: one per user, lines of (product, quantity). It stores no prices: every
//!   read prices it from the projection, so it always shows today's catalog.
//! - [`Checkout`]: a basket frozen into the order it will become, which raises
//!   CheckoutRequested. The lines it took stay in the basket, marked as pending for that
//!   order, until the order exists; then they leave it. A pending line is never checked
//!   out again: only lines added or changed since can become another order.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use shop_events::basket::CheckoutRequested;
use shop_events::catalog::{ProductDeleted, ProductSnapshot};
use shop_events::limits::text::stored;
use shop_events::{Address, Money, OrderLine};
use shop_platform::validate::{line, not_blank};

pub const CURRENCY: &str = "USD";
/// Distinct products in one basket: an order's most lines. Also bounds the item
/// (DynamoDB's 400 KB) and the reads that price it (one BatchGetItem of at most 100 keys).
pub use shop_events::limits::MAX_LINES;
pub use shop_events::limits::MAX_QUANTITY;
use shop_events::limits::{
    MAX_ADDRESS_LINE_CHARS, MAX_ADDRESS_NAME_CHARS, MAX_CITY_CHARS, MAX_PAYMENT_TOKEN_CHARS,
    MAX_POSTAL_CODE_CHARS,
};
/// A basket nobody has changed for this long is deleted by DynamoDB's TTL.
pub const IDLE_LIFETIME: TimeDelta = TimeDelta::days(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasketError {
    #[error("a quantity is 1 to {MAX_QUANTITY}")]
    QuantityOutOfRange,
    #[error("the basket does not know product {0}")]
    NotForSale(String),
    #[error("a basket holds at most {MAX_LINES} different products")]
    TooManyLines,
    #[error("the basket's total is too large to charge")]
    TotalTooLarge,
    #[error("the basket is empty")]
    Empty,
    /// A line whose product the projection does not hold: neither on sale nor deleted.
    /// A checkout must not leave it out without a word, nor guess its price.
    #[error(
        "the basket has no price for product {0}; remove it from the basket, or try again \
         later"
    )]
    Unpriced(String),
    /// Every line to order is already on its way to becoming an order.
    #[error(
        "a checkout of this basket is in progress: its order appears under /orders in a \
         moment; add or change a line to check out more"
    )]
    CheckoutInProgress,
}

/// What the basket knows of one catalog product, from catalog's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedProduct {
    pub product_id: String,
    /// The catalog version this reflects. Only an event with a higher version replaces it,
    /// so an event that arrives late, twice or out of order changes nothing.
    pub version: u64,
    pub listing: Listing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    OnSale {
        name: String,
        unit_price: Money,
    },
    /// Deleted from the catalog. The tombstone keeps its version so that an older
    /// ProductCreated or ProductUpdated arriving after it cannot bring the product back.
    Deleted,
}

/// A catalog event whose price the basket could never charge: catalog guarantees a
/// positive USD amount, so this is a broken event, not a product to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("product {product_id} has a price the basket cannot sell at: {price:?}")]
pub struct UnsellablePrice {
    pub product_id: String,
    pub price: Money,
}

impl ProjectedProduct {
    /// From ProductCreated or ProductUpdated, which both carry the whole product.
    pub fn on_sale(snapshot: ProductSnapshot) -> Result<Self, UnsellablePrice> {
        if snapshot.price.currency != CURRENCY || snapshot.price.amount <= 0 {
            return Err(UnsellablePrice {
                product_id: snapshot.product_id,
                price: snapshot.price,
            });
        }
        Ok(Self {
            product_id: snapshot.product_id,
            version: snapshot.version,
            listing: Listing::OnSale {
                name: snapshot.name,
                unit_price: snapshot.price,
            },
        })
    }

    pub fn deleted(event: &ProductDeleted) -> Self {
        Self {
            product_id: event.product_id.clone(),
            version: event.version,
            listing: Listing::Deleted,
        }
    }

    /// Whether this replaces `current` (`None`: the product is not projected yet).
    pub fn supersedes(&self, current: Option<&ProjectedProduct>) -> bool {
        current.is_none_or(|current| self.version > current.version)
    }
}

/// The part of the projection one request read: the products a basket's lines name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    products: HashMap<String, ProjectedProduct>,
}

impl Catalog {
    /// Name and unit price of a product on sale; `None` if it is deleted or unknown.
    pub fn for_sale(&self, product_id: &str) -> Option<(&str, &Money)> {
        match &self.products.get(product_id)?.listing {
            Listing::OnSale { name, unit_price } => Some((name, unit_price)),
            Listing::Deleted => None,
        }
    }

    /// Whether the catalog has deleted the product: its projection is a tombstone. A
    /// product this read did not find is unknown, not deleted: the read may have missed
    /// it, and nothing may be decided from its absence.
    pub fn is_deleted(&self, product_id: &str) -> bool {
        self.products
            .get(product_id)
            .is_some_and(|product| product.listing == Listing::Deleted)
    }
}

impl FromIterator<ProjectedProduct> for Catalog {
    fn from_iter<I: IntoIterator<Item = ProjectedProduct>>(products: I) -> Self {
        Self {
            products: products
                .into_iter()
                .map(|product| (product.product_id.clone(), product))
                .collect(),
        }
    }
}

/// One user's basket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Basket {
    pub user_id: String,
    /// In the order the products were first added.
    pub lines: Vec<BasketLine>,
    /// 0 until first stored; every stored change adds one, and writes are conditional on
    /// it, so two concurrent changes never silently overwrite each other.
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    /// Unix seconds; DynamoDB's TTL deletes the basket some time after this.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasketLine {
    pub product_id: String,
    pub quantity: u32,
    pub updated_at: DateTime<Utc>,
    /// The basket version that last set this line. With `updatedAt` it tells a line a
    /// checkout took from one set after it (see [`Checkout::took`]).
    pub basket_version: u64,
    /// The order a checkout froze this line into, until that order exists and the line
    /// leaves the basket. Setting the line again clears it: the new quantity is the
    /// user's next order, not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_order_id: Option<String>,
}

/// A basket priced from the projection: what `GET /basket` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PricedBasket {
    pub items: Vec<OrderLine>,
    pub total: Money,
}

impl Basket {
    /// The basket of a user who has none yet: empty and never stored.
    pub fn empty(user_id: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self {
            user_id: user_id.into(),
            lines: Vec::new(),
            version: 0,
            updated_at: now,
            expires_at: expiry(now),
        }
    }

    /// The basket as its user sees it at `now`. TTL deletes expired items only eventually
    /// (typically within days), so one past its expiry reads as empty; its version stays,
    /// for the next conditional write.
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        if self.expires_at <= now.timestamp() {
            self.lines.clear();
        }
        self
    }

    /// Sets the quantity of one product, adding its line if needed. Lines of products the
    /// catalog has deleted are dropped on the way: they can never be bought again, and
    /// must not hold places under [`MAX_LINES`]. Lines of products `catalog` does not
    /// know stay: not knowing is not knowing that they are gone.
    pub fn set_line(
        &self,
        product_id: &str,
        quantity: u32,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Result<Basket, BasketError> {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(BasketError::QuantityOutOfRange);
        }
        if catalog.for_sale(product_id).is_none() {
            return Err(BasketError::NotForSale(product_id.to_owned()));
        }
        let version = self.version + 1;
        let line = BasketLine {
            product_id: product_id.to_owned(),
            quantity,
            updated_at: now,
            basket_version: version,
            pending_order_id: None,
        };
        let mut lines = self.lines_kept(catalog);
        match lines.iter().position(|l| l.product_id == product_id) {
            Some(existing) => lines[existing] = line,
            None if lines.len() >= MAX_LINES => return Err(BasketError::TooManyLines),
            None => lines.push(line),
        }
        Ok(self.changed(lines, now))
    }

    /// Removes one product's line; `None` when that changes nothing (the line was not
    /// there and no deleted product's line was left to drop), so nothing is written.
    pub fn remove_line(
        &self,
        product_id: &str,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Option<Basket> {
        let mut lines = self.lines_kept(catalog);
        lines.retain(|line| line.product_id != product_id);
        (lines != self.lines).then(|| self.changed(lines, now))
    }

    /// Checks out the lines not pending for an earlier checkout, into order `order_id`:
    /// the checkout, its CheckoutRequested, and this basket with those lines marked as
    /// pending for the order, one version later. The three are stored together,
    /// conditional on this basket's version, so a change that lands first is never left
    /// out and a line is never ordered twice.
    pub fn check_out(
        &self,
        order_id: String,
        catalog: &Catalog,
        input: CheckoutInput,
        now: DateTime<Utc>,
    ) -> Result<(Basket, Checkout, CheckoutRequested), BasketError> {
        let (checkout, requested) = Checkout::place(order_id, self, catalog, input, now)?;
        let lines = self
            .lines_kept(catalog)
            .into_iter()
            .map(|mut line| {
                let taken = checkout
                    .lines
                    .iter()
                    .any(|l| l.product_id == line.product_id);
                if line.pending_order_id.is_none() && taken {
                    line.pending_order_id = Some(checkout.order_id.clone());
                }
                line
            })
            .collect();
        Ok((self.changed(lines, now), checkout, requested))
    }

    /// Removes the lines `checkout` took, once its order exists. Lines added or changed
    /// since stay, and so do lines pending for another order. `None` when nothing is left
    /// to remove (a replay, or the user already removed them).
    pub fn remove_checked_out(&self, checkout: &Checkout, now: DateTime<Utc>) -> Option<Basket> {
        let lines: Vec<BasketLine> = self
            .lines
            .iter()
            .filter(|line| !checkout.took(line))
            .cloned()
            .collect();
        (lines.len() != self.lines.len()).then(|| self.changed(lines, now))
    }

    /// The lines with today's names and prices, to show: lines of products no longer
    /// for sale are left out, and so are those `catalog` does not know (the basket keeps
    /// them; they show again once a read finds them). Fails only on a total no payment
    /// could carry.
    pub fn price(&self, catalog: &Catalog) -> Result<PricedBasket, BasketError> {
        price_lines(&self.lines, catalog, Unknown::LeaveOut)
    }

    /// The lines no deletion has made unsellable: every line but those whose product's
    /// projection is a tombstone.
    fn lines_kept(&self, catalog: &Catalog) -> Vec<BasketLine> {
        self.lines
            .iter()
            .filter(|line| !catalog.is_deleted(&line.product_id))
            .cloned()
            .collect()
    }

    /// This basket with other lines, one version later, its idle lifetime restarted.
    fn changed(&self, lines: Vec<BasketLine>, now: DateTime<Utc>) -> Basket {
        Basket {
            user_id: self.user_id.clone(),
            lines,
            version: self.version + 1,
            updated_at: now,
            expires_at: expiry(now),
        }
    }
}

/// What pricing does with a line whose product `catalog` does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// Showing a basket: leave it out of what is shown.
    LeaveOut,
    /// Ordering: refuse, naming it, rather than order the rest without it.
    Refuse,
}

/// `lines` with today's names and prices, and their total; lines of deleted products left
/// out, unknown ones as `unknown` says.
fn price_lines<'a>(
    lines: impl IntoIterator<Item = &'a BasketLine>,
    catalog: &Catalog,
    unknown: Unknown,
) -> Result<PricedBasket, BasketError> {
    let mut items = Vec::new();
    let mut total: i64 = 0;
    for line in lines {
        let Some((name, unit_price)) = catalog.for_sale(&line.product_id) else {
            if unknown == Unknown::Refuse && !catalog.is_deleted(&line.product_id) {
                return Err(BasketError::Unpriced(line.product_id.clone()));
            }
            continue;
        };
        total = unit_price
            .amount
            .checked_mul(i64::from(line.quantity))
            .and_then(|amount| total.checked_add(amount))
            .ok_or(BasketError::TotalTooLarge)?;
        items.push(OrderLine {
            product_id: line.product_id.clone(),
            name: name.to_owned(),
            unit_price: unit_price.clone(),
            quantity: line.quantity,
        });
    }
    Ok(PricedBasket {
        items,
        total: Money::usd(total),
    })
}

fn expiry(now: DateTime<Utc>) -> i64 {
    (now + IDLE_LIFETIME).timestamp()
}

/// `PUT /basket/items/{productId}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
pub struct SetQuantity {
    #[garde(range(min = 1, max = MAX_QUANTITY))]
    #[serde(deserialize_with = "shop_events::limits::whole_number")]
    pub quantity: u32,
}

/// `POST /basket/checkout`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutInput {
    #[garde(dive)]
    pub shipping_address: AddressInput,
    /// An opaque token from the payment provider, passed on untouched.
    #[garde(length(chars, min = 1, max = MAX_PAYMENT_TOKEN_CHARS), custom(not_blank), custom(line))]
    pub payment_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct AddressInput {
    #[garde(length(chars, min = 1, max = MAX_ADDRESS_NAME_CHARS), custom(not_blank), custom(line))]
    pub name: String,
    #[garde(length(chars, min = 1, max = MAX_ADDRESS_LINE_CHARS), custom(not_blank), custom(line))]
    pub line1: String,
    #[serde(default)]
    #[garde(inner(length(chars, max = MAX_ADDRESS_LINE_CHARS), custom(line)))]
    pub line2: Option<String>,
    #[garde(length(chars, min = 1, max = MAX_CITY_CHARS), custom(not_blank), custom(line))]
    pub city: String,
    #[garde(length(chars, min = 1, max = MAX_POSTAL_CODE_CHARS), custom(not_blank), custom(line))]
    pub postal_code: String,
    #[garde(custom(assigned_country))]
    pub country: String,
}

impl AddressInput {
    /// The address as the order keeps it: surrounding whitespace dropped, a blank second
    /// line absent.
    fn into_address(self) -> Address {
        let line2 = self
            .line2
            .map(|line| stored(&line))
            .filter(|line| !line.is_empty());
        Address {
            name: stored(&self.name),
            line1: stored(&self.line1),
            line2,
            city: stored(&self.city),
            postal_code: stored(&self.postal_code),
            country: self.country,
        }
    }
}

fn assigned_country(value: &str, _: &()) -> garde::Result {
    if is_country_code(value) {
        Ok(())
    } else {
        Err(garde::Error::new(
            "must be an ISO 3166-1 alpha-2 country code, in upper case",
        ))
    }
}

/// The `Idempotency-Key` of a checkout: 8 to 64 of `[A-Za-z0-9_-]`. The client picks it;
/// a retry with the same key is the same checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key header must be 8 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if (8..=64).contains(&raw.len()) && raw.bytes().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A basket frozen into the order it becomes: the lines and prices the user agreed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    pub order_id: String,
    pub user_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    /// The basket version that was frozen.
    pub basket_version: u64,
    pub checked_out_at: DateTime<Utc>,
}

impl Checkout {
    /// Freezes `basket` at today's prices into order `order_id`: every line not pending
    /// for an earlier checkout. Lines of products no longer for sale are left out; a line
    /// whose product `catalog` does not know is [`BasketError::Unpriced`]. If nothing is
    /// left, there is nothing to order: the basket is empty, or its lines are all on their
    /// way to an order already. [`Basket::check_out`] also marks the lines it took.
    pub fn place(
        order_id: String,
        basket: &Basket,
        catalog: &Catalog,
        input: CheckoutInput,
        now: DateTime<Utc>,
    ) -> Result<(Checkout, CheckoutRequested), BasketError> {
        let (pending, free): (Vec<&BasketLine>, Vec<&BasketLine>) = basket
            .lines
            .iter()
            .partition(|line| line.pending_order_id.is_some());
        let priced = price_lines(free, catalog, Unknown::Refuse)?;
        if priced.items.is_empty() {
            return Err(if pending.is_empty() {
                BasketError::Empty
            } else {
                BasketError::CheckoutInProgress
            });
        }
        // Never earlier than a line it took, even if the clock of the function that set
        // that line ran ahead of ours; `took` depends on it.
        let checked_out_at = basket
            .lines
            .iter()
            .map(|line| line.updated_at)
            .fold(now, DateTime::max);
        let checkout = Checkout {
            order_id,
            user_id: basket.user_id.clone(),
            lines: priced.items,
            total: priced.total,
            basket_version: basket.version,
            checked_out_at,
        };
        let requested = CheckoutRequested {
            order_id: checkout.order_id.clone(),
            user_id: checkout.user_id.clone(),
            lines: checkout.lines.clone(),
            total: checkout.total.clone(),
            shipping_address: input.shipping_address.into_address(),
            payment_token: input.payment_token,
        };
        Ok((checkout, requested))
    }

    /// Whether `line` is one this checkout took, as opposed to one set after it or one
    /// another checkout took. A line the checkout marked says so exactly: setting it again
    /// clears the mark, and a basket started anew has no mark. A line without a mark was
    /// frozen by a checkout recorded before baskets carried marks: for it the basket
    /// version decides, and the time covers a basket that expired and was started anew
    /// (its versions begin again at 1) before a late OrderSubmitted arrived.
    pub fn took(&self, line: &BasketLine) -> bool {
        match &line.pending_order_id {
            Some(order_id) => *order_id == self.order_id,
            None => {
                line.basket_version <= self.basket_version
                    && line.updated_at <= self.checked_out_at
                    && self.lines.iter().any(|l| l.product_id == line.product_id)
            }
        }
    }
}

/// Product and order ids are ULIDs in their canonical form; nothing else can name one.
/// Named here too because the basket's tests check its ids by this path.
pub use shop_events::is_ulid;

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code (the contracts' list).
pub use shop_events::limits::is_country_code;

#[cfg(test)]
mod tests {
    use super::*;

    const MUG: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";
    const TEA: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CC";
    const GONE: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CD";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn snapshot(id: &str, name: &str, amount: i64, version: u64) -> ProductSnapshot {
        ProductSnapshot {
            product_id: id.into(),
            name: name.into(),
            description: String::new(),
            category: "kitchen".into(),
            price: Money::usd(amount),
            image_url: None,
            version,
        }
    }

    fn on_sale(id: &str, name: &str, amount: i64) -> ProjectedProduct {
        ProjectedProduct::on_sale(snapshot(id, name, amount, 1)).unwrap()
    }

    fn deleted(id: &str, version: u64) -> ProjectedProduct {
        ProjectedProduct::deleted(&ProductDeleted {
            product_id: id.into(),
            version,
        })
    }

    fn catalog() -> Catalog {
        [
            on_sale(MUG, "Mug", 1200),
            on_sale(TEA, "Tea", 450),
            deleted(GONE, 3),
        ]
        .into_iter()
        .collect()
    }

    /// A basket holding `lines`, set one a second from t=1000, as if all were for sale then.
    fn basket_with(lines: &[(&str, u32)]) -> Basket {
        let then: Catalog = lines.iter().map(|(id, _)| on_sale(id, "x", 1)).collect();
        let mut basket = Basket::empty("user-1", at(1_000));
        for (second, (id, quantity)) in (1_000..).zip(lines) {
            basket = basket.set_line(id, *quantity, &then, at(second)).unwrap();
        }
        basket
    }

    fn address() -> AddressInput {
        AddressInput {
            name: "  Ada Lovelace ".into(),
            line1: "12 St James's Square".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    fn checkout_input() -> CheckoutInput {
        CheckoutInput {
            shipping_address: address(),
            payment_token: "tok_visa_4242".into(),
        }
    }

    fn invalid_fields(input: &CheckoutInput) -> Vec<String> {
        match input.validate() {
            Ok(()) => Vec::new(),
            Err(report) => report.iter().map(|(path, _)| path.to_string()).collect(),
        }
    }

    #[test]
    fn only_a_newer_version_replaces_a_projection() {
        let v2 = ProjectedProduct::on_sale(snapshot(MUG, "Mug", 1200, 2)).unwrap();
        let v3 = ProjectedProduct::on_sale(snapshot(MUG, "Mug", 999, 3)).unwrap();
        assert!(v2.supersedes(None));
        assert!(v3.supersedes(Some(&v2)));
        assert!(!v2.supersedes(Some(&v3)), "older");
        assert!(!v3.supersedes(Some(&v3)), "the same version again");
        let tombstone = deleted(MUG, 4);
        assert!(tombstone.supersedes(Some(&v3)));
        assert!(!v3.supersedes(Some(&tombstone)), "no resurrection");
    }

    #[test]
    fn a_price_the_basket_cannot_charge_is_refused() {
        let mut euros = snapshot(MUG, "Mug", 1200, 1);
        euros.price.currency = "EUR".into();
        assert!(ProjectedProduct::on_sale(euros).is_err());
        assert!(ProjectedProduct::on_sale(snapshot(MUG, "Mug", 0, 1)).is_err());
        assert!(ProjectedProduct::on_sale(snapshot(MUG, "Mug", -5, 1)).is_err());
    }

    #[test]
    fn an_empty_basket_prices_at_zero_dollars() {
        let priced = Basket::empty("user-1", at(0)).price(&catalog()).unwrap();
        assert_eq!(priced.items, vec![]);
        assert_eq!(priced.total, Money::usd(0));
    }

    #[test]
    fn setting_lines_adds_replaces_and_moves_the_version() {
        let empty = Basket::empty("user-1", at(1_000));
        let one = empty.set_line(MUG, 2, &catalog(), at(1_001)).unwrap();
        assert_eq!(one.version, 1);
        assert_eq!(one.expires_at, (at(1_001) + IDLE_LIFETIME).timestamp());
        let two = one.set_line(TEA, 1, &catalog(), at(1_002)).unwrap();
        let changed = two.set_line(MUG, 5, &catalog(), at(1_003)).unwrap();
        assert_eq!(changed.version, 3);
        assert_eq!(changed.updated_at, at(1_003));
        let lines: Vec<_> = changed
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity, l.basket_version))
            .collect();
        assert_eq!(lines, [(MUG, 5, 3), (TEA, 1, 2)], "first-added order kept");
    }

    #[test]
    fn a_line_needs_a_quantity_in_range_and_a_product_for_sale() {
        let empty = Basket::empty("user-1", at(0));
        for quantity in [0, MAX_QUANTITY + 1] {
            assert_eq!(
                empty.set_line(MUG, quantity, &catalog(), at(1)),
                Err(BasketError::QuantityOutOfRange)
            );
        }
        assert!(empty.set_line(MUG, MAX_QUANTITY, &catalog(), at(1)).is_ok());
        for unknown in [GONE, "01JDKQ8M3ZP7G5V4X2N6R9T1CZ"] {
            assert_eq!(
                empty.set_line(unknown, 1, &catalog(), at(1)),
                Err(BasketError::NotForSale(unknown.into()))
            );
        }
    }

    #[test]
    fn a_basket_holds_at_most_fifty_products_but_their_quantities_still_change() {
        let ids: Vec<String> = (0..MAX_LINES).map(|i| format!("P{i:025}")).collect();
        let everything: Catalog = ids
            .iter()
            .chain([MUG.to_owned()].iter())
            .map(|id| on_sale(id, "x", 1))
            .collect();
        let full = ids.iter().fold(Basket::empty("u", at(0)), |basket, id| {
            basket.set_line(id, 1, &everything, at(1)).unwrap()
        });
        assert_eq!(full.lines.len(), MAX_LINES);
        assert_eq!(
            full.set_line(MUG, 1, &everything, at(2)),
            Err(BasketError::TooManyLines)
        );
        assert!(full.set_line(&ids[7], 9, &everything, at(2)).is_ok());
    }

    #[test]
    fn lines_of_deleted_products_are_dropped_by_the_next_change() {
        let basket = basket_with(&[(MUG, 1), (GONE, 2)]);
        let changed = basket.set_line(TEA, 1, &catalog(), at(2_000)).unwrap();
        let ids: Vec<_> = changed
            .lines
            .iter()
            .map(|l| l.product_id.as_str())
            .collect();
        assert_eq!(ids, [MUG, TEA]);
        // Removing an absent line still writes when it drops a dead one...
        let pruned = basket.remove_line(TEA, &catalog(), at(2_000)).unwrap();
        assert_eq!(pruned.lines.len(), 1);
        // ...and writes nothing when nothing changes.
        assert_eq!(pruned.remove_line(TEA, &catalog(), at(2_001)), None);
    }

    #[test]
    fn removing_a_line_moves_the_version() {
        let basket = basket_with(&[(MUG, 1), (TEA, 2)]);
        let removed = basket.remove_line(MUG, &catalog(), at(2_000)).unwrap();
        assert_eq!(removed.version, basket.version + 1);
        assert_eq!(removed.lines.len(), 1);
        assert_eq!(removed.lines[0].product_id, TEA);
    }

    #[test]
    fn prices_come_from_the_projection_and_deleted_products_are_left_out() {
        let basket = basket_with(&[(MUG, 2), (GONE, 1), (TEA, 3)]);
        let priced = basket.price(&catalog()).unwrap();
        assert_eq!(
            priced.items,
            vec![
                OrderLine {
                    product_id: MUG.into(),
                    name: "Mug".into(),
                    unit_price: Money::usd(1200),
                    quantity: 2
                },
                OrderLine {
                    product_id: TEA.into(),
                    name: "Tea".into(),
                    unit_price: Money::usd(450),
                    quantity: 3
                },
            ]
        );
        assert_eq!(priced.total, Money::usd(2 * 1200 + 3 * 450));
    }

    #[test]
    fn a_total_past_what_money_can_hold_is_refused_not_wrapped() {
        let basket = basket_with(&[(MUG, 99), (TEA, 99)]);
        let huge: Catalog = [on_sale(MUG, "Mug", i64::MAX / 50), on_sale(TEA, "Tea", 1)]
            .into_iter()
            .collect();
        assert_eq!(basket.price(&huge), Err(BasketError::TotalTooLarge));
    }

    #[test]
    fn an_expired_basket_reads_as_empty_but_keeps_its_version() {
        let basket = basket_with(&[(MUG, 1)]);
        let expires = DateTime::from_timestamp(basket.expires_at, 0).unwrap();
        assert_eq!(
            basket.clone().as_of(expires - TimeDelta::seconds(1)),
            basket
        );
        let expired = basket.clone().as_of(expires);
        assert!(expired.lines.is_empty());
        assert_eq!(expired.version, basket.version);
    }

    #[test]
    fn a_checkout_freezes_todays_prices_and_raises_checkout_requested() {
        let basket = basket_with(&[(MUG, 2), (GONE, 1)]);
        let (checkout, requested) = Checkout::place(
            "order-1".into(),
            &basket,
            &catalog(),
            checkout_input(),
            at(5_000),
        )
        .unwrap();
        assert_eq!(checkout.basket_version, basket.version);
        assert_eq!(checkout.checked_out_at, at(5_000));
        assert_eq!(checkout.lines.len(), 1, "the deleted product is left out");
        assert_eq!(checkout.total, Money::usd(2400));
        assert_eq!(requested.order_id, "order-1");
        assert_eq!(requested.user_id, "user-1");
        assert_eq!(requested.lines, checkout.lines);
        assert_eq!(requested.total, checkout.total);
        assert_eq!(requested.payment_token, "tok_visa_4242");
        assert_eq!(requested.shipping_address.name, "Ada Lovelace", "trimmed");
        assert_eq!(requested.shipping_address.line2, None, "blank is absent");
    }

    #[test]
    fn nothing_for_sale_is_nothing_to_check_out() {
        for basket in [
            Basket::empty("user-1", at(0)),
            basket_with(&[(GONE, 1)]),
            basket_with(&[(MUG, 1)]).as_of(at(i64::from(i32::MAX))),
        ] {
            assert_eq!(
                Checkout::place("o".into(), &basket, &catalog(), checkout_input(), at(1)),
                Err(BasketError::Empty)
            );
        }
    }

    #[test]
    fn a_checkout_is_never_earlier_than_a_line_it_took() {
        let basket = basket_with(&[(MUG, 1)]);
        let late_line = basket.lines[0].updated_at;
        let (checkout, _) = Checkout::place(
            "o".into(),
            &basket,
            &catalog(),
            checkout_input(),
            late_line - TimeDelta::seconds(3),
        )
        .unwrap();
        assert_eq!(checkout.checked_out_at, late_line);
        assert!(checkout.took(&basket.lines[0]));
    }

    #[test]
    fn the_order_removes_the_lines_it_took_and_keeps_those_set_since() {
        let basket = basket_with(&[(MUG, 1), (TEA, 2)]);
        let (checkout, _) =
            Checkout::place("o".into(), &basket, &catalog(), checkout_input(), at(5_000)).unwrap();
        // After the checkout, before the order exists, the user changes the tea.
        let changed = basket.set_line(TEA, 7, &catalog(), at(5_001)).unwrap();
        let after = changed.remove_checked_out(&checkout, at(5_002)).unwrap();
        let left: Vec<_> = after
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        assert_eq!(left, [(TEA, 7)]);
        assert_eq!(after.version, changed.version + 1);
        assert_eq!(
            after.remove_checked_out(&checkout, at(5_003)),
            None,
            "replay"
        );
    }

    #[test]
    fn a_change_between_the_checkouts_read_and_its_commit_is_kept_whatever_the_clocks_say() {
        let basket = basket_with(&[(MUG, 1)]);
        let (checkout, _) =
            Checkout::place("o".into(), &basket, &catalog(), checkout_input(), at(5_000)).unwrap();
        // Set by a function whose clock runs behind the checkout's.
        let changed = basket.set_line(MUG, 4, &catalog(), at(4_000)).unwrap();
        assert_eq!(changed.remove_checked_out(&checkout, at(5_001)), None);
    }

    #[test]
    fn a_basket_started_anew_after_expiry_keeps_its_lines() {
        let old = basket_with(&[(MUG, 1)]);
        let (checkout, _) =
            Checkout::place("o".into(), &old, &catalog(), checkout_input(), at(5_000)).unwrap();
        // TTL removed the old basket; the new one counts its versions from 1 again.
        let new = Basket::empty("user-1", at(9_000))
            .set_line(MUG, 1, &catalog(), at(9_000))
            .unwrap();
        assert!(new.version <= checkout.basket_version);
        assert_eq!(new.remove_checked_out(&checkout, at(9_001)), None);
    }

    /// `(product, quantity, pending order)` of each line.
    fn marks(basket: &Basket) -> Vec<(&str, u32, Option<&str>)> {
        basket
            .lines
            .iter()
            .map(|l| {
                (
                    l.product_id.as_str(),
                    l.quantity,
                    l.pending_order_id.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn a_checkout_marks_what_it_took_and_a_second_finds_nothing_new() {
        let basket = basket_with(&[(MUG, 2), (TEA, 1), (GONE, 1)]);
        let (frozen, checkout, requested) = basket
            .check_out("o-1".into(), &catalog(), checkout_input(), at(5_000))
            .unwrap();
        assert_eq!(checkout.basket_version, basket.version);
        assert_eq!(requested.lines, checkout.lines);
        assert_eq!(frozen.version, basket.version + 1, "a write like any other");
        assert_eq!(frozen.expires_at, (at(5_000) + IDLE_LIFETIME).timestamp());
        assert_eq!(
            marks(&frozen),
            [(MUG, 2, Some("o-1")), (TEA, 1, Some("o-1"))],
            "the deleted product's line dropped on the way"
        );
        assert_eq!(
            frozen.check_out("o-2".into(), &catalog(), checkout_input(), at(5_001)),
            Err(BasketError::CheckoutInProgress)
        );
        // Shown as before until the order exists.
        assert_eq!(
            frozen.price(&catalog()).unwrap(),
            basket.price(&catalog()).unwrap()
        );
    }

    #[test]
    fn lines_set_after_a_checkout_are_the_next_order_and_each_order_removes_its_own() {
        let (first, one, _) = basket_with(&[(MUG, 1), (TEA, 2)])
            .check_out("o-1".into(), &catalog(), checkout_input(), at(5_000))
            .unwrap();
        // The tea changed while the first order is on its way: it is the user's next order.
        let changed = first.set_line(TEA, 7, &catalog(), at(5_001)).unwrap();
        assert_eq!(marks(&changed), [(MUG, 1, Some("o-1")), (TEA, 7, None)]);
        let (second, two, _) = changed
            .check_out("o-2".into(), &catalog(), checkout_input(), at(5_002))
            .unwrap();
        let taken: Vec<_> = two
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        assert_eq!(taken, [(TEA, 7)]);
        assert_eq!(
            marks(&second),
            [(MUG, 1, Some("o-1")), (TEA, 7, Some("o-2"))]
        );

        // The second order exists first: its line goes, the first order's stays pending.
        let after_two = second.remove_checked_out(&two, at(5_003)).unwrap();
        assert_eq!(marks(&after_two), [(MUG, 1, Some("o-1"))]);
        assert_eq!(
            Checkout::place(
                "o-3".into(),
                &after_two,
                &catalog(),
                checkout_input(),
                at(5_004)
            ),
            Err(BasketError::CheckoutInProgress)
        );
        let after_one = after_two.remove_checked_out(&one, at(5_005)).unwrap();
        assert!(after_one.lines.is_empty());
        for late in [&one, &two] {
            assert_eq!(
                after_one.remove_checked_out(late, at(5_006)),
                None,
                "replay"
            );
        }
        assert_eq!(
            Checkout::place(
                "o-3".into(),
                &after_one,
                &catalog(),
                checkout_input(),
                at(5_007)
            ),
            Err(BasketError::Empty)
        );
    }

    #[test]
    fn a_line_the_catalog_read_did_not_find_is_kept_but_never_ordered_unseen() {
        let basket = basket_with(&[(MUG, 1), (TEA, 2)]);
        let without_tea: Catalog = [on_sale(MUG, "Mug", 1200), deleted(GONE, 3)]
            .into_iter()
            .collect();
        let changed = basket.set_line(MUG, 3, &without_tea, at(2_000)).unwrap();
        assert_eq!(marks(&changed), [(MUG, 3, None), (TEA, 2, None)]);
        assert_eq!(
            basket.remove_line(GONE, &without_tea, at(2_000)),
            None,
            "nothing to remove, nothing dropped"
        );
        let removed = basket.remove_line(MUG, &without_tea, at(2_000)).unwrap();
        assert_eq!(marks(&removed), [(TEA, 2, None)]);
        // Showing the basket leaves out what it cannot price...
        let shown = changed.price(&without_tea).unwrap();
        assert_eq!(shown.items.len(), 1);
        assert_eq!(shown.total, Money::usd(3 * 1200));
        // ...ordering it refuses, naming the line, rather than order the rest without it.
        assert_eq!(
            changed.check_out("o".into(), &without_tea, checkout_input(), at(2_001)),
            Err(BasketError::Unpriced(TEA.into()))
        );
        assert!(
            changed
                .check_out("o".into(), &catalog(), checkout_input(), at(2_001))
                .is_ok()
        );
    }

    #[test]
    fn a_line_stored_before_lines_carried_marks_reads_as_not_pending() {
        let stored = serde_json::json!({
            "productId": MUG, "quantity": 1, "updatedAt": "2026-01-01T00:00:00Z",
            "basketVersion": 1
        });
        let line: BasketLine = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(line.pending_order_id, None);
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            stored,
            "and writes no mark"
        );
        let marked = BasketLine {
            pending_order_id: Some("o-1".into()),
            ..line
        };
        assert_eq!(
            serde_json::to_value(&marked).unwrap()["pendingOrderId"],
            "o-1"
        );
    }

    #[test]
    fn a_valid_checkout_input_passes() {
        assert!(invalid_fields(&checkout_input()).is_empty());
        let mut minimal = checkout_input();
        minimal.shipping_address.line2 = None;
        assert!(invalid_fields(&minimal).is_empty());
    }

    #[test]
    fn every_bound_of_the_checkout_contract_is_enforced() {
        type Breakage = Box<dyn Fn(&mut CheckoutInput)>;
        let cases: Vec<(&str, Breakage)> = vec![
            (
                "payment_token",
                Box::new(|i| i.payment_token = String::new()),
            ),
            ("payment_token", Box::new(|i| i.payment_token = " ".into())),
            (
                "payment_token",
                Box::new(|i| i.payment_token = "t".repeat(201)),
            ),
            (
                "shipping_address.name",
                Box::new(|i| i.shipping_address.name = String::new()),
            ),
            (
                "shipping_address.name",
                Box::new(|i| i.shipping_address.name = "n".repeat(101)),
            ),
            (
                "shipping_address.line1",
                Box::new(|i| i.shipping_address.line1 = "\t".into()),
            ),
            (
                "shipping_address.line1",
                Box::new(|i| i.shipping_address.line1 = "l".repeat(201)),
            ),
            (
                "shipping_address.line2",
                Box::new(|i| i.shipping_address.line2 = Some("l".repeat(201))),
            ),
            (
                "shipping_address.city",
                Box::new(|i| i.shipping_address.city = String::new()),
            ),
            (
                "shipping_address.city",
                Box::new(|i| i.shipping_address.city = "c".repeat(101)),
            ),
            (
                "shipping_address.postal_code",
                Box::new(|i| i.shipping_address.postal_code = String::new()),
            ),
            (
                "shipping_address.postal_code",
                Box::new(|i| i.shipping_address.postal_code = "9".repeat(21)),
            ),
            (
                "shipping_address.country",
                Box::new(|i| i.shipping_address.country = "gb".into()),
            ),
            (
                "shipping_address.country",
                Box::new(|i| i.shipping_address.country = "GBR".into()),
            ),
            (
                "shipping_address.country",
                Box::new(|i| i.shipping_address.country = "UK".into()),
            ),
            (
                "shipping_address.country",
                Box::new(|i| i.shipping_address.country = "ZZ".into()),
            ),
            (
                "shipping_address.country",
                Box::new(|i| i.shipping_address.country = String::new()),
            ),
        ];
        for (field, break_it) in cases {
            let mut broken = checkout_input();
            break_it(&mut broken);
            let found = invalid_fields(&broken);
            assert!(
                !found.is_empty() && found.iter().all(|f| f == field),
                "{field}: {found:?}"
            );
        }
    }

    #[test]
    fn address_lengths_count_characters_not_bytes() {
        let mut wide = checkout_input();
        wide.shipping_address.name = "é".repeat(100);
        wide.shipping_address.city = "東".repeat(100);
        assert!(invalid_fields(&wide).is_empty());
    }

    #[test]
    fn quantities_outside_one_to_ninety_nine_are_invalid() {
        assert!(SetQuantity { quantity: 1 }.validate().is_ok());
        assert!(SetQuantity { quantity: 99 }.validate().is_ok());
        assert!(SetQuantity { quantity: 0 }.validate().is_err());
        assert!(SetQuantity { quantity: 100 }.validate().is_err());
    }

    #[test]
    fn idempotency_keys_are_8_to_64_url_safe_characters() {
        for good in [
            "abcd1234",
            "A-b_C-d_",
            &"k".repeat(64),
            "01JDKQ8M3ZP7G5V4X2N6R9T1CB",
        ] {
            assert_eq!(IdempotencyKey::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "short",
            &"k".repeat(65),
            "has space1",
            "ключ-ключ",
            "a#b#c#d#e",
            "abc/defgh",
        ] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(InvalidIdempotencyKey),
                "{bad}"
            );
        }
    }
}
