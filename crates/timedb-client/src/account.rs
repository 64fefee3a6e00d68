//! Identity and administration endpoints: whoami, self-service API keys, tenant users
//! (admin scope), and the public health check.

use reqwest::Method;

use crate::model::*;
use crate::{Client, Error};

impl Client {
    /// The caller's identity (`GET /whoami`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), timedb_client::Error> {
    /// let me = timedb_client::Client::from_env()?.whoami().await?;
    /// println!("{} ({}) in tenant {}, scopes {:?}", me.email, me.role, me.tenant_id, me.scopes);
    /// # Ok(()) }
    /// ```
    pub async fn whoami(&self) -> Result<WhoAmI, Error> {
        self.get(&["whoami"], &[]).await
    }

    /// Create an API key (`POST /api-keys`); the answer is the only time the key is shown.
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use timedb_client::NewKey;
    /// let key = client
    ///     .create_api_key(&NewKey {
    ///         note: Some("dashboard".into()),
    ///         scopes: Some(vec!["read".into()]),
    ///         expires_in: Some(3600),
    ///         ..NewKey::default()
    ///     })
    ///     .await?;
    /// let dashboard = client.clone().with_api_key(key.key);
    /// # Ok(()) }
    /// ```
    pub async fn create_api_key(&self, key: &NewKey) -> Result<CreatedKey, Error> {
        self.call(Method::POST, &["api-keys"], Some(key)).await
    }

    /// The caller's keys (`GET /api-keys`); an admin may name another user's `email`.
    pub async fn list_api_keys(&self, email: Option<&str>, include_revoked: bool) -> Result<Vec<KeyInfo>, Error> {
        let mut query = Vec::new();
        if let Some(e) = email {
            query.push(("email", e.to_owned()));
        }
        if include_revoked {
            query.push(("include_revoked", "true".to_owned()));
        }
        self.get(&["api-keys"], &query).await
    }

    /// Revoke a key by its key id or the whole key (`DELETE /api-keys/{key}`).
    pub async fn revoke_api_key(&self, key: &str) -> Result<KeyInfo, Error> {
        self.call::<(), _>(Method::DELETE, &["api-keys", key], None).await
    }

    /// The users of the caller's tenant (`GET /users`, admin).
    pub async fn list_users(&self, include_inactive: bool) -> Result<Vec<User>, Error> {
        let query = if include_inactive { vec![("include_inactive", "true".to_owned())] } else { vec![] };
        self.get(&["users"], &query).await
    }

    /// Create a user in the caller's tenant with a first key (`POST /users`, admin).
    ///
    /// ```no_run
    /// # async fn demo(admin: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use timedb_client::NewUser;
    /// let alice = admin.create_user(&NewUser { email: "alice@example.com".into(), role: Some("writer".into()) }).await?;
    /// let as_alice = admin.clone().with_api_key(alice.api_key);
    /// assert_eq!(as_alice.whoami().await?.email, "alice@example.com");
    /// # Ok(()) }
    /// ```
    pub async fn create_user(&self, user: &NewUser) -> Result<UserWithKey, Error> {
        self.call(Method::POST, &["users"], Some(user)).await
    }

    /// Deactivate a user: all their keys stop working (`POST /users/{email}/deactivate`).
    pub async fn deactivate_user(&self, email: &str) -> Result<User, Error> {
        self.call::<(), _>(Method::POST, &["users", email, "deactivate"], None).await
    }

    /// Activate a user again (`POST /users/{email}/activate`).
    pub async fn activate_user(&self, email: &str) -> Result<User, Error> {
        self.call::<(), _>(Method::POST, &["users", email, "activate"], None).await
    }

    /// Revoke a user's keys and issue a new one (`POST /users/{email}/regenerate-key`).
    pub async fn regenerate_key(&self, email: &str) -> Result<UserWithKey, Error> {
        self.call::<(), _>(Method::POST, &["users", email, "regenerate-key"], None).await
    }

    /// Liveness (`GET /healthz`, public).
    pub async fn healthz(&self) -> Result<Health, Error> {
        self.get(&["healthz"], &[]).await
    }
}
