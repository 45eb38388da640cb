//! Exit codes, the contract with CI scripts. Documented in the README; never reuse a number.

/// Success: the file is valid.
pub const OK: u8 = 0;
/// An error: an invalid lmi.toml, a file that can't be read.
pub const ERROR: u8 = 1;
