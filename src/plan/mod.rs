//! From a validated stack and what AWS has to the list of changes `apply` makes. Pure: the
//! engine observes AWS and hands the result in.

pub mod desired;
pub mod diff;
pub mod graph;
pub mod resource;

pub use diff::{Action, Change, FieldChange, Plan, diff};
pub use resource::{Address, Kind, Observed, Ref, Resource, Spec};
