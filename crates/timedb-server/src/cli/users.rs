//! `timedb users create|list|deactivate|activate|regenerate-key` — the upstream user
//! commands, run by the operator directly against the database.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use timedb::model::{Email, Role, TenantScope, User};
use timedb::store::{self, Dsn};
use timedb::{Store, TenantId};

use super::keys::{hasher, key_format, require_users_tables};
use super::tables::confirm;
use crate::auth::{ApiKey, mint};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print their first API key (shown once).
    Create(CreateArgs),
    /// List users (active ones unless --include-inactive).
    List(ListArgs),
    /// Deactivate a user: all their keys stop working.
    Deactivate(EmailArgs),
    /// Activate a user: their keys work again.
    Activate(EmailArgs),
    /// Revoke all of a user's keys and print a new one (shown once).
    RegenerateKey(EmailArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub tenant_id: String,
    #[arg(long)]
    pub email: String,
    /// reader, writer or admin.
    #[arg(long, default_value = "writer")]
    pub role: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub tenant_id: Option<String>,
    #[arg(long)]
    pub include_inactive: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmailArgs {
    #[arg(long)]
    pub email: String,
    /// Needed when the email exists in more than one tenant.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
}

pub fn tenant_arg(text: &str) -> anyhow::Result<TenantId> {
    TenantId::parse("--tenant-id", text).map_err(|e| anyhow::anyhow!(e.to_string()))
}

/// The one user an email (and optional tenant) names; ambiguity is an error.
pub async fn resolve_user(store: &dyn Store, email: &str, tenant: Option<&str>) -> anyhow::Result<User> {
    let email = Email::parse("--email", email).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let scope = match tenant {
        Some(t) => TenantScope::One(tenant_arg(t)?),
        None => TenantScope::All,
    };
    let mut users = store.find_users(scope, Some(email.clone()), true).await?;
    match users.len() {
        0 => bail!("no user with email {email}{}", tenant.map(|t| format!(" in tenant {t}")).unwrap_or_default()),
        1 => Ok(users.remove(0)),
        n => bail!(
            "{email} exists in {n} tenants ({}); pass --tenant-id to choose one",
            users.iter().map(|u| u.tenant.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Print a new key the way the upstream CLI does (parsed by scripts: `API Key: <key>`).
pub fn print_key_panel(title: &str, user: &User, key: &ApiKey) {
    let color = std::io::stdout().is_terminal();
    let (bold, yellow, reset) = if color { ("\x1b[1m", "\x1b[33m", "\x1b[0m") } else { ("", "", "") };
    println!("{bold}{title}{reset}");
    println!("  User ID:   {}", user.user_id);
    println!("  Tenant ID: {}", user.tenant);
    println!("  Email:     {}", user.email);
    println!("  Role:      {}", user.role);
    println!();
    println!("API Key: {}", key.reveal());
    println!();
    println!("{yellow}⚠ Save the API key - it will not be shown again.{reset}");
}

pub async fn run(dsn: &Dsn, command: UsersCommand) -> anyhow::Result<()> {
    let store = store::open(dsn).await?;
    require_users_tables(store.as_ref()).await?;
    match command {
        UsersCommand::Create(args) => {
            let tenant = tenant_arg(&args.tenant_id)?;
            let email = Email::parse("--email", &args.email).map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let role = Role::parse("--role", &args.role).map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let hasher = hasher(store.as_ref()).await?;
            let (key, new) = mint(&key_format()?, &hasher, role.scopes(), None, None, None);
            let (user, _) = store.create_user(tenant, email, role, new, Some("cli".into())).await?;
            print_key_panel("User created successfully!", &user, &key);
        }
        UsersCommand::List(args) => {
            let scope = match &args.tenant_id {
                Some(t) => TenantScope::One(tenant_arg(t)?),
                None => TenantScope::All,
            };
            let users = store.find_users(scope, None, args.include_inactive).await?;
            if args.json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "user_id": u.user_id, "tenant_id": u.tenant.to_string(), "email": u.email.as_str(),
                            "role": u.role.as_str(), "is_active": u.is_active,
                            "created_at": timedb::model::time::format_timestamp(u.created_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("Users ({})", users.len());
                println!("{:<32} {:<36} {:<7} {:<8} User ID", "Email", "Tenant ID", "Role", "Status");
                for u in &users {
                    let status = if u.is_active { "Active" } else { "Inactive" };
                    println!("{:<32} {:<36} {:<7} {:<8} {}", u.email, u.tenant, u.role, status, u.user_id);
                }
            }
        }
        UsersCommand::Deactivate(args) => {
            let user = resolve_user(store.as_ref(), &args.email, args.tenant_id.as_deref()).await?;
            if !args.yes
                && !confirm(&format!(
                    "Deactivate {} (tenant {})? All their keys stop working.",
                    user.email, user.tenant
                ))?
            {
                println!("Aborted; nothing changed.");
                return Ok(());
            }
            store.set_user_active(user.tenant, user.email.clone(), false, Some("cli".into())).await?;
            println!("✓ User {} deactivated; their API keys no longer work.", user.email);
        }
        UsersCommand::Activate(args) => {
            let user = resolve_user(store.as_ref(), &args.email, args.tenant_id.as_deref()).await?;
            store.set_user_active(user.tenant, user.email.clone(), true, Some("cli".into())).await?;
            println!("✓ User {} activated.", user.email);
        }
        UsersCommand::RegenerateKey(args) => {
            let user = resolve_user(store.as_ref(), &args.email, args.tenant_id.as_deref()).await?;
            if !args.yes
                && std::io::stdin().is_terminal()
                && !confirm(&format!("Revoke every key of {} and issue a new one?", user.email))?
            {
                println!("Aborted; nothing changed.");
                return Ok(());
            }
            let hasher = hasher(store.as_ref()).await?;
            let (key, new) = mint(&key_format()?, &hasher, user.role.scopes(), None, None, None);
            store
                .regenerate_key(user.tenant, user.email.clone(), new, Some("cli".into()))
                .await
                .context("regenerating")?;
            print_key_panel("New API key generated; the old keys are revoked.", &user, &key);
        }
    }
    Ok(())
}
