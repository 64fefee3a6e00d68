//! `timedb api`: open the store, make sure its schema is usable, and serve HTTP until
//! SIGINT/SIGTERM, then drain in-flight requests.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use clap::Args;
use timedb::model::{Email, RateLimit, Role};
use timedb::store::{self, Dsn, check_version};
use timedb::{Store, StoreError, TenantId};
use tokio::net::TcpListener;

use super::keys::{hasher, key_format};
use super::users::print_key_panel;
use crate::auth::{AuthConfig, Verifier, mint};
use crate::http::{self, HttpConfig};

/// The admin user a fresh database is given on first run.
const FIRST_ADMIN: &str = "admin@localhost";

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to bind.
    #[arg(long, env = "TIMEDB_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to bind (0 picks a free one and prints it).
    #[arg(long, env = "TIMEDB_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Allow serving without authentication on a non-loopback address.
    #[arg(long, env = "TIMEDB_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Largest accepted request body, in MiB.
    #[arg(long, env = "TIMEDB_MAX_BODY_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_body_mb: u64,
    /// Refuse keys passed as `?api_key=` (headers only).
    #[arg(long, env = "TIMEDB_NO_QUERY_KEY")]
    pub no_query_key: bool,
    /// Rate limit for keys that have none of their own, e.g. 600/minute.
    #[arg(long, env = "TIMEDB_DEFAULT_RATE_LIMIT")]
    pub default_rate_limit: Option<String>,
    /// Failed authentications allowed per client address.
    #[arg(long, env = "TIMEDB_FAILED_AUTH_LIMIT", default_value = "60/minute")]
    pub failed_auth_limit: String,
    /// Behind a reverse proxy on this host: count failed authentications per the
    /// `X-Forwarded-For` address the proxy adds (only for connections from loopback).
    #[arg(long, env = "TIMEDB_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Accepted for compatibility with the upstream CLI; a compiled server has nothing to reload.
    #[arg(long, hide = true)]
    pub reload: bool,
}

fn rate(field: &str, text: &str) -> anyhow::Result<RateLimit> {
    RateLimit::parse(field, text).map_err(|e| anyhow::anyhow!(e.to_string()))
}

pub async fn run(dsn: &Dsn, args: ApiArgs) -> anyhow::Result<()> {
    let store = store::open(dsn).await?;
    let status = store.schema_status().await?;
    let first_run = status.version.is_none();
    if first_run {
        // First run on an empty database: create the schema *with* auth, so the service
        // just works and is never open by accident.
        let report = store.create_schema(true).await?;
        eprintln!("Initialised a new timedb database at {dsn} (schema version {}, with users).", report.version);
    }
    check_version(store.schema_status().await?)?;
    let status = store.schema_status().await?;

    let config = AuthConfig {
        format: key_format()?,
        allow_query_key: !args.no_query_key,
        default_rate_limit: args.default_rate_limit.as_deref().map(|r| rate("--default-rate-limit", r)).transpose()?,
        failed_auth_limit: rate("--failed-auth-limit", &args.failed_auth_limit)?,
        trust_forwarded_for: args.trust_forwarded_for,
    };
    let first_key = if first_run { create_first_admin(store.as_ref(), &config).await? } else { None };
    let secret = std::env::var("TIMEDB_SECRET").ok().filter(|s| !s.is_empty());
    let verifier = Verifier::new(store.clone(), config, secret).await?;
    if !status.has_users {
        tracing::warn!(
            "authentication is OFF (this database has no users tables): anyone who can reach this port can \
             read and write all data; run `timedb create tables --with-users` to turn it on"
        );
        if !args.host.is_loopback() && !args.allow_anonymous {
            bail!(
                "refusing to serve without authentication on {} (not a loopback address); \
                 bind 127.0.0.1, run `timedb create tables --with-users`, or pass --allow-anonymous",
                args.host
            );
        }
    }
    verifier.spawn_background();

    let listener = TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .with_context(|| format!("cannot bind {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    if let Some((user, key)) = &first_key {
        print_key_panel("Created the first admin user of this database.", user, key);
        println!("Try it:");
        println!("  curl -H 'X-API-Key: {}' http://{addr}/whoami", key.reveal());
        println!();
    }
    println!(
        "timedb {} serving http://{addr} (store: {dsn}, auth: {})",
        env!("CARGO_PKG_VERSION"),
        if status.has_users { "on" } else { "OFF" }
    );
    println!("Docs: http://{addr}/docs  ·  Stop with Ctrl+C");
    let http_config = HttpConfig { body_limit: (args.max_body_mb as usize) * 1024 * 1024, ..HttpConfig::default() };
    http::serve(listener, store, verifier, &http_config, shutdown_signal()).await?;
    tracing::info!("server stopped");
    Ok(())
}

/// The admin user of a fresh database and its key (printed once by the caller); `None`
/// when another process initialising the same database at the same moment made it first.
async fn create_first_admin(
    store: &dyn Store,
    config: &AuthConfig,
) -> anyhow::Result<Option<(timedb::model::User, crate::auth::ApiKey)>> {
    let hasher = hasher(store).await?;
    let (key, new) =
        mint(&config.format, &hasher, Role::Admin.scopes(), Some("first-run admin key".into()), None, None);
    let email = Email::parse("email", FIRST_ADMIN).expect("a valid email");
    match store.create_user(TenantId::DEFAULT, email, Role::Admin, new, Some("timedb api (first run)".into())).await {
        Ok((user, _)) => Ok(Some((user, key))),
        Err(StoreError::Conflict(_)) => {
            eprintln!("Another process initialised this database at the same time; its admin key is in its output.");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
