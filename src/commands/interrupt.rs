//! Ctrl-C and SIGTERM during apply or destroy: the first stops new operations and lets those
//! in flight finish, so no resource is left half-made; the second exits at once.

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
