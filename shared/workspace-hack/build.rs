// Present so cargo applies the [build-dependencies] of Cargo.toml: build scripts and
// proc macros then share one feature set too.
fn main() {}
