//! The commands of the binary, one file each.

mod admin;
pub mod call;
pub mod certs;
mod fault_control;
pub mod kube;
pub mod load;
pub mod plan;
pub mod run;
pub mod up;

mod signal;

use runtime::Catalogue;
use runtime::config::{self, Plan};

use crate::cli::ConfigArgs;

/// Loads the config from its layers and checks it against `catalogue`.
fn load_plan(args: &ConfigArgs, catalogue: &Catalogue) -> anyhow::Result<Plan> {
    let config = config::load(&args.source())?;
    Ok(Plan::new(config, catalogue)?)
}

/// Runs `future` to its end on a fresh actix system, then drops the
/// system inside its own runtime's context.
///
/// Module work still in flight when `future` ends (a handler's database
/// query that its caller gave up on, the checkout finisher's at a stop)
/// is dropped with the system, and sqlx's pooled connections start a task
/// as they drop: outside a runtime's context that panics. Tokio catches
/// it, but `boutique run` printed a panic and its backtrace after a clean
/// stop. Inside the context, the task is started and dropped with the
/// runtime.
fn on_system<T>(future: impl std::future::Future<Output = T>) -> T {
    let system = actix_rt::System::new();
    let (output, runtime) =
        system.block_on(async { (future.await, tokio::runtime::Handle::current()) });
    let entered = runtime.enter();
    drop(system);
    drop(entered);
    output
}

/// Writes `text` to stdout; a reader that stopped reading (`| head`) is
/// not an error (`println!` would panic).
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Records, as it drops, whether a runtime's context was there (as
    /// sqlx's pooled connection needs, to start a task).
    struct Probe(Arc<AtomicU8>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let context = tokio::runtime::Handle::try_current().is_ok();
            self.0.store(if context { 1 } else { 2 }, Ordering::SeqCst);
        }
    }

    #[test]
    fn work_left_in_flight_is_dropped_inside_the_runtimes_context() {
        let dropped = Arc::new(AtomicU8::new(0));
        let probe = Probe(Arc::clone(&dropped));
        super::on_system(async move {
            // A handler's work its caller gave up on: never finishes.
            actix_rt::spawn(async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            });
        });
        // Dropped outside it, it was 2, and sqlx panicked.
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
