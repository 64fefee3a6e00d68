//! The OpenAPI document, assembled by utoipa from the handlers' annotations so it cannot
//! drift from the code.

use std::sync::OnceLock;

use utoipa::OpenApi;

use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{account, error, meta, runs, series, upload, users, values};

/// Declares how keys are presented (`X-API-Key`, or `Authorization: Bearer`).
struct KeySchemes;

impl Modify for KeySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TimeDB API",
        description = "Time series that get revised: forecasts re-issued for the same hours, corrections with history, and as-of reads for backtests."
    ),
    paths(
        meta::root,
        meta::healthz,
        meta::readyz,
        meta::metrics,
        values::get_values,
        values::put_values,
        upload::upload,
        upload::create_run,
        series::create_series,
        series::list_series,
        series::get_series,
        series::list_timeseries,
        runs::list_runs,
        runs::get_run,
        account::whoami,
        account::create_key,
        account::list_keys,
        account::revoke_key,
        users::list_users,
        users::create_user,
        users::deactivate,
        users::activate,
        users::regenerate_key,
    ),
    modifiers(&KeySchemes),
    security(("api_key" = []), ("bearer" = [])),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "values", description = "Reading and correcting values"),
        (name = "runs", description = "Writing and listing runs"),
        (name = "series", description = "Series definitions"),
        (name = "keys", description = "The caller's identity and API keys"),
        (name = "users", description = "Tenant administration (admin scope)"),
        (name = "service", description = "Service information and health"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"))
}
