//! `timedb api-key create|list|revoke|delete` — Tiled-style key management, run by the
//! operator directly against the database.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use timedb::Store;
use timedb::model::time::{format_timestamp, now};
use timedb::model::{KeyId, KeyRecord, RateLimit, Scopes, TenantScope};
use timedb::store::{self, Dsn};

use super::keys::{hasher, key_format, parse_duration, require_users_tables};
use super::tables::confirm;
use super::users::{print_key_panel, resolve_user, tenant_arg};
use crate::auth::mint;

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for a user and print it (shown once).
    Create(CreateArgs),
    /// List keys (live ones unless --include-revoked).
    List(ListArgs),
    /// Revoke a key: it stops working at once and stays listed for audit.
    Revoke(TargetArgs),
    /// Delete a key for good.
    Delete(TargetArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub email: String,
    /// Needed when the email exists in more than one tenant.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Lifetime: seconds, or with a unit (10m, 12h, 3d).
    #[arg(long)]
    pub expires_in: Option<String>,
    /// Comma-separated or repeated: read, write, admin. Default: the user's role.
    #[arg(long)]
    pub scopes: Vec<String>,
    #[arg(long)]
    pub note: Option<String>,
    /// e.g. 100/minute (windows: second, minute, hour, day).
    #[arg(long)]
    pub rate_limit: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub tenant_id: Option<String>,
    #[arg(long)]
    pub include_revoked: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The key id (8 characters) or the full key.
    pub key: String,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
}

fn msg(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(e.to_string())
}

/// A key id from either a bare id or a full key (whose checksum is checked first).
pub fn key_id_of(text: &str) -> anyhow::Result<KeyId> {
    key_format()?.key_id_of(text).map_err(|e| anyhow::anyhow!("not a key id or a valid API key: {e}"))
}

fn json_row(k: &KeyRecord) -> serde_json::Value {
    serde_json::json!({
        "key_id": k.key_id.as_str(),
        "email": k.email.as_str(),
        "tenant_id": k.tenant.to_string(),
        "note": k.note,
        "scopes": k.scopes.names(),
        "created_at": format_timestamp(k.created_at),
        "expires_at": k.expires_at.map(format_timestamp),
        "last_used_at": k.last_used_at.map(format_timestamp),
        "use_count": k.use_count,
        "rate_limit": k.rate_limit.map(RateLimit::to_text),
        "status": k.status(now()).as_str(),
    })
}

fn short(ts: Option<timedb::model::Timestamp>) -> String {
    ts.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into())
}

async fn find_key(store: &dyn Store, text: &str) -> anyhow::Result<KeyRecord> {
    let key_id = key_id_of(text)?;
    match store.lookup_key(&key_id).await? {
        Some(found) => Ok(found.record),
        None => bail!("no key with id {key_id}"),
    }
}

pub async fn run(dsn: &Dsn, command: ApiKeyCommand) -> anyhow::Result<()> {
    let store = store::open(dsn).await?;
    require_users_tables(store.as_ref()).await?;
    match command {
        ApiKeyCommand::Create(args) => {
            let user = resolve_user(store.as_ref(), &args.email, args.tenant_id.as_deref()).await?;
            let role_scopes = user.role.scopes();
            let scopes = if args.scopes.is_empty() {
                role_scopes
            } else {
                let asked = Scopes::parse("--scopes", &args.scopes).map_err(msg)?;
                if !role_scopes.contains(asked) {
                    bail!(
                        "--scopes {asked} exceeds what {} may do as {} ({role_scopes}); a key can only narrow its user's role",
                        user.email,
                        user.role
                    );
                }
                asked
            };
            let expires_at = match &args.expires_in {
                Some(d) => {
                    let secs = parse_duration(d)?;
                    Some(now() + chrono::Duration::seconds(i64::try_from(secs).context("--expires-in is too long")?))
                }
                None => None,
            };
            let rate_limit =
                args.rate_limit.as_deref().map(|r| RateLimit::parse("--rate-limit", r)).transpose().map_err(msg)?;
            let note = args.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            let hasher = hasher(store.as_ref()).await?;
            let (key, new) = mint(&key_format()?, &hasher, scopes, note, expires_at, rate_limit);
            let record = store.create_key(user.tenant, user.email.clone(), new, Some("cli".into())).await?;
            print_key_panel("API key created.", &user, &key);
            println!("  Key ID:  {}", record.key_id);
            println!("  Scopes:  {}", record.scopes);
            if let Some(at) = record.expires_at {
                println!("  Expires: {}", format_timestamp(at));
            }
        }
        ApiKeyCommand::List(args) => {
            let scope = match &args.tenant_id {
                Some(t) => TenantScope::One(tenant_arg(t)?),
                None => TenantScope::All,
            };
            let email =
                args.email.as_deref().map(|e| timedb::model::Email::parse("--email", e)).transpose().map_err(msg)?;
            let keys = store.list_keys(scope, email, args.include_revoked).await?;
            if args.json {
                let rows: Vec<_> = keys.iter().map(json_row).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("API keys ({})", keys.len());
                println!(
                    "{:<8}  {:<28} {:<16} {:<16} {:<16} {:<16} {:>6}  {:<7}  Note",
                    "Key ID", "Email", "Scopes", "Created", "Expires", "Last used", "Uses", "Status"
                );
                let at = now();
                for k in &keys {
                    println!(
                        "{:<8}  {:<28} {:<16} {:<16} {:<16} {:<16} {:>6}  {:<7}  {}",
                        k.key_id,
                        k.email,
                        k.scopes,
                        short(Some(k.created_at)),
                        short(k.expires_at),
                        short(k.last_used_at),
                        k.use_count,
                        k.status(at).as_str(),
                        k.note.as_deref().unwrap_or("")
                    );
                }
            }
        }
        ApiKeyCommand::Revoke(args) => {
            let record = find_key(store.as_ref(), &args.key).await?;
            if record.revoked_at.is_some() {
                println!("Key {} of {} was already revoked.", record.key_id, record.email);
                return Ok(());
            }
            store.revoke_key(record.tenant, record.key_id.clone(), Some("cli".into())).await?;
            println!("✓ Key {} of {} revoked; it no longer works.", record.key_id, record.email);
        }
        ApiKeyCommand::Delete(args) => {
            let record = find_key(store.as_ref(), &args.key).await?;
            if !args.yes && !confirm(&format!("Delete key {} of {} for good?", record.key_id, record.email))? {
                println!("Aborted; nothing changed.");
                return Ok(());
            }
            store.delete_key(record.tenant, record.key_id.clone(), Some("cli".into())).await?;
            println!("✓ Key {} of {} deleted.", record.key_id, record.email);
        }
    }
    Ok(())
}
