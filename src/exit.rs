//! Exit codes, the contract with CI scripts. Documented in the README; never reuse a number.

/// Success: the file is valid, the plan applied, nothing to change.
pub const OK: u8 = 0;
/// An error: an invalid lmi.toml, an AWS failure, a failed preflight, a refused confirmation.
pub const ERROR: u8 = 1;
/// `lmi plan --detailed-exitcode`: the plan has changes.
pub const CHANGES: u8 = 2;
/// `lmi test`: an assertion failed, or was inconclusive (a trace never arrived) and the test
/// doesn't allow that.
pub const TEST_FAILED: u8 = 3;
/// `lmi run`, `lmi gc`: destroying failed; what remains is listed.
pub const CLEANUP_FAILED: u8 = 4;
/// `lmi run` stopped by SIGINT or SIGTERM (after its cleanup), as shells report a signal.
pub const INTERRUPTED: u8 = 130;
