//! Ctrl-C and SIGTERM. During apply, destroy or test the first stops new operations and lets
//! those in flight finish, so no resource is left half-made; the second exits at once. During
//! `lmi run` the first stops apply or test and goes on to the cleanup; the second stops the
//! cleanup too, and lmi says what remains.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first interrupt.
pub fn cancel_on_interrupt() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if interrupted().await.is_err() {
            return;
        }
        eprintln!(
            "\nInterrupted: finishing the operations in flight, starting no new ones. Interrupt again to exit at once."
        );
        token.cancel();
        if interrupted().await.is_ok() {
            eprintln!("Exiting: resources being created may be left; `lmi destroy` removes them.");
            std::process::exit(130);
        }
    });
    cancel
}

/// `lmi run`'s two tokens: `work` is cancelled by the first interrupt, `cleanup` by the second.
pub struct RunInterrupts {
    pub work: CancellationToken,
    pub cleanup: CancellationToken,
}

pub fn run_interrupts() -> RunInterrupts {
    let tokens = RunInterrupts {
        work: CancellationToken::new(),
        cleanup: CancellationToken::new(),
    };
    let (work, cleanup) = (tokens.work.clone(), tokens.cleanup.clone());
    tokio::spawn(async move {
        if interrupted().await.is_err() {
            return;
        }
        eprintln!(
            "\nInterrupted: finishing the operations in flight, then destroying the stack. Interrupt again to stop the cleanup."
        );
        work.cancel();
        if interrupted().await.is_ok() {
            eprintln!("\nInterrupted again: stopping the cleanup after the operations in flight.");
            cleanup.cancel();
        }
    });
    tokens
}

async fn interrupted() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
