//! Data commands over HTTP (`timedb upload`, `timedb read`, `timedb series list`,
//! `timedb whoami`): thin shells over [`timedb_client`], for shell scripts and humans.
//!
//! Unlike the operator commands these never open a database: they talk to a running
//! server named by `--url`/`TIMEDB_URL` with the key in `--api-key`/`TIMEDB_API_KEY`.
//! Large bodies stream: `read` writes the server's CSV/JSON/Arrow bytes as they arrive.
//! CSV files are brought into the server's long shape first (`csv_input`: a renamed key
//! column, or a wide table with one column per series).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt;
use timedb_client::{BulkFormat, Client, ReadFormat, ReadMode, ReadQuery, RunOptions, SeriesFilter, ValueRecord};

use super::output::table;

mod csv_input;

/// Where the server is and who is asking; shared by every data command.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The timedb server.
    #[arg(long, env = "TIMEDB_URL", default_value = timedb_client::DEFAULT_URL)]
    pub url: String,
    /// The API key to present (X-API-Key).
    #[arg(long, env = "TIMEDB_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl ServerArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.url).map_err(one_line)?;
        Ok(match self.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) => client.with_api_key(key),
            None => client,
        })
    }
}

/// A client error as one line: the server's `status CODE: detail`, or why it could
/// not be reached (with the innermost cause, e.g. "Connection refused").
fn one_line(e: timedb_client::Error) -> anyhow::Error {
    match e {
        timedb_client::Error::Transport(t) => {
            let mut cause: &dyn std::error::Error = &t;
            while let Some(next) = cause.source() {
                cause = next;
            }
            let url = t.url().map(|u| format!(" at {}", u.origin().ascii_serialization())).unwrap_or_default();
            anyhow::anyhow!("cannot reach the timedb server{url}: {cause} (is it running? see --url / TIMEDB_URL)")
        }
        other => anyhow::anyhow!(other.to_string()),
    }
}

/// An instant on the command line: RFC 3339, or without offset (UTC), or a bare date.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!("'{text}' is not a timestamp (expected RFC 3339, e.g. 2025-01-01T06:00:00Z)"))
}

// ---- upload ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadFormat {
    Csv,
    Arrow,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// A CSV file, long (value_key,valid_time,value[,valid_time_end,series_id,annotation,tags])
    /// or wide (valid_time plus one column per series); an Arrow IPC stream (.arrow); or -
    /// for standard input.
    pub input: String,
    /// Body format [default: arrow for .arrow/.arrows/.ipc files, else csv].
    #[arg(long, value_enum)]
    pub format: Option<UploadFormat>,
    /// The CSV column holding the series key, when it is not value_key or series_key.
    #[arg(long, value_name = "NAME")]
    pub series_key_column: Option<String>,
    /// The CSV is wide: a valid_time column (optionally valid_time_end) and one column per
    /// series, named by its key [default: detected, when the header has valid_time but no
    /// value_key, series_key or value column]. Empty cells are skipped; `null` stores a
    /// missing value.
    #[arg(long)]
    pub wide: bool,
    /// When the values became known (forecast issue time) [default: the run start time].
    #[arg(long, value_parser = parse_time)]
    pub known_time: Option<DateTime<Utc>>,
    /// When the run started [default: now].
    #[arg(long, value_parser = parse_time)]
    pub run_start_time: Option<DateTime<Utc>>,
    #[arg(long, value_parser = parse_time)]
    pub run_finish_time: Option<DateTime<Utc>>,
    /// The workflow this run belongs to [default: api-workflow].
    #[arg(long)]
    pub workflow_id: Option<String>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Bodies at least this large get a progress line (on a terminal).
const PROGRESS_FROM: usize = 8 << 20;

pub async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let format = match args.format {
        Some(UploadFormat::Csv) => BulkFormat::Csv,
        Some(UploadFormat::Arrow) => BulkFormat::Arrow,
        None => {
            let ext = Path::new(&args.input).extension().and_then(|e| e.to_str()).unwrap_or("");
            if ["arrow", "arrows", "ipc"].contains(&ext.to_ascii_lowercase().as_str()) {
                BulkFormat::Arrow
            } else {
                BulkFormat::Csv
            }
        }
    };
    let mut body = if args.input == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input))?
    };
    if format == BulkFormat::Csv {
        match csv_input::detect(&body, args.wide, args.series_key_column.as_deref())? {
            csv_input::Shape::Wide => body = csv_input::wide_to_long(&body)?.0,
            csv_input::Shape::Long => {
                if let Some(column) = &args.series_key_column {
                    body = csv_input::rename_column(body, column, "value_key")?;
                }
            }
        }
    } else if args.series_key_column.is_some() || args.wide {
        bail!("--series-key-column and --wide apply to CSV input only");
    }
    let run = RunOptions {
        workflow_id: args.workflow_id,
        run_start_time: args.run_start_time,
        run_finish_time: args.run_finish_time,
        known_time: args.known_time,
    };
    let show_progress = body.len() >= PROGRESS_FROM && std::io::stderr().is_terminal();
    let progress: Option<timedb_client::Progress> = show_progress.then(|| {
        Arc::new(|sent: u64, total: u64| {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            eprint!(
                "\ruploading {:.1} / {:.1} MiB ({:.0}%)",
                mib(sent),
                mib(total),
                100.0 * sent as f64 / total as f64
            );
            if sent == total {
                eprintln!(" — waiting for the server");
            }
        }) as timedb_client::Progress
    });
    let receipt = client.upload_bulk_with_progress(format, body.into(), &run, progress).await.map_err(one_line)?;
    if args.json {
        let series: serde_json::Map<_, _> =
            receipt.series_ids.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
        let answer = serde_json::json!({
            "run_id": receipt.run_id,
            "message": receipt.message,
            "series_ids": series,
            "values_written": receipt.values_written,
            "known_time": receipt.known_time,
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let values = receipt.values_written.map(|n| format!("{n} values")).unwrap_or_else(|| "values".into());
        println!("✓ Uploaded {values} in {} series as run {}", receipt.series_ids.len(), receipt.run_id);
    }
    Ok(())
}

// ---- read -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadOutput {
    Table,
    Csv,
    Json,
    Arrow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Flat,
    Overlapping,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Inclusive lower bound on valid_time.
    #[arg(long, value_parser = parse_time)]
    pub start_valid: Option<DateTime<Utc>>,
    /// Exclusive upper bound on valid_time.
    #[arg(long, value_parser = parse_time)]
    pub end_valid: Option<DateTime<Utc>>,
    /// Inclusive lower bound on the run's known_time.
    #[arg(long, value_parser = parse_time)]
    pub start_known: Option<DateTime<Utc>>,
    /// Exclusive upper bound on known_time: what was known as of this instant.
    #[arg(long, value_parser = parse_time)]
    pub end_known: Option<DateTime<Utc>>,
    /// flat: the latest known value per series and time; overlapping: every run's.
    #[arg(long, value_enum, default_value = "flat")]
    pub mode: Mode,
    /// Include superseded versions (correction history).
    #[arg(long)]
    pub all_versions: bool,
    /// Only this series (repeatable).
    #[arg(long = "series-key", value_name = "KEY")]
    pub series_keys: Vec<String>,
    /// Only this series id (repeatable).
    #[arg(long = "series-id", value_name = "UUID")]
    pub series_ids: Vec<uuid::Uuid>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReadOutput,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn read(args: ReadArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let query = ReadQuery {
        start_valid: args.start_valid,
        end_valid: args.end_valid,
        start_known: args.start_known,
        end_known: args.end_known,
        mode: match args.mode {
            Mode::Flat => ReadMode::Flat,
            Mode::Overlapping => ReadMode::Overlapping,
        },
        all_versions: args.all_versions,
        series_keys: args.series_keys,
        series_ids: args.series_ids,
        ..ReadQuery::default()
    };
    let format = match args.format {
        ReadOutput::Table => None,
        ReadOutput::Csv => Some(ReadFormat::Csv),
        ReadOutput::Json => Some(ReadFormat::Json),
        ReadOutput::Arrow => Some(ReadFormat::Arrow),
    };
    if format == Some(ReadFormat::Arrow) && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("refusing to write Arrow IPC (binary) to a terminal; use -o FILE or redirect the output");
    }
    let mut sink = Sink::open(args.output.as_deref())?;
    match format {
        None => {
            let rows = client.read(&query).await.map_err(one_line)?;
            write_table(&mut sink.out, &rows, &query)?;
        }
        Some(format) => {
            let mut stream = client.read_stream(&query, format).await.map_err(one_line)?;
            while let Some(chunk) = stream.next().await {
                sink.out.write_all(&chunk.map_err(one_line)?)?;
            }
        }
    }
    sink.finish()
}

/// Standard output, or a file that appears under its name only once it is complete.
struct Sink {
    out: Box<dyn Write>,
    rename: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match path {
            None => Sink { out: Box::new(std::io::BufWriter::new(std::io::stdout().lock())), rename: None },
            Some(path) => {
                let mut part = path.as_os_str().to_owned();
                part.push(".part");
                let part = PathBuf::from(part);
                let file = std::fs::File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
                Sink {
                    out: Box::new(std::io::BufWriter::with_capacity(1 << 20, file)),
                    rename: Some((part, path.to_owned())),
                }
            }
        })
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        if let Some((part, path)) = self.rename.take() {
            std::fs::rename(&part, &path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // A read that failed half-way leaves no half file under the requested name.
        if let Some((part, _)) = self.rename.take() {
            let _ = std::fs::remove_file(part);
        }
    }
}

fn write_table(out: &mut impl Write, rows: &[ValueRecord], query: &ReadQuery) -> anyhow::Result<()> {
    let ts = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let opt = |t: &Option<DateTime<Utc>>| t.as_ref().map(ts).unwrap_or_default();
    let with_end = rows.iter().any(|r| r.valid_time_end.is_some());
    let with_run = query.mode == ReadMode::Overlapping || query.all_versions;
    let mut headers = vec!["valid_time"];
    if with_end {
        headers.push("valid_time_end");
    }
    headers.extend(["series_key", "value", "unit"]);
    if with_run {
        headers.push("known_time");
    }
    if query.all_versions {
        headers.extend(["value_id", "current", "changed_by", "change_time", "annotation"]);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![ts(&r.valid_time)];
            if with_end {
                row.push(opt(&r.valid_time_end));
            }
            row.push(r.series_key.clone());
            row.push(r.value.map(|v| v.to_string()).unwrap_or_else(|| "null".into()));
            row.push(r.series_unit.clone());
            if with_run {
                row.push(opt(&r.known_time));
            }
            if query.all_versions {
                row.push(r.value_id.map(|v| v.to_string()).unwrap_or_default());
                row.push(r.is_current.map(|c| if c { "yes" } else { "no" }).unwrap_or_default().to_owned());
                row.push(r.changed_by.clone().unwrap_or_default());
                row.push(opt(&r.change_time));
                row.push(r.annotation.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    table(out, &headers, &cells)?;
    writeln!(out, "({} {})", rows.len(), if rows.len() == 1 { "row" } else { "rows" })?;
    Ok(())
}

// ---- series, whoami -------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum SeriesCommand {
    /// List the series of your tenant.
    List(SeriesListArgs),
}

#[derive(Debug, Args)]
pub struct SeriesListArgs {
    /// Only this series (repeatable).
    #[arg(long = "series-key", value_name = "KEY")]
    pub series_keys: Vec<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn series(command: SeriesCommand) -> anyhow::Result<()> {
    let SeriesCommand::List(args) = command;
    let client = args.server.client()?;
    let filter = SeriesFilter { series_keys: args.series_keys, ..SeriesFilter::default() };
    let series = client.list_series(&filter).await.map_err(one_line)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<_> = series
            .iter()
            .map(|s| {
                serde_json::json!({
                    "series_id": s.series_id,
                    "series_key": s.series_key,
                    "description": s.description,
                    "unit": s.unit,
                    "labels": s.labels,
                    "created_at": s.created_at,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let cells: Vec<Vec<String>> = series
        .iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                s.series_key.clone(),
                s.unit.clone(),
                s.series_id.to_string(),
                labels.join(","),
                s.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    writeln!(out, "Series ({})", series.len())?;
    table(&mut out, &["series_key", "unit", "series_id", "labels", "description"], &cells)?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn whoami(args: WhoamiArgs) -> anyhow::Result<()> {
    let me = args.server.client()?.whoami().await.map_err(one_line)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&me)?);
    } else {
        println!("Email:     {}", me.email);
        println!("Role:      {}", me.role);
        println!("Tenant ID: {}", me.tenant_id);
        println!("User ID:   {}", me.user_id);
        println!("Key ID:    {}", me.key_id);
        println!("Scopes:    {}", me.scopes.join(","));
        if let Some(at) = me.expires_at {
            println!("Expires:   {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_or_without_offset() {
        assert_eq!(parse_time("2025-01-01T06:00:00+01:00").unwrap().to_rfc3339(), "2025-01-01T05:00:00+00:00");
        assert_eq!(parse_time("2025-01-01 06:00").unwrap().to_rfc3339(), "2025-01-01T06:00:00+00:00");
        assert_eq!(parse_time("2025-01-01").unwrap().to_rfc3339(), "2025-01-01T00:00:00+00:00");
        assert!(parse_time("yesterday").is_err());
    }
}
