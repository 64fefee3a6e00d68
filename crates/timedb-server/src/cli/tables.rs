//! `timedb create tables` and `timedb delete tables`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use clap::{Args, Subcommand};
use timedb::store::{self, Dsn};

#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// Create the schema (idempotent; upgrades an older schema in place).
    Tables(CreateTablesArgs),
}

#[derive(Debug, Args)]
pub struct CreateTablesArgs {
    /// Also create the users and API-key tables (turns authentication on).
    #[arg(long)]
    pub with_users: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Print the statements instead of running them.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum DeleteWhat {
    /// Drop every timedb table, including users and keys. Data is lost.
    Tables(DeleteTablesArgs),
}

#[derive(Debug, Args)]
pub struct DeleteTablesArgs {
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
}

pub async fn create(dsn: &Dsn, what: CreateWhat) -> anyhow::Result<()> {
    let CreateWhat::Tables(args) = what;
    let store = store::open(dsn).await?;
    if args.dry_run {
        println!("-- timedb schema for {dsn} (dry run: nothing executed)");
        for sql in store.schema_ddl(args.with_users) {
            println!("{sql};");
        }
        return Ok(());
    }
    println!("Creating database schema in {dsn}…");
    let report = store.create_schema(args.with_users).await?;
    println!("✓ Base timedb tables created (schema version {})", report.version);
    if args.with_users {
        println!("✓ Users table created");
    }
    if report.created.is_empty() {
        println!("All tables already existed; nothing to do.");
    } else {
        println!("New tables: {}", report.created.join(", "));
    }
    println!("Schema created successfully!");
    Ok(())
}

/// Ask a yes/no question on the terminal; refuse when there is no terminal to ask.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} — refusing without confirmation; pass -y to confirm");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

pub async fn delete(dsn: &Dsn, what: DeleteWhat) -> anyhow::Result<()> {
    let DeleteWhat::Tables(args) = what;
    if !args.yes && !confirm(&format!("Delete all timedb tables and their data in {dsn}?"))? {
        println!("Aborted; nothing deleted.");
        return Ok(());
    }
    let store = store::open(dsn).await?;
    let dropped = store.drop_schema().await?;
    if dropped.is_empty() {
        println!("✓ No timedb tables found; nothing to delete");
    } else {
        println!("✓ All timedb tables deleted ({})", dropped.join(", "));
    }
    Ok(())
}
