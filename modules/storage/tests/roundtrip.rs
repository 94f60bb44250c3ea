//! The storage layer against every backend the environment offers: migrate,
//! write, read back, reopen.

use storage::testing::{TempDir, backends};
use storage::{Database, Migration, StorageError};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "notes",
        statements: &[
            "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, n BIGINT NOT NULL)",
        ],
    },
    Migration {
        version: 2,
        description: "note authors",
        statements: &["ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT ''"],
    },
];

/// The versions of the migrations `db` has applied, in order.
async fn applied(db: &Database) -> Vec<i64> {
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    versions.into_iter().map(|(version,)| version).collect()
}

#[tokio::test]
async fn migrations_apply_once_and_data_survives_reopening() {
    for backend in backends() {
        let dir = TempDir::new("storage");
        let url = backend.database_url().await;
        let db = Database::open("notes", url.as_deref(), dir.path(), MIGRATIONS)
            .await
            .unwrap();
        sqlx::query("INSERT INTO notes (id, body, n, author) VALUES ($1, $2, $3, $4)")
            .bind("a")
            .bind("hello")
            .bind(7_i64)
            .bind("me")
            .execute(db.pool())
            .await
            .unwrap();
        drop(db);

        // Reopened: the migrations do not run again, the row is there.
        let db = Database::open("notes", url.as_deref(), dir.path(), MIGRATIONS)
            .await
            .unwrap();
        let row: (String, i64, String) =
            sqlx::query_as("SELECT body, n, author FROM notes WHERE id = $1")
                .bind("a")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(
            row,
            ("hello".to_owned(), 7, "me".to_owned()),
            "{}",
            backend.name()
        );
        assert_eq!(applied(&db).await, vec![1, 2], "{}", backend.name());
    }
}

#[tokio::test]
async fn a_failing_migration_says_which_and_changes_nothing() {
    const BROKEN: &[Migration] = &[
        Migration {
            version: 1,
            description: "good",
            statements: &["CREATE TABLE good (id TEXT PRIMARY KEY)"],
        },
        Migration {
            version: 2,
            description: "broken",
            statements: &["CREATE TABLE half (id TEXT)", "THIS IS NOT SQL"],
        },
    ];
    for backend in backends() {
        let dir = TempDir::new("storage");
        let url = backend.database_url().await;
        let error = Database::open("broken", url.as_deref(), dir.path(), BROKEN)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StorageError::Migrate { version: 2, description, .. } if description == "broken"),
            "{}: {error}",
            backend.name()
        );
        // Migration 1 stayed; migration 2's first statement was rolled back.
        let db = Database::open("broken", url.as_deref(), dir.path(), &BROKEN[..1])
            .await
            .unwrap();
        assert!(
            sqlx::query("SELECT id FROM good")
                .fetch_all(db.pool())
                .await
                .is_ok()
        );
        assert!(
            sqlx::query("SELECT id FROM half")
                .fetch_all(db.pool())
                .await
                .is_err(),
            "{}",
            backend.name()
        );
    }
}

#[tokio::test]
async fn several_processes_migrating_one_database_at_once_all_start() {
    for backend in backends() {
        let dir = TempDir::new("storage");
        let url = backend.database_url().await;
        // Eight pools at once, as eight nodes starting together on one
        // database would open it.
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let url = url.clone();
            let path = dir.path().to_owned();
            opening.spawn(async move {
                Database::open("notes", url.as_deref(), &path, MIGRATIONS)
                    .await
                    .map(drop)
            });
        }
        while let Some(opened) = opening.join_next().await {
            if let Err(error) = opened.unwrap() {
                panic!("{}: {error}", backend.name());
            }
        }
        let db = Database::open("notes", url.as_deref(), dir.path(), MIGRATIONS)
            .await
            .unwrap();
        assert_eq!(applied(&db).await, vec![1, 2], "{}", backend.name());
    }
}

#[tokio::test]
async fn another_tools_schema_migrations_table_is_named_not_misread() {
    for backend in backends() {
        let dir = TempDir::new("storage");
        // One database for both: a tool's and the shop's.
        let url = match backend.database_url().await {
            Some(url) => url,
            None => format!("sqlite:{}", dir.path().join("shared.db").display()),
        };
        let tool = Database::open("tool", Some(&url), dir.path(), &[])
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, dirty BOOLEAN NOT NULL)",
        )
        .execute(tool.pool())
        .await
        .unwrap();
        drop(tool);

        let error = Database::open("notes", Some(&url), dir.path(), MIGRATIONS)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StorageError::Migrate { detail, .. }
                if detail.contains("is not Boutique's migration ledger")),
            "{backend:?}: {error}"
        );
    }
}
