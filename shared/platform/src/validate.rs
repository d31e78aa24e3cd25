//! garde rules that more than one capability's request bodies need: the contracts' own,
//! so a request and the event it becomes are held to the same rule. garde's `length`
//! counts whitespace as content; `not_blank` says what a person would call empty, `line`
//! and `lines` what a person would have written at all (the one text policy,
//! `shop_events::limits::text`).

pub use shop_events::limits::rules::{line, lines, not_blank};
