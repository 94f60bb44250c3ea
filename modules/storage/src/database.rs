//! Opening a module's database: which backend, where, and with what
//! settings.

use std::path::Path;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, any::install_default_drivers};

use crate::migrate::{Migration, migrate};

/// Which database a module is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A module's database could not be opened, migrated or used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The `database` setting is not a URL this build understands (the
    /// URL is held with its password hidden).
    #[error(
        "database = '{0}' is not a database URL: use postgres://USER:PASSWORD@HOST/DATABASE \
         or sqlite:PATH"
    )]
    BadUrl(String),
    /// The `database` setting names an in-memory SQLite database: each
    /// pooled connection would get its own, empty one (without the tables
    /// the migrations made on another), lost when the connection closes.
    #[error(
        "database = '{0}' is in memory: each connection would see its own empty database, \
         and the data would go with it; give a file, sqlite:PATH (or no database: the data \
         directory's)"
    )]
    InMemory(String),
    /// The database could not be reached or opened.
    #[error("cannot open the database at {at}: {detail}")]
    Open {
        /// Where (the URL without its password).
        at: String,
        /// What the driver said.
        detail: String,
    },
    /// A migration failed; the schema is as it was before it.
    #[error("migration {version} ({description}) failed: {detail}")]
    Migrate {
        /// The migration's number.
        version: i64,
        /// What it does.
        description: String,
        /// What the database said.
        detail: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        StorageError::Query(error.to_string())
    }
}

/// A module's database: a pool of connections, migrated.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    at: String,
}

/// Checks a module's `database` setting without opening anything, for
/// its `Module::check`: a URL this build cannot open is a config error
/// (`boutique plan` reports it; a node is not started with it).
pub fn check_url(url: Option<&str>) -> Result<(), StorageError> {
    match url {
        None => Ok(()),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(()),
        Some(url) if url.starts_with("sqlite:") => sqlite_file(url).map(drop),
        Some(other) => Err(StorageError::BadUrl(redact(other))),
    }
}

/// Every PostgreSQL session's bounds, as SQLite's `busy_timeout` bounds
/// its waits: a statement waits for a lock at most 30 s, and a transaction
/// left open and idle for a minute is ended by the server. Without them, a
/// replica that stopped between a write and its commit (paused, or its
/// connection half-open) held its row locks until TCP gave up, hours
/// later, and every statement that wanted them waited as long, each
/// pinning a connection of its pool, until the pool had none left. No
/// transaction here waits on another service, so a minute idle is stuck.
const POSTGRES_SESSION: &str =
    "SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = '1min'";

impl Database {
    /// Opens the database of `module`: `url` if given (`sqlite:PATH` or
    /// `postgres://...`), otherwise `DATA_DIR/MODULE.db`; then applies
    /// `migrations` that are not applied yet.
    pub async fn open(
        module: &str,
        url: Option<&str>,
        data_dir: &Path,
        migrations: &[Migration],
    ) -> Result<Database, StorageError> {
        install_default_drivers();
        // For a file in the data directory, what to do if it cannot be
        // opened: SQLite says only "unable to open database file".
        let hint = match url {
            None => format!(
                " (the file {} in runtime.data_dir: give a directory this user may write, \
                 --set runtime.data_dir=PATH)",
                data_dir.join(format!("{module}.db")).display()
            ),
            Some(_) => String::new(),
        };
        let (url, backend) = match url {
            None => {
                let path = data_dir.join(format!("{module}.db"));
                (sqlite_url(&path)?, Backend::Sqlite)
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (url.to_owned(), Backend::Postgres)
            }
            Some(url) if url.starts_with("sqlite:") => {
                let sqlite = sqlite_file(url)?;
                // Made here (for this user alone) unless the URL's mode says
                // the file must be there already.
                let creates = sqlite.modes.is_empty() || sqlite.modes.iter().any(|m| m == "rwc");
                create_private_file(Path::new(&sqlite.path), &redact(url), creates)?;
                let query = url.split_once('?').map_or("", |(_, query)| query);
                (with_create_mode(url, query), Backend::Sqlite)
            }
            Some(other) => return Err(StorageError::BadUrl(redact(other))),
        };
        let at = redact(&url);
        let open_error = |e: sqlx::Error| StorageError::Open {
            at: at.clone(),
            detail: match e {
                // sqlx tries again until its time is up, and then says only
                // that the pool timed out.
                sqlx::Error::PoolTimedOut => {
                    "no connection within 10 s (refused, or no answer): is \
                    the database server running, and reachable from here?"
                        .to_owned()
                }
                other => format!("{other}{hint}"),
            },
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => options
                .max_connections(4)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        // WAL lets readers work beside the one writer; FULL
                        // makes every committed transaction durable.
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(open_error)?,
            Backend::Postgres => options
                .max_connections(8)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        connection.execute(POSTGRES_SESSION).await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(open_error)?,
        };
        let database = Database { pool, backend, at };
        migrate(&database.pool, backend, module, migrations).await?;
        tracing::info!(module, database = %database.at, "database ready");
        Ok(database)
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a transaction that reads first and
    /// writes later would otherwise fail with "database is locked" when
    /// another writer got in between, whatever the busy timeout.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        begin_write(&self.pool, self.backend).await
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where it is, for people (no password).
    pub fn location(&self) -> &str {
        &self.at
    }
}

/// See [`Database::begin_write`].
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

/// Makes a SQLite database's directory and, if missing, its file, both
/// for this user alone (0700, 0600): they hold accounts' password hashes,
/// addresses and emails, and SQLite gives its `-wal` and `-shm` files the
/// database file's mode. What exists already keeps its mode. The file is
/// made only if `create_file` (not for a URL that says its own `mode`).
fn create_private_file(path: &Path, shown: &str, create_file: bool) -> Result<(), StorageError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let cannot = |what: &Path, e: std::io::Error| StorageError::Open {
        at: shown.to_owned(),
        detail: format!("cannot create {}: {e}", what.display()),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| cannot(parent, e))?;
    }
    if !create_file {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot(path, e)),
    }
}

/// The URL of the SQLite file at `path`, made if missing. sqlx
/// percent-decodes a URL's path and ends it at a `?`: a data directory
/// named with `%41` or `?` is written escaped, so that the file opened is
/// the one at `path`.
fn sqlite_url(path: &Path) -> Result<String, StorageError> {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    create_private_file(path, &path.display().to_string(), true)?;
    let path = path.display().to_string();
    Ok(format!(
        "sqlite://{}?mode=rwc",
        percent_encoding::utf8_percent_encode(&path, ESCAPED)
    ))
}

/// A `sqlite:` URL that creates its file if missing, as the default one
/// does (sqlx opens an existing file only, unless told `mode=rwc`), unless
/// it says a `mode` of its own (`query`: what follows its `?`).
fn with_create_mode(url: &str, query: &str) -> String {
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The URL with any password replaced by `***`: the one after the user
/// name (`postgres://shop:PASSWORD@db`), and the value of any query
/// parameter named for one (`?password=...`, `&sslpassword=...`), which
/// sqlx reads too.
///
/// A password may hold `?`, `/` or `@` unencoded, so the credentials end
/// at the URL's last `@`, wherever the query seems to start: an `@` in the
/// query then hides more than the password, never less.
fn redact(url: &str) -> String {
    if !url.contains("://") {
        return redact_words(url);
    }
    let (mut redacted, rest) = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let shown = match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***", &url[..scheme + 3]),
                None => url[..at].to_owned(),
            };
            (shown, &url[at..])
        }
        _ => (String::new(), url),
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    redacted.push_str(address);
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=***")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

/// A `sqlite:` URL as sqlx reads it: the file's path, and every `mode` its
/// query gives.
struct SqliteUrl {
    path: String,
    modes: Vec<String>,
}

/// A `sqlite:` URL's file and modes, found as sqlx finds them (its Any
/// driver parses the URL, then takes what follows `sqlite:` and `//`, up
/// to a `?`, percent-decoded; the query form-decoded). `None` for another
/// URL, or a path that does not decode.
fn sqlite_parts(url: &str) -> Option<SqliteUrl> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let parsed = url::Url::parse(url).ok();
    let normalized = parsed.as_ref().map_or(url, url::Url::as_str);
    let rest = normalized
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?
        .into_owned();
    let modes = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "mode")
        .map(|(_, value)| value.into_owned())
        .collect();
    Some(SqliteUrl { path, modes })
}

/// The file a `sqlite:` URL names, or why it names none this shop opens:
/// an in-memory database (`sqlite::memory:`, `?mode=memory`,
/// `%3Amemory%3A`); no file, a `file:` URI (sqlx reads the path as
/// SQLite's URI filename; a file of that name would be made here), or a
/// path that does not decode.
fn sqlite_file(url: &str) -> Result<SqliteUrl, StorageError> {
    let sqlite = sqlite_parts(url).ok_or_else(|| StorageError::BadUrl(redact(url)))?;
    if sqlite.path == ":memory:"
        || sqlite.path.starts_with("file::memory:")
        || sqlite.modes.iter().any(|mode| mode == "memory")
    {
        return Err(StorageError::InMemory(redact(url)));
    }
    if sqlite.path.is_empty() || sqlite.path.starts_with("file:") {
        return Err(StorageError::BadUrl(redact(url)));
    }
    Ok(sqlite)
}

/// A value that is no URL (libpq's `host=db user=shop password=...`, say),
/// for a message that quotes it: what comes before an `@` (credentials,
/// `shop:pw@db`) is hidden, and so is everything from a word `password`
/// on, however it is spelled out after it.
fn redact_words(text: &str) -> String {
    let text = match text.rfind('@') {
        Some(at) => format!("***{}", &text[at..]),
        None => text.to_owned(),
    };
    match text.to_ascii_lowercase().find("password") {
        Some(at) => format!("{}password***", &text[..at]),
        None => text,
    }
}

/// Whether a database setting's value holds a password (in the URL's
/// credentials or a parameter): it would be a secret wherever the value is
/// written down.
pub fn holds_password(url: &str) -> bool {
    redact(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://shop:secret@db:5432/shop"),
            "postgres://shop:***@db:5432/shop"
        );
        assert_eq!(redact("postgres://db/shop"), "postgres://db/shop");
        // A URL of no database this build opens is refused with its
        // password hidden.
        let refused = check_url(Some("postgress://shop:secret@db/shop")).unwrap_err();
        assert!(
            !refused.to_string().contains("secret")
                && refused.to_string().contains("postgres://USER"),
            "{refused}"
        );
        check_url(Some("postgresql://db/shop")).unwrap();
        check_url(Some("sqlite:data/cart.db")).unwrap();
        // No file, or a URI filename: refused.
        for bad in ["sqlite:", "sqlite://", "sqlite:file:/abs/x.db"] {
            let refused = check_url(Some(bad));
            assert!(
                matches!(refused, Err(StorageError::BadUrl(_))),
                "{bad}: {refused:?}"
            );
        }
        // The file and modes sqlx finds.
        for (url, path, modes) in [
            ("sqlite:my%20shop.db", "my shop.db", vec![]),
            ("sqlite:a%+1.db", "a%+1.db", vec![]),
            ("sqlite://data/../cart.db", "data/cart.db", vec![]),
            ("sqlite:sqlite:x.db", "x.db", vec![]),
            ("sqlite:x.db?mode=rw%63&cache=shared", "x.db", vec!["rwc"]),
        ] {
            let sqlite = sqlite_parts(url).unwrap();
            assert_eq!(sqlite.path, path, "{url}");
            assert_eq!(sqlite.modes, modes, "{url}");
        }
        for in_memory in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite:x.db?cache=shared&mode=memory",
            "sqlite:%3Amemory%3A",
            "sqlite:file::memory:",
        ] {
            let refused = check_url(Some(in_memory));
            assert!(
                matches!(&refused, Err(StorageError::InMemory(url)) if url == in_memory),
                "{in_memory}: {refused:?}"
            );
        }
        check_url(None).unwrap();
        // sqlx also takes the password as a parameter.
        assert_eq!(
            redact("postgres://shop@db/shop?sslmode=require&password=s3cret&sslpassword=k"),
            "postgres://shop@db/shop?sslmode=require&password=***&sslpassword=***"
        );
        // A password with a `?` in it is hidden whole.
        assert_eq!(
            redact("postgres://shop:pa?ss@db/shop"),
            "postgres://shop:***@db/shop"
        );
        // An `@` in the query hides more than the password, not less.
        let hidden = redact("postgres://shop:secret@db/shop?application_name=a@b");
        assert!(!hidden.contains("secret"), "{hidden}");
        assert_eq!(redact("sqlite://data/cart.db"), "sqlite://data/cart.db");
        // A value that is no URL is quoted without its password too.
        let refused = check_url(Some("host=db user=shop password=s3cret dbname=b")).unwrap_err();
        assert!(
            !refused.to_string().contains("s3cret")
                && refused
                    .to_string()
                    .contains("host=db user=shop password***"),
            "{refused}"
        );
        assert_eq!(redact("shop:s3cret@db/shop"), "***@db/shop");
        assert_eq!(redact("sqlite:data/cart.db"), "sqlite:data/cart.db");
        assert!(holds_password("postgres://shop:s3cret@db/shop"));
        assert!(holds_password("postgres://shop@db/shop?password=s3cret"));
        assert!(!holds_password("postgres://shop@db/shop"));
        assert!(!holds_password("sqlite:data/cart.db"));
        assert_eq!(with_create_mode("sqlite:a.db", ""), "sqlite:a.db?mode=rwc");
        assert_eq!(
            with_create_mode("sqlite:a.db?cache=shared", "cache=shared"),
            "sqlite:a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite:a.db?mode=ro", "mode=ro"),
            "sqlite:a.db?mode=ro"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_refused() {
        let error = Database::open("cart", Some("mysql://x"), Path::new("."), &[])
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::BadUrl(_)), "{error}");
        let error = Database::open("cart", Some("sqlite::memory:"), Path::new("."), &[])
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::InMemory(_)), "{error}");
    }

    #[tokio::test]
    async fn a_database_made_here_is_for_this_user_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testing::TempDir::new("private");
        let data_dir = dir.path().join("data");
        let database = Database::open("cart", None, &data_dir, &[]).await.unwrap();
        sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
            .execute(database.pool())
            .await
            .unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data_dir), 0o700);
        // SQLite gives the write-ahead log the database file's mode.
        for file in ["cart.db", "cart.db-wal"] {
            assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
        }
        // A URL's file, too.
        let own = dir.path().join("own").join("shop.db");
        Database::open(
            "cart",
            Some(&format!("sqlite:{}", own.display())),
            &data_dir,
            &[],
        )
        .await
        .unwrap();
        assert_eq!(mode(&own), 0o600);
        assert_eq!(mode(own.parent().unwrap()), 0o700);
        // Named with its own mode=rwc, and with an escaped space: the file
        // SQLite opens is the one made here.
        let spaced = dir.path().join("own").join("my shop.db");
        let url = format!(
            "sqlite:{}/my%20shop.db?mode=rwc",
            own.parent().unwrap().display()
        );
        Database::open("cart", Some(&url), &data_dir, &[])
            .await
            .unwrap();
        assert_eq!(mode(&spaced), 0o600);
        assert!(!dir.path().join("own").join("my%20shop.db").exists());
    }

    /// The data directory's name is a name, not a URL: `%41` and `?` in
    /// it are those characters, and the database is the file made there.
    #[tokio::test]
    async fn a_data_directory_named_like_a_url_holds_its_database() {
        let dir = crate::testing::TempDir::new("url-like");
        for name in ["100%41", "what?mode=ro", "hash#tag"] {
            let data_dir = dir.path().join(name);
            let database = Database::open("cart", None, &data_dir, &[]).await.unwrap();
            sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
                .execute(database.pool())
                .await
                .unwrap();
            database.pool().close().await;
            let entries: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                std::fs::metadata(data_dir.join("cart.db")).unwrap().len() > 0,
                "{name}: {entries:?}"
            );
        }
        let mut entries: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, ["100%41", "hash#tag", "what?mode=ro"]);
    }

    #[tokio::test]
    async fn modules_sharing_one_database_each_get_their_migrations() {
        let table = |name: &'static str, statement: &'static [&'static str]| {
            [Migration {
                version: 1,
                description: name,
                statements: statement,
            }]
        };
        let first = table(
            "cart things",
            &["CREATE TABLE first_things (id BIGINT PRIMARY KEY)"],
        );
        let second = table(
            "auth things",
            &["CREATE TABLE second_things (id BIGINT PRIMARY KEY)"],
        );
        for backend in crate::testing::backends() {
            let dir = crate::testing::TempDir::new("shared");
            // No `mode`: the file is made all the same (it was not).
            let shared = format!(
                "sqlite:{}",
                dir.path().join("new").join("shop.db").display()
            );
            let url = backend.database_url().await.unwrap_or(shared);
            let a = Database::open("first", Some(&url), dir.path(), &first)
                .await
                .unwrap();
            let b = Database::open("second", Some(&url), dir.path(), &second)
                .await
                .unwrap();
            // Both modules' version 1 ran: both tables exist.
            for (database, insert) in [
                (&a, "INSERT INTO first_things (id) VALUES (1)"),
                (&b, "INSERT INTO second_things (id) VALUES (1)"),
            ] {
                sqlx::query(insert).execute(database.pool()).await.unwrap();
            }
            // Opening again applies nothing twice.
            Database::open("first", Some(&url), dir.path(), &first)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_postgres_url_may_ask_for_tls() {
        for backend in crate::testing::backends() {
            let Some(url) = backend.database_url().await else {
                continue;
            };
            // Built without TLS, sqlx refused `require` ("SQLx was built
            // without TLS support") and took `prefer` as plain TCP.
            let dir = crate::testing::TempDir::new("tls");
            let url = format!("{url}&sslmode=require");
            let database = Database::open("tls", Some(&url), dir.path(), &[])
                .await
                .unwrap();
            let (encrypted,): (bool,) =
                sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(database.pool())
                    .await
                    .unwrap();
            assert!(encrypted, "the connection is not encrypted");
        }
    }

    #[tokio::test]
    async fn a_postgres_session_waits_for_a_lock_or_idles_in_a_transaction_for_a_bounded_time() {
        for backend in crate::testing::backends() {
            let Some(url) = backend.database_url().await else {
                continue;
            };
            let dir = crate::testing::TempDir::new("timeouts");
            let database = Database::open("timeouts", Some(&url), dir.path(), &[])
                .await
                .unwrap();
            // Every connection of the pool, not only the first.
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(database.pool().acquire().await.unwrap());
            }
            for connection in &mut held {
                let (lock,): (String,) = sqlx::query_as("SELECT current_setting('lock_timeout')")
                    .fetch_one(&mut **connection)
                    .await
                    .unwrap();
                let (idle,): (String,) =
                    sqlx::query_as("SELECT current_setting('idle_in_transaction_session_timeout')")
                        .fetch_one(&mut **connection)
                        .await
                        .unwrap();
                assert_eq!((lock.as_str(), idle.as_str()), ("30s", "1min"));
            }
        }
    }
}
