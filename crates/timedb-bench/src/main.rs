//! `timedb-bench`: the project's own benchmark (SPEC §7), timed by the wall clock.
//!
//! Every measurement runs the real router (`timedb_server::http::serve`) in this process
//! on 127.0.0.1 port 0 against a real, freshly created store — a SQLite file in a
//! temporary directory and, when a PostgreSQL server is named, a database of its own on
//! that server — and talks to it over HTTP with reqwest, as a client would. Load
//! generator and server share the machine's cores, so the numbers are a floor for what a
//! server on its own machine does.
//!
//! [`store`] measures ingest and streamed reads (HTTP beside the store API alone);
//! [`verifier`] measures API-key verification in-process and what authentication costs
//! an HTTP request. [`target`] makes the fresh databases and servers both use, and
//! [`report`] prints the one table each subcommand ends with.

mod load;
mod report;
mod store;
mod target;
mod verifier;

use clap::{Parser, Subcommand};

/// Measure timedb on this machine: real server, real stores, wall-clock time.
#[derive(Parser)]
#[command(name = "timedb-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest (POST /upload, JSON) and streamed reads (GET /values, flat), beside the
    /// same work through the store API alone.
    Store(store::StoreArgs),
    /// API-key verification in-process (cache hit and miss), and authenticated vs
    /// anonymous small reads over HTTP.
    Verifier(verifier::VerifierArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Store(args) => store::run(args).await,
        Command::Verifier(args) => verifier::run(args).await,
    }
}
