//! The `timedb` command line: one module per command group (as mini-redis's `cmd/`).
//!
//! Operator commands (`create tables`, `delete tables`) talk to the database directly;
//! `timedb api` starts the HTTP server. Every command finds its database the same way
//! ([`dsn::resolve`]). Data commands (`upload`, `read`, `series`, `whoami`) are HTTP
//! clients of a running server and never open a database ([`data`]).

mod api;
mod api_key;
mod data;
mod dsn;
mod keys;
mod output;
mod tables;
mod users;

use clap::{CommandFactory, Parser, Subcommand};

pub use dsn::resolve as resolve_dsn;

/// timedb — a time-series database for data that gets revised.
#[derive(Debug, Parser)]
#[command(name = "timedb", version, about, long_about = None)]
pub struct Cli {
    /// Database to use: sqlite:///abs/path, sqlite://relative/path or postgresql://…
    /// [default: $TIMEDB_DSN, else $DATABASE_URL, else .env, else ./timedb.sqlite3]
    #[arg(long, short = 'd', global = true)]
    pub dsn: Option<String>,

    /// A TOML file of settings (see `timedb config show`); flags and environment
    /// variables win over it.
    #[arg(long, global = true, env = "TIMEDB_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Log lines as text or as JSON objects (one per line).
    #[arg(long, global = true, env = "TIMEDB_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

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
    /// Upload a CSV or Arrow file as one run, to a running server.
    Upload(data::UploadArgs),
    /// Read values from a running server (table, CSV, JSON or Arrow).
    Read(data::ReadArgs),
    /// Series of your tenant, from a running server.
    Series {
        #[command(subcommand)]
        command: data::SeriesCommand,
    },
    /// Who the API key belongs to (tenant, user, scopes).
    Whoami(data::WhoamiArgs),
    /// Show the effective configuration (secrets masked) and where each value came from.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script, e.g. `timedb completions bash > /etc/bash_completion.d/timedb`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting, its value and its source (flag/environment, file, default).
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Run a parsed command line.
pub async fn run(cli: Cli, config: &crate::config::Loaded) -> anyhow::Result<()> {
    // Commands that need no database come first, so a bad DSN cannot break them.
    let command = match cli.command {
        Command::Upload(args) => return data::upload(args).await,
        Command::Read(args) => return data::read(args).await,
        Command::Series { command } => return data::series(command).await,
        Command::Whoami(args) => return data::whoami(args).await,
        Command::Config { command: ConfigCommand::Show { json } } => return crate::config::show(config, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "timedb", &mut std::io::stdout());
            return Ok(());
        }
        other => other,
    };
    let dsn = dsn::resolve(cli.dsn.as_deref())?;
    match command {
        Command::Api(args) => api::run(&dsn, args).await,
        Command::Create { what } => tables::create(&dsn, what).await,
        Command::Delete { what } => tables::delete(&dsn, what).await,
        Command::Users { command } => users::run(&dsn, command).await,
        Command::ApiKey { command } => api_key::run(&dsn, command).await,
        Command::Upload(_)
        | Command::Read(_)
        | Command::Series { .. }
        | Command::Whoami(_)
        | Command::Config { .. }
        | Command::Completions { .. } => {
            unreachable!("handled above")
        }
    }
}
