//! The `timedb` binary: apply the config file, parse the command line, set up logging,
//! run the command.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // SAFETY: first thing in the process; no other thread exists yet.
    let config = match unsafe { timedb_server::config::load(&args) } {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = timedb_server::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("TIMEDB_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().flatten_event(true).with_current_span(true).init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(timedb_server::cli::run(cli, &config)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
