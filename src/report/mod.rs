//! Everything lmi prints. Results go to stdout, diagnostics and progress to stderr; colour only
//! on a terminal and never with NO_COLOR set.

pub mod junit;
pub mod plan;
pub mod progress;
pub mod summary;
pub mod test;
pub mod validation;

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};

/// Whether stderr gets colour: a terminal, and NO_COLOR unset (https://no-color.org).
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Whether stdout gets colour (for the plan): a terminal, and NO_COLOR unset.
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Errors that reach `main` render like every other diagnostic.
pub fn install_miette_hook() {
    let color = color();
    let width = width();
    // set_hook fails only if a hook is already set, which keeps that one: nothing to do.
    let _ = miette::set_hook(Box::new(move |_| Box::new(handler(color, width))));
}

pub(crate) fn handler(color: bool, width: usize) -> GraphicalReportHandler {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_context_lines(1)
}

/// Left-aligned columns, the first row a header. Widths count characters, not bytes.
pub fn indented<const N: usize>(rows: &[[String; N]], indent: &str) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// [`indented`] with no indent.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    indented(rows, "")
}
