//! How the shop spells ids and instants, in events, items and answers alike: one
//! spelling each, so that equal values compare equal as strings and sort as they read.

use chrono::{DateTime, SecondsFormat, Utc};

/// A new id: a ULID, unique, URL-safe and sortable by creation time.
pub fn new_ulid() -> String {
    ulid::Ulid::generate().to_string()
}

/// Event ids are ULIDs: consumers deduplicate on them, and they sort as they were raised.
pub fn new_event_id() -> String {
    new_ulid()
}

/// Whether `id` is a ULID in its canonical form: 26 upper-case Crockford base-32
/// characters, at most 128 bits. Only that spelling is accepted, so one id never has two
/// keys in a table.
pub fn is_ulid(id: &str) -> bool {
    const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    id.len() == 26 && id.as_bytes()[0] <= b'7' && id.bytes().all(|b| CROCKFORD.contains(&b))
}

/// An instant as RFC 3339 in UTC with milliseconds (`2025-01-02T03:04:05.678Z`). Fixed
/// width, so stored timestamps sort as they read and index keys built on them order by
/// time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_ulids_are_ids() {
        assert!(is_ulid(&new_ulid()));
        assert!(is_ulid(&new_event_id()));
        assert!(is_ulid("01JDKQ8M3ZP7G5V4X2N6R9T1CB"));
        assert!(!is_ulid("01jdkq8m3zp7g5v4x2n6r9t1cb"));
        assert!(!is_ulid(&new_ulid().to_lowercase()), "one spelling per id");
        assert!(!is_ulid("not-an-id"));
        assert!(!is_ulid("../../etc"));
        assert!(!is_ulid(&"Z".repeat(26)), "more than 128 bits");
        assert!(!is_ulid(""));
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds_and_fixed_width() {
        let on_the_second = DateTime::from_timestamp(1_735_787_045, 0).unwrap();
        let with_millis = DateTime::from_timestamp_millis(1_735_787_045_678).unwrap();
        assert_eq!(timestamp(on_the_second), "2025-01-02T03:04:05.000Z");
        assert_eq!(timestamp(with_millis), "2025-01-02T03:04:05.678Z");
    }
}
