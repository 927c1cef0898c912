//! Ctrl-C and SIGTERM, heard from the moment kpo starts: one handler, installed before any work,
//! counts every signal; each phase of a command asks it what it needs — "was kpo interrupted?"
//! while it loads and prepares, one [`Interrupt`] per signal while a run supervises its pod.
//!
//! Tokio installs a signal's handler when it is first asked to listen and never removes it: a
//! handler installed on the first poll of a later future would leave kpo deaf (the default
//! action gone, nobody listening) while plugins load or check their configs.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;

use crate::supervise::Interrupt;

/// What Ctrl-C or SIGTERM does to a run (`--on-signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalMode {
    Terminate,
    Detach,
}

/// How many interrupting signals kpo has received so far.
#[derive(Clone)]
pub struct Signals {
    count: watch::Receiver<u64>,
}

impl Signals {
    /// Installs the handlers now, synchronously, and counts signals from here on. Call it inside
    /// the runtime, before any work starts.
    ///
    /// # Errors
    /// The operating system refused a handler.
    pub fn install() -> std::io::Result<Self> {
        let (tx, count) = watch::channel(0u64);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    tx.send_modify(|n| *n += 1);
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                tx.send_modify(|n| *n += 1);
            }
        });
        Ok(Self { count })
    }

    /// Resolves once kpo has been interrupted (at once if it already was).
    pub async fn interrupted(&self) {
        let mut count = self.count.clone();
        if count.wait_for(|n| *n > 0).await.is_err() {
            // The listener is gone: no signal can come any more.
            std::future::pending::<()>().await;
        }
    }

    /// Runs `work` unless kpo is interrupted first (or already was): then `work` is dropped —
    /// a plugin call with it, wherever its guest is — and the answer is `Err(Interrupted)`.
    pub async fn unless_interrupted<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        tokio::select! {
            biased;
            () = self.interrupted() => Err(Interrupted),
            done = work => Ok(done),
        }
    }

    /// One item per signal since kpo started, meaning what `--on-signal` says: the first
    /// interrupts the run, a second skips the pod's grace period. A signal that came before
    /// the stream was asked for is its first item, so no pod is created after an interrupt.
    pub fn interrupts(&self, mode: SignalMode) -> Pin<Box<dyn Stream<Item = Interrupt> + Send>> {
        let asked = match mode {
            SignalMode::Terminate => Interrupt::Stop,
            SignalMode::Detach => Interrupt::Detach,
        };
        Box::pin(futures::stream::unfold(
            (self.count.clone(), 0u64),
            move |(mut count, seen)| {
                let asked = asked.clone();
                async move {
                    if count.wait_for(|n| *n > seen).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    Some((asked, (count, seen + 1)))
                }
            },
        ))
    }
}

/// kpo was interrupted before it had anything to clean up.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;
