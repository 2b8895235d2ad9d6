//! The `vxtund` command line.
fn main() {}
