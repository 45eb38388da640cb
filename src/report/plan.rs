//! `lmi plan` and the plan `apply` shows before it asks: one line per change, field changes
//! under it, a count at the end. Terraform's symbols, because people already read them.

use std::fmt::Write;

use owo_colors::OwoColorize;

use crate::engine::preflight::Finding;
use crate::plan::{Action, Plan};

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
    }
}

/// The plan as text; `color` adds ANSI colours.
pub fn render(plan: &Plan, region: &str, color: bool) -> String {
    let mut out = String::new();
    let paint = |action: Action, text: String| -> String {
        if !color {
            return text;
        }
        match action {
            Action::Create => text.green().to_string(),
            Action::Update => text.yellow().to_string(),
            Action::Replace => text.magenta().to_string(),
            Action::Delete => text.red().to_string(),
        }
    };
    let _ = writeln!(out, "Stack `{}` in {region}:", plan.stack);
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "\nNo changes: {} resource{} already match lmi.toml.",
            plan.unchanged,
            if plan.unchanged == 1 { "" } else { "s" }
        );
        return out;
    }
    out.push('\n');
    for change in &plan.changes {
        let suffix = match change.action {
            Action::Replace => " (replace)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {}",
            paint(
                change.action,
                format!("{:>3} {}{suffix}", symbol(change.action), change.address)
            )
        );
        for field in &change.fields {
            let _ = writeln!(
                out,
                "        {}: {} → {}{}",
                field.field,
                field.before,
                field.after,
                if field.forces_replace {
                    " (forces replacement)"
                } else {
                    ""
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to update, {} to replace, {} to delete; {} unchanged.",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Replace),
        plan.count(Action::Delete),
        plan.unchanged
    );
    out
}

/// Preflight findings, each with its fix.
pub fn render_findings(findings: &[Finding]) -> String {
    let mut out = String::from(
        "The network preflight failed: the capacity provider's instances could not send logs or traces.\n",
    );
    for finding in findings {
        let _ = writeln!(out, "  - {finding}");
    }
    out.push_str("Nothing was changed in AWS.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Change, FieldChange, Kind};

    #[test]
    fn renders_each_action_with_its_fields() {
        let change = |kind, name: &str, action, fields| Change {
            address: Address::new(kind, name),
            action,
            fields,
            desired: None,
            observed: None,
        };
        let plan = Plan {
            stack: "demo".into(),
            changes: vec![
                change(Kind::Vpc, "main", Action::Create, vec![]),
                change(
                    Kind::Subnet,
                    "private-a",
                    Action::Replace,
                    vec![FieldChange {
                        field: "cidr".into(),
                        before: "10.0.0.0/24".into(),
                        after: "10.0.1.0/24".into(),
                        forces_replace: true,
                    }],
                ),
                change(Kind::RouteTable, "old", Action::Delete, vec![]),
            ],
            unchanged: 4,
        };
        assert_eq!(
            render(&plan, "us-east-1", false),
            "Stack `demo` in us-east-1:\n\n    + vpc.main\n  -/+ subnet.private-a (replace)\n        cidr: 10.0.0.0/24 → 10.0.1.0/24 (forces replacement)\n    - route_table.old\n\nPlan: 1 to create, 0 to update, 1 to replace, 1 to delete; 4 unchanged.\n"
        );
    }
}
