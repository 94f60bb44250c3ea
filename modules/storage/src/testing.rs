//! Databases for tests: SQLite in a fresh directory always, and PostgreSQL
//! too when the environment variable [`POSTGRES_ENV`] holds a server URL.
//! Each PostgreSQL test database is a fresh schema, so tests run in
//! parallel without seeing each other's rows.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// The variable naming a PostgreSQL server for the storage tests, e.g.
/// `postgres://postgres@127.0.0.1/postgres`.
pub const POSTGRES_ENV: &str = "BOUTIQUE_TEST_POSTGRES";

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory under the system's temporary directory.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "boutique-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        if let Err(e) = std::fs::create_dir_all(&path) {
            panic!("cannot create test directory {}: {e}", path.display());
        }
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database a test can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestBackend {
    /// SQLite, in the module's data directory (the default).
    Sqlite,
    /// PostgreSQL at this server URL.
    Postgres(String),
}

impl TestBackend {
    /// The `database` setting for a module under test: `None` for SQLite
    /// (the module's default file), or a URL to a fresh PostgreSQL schema.
    pub async fn database_url(&self) -> Option<String> {
        match self {
            TestBackend::Sqlite => None,
            TestBackend::Postgres(server) => Some(fresh_schema(server).await),
        }
    }

    /// A short name for test output.
    pub fn name(&self) -> &'static str {
        match self {
            TestBackend::Sqlite => "sqlite",
            TestBackend::Postgres(_) => "postgres",
        }
    }
}

/// The backends to test against: SQLite, and PostgreSQL when [`POSTGRES_ENV`]
/// is set. Says once per test binary, on stderr and past the test harness's
/// output capture, which it is.
pub fn backends() -> Vec<TestBackend> {
    static SAID: Once = Once::new();
    let say = |text: String| {
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{text}");
        })
    };
    match std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(url) => {
            say(format!(
                "storage tests: SQLite and PostgreSQL ({POSTGRES_ENV} is set)"
            ));
            vec![TestBackend::Sqlite, TestBackend::Postgres(url)]
        }
        None => {
            say(format!(
                "storage tests: SQLite only (set {POSTGRES_ENV} to a PostgreSQL server URL to test it too)"
            ));
            vec![TestBackend::Sqlite]
        }
    }
}

/// Creates a schema of its own on `server` and returns a URL whose
/// connections use it.
async fn fresh_schema(server: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        crate::unix_ms()
    );
    let mut connection = match sqlx::PgConnection::connect(server).await {
        Ok(connection) => connection,
        Err(e) => panic!("{POSTGRES_ENV} is set, but its server cannot be reached: {e}"),
    };
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut connection)
        .await
    {
        panic!("cannot create test schema {schema}: {e}");
    }
    let _ = connection.close().await;
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options[search_path]={schema}")
}

/// Waits until a statement like `pattern` (SQL `LIKE`), run by another
/// connection on `table` of the PostgreSQL schema `url` names, waits for a
/// lock: for a test that holds a lock and must know that the statement it
/// races has reached it. Other schemas' statements, another test's, do not
/// count. Panics after 10 s.
pub async fn until_waiting_for_lock(url: &str, pattern: &str, table: &str) {
    sqlx::any::install_default_drivers();
    let mut watcher = match sqlx::AnyConnection::connect(url).await {
        Ok(connection) => connection,
        Err(e) => panic!("cannot connect to {url} to watch its locks: {e}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: Result<(i64,), _> = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE $1 AND pid <> pg_backend_pid() \
             AND pid IN (SELECT pid FROM pg_locks WHERE relation = $2::text::regclass)",
        )
        .bind(pattern)
        .bind(table)
        .fetch_one(&mut watcher)
        .await;
        match waiting {
            Ok((0,)) => {}
            Ok(_) => return,
            Err(e) => panic!("cannot read the locks of {url}: {e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no statement like {pattern:?} waited for a lock on {table} within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
