//! Live progress of an apply or destroy, on stderr: on a terminal, a spinner per resource in
//! flight with its elapsed time; elsewhere (CI logs), one plain line per event.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Event, Observer};
use crate::plan::{Action, Address};

fn verb(action: Action, done: bool) -> &'static str {
    match (action, done) {
        (Action::Create, false) => "creating",
        (Action::Create, true) => "created",
        (Action::Update, false) => "updating",
        (Action::Update, true) => "updated",
        (Action::Replace, false) => "replacing",
        (Action::Replace, true) => "replaced",
        (Action::Delete, false) => "deleting",
        (Action::Delete, true) => "deleted",
    }
}

pub struct Progress {
    bars: Option<(MultiProgress, Mutex<HashMap<Address, ProgressBar>>)>,
}

impl Progress {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        Progress { bars }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Observer for Progress {
    fn event(&self, event: Event) {
        match event {
            Event::Started { address, action } => match &self.bars {
                Some((multi, bars)) => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(format!("{} {address}", verb(action, false)));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    if let Ok(mut bars) = bars.lock() {
                        bars.insert(address, bar);
                    }
                }
                None => eprintln!("  … {} {address}", verb(action, false)),
            },
            Event::Waiting { address, reason } => match &self.bars {
                Some((_, bars)) => {
                    if let Some(bar) = bars.lock().ok().and_then(|b| b.get(&address).cloned()) {
                        bar.set_message(format!("{address}: {reason}"));
                    }
                }
                None => eprintln!("  … waiting on {address}: {reason}"),
            },
            Event::Finished {
                address,
                action,
                elapsed,
            } => {
                self.finish(&address);
                self.line(format!(
                    "  ✓ {} {address} in {}",
                    verb(action, true),
                    seconds(elapsed)
                ));
            }
            Event::Failed {
                address,
                action,
                error,
            } => {
                self.finish(&address);
                self.line(format!(
                    "  ✗ {} {address} failed: {error}",
                    verb(action, false)
                ));
            }
            Event::Skipped { address, because } => {
                self.line(format!("  - skipped {address}: {because} did not succeed"));
            }
        }
    }
}

impl Progress {
    fn finish(&self, address: &Address) {
        if let Some((_, bars)) = &self.bars
            && let Some(bar) = bars.lock().ok().and_then(|mut b| b.remove(address))
        {
            bar.finish_and_clear();
        }
    }
}
