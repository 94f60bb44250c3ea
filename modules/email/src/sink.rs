//! Where rendered emails go.
//!
//! A sink hands back the delivery as a future, so that one that blocks
//! (writing a file) does it on tokio's blocking pool, not on the thread
//! the module's actor shares with others.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use crate::api::SentEmail;

/// A delivery under way: done, or why not.
pub type Delivery = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Something that delivers emails.
pub trait Sink: Send {
    /// Starts delivering `email`.
    fn send(&mut self, email: &SentEmail) -> Delivery;
}

/// Writes each email to the log.
pub struct LogSink;

impl LogSink {
    fn log(email: &SentEmail) {
        tracing::info!(module = "email", to = %email.to, subject = %email.subject, body = %email.text, "email sent");
    }
}

impl Sink for LogSink {
    fn send(&mut self, email: &SentEmail) -> Delivery {
        LogSink::log(email);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Writes each email as a file `<time>-<n>.eml` in a directory, and logs
/// its address and subject (not its body: a customer's order is in the
/// file, for this user alone, not in logs that others may read).
pub struct DirectorySink {
    /// Where the files go (made at the first email).
    pub directory: PathBuf,
    /// How many this sink has written: each file's number.
    pub written: u64,
}

impl Sink for DirectorySink {
    fn send(&mut self, email: &SentEmail) -> Delivery {
        tracing::info!(module = "email", to = %email.to, subject = %email.subject, "email sent");
        self.written += 1;
        let directory = self.directory.clone();
        let path = directory.join(format!("{}-{}.eml", email.sent_at, self.written));
        let message = format!(
            "To: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}",
            email.to, email.subject, email.html
        );
        let write = move || {
            // Customers' addresses and orders: for this user alone.
            use std::io::Write as _;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&directory)
                .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut file| file.write_all(message.as_bytes()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(write)
                .await
                .map_err(|e| format!("the write stopped: {e}"))?
        })
    }
}
