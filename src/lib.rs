//! lmi: deploy Lambda Managed Instances stacks from one `lmi.toml` with direct AWS API calls,
//! test them against X-Ray, and tear them down.
//!
//! The data flows one way: `config` (lmi.toml → validated model) → `model` → `commands` (glue)
//! → `report` (the only code that prints).

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit;
pub mod experiment;
pub mod model;
pub mod package;
pub mod plan;
pub mod report;
