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

/// The one text policy for what people write (names, descriptions, categories, address
/// lines): it is stored in Unicode NFC, without surrounding whitespace, and refused when
/// it holds a control character (a line break only where a text may have lines), a
/// bidirectional control (which makes text display as something other than what it is,
/// U+202E above all), or nothing a person can see.
pub mod text {
    use unicode_normalization::UnicodeNormalization;

    /// The text as the shop keeps it: NFC, surrounding whitespace dropped.
    pub fn stored(value: &str) -> String {
        value.trim().nfc().collect()
    }

    /// Characters that change how text is laid out or joined but show nothing: format
    /// characters (Unicode category Cf, the bidirectional controls among them), fillers
    /// and variation selectors.
    pub fn is_invisible(c: char) -> bool {
        matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
    }

    /// The bidirectional controls: embeddings, overrides, isolates and marks.
    pub fn is_bidi_control(c: char) -> bool {
        matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }

    /// Why `value` is not text a person wrote, if it is not; `lines` when it may hold line
    /// breaks and tabs.
    pub fn refusal(value: &str, lines: bool) -> Option<&'static str> {
        if value
            .chars()
            .any(|c| c.is_control() && !(lines && matches!(c, '\n' | '\r' | '\t')))
        {
            return Some("must not hold control characters");
        }
        if value.chars().any(is_bidi_control) {
            return Some("must not hold bidirectional control characters");
        }
        // Plain whitespace is `not_blank`'s to judge: an optional field left blank is absent.
        if value.chars().any(is_invisible)
            && value.chars().all(|c| c.is_whitespace() || is_invisible(c))
        {
            return Some("must hold something visible");
        }
        None
    }
}

/// Reads an integer field as JSON Schema (and so the OpenAPI document) defines one: any
/// number with no fractional part, `1.0` as well as `1`. For
/// `#[serde(deserialize_with = "...")]` on the bodies' integer fields, so a client
/// generated from the document is not refused what the document allows.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_i64(), number.as_f64()) {
        (Some(whole), _) => Some(whole),
        // Within ±2^53 a float that has no fraction is that integer exactly.
        (None, Some(float)) if float.fract() == 0.0 && float.abs() <= 9_007_199_254_740_992.0 => {
            Some(float as i64)
        }
        _ => None,
    };
    whole
        .and_then(|whole| T::try_from(whole).ok())
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid value: {number}, expected an integer in range"
            ))
        })
}

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

    /// One line a person wrote (a name, an address line): see [`super::text`].
    pub fn line(value: &str, _: &()) -> garde::Result {
        match super::text::refusal(value, false) {
            Some(why) => Err(garde::Error::new(why)),
            None => Ok(()),
        }
    }

    /// Text a person wrote that may have lines (a description).
    pub fn lines(value: &str, _: &()) -> garde::Result {
        match super::text::refusal(value, true) {
            Some(why) => Err(garde::Error::new(why)),
            None => Ok(()),
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

    #[derive(serde::Deserialize)]
    struct Quantity {
        #[serde(deserialize_with = "whole_number")]
        quantity: u32,
    }

    #[test]
    fn an_integer_is_any_number_without_a_fraction() {
        let read = |json: &str| serde_json::from_str::<Quantity>(json).map(|q| q.quantity);
        assert_eq!(read(r#"{"quantity": 3}"#).ok(), Some(3));
        assert_eq!(read(r#"{"quantity": 3.0}"#).ok(), Some(3));
        assert_eq!(read(r#"{"quantity": 3e0}"#).ok(), Some(3));
        for refused in [
            r#"{"quantity": 3.5}"#,
            r#"{"quantity": -1}"#,
            r#"{"quantity": 1e300}"#,
            r#"{"quantity": "3"}"#,
            r#"{"quantity": 4294967296}"#,
        ] {
            assert!(read(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn text_no_person_typed_is_refused_and_what_they_did_is_stored_in_nfc() {
        for (value, lines) in [
            ("Desk\u{0000}Lamp", false),
            ("Desk\u{0007}", true),
            ("Desk\nLamp", false),
            ("\u{200B}\u{200B}", false),
            (" \u{FEFF} ", true),
            ("Lamp \u{202E}pmaL", false),
            ("\u{2066}isolated\u{2069}", true),
        ] {
            assert!(text::refusal(value, lines).is_some(), "{value:?}");
        }
        for (value, lines) in [
            ("Desk Lamp", false),
            ("Zoë's café", false),
            ("line one\nline two\twith a tab", true),
            ("東京", false),
            ("👩‍👩‍👧", false),
            ("", false),
            // Blank is `not_blank`'s call: an optional field left blank is absent.
            ("   ", false),
        ] {
            assert_eq!(text::refusal(value, lines), None, "{value:?}");
        }
        // "é" written as e + combining acute is stored as the one character.
        assert_eq!(text::stored("  Cafe\u{0301} "), "Caf\u{00E9}");
    }

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
