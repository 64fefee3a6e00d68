//! What an operator sees when the PostgreSQL store cannot be used (SPEC §3): an
//! unreachable server, wrong credentials, a missing database or schema, and a schema
//! newer than the binary — each a one-line reason naming what to fix, never a password.

use std::process::Output;

use timedb::testing::{Backend, fresh_database};

mod common;

use common::process::command;

fn timedb(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// A failed command's output (stdout and stderr).
fn failure(args: &[&str]) -> String {
    let out = timedb(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "`timedb {}` should fail: {text}", args.join(" "));
    text
}

/// `postgresql://user@host:port/db` → (authority after the user, e.g. `127.0.0.1:5432`).
fn host_port(dsn: &str) -> String {
    let rest = dsn.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failures_say_what_to_fix() {
    let db = fresh_database(Backend::Postgres).await;
    let server = host_port(&db.dsn_text);

    // Nothing listens on port 1.
    let text = failure(&["create", "tables", "--dsn", "postgresql://timedb:hunter2@127.0.0.1:1/timedb"]);
    assert!(text.contains("not reachable") && text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "a password was echoed: {text}");

    // A role the server does not know.
    let text = failure(&["create", "tables", "--dsn", &format!("postgresql://nobody_here:pw@{server}/postgres")]);
    assert!(text.contains("authentication failed for user 'nobody_here'"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");

    // A database that does not exist.
    let text = failure(&["create", "tables", "--dsn", &format!("postgresql://timedb@{server}/no_such_db")]);
    assert!(text.contains("database 'no_such_db' does not exist"), "{text}");

    // An empty database: store calls name the command that fixes it.
    let err = db.store.list_series(timedb::TenantId::DEFAULT, Default::default()).await.unwrap_err();
    assert!(err.to_string().contains("run `timedb create tables`"), "{err}");
    let text = failure(&["users", "list", "--dsn", &db.dsn_text]);
    assert!(text.contains("timedb create tables --with-users"), "{text}");

    // A schema newer than this binary.
    db.store.create_schema(false).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&db.dsn_text, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.execute("UPDATE timedb_meta SET value = '99' WHERE key = 'schema_version'", &[]).await.unwrap();
    let text = failure(&["api", "--dsn", &db.dsn_text, "--port", "0"]);
    assert!(text.contains("newer than this timedb"), "{text}");
}
