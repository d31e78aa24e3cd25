// Nothing to compile: this crate exists for the dependencies its Cargo.toml names (see
// its description).
