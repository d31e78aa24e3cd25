//! The bounds of the shop's data, shared by the HTTP API (which refuses a request outside
//! them) and the event contracts (whose consumers refuse an event outside them): an event
//! can carry nothing that the API would not have accepted, so a forged or broken one is
//! turned away at the door instead of being stored, charged or shipped.

/// A product's or an order line's name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// A product's description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// A product's category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 50;
/// A product's image URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// A product's price, in minor units.
pub const MAX_PRICE: i64 = 1_000_000_000;
/// An order line's quantity (DESIGN §4: 1..=99).
pub const MAX_QUANTITY: u32 = 99;
/// The lines of one order: inventory reserves an order in one DynamoDB transaction, which
/// must stay within its 100 items.
pub const MAX_LINES: usize = 50;
/// An order's total, in minor units: every line at the highest price and quantity.
pub const MAX_TOTAL: i64 = MAX_PRICE * MAX_QUANTITY as i64 * MAX_LINES as i64;
/// A user id (the token's `sub`), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// A payment provider's token, in characters.
pub const MAX_PAYMENT_TOKEN_CHARS: usize = 200;
/// A person's name on a shipping address, in characters.
pub const MAX_ADDRESS_NAME_CHARS: usize = 100;
/// An address line, in characters.
pub const MAX_ADDRESS_LINE_CHARS: usize = 200;
/// A city, in characters.
pub const MAX_CITY_CHARS: usize = 100;
/// A postal code, in characters.
pub const MAX_POSTAL_CODE_CHARS: usize = 20;
/// A correlation id, in bytes.
pub const MAX_CORRELATION_ID_BYTES: usize = 128;

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code.
pub fn is_country_code(code: &str) -> bool {
    COUNTRY_CODES.binary_search(&code).is_ok()
}

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (from Debian's iso-codes
/// 4.15). Reserved and user-assigned codes (`EU`, `UK`, `XK`, `ZZ`, ...) are not
/// countries a parcel can be addressed to.
pub const COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// garde rules the contracts share.
pub mod rules {
    /// A text that is more than whitespace.
    pub fn not_blank(value: &str, _: &()) -> garde::Result {
        if value.trim().is_empty() {
            Err(garde::Error::new("must not be blank"))
        } else {
            Ok(())
        }
    }

    /// An order id: a ULID in its canonical spelling, as basket mints them.
    pub fn order_id(value: &str, _: &()) -> garde::Result {
        if crate::is_ulid(value) {
            Ok(())
        } else {
            Err(garde::Error::new("must be an order id (a ULID)"))
        }
    }

    /// A product id: a ULID in its canonical spelling, as catalog mints them.
    pub fn product_id(value: &str, _: &()) -> garde::Result {
        if crate::is_ulid(value) {
            Ok(())
        } else {
            Err(garde::Error::new("must be a product id (a ULID)"))
        }
    }

    /// A price: a money amount of at most [`super::MAX_PRICE`] (a total may be more).
    pub fn price(price: &crate::Money, _: &()) -> garde::Result {
        if price.amount <= super::MAX_PRICE {
            Ok(())
        } else {
            Err(garde::Error::new(format!(
                "a price is at most {}",
                super::MAX_PRICE
            )))
        }
    }

    /// An ISO 4217 currency code, in upper case.
    pub fn currency(value: &str, _: &()) -> garde::Result {
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(garde::Error::new("must be an ISO 4217 code, in upper case"))
        }
    }

    /// An ISO 3166-1 alpha-2 country code, in upper case.
    pub fn country(value: &str, _: &()) -> garde::Result {
        if super::is_country_code(value) {
            Ok(())
        } else {
            Err(garde::Error::new(
                "must be an ISO 3166-1 alpha-2 country code, in upper case",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_country_table_is_sorted_complete_and_exact() {
        assert!(COUNTRY_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            COUNTRY_CODES
                .iter()
                .all(|code| { code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) })
        );
        for assigned in ["US", "GB", "DE", "FR", "JP", "BR", "AX", "SS", "CW", "ZW"] {
            assert!(is_country_code(assigned), "{assigned}");
        }
        for not_assigned in ["UK", "EU", "XK", "ZZ", "AN", "YU", "us", "U", "USA"] {
            assert!(!is_country_code(not_assigned), "{not_assigned}");
        }
    }
}
