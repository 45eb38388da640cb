//! Carries out a plan against AWS: observe by tag, walk the dependency graph, wait for each
//! resource. Never prints: it reports [`Event`]s to an [`Observer`], which `report` renders.

pub mod execute;
pub mod lock;
pub mod observe;
pub mod preflight;
pub mod walk;

use std::time::Duration;

use crate::plan::{Action, Address};

pub use execute::{Summary, execute};
pub use observe::{Observation, observe};

/// Something that happened to one resource while a plan was carried out.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        address: Address,
        action: Action,
    },
    /// Still working; `reason` says on what (e.g. a dependency that must go first).
    Waiting {
        address: Address,
        reason: String,
    },
    Finished {
        address: Address,
        action: Action,
        elapsed: Duration,
    },
    Failed {
        address: Address,
        action: Action,
        error: String,
    },
    Skipped {
        address: Address,
        because: Address,
    },
}

/// Receives events as they happen, from many tasks at once.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}
