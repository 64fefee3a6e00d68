//! What the fuzz targets share: an in-process server to send upload bodies to, and
//! structured uploads built from the fuzzer's bytes. The model of uploads and of the key
//! format ([`uploads`], [`key_model`]) is shared with the proptest suite
//! (`crates/timedb-server/tests/decode_props.rs`), which includes those files by path.
//!
//! The upload decoders live in private modules of the server's `http` layer, so the
//! targets reach them the way a client does: a request through the real router
//! (content-type dispatch → JSON extractor or CSV/Arrow decoder → `NewRun` → store), sent
//! in-process with `tower::ServiceExt::oneshot`, without a socket. The store is SQLite in
//! a temporary directory, with authentication off.

pub mod key_model;
pub mod uploads;

pub use uploads::{Answer, BULK_QUERY};

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use timedb::store::{Dsn, open};
use timedb_server::auth::{AuthConfig, Verifier};
use timedb_server::http::{HttpConfig, router};
use tokio::runtime::Runtime;
use tower::ServiceExt;
use uploads::{Row, Spelling, Upload};

/// The server every input of one fuzzing process is sent to.
pub struct App {
    runtime: Runtime,
    router: Router,
}

/// The process's server, started on first use.
pub fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

/// Remove the databases of fuzzing processes that have exited (libFuzzer leaves through
/// `exit`, so no destructor ever removes a process's own).
fn remove_stale_databases(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("timedb-fuzz-")) else { continue };
        let pid = pid.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl App {
    fn start() -> Self {
        // libfuzzer-sys aborts on every panic, even one the server catches. arrow-ipc
        // panics on some inconsistent metadata and the Arrow decoder turns that into a
        // 400 (bulk.rs), so those panics are let through quietly; any other panic still
        // aborts here, and a panic the server turns into a 500 fails `Answer::check`.
        let abort_on_panic = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_arrow = info.location().is_some_and(|l| l.file().contains("/arrow-"));
            if !in_arrow {
                abort_on_panic(info);
            }
        }));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
        let parent = std::env::temp_dir();
        remove_stale_databases(&parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("timedb-fuzz-{}-", std::process::id()))
            .tempdir_in(&parent)
            .expect("a temporary directory")
            .keep();
        let router = runtime.block_on(async {
            let store = open(&Dsn::Sqlite(dir.join("fuzz.sqlite3"))).await.expect("open SQLite");
            store.create_schema(false).await.expect("create the schema");
            let verifier = Verifier::new(store.clone(), AuthConfig::default(), None).await.expect("a verifier");
            router(store, Arc::clone(&verifier), &HttpConfig::default())
        });
        Self { runtime, router }
    }

    /// `POST path` with `body` as `content_type`; the answer, checked by [`Answer::check`].
    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let request = Request::post(path).header("content-type", content_type).body(Body::from(body)).unwrap();
        let answer = self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.expect("the router is infallible");
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a readable body");
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("status {status}: the answer is not JSON ({e}): {bytes:?}"));
            Answer { status, body }
        });
        answer.check();
        answer
    }
}

/// An upload built from the fuzzer's bytes.
pub fn arbitrary_upload(u: &mut Unstructured<'_>) -> arbitrary::Result<Upload> {
    let rows = u.arbitrary_iter()?.collect::<arbitrary::Result<Vec<(u8, u16, Option<u8>, Option<f64>)>>>()?;
    let spelling = Spelling {
        offset_minutes: u.arbitrary()?,
        zulu: u.arbitrary()?,
        space: u.arbitrary()?,
        unit: u.arbitrary()?,
        zone: u.arbitrary()?,
        key_type: u.arbitrary()?,
    };
    Ok(Upload {
        rows: rows.into_iter().map(|(key, second, end, value)| Row { key, second, end, value }).collect(),
        spelling,
        batch: u.arbitrary()?,
    })
}
