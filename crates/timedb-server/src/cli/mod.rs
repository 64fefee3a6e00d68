//! The `timedb` command line: one module per command group (as mini-redis's `cmd/`).
//!
//! Operator commands (`create tables`, `delete tables`) talk to the database directly;
//! `timedb api` starts the HTTP server. Every command finds its database the same way
//! ([`dsn::resolve`]).

mod api;
mod api_key;
mod dsn;
mod keys;
mod tables;
mod users;

use clap::{Parser, Subcommand};

pub use dsn::resolve as resolve_dsn;

/// timedb — a time-series database for data that gets revised.
#[derive(Debug, Parser)]
#[command(name = "timedb", version, about, long_about = None)]
pub struct Cli {
    /// Database to use: sqlite:///abs/path, sqlite://relative/path or postgresql://…
    /// [default: $TIMEDB_DSN, else $DATABASE_URL, else .env, else ./timedb.sqlite3]
    #[arg(long, short = 'd', global = true)]
    pub dsn: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API server.
    Api(api::ApiArgs),
    /// Create timedb's tables.
    Create {
        #[command(subcommand)]
        what: tables::CreateWhat,
    },
    /// Delete timedb's tables and all their data.
    Delete {
        #[command(subcommand)]
        what: tables::DeleteWhat,
    },
    /// Manage users and their first keys (the upstream commands).
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Manage API keys: create, list, revoke, delete.
    #[command(name = "api-key")]
    ApiKey {
        #[command(subcommand)]
        command: api_key::ApiKeyCommand,
    },
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let dsn = dsn::resolve(cli.dsn.as_deref())?;
    match cli.command {
        Command::Api(args) => api::run(&dsn, args).await,
        Command::Create { what } => tables::create(&dsn, what).await,
        Command::Delete { what } => tables::delete(&dsn, what).await,
        Command::Users { command } => users::run(&dsn, command).await,
        Command::ApiKey { command } => api_key::run(&dsn, command).await,
    }
}
