//! The upstream notebook "Multi-tenant Authentication with API Keys" (seed 000) end to
//! end, over HTTP with this client: two tenants, a user in each, uploads, tenant
//! isolation, deactivation and key regeneration.
//!
//! The notebook creates users through the database; here each tenant's admin does it
//! through `POST /users`. An admin only manages their own tenant, so the example needs
//! an admin key for each of two tenants:
//!
//! ```text
//! timedb api                                   # first run prints API Key: <admin of the default tenant>
//! timedb users create --tenant-id "$(uuidgen)" --email admin@tenant-b.com --role admin
//! TIMEDB_URL=http://127.0.0.1:8000 TIMEDB_API_KEY=<first key> TIMEDB_API_KEY_B=<second key> \
//!     cargo run -p timedb-client --example seed_000
//! ```
//!
//! It exits non-zero at the first expectation that does not hold.

use chrono::{Duration, TimeZone, Utc};
use timedb_client::{Client, Error, NewUser, ReadQuery, Upload, ValueRow};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn check(ok: bool, what: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(format!("expectation failed: {what}").into()) }
}

/// The status of a call: 200 on success, else the server's status.
fn status<T>(r: &std::result::Result<T, Error>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e.status().unwrap_or(0),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // Part 1–2: the two tenants' admins, and a user in each tenant.
    let admin_a = Client::from_env()?;
    let Ok(key_b) = std::env::var("TIMEDB_API_KEY_B") else {
        return Err("set TIMEDB_API_KEY_B to an admin key of a second tenant: \
                    timedb users create --tenant-id \"$(uuidgen)\" --email admin@tenant-b.com --role admin"
            .into());
    };
    let admin_b = admin_a.clone().with_api_key(key_b);
    let (tenant_a, tenant_b) = (admin_a.whoami().await?.tenant_id, admin_b.whoami().await?.tenant_id);
    println!("Tenant A ID: {tenant_a}\nTenant B ID: {tenant_b}");
    check(tenant_a != tenant_b, "the two admin keys belong to different tenants")?;

    // Unique emails so the example can run again on the same database.
    let run = Utc::now().timestamp_millis();
    let (alice_email, bob_email) = (format!("alice+{run}@tenant-a.com"), format!("bob+{run}@tenant-b.com"));
    let alice = admin_a.create_user(&NewUser { email: alice_email.clone(), role: None }).await?;
    let bob = admin_b.create_user(&NewUser { email: bob_email.clone(), role: None }).await?;
    for u in [&alice, &bob] {
        println!(
            "Created {}: user {} in tenant {} (active: {}), key id {}",
            u.user.email, u.user.user_id, u.user.tenant_id, u.user.is_active, u.key_id
        );
    }
    let user_a = admin_a.clone().with_api_key(&alice.api_key);
    let mut user_b = admin_a.clone().with_api_key(&bob.api_key);

    // Part 3: the API is up.
    let health = user_a.healthz().await?;
    println!("API health: {}", health.status);

    // Part 4: authentication is enforced.
    let anonymous = Client::new(admin_a.base_url().as_str())?;
    let no_key = anonymous.read(&ReadQuery::default()).await;
    println!("Without a key: {}", no_key.as_ref().map(|_| "200".to_owned()).unwrap_or_else(|e| e.to_string()));
    check(no_key.as_ref().err().and_then(Error::code) == Some("MISSING_KEY"), "no key → 401 MISSING_KEY")?;
    let bad_key = anonymous.clone().with_api_key("invalid-key-12345").read(&ReadQuery::default()).await;
    check(status(&bad_key) == 401, "an invalid key → 401")?;
    check(status(&user_a.read(&ReadQuery::default()).await) == 200, "a valid key → 200")?;

    // Part 5: each user uploads; each sees only their own tenant's data.
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let rows = |key: &str, start: f64| {
        (0..6).map(|i| ValueRow::new(key, base + Duration::hours(i), Some(start + i as f64))).collect::<Vec<_>>()
    };
    let a = user_a.upload(&Upload::new(rows("temperature_a", 20.0))).await?;
    let b = user_b.upload(&Upload::new(rows("humidity_b", 50.0))).await?;
    println!("User A upload: run {}\nUser B upload: run {}", a.run_id, b.run_id);
    let window =
        ReadQuery { start_valid: Some(base), end_valid: Some(base + Duration::hours(6)), ..ReadQuery::default() };
    let keys_of = |rows: Vec<timedb_client::ValueRecord>| {
        let mut keys: Vec<String> = rows.into_iter().map(|r| r.series_key).collect();
        keys.dedup();
        keys
    };
    let seen_a = keys_of(user_a.read(&window).await?);
    let seen_b = keys_of(user_b.read(&window).await?);
    println!("User A sees series {seen_a:?}\nUser B sees series {seen_b:?}");
    check(!seen_a.contains(&"humidity_b".to_owned()), "tenant A cannot see tenant B's series")?;
    check(!seen_b.contains(&"temperature_a".to_owned()), "tenant B cannot see tenant A's series")?;
    check(seen_b.contains(&"humidity_b".to_owned()), "tenant B sees its own series")?;
    let foreign = user_b.get_series(a.series_ids["temperature_a"]).await;
    check(status(&foreign) == 404, "another tenant's series id is 404")?;
    println!("SUCCESS: no overlapping series between tenants");

    // Part 6: deactivation stops the user's keys; activation restores them.
    admin_b.deactivate_user(&bob_email).await?;
    let refused = user_b.read(&ReadQuery::default()).await;
    println!(
        "Deactivated user's key: {}",
        refused.as_ref().map(|_| "200".to_owned()).unwrap_or_else(|e| e.to_string())
    );
    check(refused.as_ref().err().and_then(Error::code) == Some("INACTIVE_USER"), "deactivated → 401 INACTIVE_USER")?;
    admin_b.activate_user(&bob_email).await?;
    check(status(&user_b.read(&ReadQuery::default()).await) == 200, "reactivated → 200")?;
    println!("SUCCESS: access restored for User B");

    // Part 7: regenerate B's key; the old one stops working, the new one works.
    let fresh = admin_b.regenerate_key(&bob_email).await?;
    println!("New key id for {bob_email}: {}", fresh.key_id);
    let old = user_b.read(&ReadQuery::default()).await;
    check(status(&old) == 401, "the old key → 401 after regeneration")?;
    user_b = user_b.with_api_key(&fresh.api_key);
    check(status(&user_b.read(&ReadQuery::default()).await) == 200, "the new key → 200")?;

    let users_a = admin_a.list_users(false).await?;
    println!("Users in tenant A ({tenant_a}):");
    for u in &users_a {
        println!("  {} - active: {}", u.email, u.is_active);
    }
    check(users_a.iter().any(|u| u.email == alice_email), "alice is listed in tenant A")?;
    check(users_a.iter().all(|u| u.tenant_id == tenant_a), "tenant A's listing holds only tenant A")?;
    println!("Seed 000 reproduced end to end.");
    Ok(())
}
