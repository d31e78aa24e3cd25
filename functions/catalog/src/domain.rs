//! Products and their rules. No I/O and no AWS type here: the rest of the capability
//! calls these functions and persists what they return.

use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductSnapshot, ProductUpdated};
use shop_events::limits::text::stored;
use shop_events::{Money, timestamp};
use shop_platform::validate::{line, lines, not_blank};

pub use shop_events::limits::MAX_PRICE;
use shop_events::limits::{
    MAX_CATEGORY_CHARS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_URL_BYTES,
};
pub const CURRENCY: &str = "USD";

/// A product as the catalog stores and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// A ULID in its canonical form; nothing else can name a product.
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1 and grows with every change; writes are conditional on it, and
    /// events carry it so consumers can ignore stale ones.
    pub version: u64,
}

/// The fields a client writes, on create and on replace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ProductInput {
    #[garde(length(chars, min = 1, max = MAX_NAME_CHARS), custom(not_blank), custom(line))]
    pub name: String,
    #[serde(default)]
    #[garde(length(chars, max = MAX_DESCRIPTION_CHARS), custom(lines))]
    pub description: String,
    #[garde(length(chars, min = 1, max = MAX_CATEGORY_CHARS), custom(not_blank), custom(line))]
    pub category: String,
    #[garde(dive)]
    pub price: PriceInput,
    #[serde(default)]
    #[garde(inner(length(max = MAX_URL_BYTES), custom(http_url)))]
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Validate)]
pub struct PriceInput {
    #[garde(range(min = 1, max = MAX_PRICE))]
    #[serde(deserialize_with = "shop_events::limits::whole_number")]
    pub amount: i64,
    #[garde(custom(usd))]
    pub currency: String,
}

fn usd(value: &str, _: &()) -> garde::Result {
    if value == CURRENCY {
        Ok(())
    } else {
        Err(garde::Error::new("the shop sells in USD only"))
    }
}

/// An http(s) URL with no space or control character in it: what the OpenAPI document's
/// pattern `^https?://[^\s\u0000-\u001F\u007F-\u009F]+$` allows, character for character
/// (ECMAScript's `\s` is Unicode's white space and U+FEFF).
fn http_url(value: &str, _: &()) -> garde::Result {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let refused = |c: char| c.is_whitespace() || c.is_control() || c == '\u{FEFF}';
    match rest {
        Some(rest) if !rest.is_empty() && !rest.chars().any(refused) => Ok(()),
        _ => Err(garde::Error::new("must be an http(s) URL")),
    }
}

impl Product {
    /// A new product from validated input. Surrounding whitespace is not kept.
    pub fn create(
        id: String,
        input: ProductInput,
        now: DateTime<Utc>,
    ) -> (Product, ProductCreated) {
        let at = timestamp(now);
        let product = Product {
            id,
            name: stored(&input.name),
            description: stored(&input.description),
            category: stored(&input.category),
            price: Money {
                amount: input.price.amount,
                currency: input.price.currency,
            },
            image_url: input.image_url,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
        };
        let event = ProductCreated(product.snapshot());
        (product, event)
    }

    /// This product with every writable field replaced, one version later.
    pub fn replace(&self, input: ProductInput, now: DateTime<Utc>) -> (Product, ProductUpdated) {
        let (fresh, _) = Product::create(self.id.clone(), input, now);
        let product = Product {
            created_at: self.created_at.clone(),
            version: self.version + 1,
            ..fresh
        };
        let event = ProductUpdated(product.snapshot());
        (product, event)
    }

    /// The event that removes this product, one version later than its last change.
    pub fn delete(&self) -> ProductDeleted {
        ProductDeleted {
            product_id: self.id.clone(),
            version: self.version + 1,
        }
    }

    fn snapshot(&self) -> ProductSnapshot {
        ProductSnapshot {
            product_id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            price: self.price.clone(),
            image_url: self.image_url.clone(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProductInput {
        ProductInput {
            name: "  Mug ".into(),
            description: "Holds tea".into(),
            category: "kitchen".into(),
            price: PriceInput {
                amount: 1200,
                currency: "USD".into(),
            },
            image_url: Some("https://img.example/mug.png".into()),
        }
    }

    fn errors(input: &ProductInput) -> Vec<String> {
        match input.validate() {
            Ok(()) => Vec::new(),
            Err(report) => report.iter().map(|(path, _)| path.to_string()).collect(),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_valid_input_passes() {
        assert!(errors(&input()).is_empty());
        let mut lines = input();
        lines.description = "Two lines\nof description".into();
        assert!(errors(&lines).is_empty(), "a description may have lines");
    }

    #[test]
    fn what_a_person_wrote_is_stored_in_nfc_without_surrounding_space() {
        let mut written = input();
        written.name = "  Cafe\u{0301} Lamp ".into();
        let (product, event) = Product::create("01JDKQ8M3ZP7G5V4X2N6R9T1CB".into(), written, at(1));
        assert_eq!(product.name, "Caf\u{00E9} Lamp");
        assert_eq!(event.0.name, product.name);
    }

    #[test]
    fn every_bound_of_the_contract_is_enforced() {
        type Breakage = Box<dyn Fn(&mut ProductInput)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("name", Box::new(|i| i.name = String::new())),
            ("name", Box::new(|i| i.name = "   ".into())),
            ("name", Box::new(|i| i.name = "x".repeat(201))),
            (
                "description",
                Box::new(|i| i.description = "x".repeat(2001)),
            ),
            ("category", Box::new(|i| i.category = String::new())),
            ("category", Box::new(|i| i.category = "x".repeat(51))),
            // The black-box findings: text no person typed.
            ("name", Box::new(|i| i.name = "Desk\u{0000}Lamp".into())),
            ("name", Box::new(|i| i.name = "\u{200B}\u{200B}".into())),
            ("name", Box::new(|i| i.name = "Lamp \u{202E}pmaL".into())),
            (
                "category",
                Box::new(|i| i.category = "home\nkitchen".into()),
            ),
            (
                "description",
                Box::new(|i| i.description = "ok\u{2066}hidden".into()),
            ),
            ("price.amount", Box::new(|i| i.price.amount = 0)),
            ("price.amount", Box::new(|i| i.price.amount = -5)),
            ("price.amount", Box::new(|i| i.price.amount = MAX_PRICE + 1)),
            (
                "price.currency",
                Box::new(|i| i.price.currency = "EUR".into()),
            ),
            (
                "imageUrl",
                Box::new(|i| i.image_url = Some("javascript:alert(1)".into())),
            ),
            (
                "imageUrl",
                Box::new(|i| i.image_url = Some(format!("https://{}", "x".repeat(2048)))),
            ),
        ];
        for (field, break_it) in cases {
            let mut broken = input();
            break_it(&mut broken);
            let found = errors(&broken);
            assert!(
                found
                    .iter()
                    .any(|f| f.replace("image_url", "imageUrl") == field),
                "{field}: {found:?}"
            );
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut wide = input();
        wide.name = "é".repeat(200);
        assert!(errors(&wide).is_empty());
    }

    #[test]
    fn a_created_product_starts_at_version_one_trimmed_and_announces_itself() {
        let (product, ProductCreated(snapshot)) = Product::create("01J".into(), input(), at(1_000));
        assert_eq!(product.name, "Mug");
        assert_eq!(product.version, 1);
        assert_eq!(product.created_at, product.updated_at);
        assert_eq!(snapshot.version, 1);
        assert_eq!(snapshot.product_id, "01J");
        assert_eq!(snapshot.price, Money::usd(1200));
    }

    #[test]
    fn a_replacement_keeps_identity_and_creation_and_moves_the_version() {
        let (original, _) = Product::create("01J".into(), input(), at(1_000));
        let mut changed = input();
        changed.price.amount = 999;
        changed.image_url = None;
        let (replaced, ProductUpdated(snapshot)) = original.replace(changed, at(2_000));
        assert_eq!(replaced.id, original.id);
        assert_eq!(replaced.created_at, original.created_at);
        assert_ne!(replaced.updated_at, original.updated_at);
        assert_eq!(replaced.version, 2);
        assert_eq!(replaced.image_url, None);
        assert_eq!(snapshot.price.amount, 999);
        assert_eq!(snapshot.version, 2);
    }

    #[test]
    fn a_deletion_is_newer_than_the_last_change() {
        let (product, _) = Product::create("01J".into(), input(), at(1_000));
        let (product, _) = product.replace(input(), at(2_000));
        assert_eq!(product.delete().version, 3);
    }
}
