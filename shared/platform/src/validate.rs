//! garde rules that more than one capability's request bodies need. garde's own `length`
//! counts whitespace as content; these say what a person would call empty.

/// A text that is more than whitespace: `"   "` names nothing.
pub fn not_blank(value: &str, _: &()) -> garde::Result {
    if value.trim().is_empty() {
        Err(garde::Error::new("must not be blank"))
    } else {
        Ok(())
    }
}
