//! A module with work outside its actor (as a web server has requests in
//! flight, or a checkout an order to store) that holds its node's graceful
//! shutdown until the test lets it end.
//!
//! Its switches are statics, so one test per test binary may start it (a
//! node per [`RELEASE`] permit).

use runtime::Empty;

/// Set once the holder module has been told to stop.
pub static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Lets the holder module's work finish (one permit per node).
pub static RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Holder's one message.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Nothing {}

/// An error no call returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("never")]
pub struct Never;

runtime::service! {
    /// A module whose work holds its node's shutdown until [`RELEASE`].
    pub Holder = "holder", error Never {
        Nothing -> Empty,
    }
}

/// The holder module: its shutdown hold is let go once it has been told to
/// stop and [`RELEASE`] gives a permit.
pub struct HolderModule;

impl runtime::Module for HolderModule {
    type Service = Holder;
    type Config = runtime::NoConfig;
    async fn start(
        _: runtime::NoConfig,
        ctx: runtime::StartContext,
    ) -> Result<Holder, runtime::StartError> {
        let hold = ctx.hold_shutdown();
        let stopped = ctx.stopped();
        actix::spawn(async move {
            stopped.await;
            STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
            RELEASE.notified().await;
            drop(hold);
        });
        Ok(Holder::start(HolderActor))
    }
}

struct HolderActor;

impl actix::Actor for HolderActor {
    type Context = actix::Context<Self>;
}

impl actix::Handler<runtime::Call<Nothing>> for HolderActor {
    type Result = Result<Empty, Never>;
    fn handle(&mut self, _: runtime::Call<Nothing>, _: &mut Self::Context) -> Self::Result {
        Ok(Empty {})
    }
}
