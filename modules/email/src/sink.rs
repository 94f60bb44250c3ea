//! Where rendered emails go.

use std::path::PathBuf;

use crate::api::SentEmail;

/// Something that delivers emails.
pub trait Sink: Send {
    /// Delivers `email`, or says why not.
    fn send(&mut self, email: &SentEmail) -> Result<(), String>;
}

/// Writes each email to the log.
pub struct LogSink;

impl Sink for LogSink {
    fn send(&mut self, email: &SentEmail) -> Result<(), String> {
        tracing::info!(module = "email", to = %email.to, subject = %email.subject, body = %email.text, "email sent");
        Ok(())
    }
}

/// Logs each email and writes it as a file `<time>-<n>.eml` in a directory.
pub struct DirectorySink {
    pub directory: PathBuf,
    pub written: u64,
}

impl Sink for DirectorySink {
    fn send(&mut self, email: &SentEmail) -> Result<(), String> {
        LogSink.send(email)?;
        std::fs::create_dir_all(&self.directory)
            .map_err(|e| format!("cannot create {}: {e}", self.directory.display()))?;
        self.written += 1;
        let path = self
            .directory
            .join(format!("{}-{}.eml", email.sent_at, self.written));
        let message = format!(
            "To: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}",
            email.to, email.subject, email.html
        );
        std::fs::write(&path, message).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
