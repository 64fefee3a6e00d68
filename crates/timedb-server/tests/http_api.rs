//! Black-box tests of the HTTP API: the real router on port 0, a fresh store per test,
//! every case run against every backend.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use timedb::testing::Backend;

use common::{assert_error, spawn_app, spawn_app_with};

fn col<'a>(rows: &'a [Value], name: &str) -> Vec<&'a Value> {
    rows.iter().map(|r| &r[name]).collect()
}

mod cases {
    use super::*;

    pub async fn service_endpoints_are_public_and_self_contained(b: Backend) {
        let app = spawn_app(b).await;
        let (status, root) = app.get_json("/").await;
        assert_eq!(status, 200);
        assert_eq!(root["name"], "TimeDB API");
        assert!(root["version"].is_string());
        assert!(root["endpoints"]["GET /values"].is_string());
        assert_eq!(app.get_json("/healthz").await.1["status"], "ok");
        assert_eq!(app.get_json("/readyz").await.1["status"], "ready");

        let (status, doc) = app.get_json("/openapi.json").await;
        assert_eq!(status, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in
            ["/values", "/upload", "/runs", "/series", "/series/{series_id}", "/list_timeseries", "/runs/{run_id}"]
        {
            assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
        }

        // Swagger UI and ReDoc come from the binary and load nothing from elsewhere.
        let docs = app.get("/docs/").await;
        assert_eq!(docs.status(), 200);
        let html = docs.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        assert!(!html.contains("https://"), "Swagger UI page refers to an outside URL");
        let init = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
        assert!(init.contains("/openapi.json"));
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
        let redoc = app.get("/redoc").await.text().await.unwrap();
        assert!(redoc.contains("/redoc/redoc.standalone.js"));
        assert!(!redoc.contains("https://"), "ReDoc page refers to an outside URL");
        let js = app.get("/redoc/redoc.standalone.js").await;
        assert_eq!(js.status(), 200);
        assert!(js.bytes().await.unwrap().len() > 500_000);
    }

    pub async fn the_readme_tour_works(b: Backend) {
        let app = spawn_app(b).await;
        // Two forecast runs for the same hours, issued six hours apart.
        let first = app
            .upload(
                "2025-01-01T00:00:00Z",
                &[("wind", "2025-01-02T00:00:00Z", 10.0), ("wind", "2025-01-02T01:00:00Z", 11.0)],
            )
            .await;
        assert_eq!(first["message"], "Run created successfully");
        let series_id = first["series_ids"]["wind"].as_str().unwrap().to_owned();
        let second = app
            .upload(
                "2025-01-01T06:00:00Z",
                &[("wind", "2025-01-02T00:00:00Z", 12.0), ("wind", "2025-01-02T01:00:00Z", 13.0)],
            )
            .await;
        assert_eq!(second["series_ids"]["wind"], series_id.as_str(), "same key, same series");

        let flat = app.values("start_valid=2025-01-02T00:00:00Z&end_valid=2025-01-03T00:00:00Z").await;
        assert_eq!(col(&flat, "value"), vec![&json!(12.0), &json!(13.0)]);
        assert_eq!(flat[0]["series_key"], "wind");
        assert_eq!(flat[0]["series_unit"], "dimensionless");
        assert_eq!(flat[0]["series_id"], series_id.as_str());
        assert_eq!(flat[0]["valid_time"], "2025-01-02T00:00:00+00:00");
        assert_eq!(flat[0]["valid_time_end"], Value::Null);
        assert!(flat[0].get("known_time").is_none(), "flat rows carry no known_time");

        let overlapping = app.values("mode=overlapping").await;
        assert_eq!(col(&overlapping, "value"), vec![&json!(10.0), &json!(11.0), &json!(12.0), &json!(13.0)]);
        assert_eq!(overlapping[2]["known_time"], "2025-01-01T06:00:00+00:00");

        let as_of = app.values("end_known=2025-01-01T03:00:00Z").await;
        assert_eq!(col(&as_of, "value"), vec![&json!(10.0), &json!(11.0)]);

        // Correct the latest value at 01:00 and read its history.
        let history = app.values("all_versions=true").await;
        let value_id = history.iter().find(|r| r["value"] == json!(13.0)).unwrap()["value_id"].clone();
        let (status, upd) = app
            .put_json("/values", &json!({"updates": [{"value_id": value_id, "value": 13.5, "annotation": "  checked by ops ", "tags": ["Manual", "manual"]}], "changed_by": "ops"}))
            .await;
        assert_eq!(status, 200, "{upd}");
        assert_eq!(upd["updated"][0]["previous_value_id"], value_id);
        assert_eq!(upd["updated"][0]["annotation"], "checked by ops");
        assert_eq!(upd["updated"][0]["tags"], json!(["manual"]));
        assert_eq!(upd["updated"][0]["changed_by"], "ops");
        assert_eq!(upd["skipped_no_ops"], json!([]));

        let flat = app.values("").await;
        assert_eq!(col(&flat, "value"), vec![&json!(12.0), &json!(13.5)]);
        let history = app.values("all_versions=true&start_valid=2025-01-02T01:00:00Z").await;
        assert_eq!(col(&history, "value"), vec![&json!(13.0), &json!(13.5)]);
        assert_eq!(col(&history, "is_current"), vec![&json!(false), &json!(true)]);
        assert_eq!(history[1]["annotation"], "checked by ops");

        // The same correction again is a no-op.
        let (_, again) = app.put_json("/values", &json!({"updates": [{"value_id": value_id, "value": 13.5}]})).await;
        assert_eq!(again["updated"], json!([]));
        assert_eq!(again["skipped_no_ops"].as_array().unwrap().len(), 1);
    }

    pub async fn csv_reads_by_parameter_or_accept_header(b: Backend) {
        let app = spawn_app(b).await;
        app.upload("2025-01-01T00:00:00Z", &[("a,b \"quoted\"", "2025-01-02T00:00:00Z", 1.5)]).await;
        let r = app.get("/values?format=csv").await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = r.text().await.unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), "valid_time,valid_time_end,series_id,series_key,series_unit,value");
        let row = lines.next().unwrap();
        assert!(row.starts_with("2025-01-02T00:00:00+00:00,,"), "{row}");
        assert!(row.contains(",\"a,b \"\"quoted\"\"\",dimensionless,1.5"), "{row}");
        assert!(lines.next().is_none());
        let by_accept = app.client.get(app.url("/values")).header("accept", "text/csv").send().await.unwrap();
        assert_eq!(by_accept.text().await.unwrap(), text);
        let (status, _) = app.get_json("/values?format=json").await;
        assert_eq!(status, 200);
    }

    pub async fn filters_select_series_and_windows(b: Backend) {
        let app = spawn_app(b).await;
        let (status, created) = app
            .post_json(
                "/series",
                &json!({"name": "north", "unit": "MW", "description": "North farm", "labels": {"site": "n"}}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let north_id = created["series_id"].as_str().unwrap().to_owned();
        app.upload(
            "2025-01-01T00:00:00Z",
            &[
                ("north", "2025-01-02T00:00:00Z", 1.0),
                ("south", "2025-01-02T00:00:00Z", 2.0),
                ("north", "2025-01-02T05:00:00Z", 3.0),
            ],
        )
        .await;
        let rows = app.values(&format!("series_id={north_id}")).await;
        assert_eq!(col(&rows, "value"), vec![&json!(1.0), &json!(3.0)]);
        assert_eq!(rows[0]["series_unit"], "MW");
        let rows = app.values("series_key=south&series_key=north&end_valid=2025-01-02T01:00:00").await;
        assert_eq!(col(&rows, "series_key"), vec![&json!("north"), &json!("south")]);
        let rows = app.values("labels=%7B%22site%22%3A%22n%22%7D").await;
        assert_eq!(rows.len(), 2);
        assert!(app.values("series_key=nothing").await.is_empty());
        // A `+` offset sent unencoded arrives as a space and still parses.
        let rows = app.values("start_valid=2025-01-02T06:00:00+01:00").await;
        assert_eq!(col(&rows, "value"), vec![&json!(3.0)]);

        let (_, listing) = app.get_json("/list_timeseries").await;
        assert_eq!(listing[&north_id]["series_key"], "north");
        assert_eq!(listing[&north_id]["unit"], "MW");
        assert_eq!(listing[&north_id]["description"], "North farm");
        assert_eq!(listing.as_object().unwrap().len(), 2);
        let (_, series) = app.get_json("/series").await;
        assert_eq!(series.as_array().unwrap().len(), 2);
        assert_eq!(series[0]["series_key"], "north");
        assert_eq!(series[0]["labels"], json!({"site": "n"}));
        let (status, one) = app.get_json(&format!("/series/{north_id}")).await;
        assert_eq!(status, 200);
        assert_eq!(one["series_key"], "north");
        // Re-declaring identically is fine; a different unit conflicts.
        let (status, same) = app.post_json("/series", &json!({"name": "north", "unit": "MW"})).await;
        assert_eq!(status, 200);
        assert_eq!(same["series_id"], north_id.as_str());
        assert_error(app.post_json("/series", &json!({"name": "north", "unit": "kW"})).await, 409, "CONFLICT", "MW");
    }

    pub async fn runs_are_listed(b: Backend) {
        let app = spawn_app(b).await;
        let body = json!({
            "workflow_id": "ecmwf", "run_start_time": "2025-01-01T00:00:00Z", "known_time": "2025-01-01T06:00:00Z",
            "run_params": {"members": 51},
            "value_rows": [{"value_key": "w", "valid_time": "2025-01-02T00:00:00Z", "value": 1.0, "valid_time_end": "2025-01-02T01:00:00Z"}]
        });
        let (status, created) = app.post_json("/runs", &body).await;
        assert_eq!(status, 200, "{created}");
        let run_id = created["run_id"].as_str().unwrap();
        let (_, runs) = app.get_json("/runs").await;
        assert_eq!(runs.as_array().unwrap().len(), 1);
        assert_eq!(runs[0]["workflow_id"], "ecmwf");
        let (status, run) = app.get_json(&format!("/runs/{run_id}")).await;
        assert_eq!(status, 200);
        assert_eq!(run["known_time"], "2025-01-01T06:00:00+00:00");
        assert_eq!(run["run_params"], json!({"members": 51}));
        assert_eq!(run["value_count"], 1);
        let (_, none) = app.get_json("/runs?workflow_id=other").await;
        assert_eq!(none, json!([]));
        let rows = app.values("").await;
        assert_eq!(rows[0]["valid_time_end"], "2025-01-02T01:00:00+00:00");
        // Default workflow and known_time.
        let (_, plain) =
            app.post_json("/upload", &json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": []})).await;
        let (_, run) = app.get_json(&format!("/runs/{}", plain["run_id"].as_str().unwrap())).await;
        assert_eq!(run["workflow_id"], "api-workflow");
        assert_eq!(run["value_count"], 0);
    }

    pub async fn errors_follow_the_error_table(b: Backend) {
        let app = spawn_app(b).await;
        let upload = |rows: Value| json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": rows});

        // Query errors.
        assert_error(app.get_json("/values?mode=sideways").await, 422, "INVALID_FIELD", "mode");
        assert_error(app.get_json("/values?series_id=not-a-uuid").await, 422, "INVALID_FIELD", "series_id");
        assert_error(app.get_json("/values?start_valid=yesterday").await, 422, "INVALID_FIELD", "start_valid");
        assert_error(app.get_json("/values?all_versions=maybe").await, 422, "INVALID_FIELD", "all_versions");
        assert_error(app.get_json("/values?format=xml").await, 422, "INVALID_FIELD", "format");
        assert_error(app.get_json("/values?strat_valid=2025-01-01").await, 422, "UNKNOWN_PARAMETER", "strat_valid");
        assert_error(
            app.get_json("/values?start_valid=2025-01-02&end_valid=2025-01-01").await,
            422,
            "INVALID_FIELD",
            "end_valid",
        );
        assert_error(app.get_json("/values?labels=notjson").await, 422, "INVALID_FIELD", "labels");
        assert_error(app.get_json("/runs?limit=0").await, 422, "INVALID_FIELD", "limit");

        // Upload field errors name the field.
        let row = |k: &str| json!({"value_key": k, "valid_time": "2025-01-02T00:00:00Z", "value": 1.0});
        assert_error(
            app.post_json("/upload", &upload(json!([row("")]))).await,
            422,
            "INVALID_FIELD",
            "value_rows[0].value_key",
        );
        assert_error(app.post_json("/upload", &upload(json!([row("  ")]))).await, 422, "INVALID_FIELD", "value_key");
        assert_error(
            app.post_json("/upload", &upload(json!([row(&"k".repeat(300))]))).await,
            422,
            "INVALID_FIELD",
            "256",
        );
        assert_error(
            app.post_json(
                "/upload",
                &upload(json!([{"value_key": "a", "valid_time": "2025-01-02T01:00:00Z", "valid_time_end": "2025-01-02T00:00:00Z", "value": 1}])),
            )
            .await,
            422,
            "INVALID_FIELD",
            "valid_time_end",
        );
        assert_error(
            app.post_json("/upload", &upload(json!([row("a"), row("b"), {"value_key": " a", "valid_time": "2025-01-02T00:00:00+00:00", "value": 2}])))
                .await,
            422,
            "DUPLICATE_ROW",
            "value_rows[2]",
        );
        assert_error(
            app.post_json("/upload", &upload(json!([{"value_key": "a", "valid_time": "2025-01-02", "value": "abc"}])))
                .await,
            422,
            "INVALID_FIELD",
            "value_rows[0].value",
        );
        assert_error(
            app.post_json("/upload", &upload(json!([{"value_key": "a", "valid_time": "2025-01-02"}]))).await,
            422,
            "INVALID_FIELD",
            "value",
        );
        assert_error(
            app.post_json("/upload", &upload(json!([{"value_key": "a", "valid_time": "soon", "value": 1}]))).await,
            422,
            "INVALID_FIELD",
            "value_rows[0].valid_time",
        );
        assert_error(
            app.post_json("/upload", &json!({"value_rows": []})).await,
            422,
            "INVALID_FIELD",
            "run_start_time",
        );
        assert_error(
            app.post_json("/upload", &json!({"run_start_time": "2025-01-01", "value_rows": [], "colour": "red"})).await,
            422,
            "INVALID_FIELD",
            "colour",
        );
        assert_error(
            app.post_json("/upload", &json!({"run_start_time": "2025-01-01", "value_rows": [], "run_params": [1]}))
                .await,
            422,
            "INVALID_FIELD",
            "run_params",
        );
        assert_error(
            app.post_json("/upload", &json!({"run_start_time": "2025-01-01", "value_rows": [], "tenant_id": "nope"}))
                .await,
            422,
            "INVALID_FIELD",
            "tenant_id",
        );
        let unknown_series = uuid::Uuid::new_v4();
        assert_error(
            app.post_json(
                "/upload",
                &upload(
                    json!([{"value_key": "a", "valid_time": "2025-01-02", "value": 1, "series_id": unknown_series}]),
                ),
            )
            .await,
            404,
            "NOT_FOUND",
            &unknown_series.to_string(),
        );

        // Body-level errors.
        assert_error(
            app.send_raw(Method::POST, "/upload", Some("application/json"), b"{\"run_start_time\": ".to_vec()).await,
            400,
            "MALFORMED_JSON",
            "JSON",
        );
        assert_error(
            app.send_raw(Method::POST, "/upload", Some("application/json"), Vec::new()).await,
            400,
            "MALFORMED_JSON",
            "empty",
        );
        assert_error(
            app.send_raw(Method::POST, "/upload", Some("text/plain"), b"{}".to_vec()).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "text/plain",
        );
        assert_error(
            app.send_raw(Method::POST, "/upload", Some("application/json"), b"{\"run_start_time\":\"2025-01-01\",\"value_rows\":[{\"value_key\":\"a\",\"valid_time\":\"2025-01-01\",\"value\":NaN}]}".to_vec()).await,
            400,
            "MALFORMED_JSON",
            "JSON",
        );

        // Updates.
        assert_error(
            app.put_json("/values", &json!({"updates": [{"value_id": 1}]})).await,
            422,
            "INVALID_FIELD",
            "updates[0]",
        );
        assert_error(app.put_json("/values", &json!({"updates": []})).await, 422, "INVALID_FIELD", "updates");
        assert_error(
            app.put_json("/values", &json!({"updates": [{"value_id": 424242, "value": 1}]})).await,
            404,
            "NOT_FOUND",
            "value_id 424242",
        );
        assert_error(
            app.put_json("/values", &json!({"updates": [{"value_id": 1, "run_id": uuid::Uuid::new_v4(), "series_id": uuid::Uuid::new_v4(), "valid_time": "2025-01-01", "value": 1}]})).await,
            422,
            "INVALID_FIELD",
            "not both",
        );
        assert_error(
            app.put_json(
                "/values",
                &json!({"updates": [{"run_id": "x", "series_id": "y", "valid_time": "2025-01-01", "value": 1}]}),
            )
            .await,
            422,
            "INVALID_FIELD",
            "run_id",
        );

        // Series and runs.
        assert_error(app.post_json("/series", &json!({"name": "   "})).await, 422, "INVALID_FIELD", "name");
        assert_error(app.post_json("/series", &json!({"unit": "MW"})).await, 422, "INVALID_FIELD", "name");
        assert_error(app.get_json(&format!("/series/{}", uuid::Uuid::new_v4())).await, 404, "NOT_FOUND", "series");
        assert_error(app.get_json("/series/not-a-uuid").await, 422, "INVALID_FIELD", "series_id");
        assert_error(app.get_json(&format!("/runs/{}", uuid::Uuid::new_v4())).await, 404, "NOT_FOUND", "run");
        assert_error(app.get_json("/runs/123").await, 422, "INVALID_FIELD", "run_id");

        // Routing.
        assert_error(app.get_json("/nope").await, 404, "NOT_FOUND", "endpoint");
        assert_error(
            app.send_raw(Method::DELETE, "/values", None, Vec::new()).await,
            405,
            "METHOD_NOT_ALLOWED",
            "method",
        );

        // Nothing above wrote anything.
        assert!(app.values("").await.is_empty());
        let (_, runs) = app.get_json("/runs").await;
        assert_eq!(runs, json!([]));
    }

    pub async fn oversized_bodies_get_413(b: Backend) {
        // A 100 MB body against the default 64 MiB limit: refused on its declared length,
        // before the body is sent (a raw client, so the early answer is read rather than
        // lost in a write to a connection the server has finished with).
        let app = spawn_app(b).await;
        let addr = app.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            100 * 1024 * 1024
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
        // Read until the JSON answer is complete (the server need not close the socket).
        let mut answer = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !answer.ends_with(b"}") {
            let mut chunk = [0u8; 4096];
            let read = tokio::io::AsyncReadExt::read(&mut stream, &mut chunk);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => panic!("reading the answer: {e}"),
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_error((StatusCode::PAYLOAD_TOO_LARGE, body), 413, "BODY_TOO_LARGE", "larger");
        assert!(app.values("").await.is_empty());
        // A configured smaller limit applies too.
        let small = spawn_app_with(b, timedb_server::http::HttpConfig { body_limit: 1024, ..Default::default() }).await;
        let rows: Vec<Value> = (0..100)
            .map(|i| json!({"value_key": "k", "valid_time": format!("2025-01-01T00:{:02}:00Z", i % 60), "value": i}))
            .collect();
        let big = serde_json::to_vec(&json!({"run_start_time": "2025-01-01", "value_rows": rows})).unwrap();
        assert_error(
            small.send_raw(Method::POST, "/upload", Some("application/json"), big).await,
            413,
            "BODY_TOO_LARGE",
            "larger",
        );
        assert!(small.values("").await.is_empty());
    }

    pub async fn parallel_corrections_of_one_value_all_land(b: Backend) {
        let app = spawn_app(b).await;
        app.upload("2025-01-01T00:00:00Z", &[("w", "2025-01-02T00:00:00Z", 0.0)]).await;
        let value_id = app.values("all_versions=true").await[0]["value_id"].clone();
        const N: usize = 16;
        let mut tasks = Vec::new();
        for i in 0..N {
            let client = app.client.clone();
            let url = app.url("/values");
            let body = json!({"updates": [{"value_id": value_id, "value": i as f64 + 1.0}]});
            tasks.push(tokio::spawn(async move { client.put(url).json(&body).send().await.unwrap().status() }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::OK);
        }
        let history = app.values("all_versions=true").await;
        assert_eq!(history.len(), N + 1);
        assert_eq!(history.iter().filter(|r| r["is_current"] == json!(true)).count(), 1);
        assert_eq!(history.last().unwrap()["is_current"], json!(true));
    }

    pub async fn updates_by_key_and_intervals(b: Backend) {
        let app = spawn_app(b).await;
        let body = json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": [
            {"value_key": "w", "valid_time": "2025-01-02T00:00:00Z", "valid_time_end": "2025-01-02T01:00:00Z", "value": 1.0},
            {"value_key": "w", "valid_time": "2025-01-02T00:00:00Z", "value": null, "annotation": "gap", "tags": ["Raw"]}
        ]});
        let (status, created) = app.post_json("/upload", &body).await;
        assert_eq!(status, 200, "{created}");
        let (run_id, series_id) = (created["run_id"].clone(), created["series_ids"]["w"].clone());
        let (status, upd) = app
            .put_json("/values", &json!({"updates": [{"run_id": run_id, "series_id": series_id, "valid_time": "2025-01-02T00:00:00Z", "valid_time_end": "2025-01-02T01:00:00Z", "value": 2.0}]}))
            .await;
        assert_eq!(status, 200, "{upd}");
        assert_eq!(upd["updated"][0]["valid_time_end"], "2025-01-02T01:00:00+00:00");
        let rows = app.values("all_versions=true").await;
        // The instant sorts before the interval that starts with it; the interval has two versions.
        assert_eq!(col(&rows, "value"), vec![&Value::Null, &json!(1.0), &json!(2.0)]);
        assert_eq!(rows[0]["tags"], json!(["raw"]));
        // Clear the annotation of the instant with null; an absent field stays.
        let (_, upd) = app
            .put_json("/values", &json!({"updates": [{"run_id": run_id, "series_id": series_id, "valid_time": "2025-01-02T00:00:00Z", "annotation": null}]}))
            .await;
        assert_eq!(upd["updated"][0]["annotation"], Value::Null);
        assert_eq!(upd["updated"][0]["tags"], json!(["raw"]));
        // A blank annotation is a clear too, and now a no-op.
        let (_, upd) = app
            .put_json("/values", &json!({"updates": [{"run_id": run_id, "series_id": series_id, "valid_time": "2025-01-02T00:00:00Z", "annotation": "   "}]}))
            .await;
        assert_eq!(upd["skipped_no_ops"].as_array().unwrap().len(), 1);
    }

    pub async fn tenant_id_selects_the_tenant_when_auth_is_off(b: Backend) {
        let app = spawn_app(b).await;
        let tenant = uuid::Uuid::new_v4();
        let body = json!({"tenant_id": tenant, "run_start_time": "2025-01-01", "value_rows": [{"value_key": "t", "valid_time": "2025-01-02", "value": 1}]});
        let (status, created) = app.post_json("/upload", &body).await;
        assert_eq!(status, 200, "{created}");
        assert!(app.values("").await.is_empty(), "the default tenant sees nothing");
        assert_eq!(app.values(&format!("tenant_id={tenant}")).await.len(), 1);
        let sid = created["series_ids"]["t"].as_str().unwrap();
        assert_eq!(app.get_json(&format!("/series/{sid}")).await.0, 404);
        assert_eq!(app.get_json(&format!("/series/{sid}?tenant_id={tenant}")).await.0, 200);
    }

    pub async fn request_ids_are_echoed(b: Backend) {
        let app = spawn_app(b).await;
        let r = app.client.get(app.url("/healthz")).header("x-request-id", "trace-123").send().await.unwrap();
        assert_eq!(r.headers()["x-request-id"], "trace-123");
        let r = app.get("/healthz").await;
        assert_eq!(r.headers()["x-request-id"].to_str().unwrap().len(), 36);
    }

    pub async fn large_reads_stream_completely(b: Backend) {
        let app = spawn_app(b).await;
        let rows: Vec<Value> = (0..20_000)
            .map(|i| json!({"value_key": format!("s{}", i % 4), "valid_time": format!("2025-01-01T{:02}:{:02}:{:02}Z", i / 4 / 3600, (i / 4 / 60) % 60, (i / 4) % 60), "value": i}))
            .collect();
        let (status, created) =
            app.post_json("/upload", &json!({"run_start_time": "2025-01-01", "value_rows": rows})).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["values_written"], 20_000);
        let data = app.values("").await;
        assert_eq!(data.len(), 20_000);
        assert_eq!(data[0]["series_key"], "s0");
        assert_eq!(data[3]["series_key"], "s3");
        let csv = app.get("/values?format=csv").await.text().await.unwrap();
        assert_eq!(csv.lines().count(), 20_001);
    }
}

per_backend!(cases;
    service_endpoints_are_public_and_self_contained,
    the_readme_tour_works,
    csv_reads_by_parameter_or_accept_header,
    filters_select_series_and_windows,
    runs_are_listed,
    errors_follow_the_error_table,
    oversized_bodies_get_413,
    parallel_corrections_of_one_value_all_land,
    updates_by_key_and_intervals,
    tenant_id_selects_the_tenant_when_auth_is_off,
    request_ids_are_echoed,
    large_reads_stream_completely,
);
