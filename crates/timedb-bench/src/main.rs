//! `timedb-bench`: the project's own benchmark (SPEC §7), timed by the wall clock.
//!
//! [`all`] is the harness of issue 5: it starts the release `timedb api` server as a
//! process of its own per database, on each store, and prints one table of ingest,
//! reads, small authenticated reads and the stores' raw-insert references.
//!
//! The older subcommands run in one process: every measurement runs the real router (`timedb_server::http::serve`) in this process
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

mod all;
mod bodies;
mod load;
mod process;
mod raw;
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
    /// Everything issue 5 asks for, in one table: ingest (JSON, CSV, Arrow) beside a raw
    /// insert, streamed reads with the server's peak RSS, and small reads with auth on
    /// and off — against release `timedb api` processes on SQLite and PostgreSQL.
    All(all::AllArgs),
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
        Command::All(args) => all::run(args).await,
        Command::Store(args) => store::run(args).await,
        Command::Verifier(args) => verifier::run(args).await,
    }
}
