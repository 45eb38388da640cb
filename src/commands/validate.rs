//! `lmi validate`: load lmi.toml and report every problem; no AWS call.

use std::path::Path;

use crate::cli::Format;
use crate::{config, exit, report};

pub fn run(file: &Path, format: Format) -> miette::Result<u8> {
    let loaded = match config::load(file) {
        Ok(loaded) => loaded,
        Err(error) if format == Format::Json => {
            report::validation::print_json_load_error(file, &error);
            return Ok(exit::ERROR);
        }
        Err(error) => return Err(error.into()),
    };
    match format {
        Format::Text => report::validation::print_text(&loaded),
        Format::Json => report::validation::print_json(&loaded),
    }
    Ok(if loaded.stack.is_some() {
        exit::OK
    } else {
        exit::ERROR
    })
}
