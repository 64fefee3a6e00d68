//! Data endpoints: uploads (JSON, CSV, Arrow), reads (typed rows or a byte stream),
//! corrections, and the series and runs catalogue.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use uuid::Uuid;

use crate::model::*;
use crate::{Client, Error};

/// A response body as it arrives, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// Called with (bytes sent, total bytes) as a bulk upload's body goes out.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Chunk size of a bulk upload body (the granularity of progress reports).
const CHUNK: usize = 1 << 20;

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Client {
    /// Create a run with values from typed rows (`POST /upload`, JSON).
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use timedb_client::{Upload, ValueRow};
    /// let known = "2025-01-01T06:00:00Z".parse().unwrap();
    /// let rows = vec![ValueRow::new("wind_power", "2025-01-02T12:00:00Z".parse().unwrap(), Some(41.5))];
    /// let receipt = client.upload(&Upload::new(rows).known_at(known)).await?;
    /// assert_eq!(receipt.message, "Run created successfully");
    /// # Ok(()) }
    /// ```
    pub async fn upload(&self, upload: &Upload) -> Result<UploadReceipt, Error> {
        self.call(Method::POST, &["upload"], Some(upload)).await
    }

    /// Create a run from a bulk body: long CSV (`text/csv`) or an Arrow IPC stream, as
    /// the server's bulk format describes. Run fields travel in the query string.
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use timedb_client::{BulkFormat, RunOptions};
    /// let csv = "value_key,valid_time,value\nload,2025-01-01T00:00:00Z,1.5\nload,2025-01-01T01:00:00Z,\n";
    /// let receipt = client.upload_bulk(BulkFormat::Csv, csv, &RunOptions::default()).await?;
    /// println!("{} values", receipt.values_written.unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn upload_bulk(
        &self,
        format: BulkFormat,
        body: impl Into<Bytes>,
        run: &RunOptions,
    ) -> Result<UploadReceipt, Error> {
        self.upload_bulk_with_progress(format, body.into(), run, None).await
    }

    /// [`Client::upload_bulk`], reporting the bytes sent to `progress` as the body goes out.
    pub async fn upload_bulk_with_progress(
        &self,
        format: BulkFormat,
        body: Bytes,
        run: &RunOptions,
        progress: Option<Progress>,
    ) -> Result<UploadReceipt, Error> {
        let mut query = Vec::new();
        if let Some(w) = &run.workflow_id {
            query.push(("workflow_id", w.clone()));
        }
        for (name, t) in [
            ("run_start_time", &run.run_start_time),
            ("run_finish_time", &run.run_finish_time),
            ("known_time", &run.known_time),
        ] {
            if let Some(t) = t {
                query.push((name, ts(t)));
            }
        }
        let url = self.url(&["upload"], &query);
        self.send_json(|| {
            let req = self.request(Method::POST, url.clone()).header(CONTENT_TYPE, format.content_type());
            match &progress {
                None => req.body(body.clone()),
                Some(progress) => req.body(chunked_with_progress(body.clone(), progress.clone())),
            }
        })
        .await
    }

    /// Read values as typed rows (`GET /values`, JSON).
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use timedb_client::{ReadMode, ReadQuery};
    /// // A backtest: what was known before 2025-01-01 06:00, every forecast side by side.
    /// let query = ReadQuery {
    ///     end_known: Some("2025-01-01T06:00:00Z".parse().unwrap()),
    ///     mode: ReadMode::Overlapping,
    ///     ..ReadQuery::default()
    /// };
    /// for row in client.read(&query).await? {
    ///     println!("{} {} known {:?}: {:?}", row.series_key, row.valid_time, row.known_time, row.value);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read(&self, query: &ReadQuery) -> Result<Vec<ValueRecord>, Error> {
        let body: ValuesBody = self.get(&["values"], &query.pairs()).await?;
        Ok(body.data)
    }

    /// Read values as the server streams them, in `format` (CSV or Arrow for large
    /// reads: memory stays flat on both sides).
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client) -> Result<(), timedb_client::Error> {
    /// use futures_util::StreamExt;
    /// use timedb_client::{ReadFormat, ReadQuery};
    /// let mut stream = client.read_stream(&ReadQuery::default(), ReadFormat::Csv).await?;
    /// let mut bytes = 0;
    /// while let Some(chunk) = stream.next().await {
    ///     bytes += chunk?.len();
    /// }
    /// println!("{bytes} bytes of CSV");
    /// # Ok(()) }
    /// ```
    pub async fn read_stream(&self, query: &ReadQuery, format: ReadFormat) -> Result<ByteStream, Error> {
        let mut pairs = query.pairs();
        pairs.push(("format", format.as_str().to_owned()));
        let url = self.url(&["values"], &pairs);
        let accept = match format {
            ReadFormat::Json => "application/json",
            ReadFormat::Csv => "text/csv",
            ReadFormat::Arrow => ARROW_STREAM,
        };
        let resp = self.send(|| self.request(Method::GET, url.clone()).header(ACCEPT, accept)).await?;
        Ok(Box::pin(resp.bytes_stream().map_err(Error::Transport)))
    }

    /// Correct values (`PUT /values`): each correction writes a new version, atomically.
    ///
    /// ```no_run
    /// # async fn demo(client: timedb_client::Client, value_id: i64) -> Result<(), timedb_client::Error> {
    /// use timedb_client::{Correction, ValueAddress};
    /// let fix = Correction::of(ValueAddress::Id(value_id)).value(Some(42.0)).annotation(Some("sensor reset"));
    /// let report = client.update(&[fix]).await?;
    /// assert_eq!(report.updated.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn update(&self, corrections: &[Correction]) -> Result<UpdateReport, Error> {
        let body = serde_json::json!({ "updates": corrections.iter().map(Correction::to_json).collect::<Vec<_>>() });
        self.call(Method::PUT, &["values"], Some(&body)).await
    }

    /// Create a series (`POST /series`); an identical existing one is returned with
    /// `created == false`, a conflicting one is a 409.
    pub async fn create_series(&self, series: &NewSeries) -> Result<SeriesCreated, Error> {
        let url = self.url(&["series"], &[]);
        let body = Bytes::from(serde_json::to_vec(series).map_err(|e| Error::Decode(e.to_string()))?);
        let resp = self
            .send(|| {
                self.request(Method::POST, url.clone()).header(CONTENT_TYPE, "application/json").body(body.clone())
            })
            .await?;
        let created = resp.status() == reqwest::StatusCode::CREATED;
        let mut answer: SeriesCreated = crate::decode(resp).await?;
        answer.created = created;
        Ok(answer)
    }

    /// List series (`GET /series`).
    pub async fn list_series(&self, filter: &SeriesFilter) -> Result<Vec<Series>, Error> {
        self.get(&["series"], &filter.pairs()).await
    }

    /// One series (`GET /series/{id}`); another tenant's is a 404 like a missing one.
    pub async fn get_series(&self, series_id: Uuid) -> Result<Series, Error> {
        self.get(&["series", &series_id.to_string()], &[]).await
    }

    /// The upstream listing (`GET /list_timeseries`): series by id.
    pub async fn list_timeseries(&self) -> Result<std::collections::BTreeMap<Uuid, TimeseriesInfo>, Error> {
        self.get(&["list_timeseries"], &[]).await
    }

    /// List runs (`GET /runs`).
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, Error> {
        let mut query = Vec::new();
        if let Some(w) = &filter.workflow_id {
            query.push(("workflow_id", w.clone()));
        }
        if let Some(t) = &filter.start_known {
            query.push(("start_known", ts(t)));
        }
        if let Some(t) = &filter.end_known {
            query.push(("end_known", ts(t)));
        }
        if let Some(n) = filter.limit {
            query.push(("limit", n.to_string()));
        }
        self.get(&["runs"], &query).await
    }

    /// One run (`GET /runs/{id}`).
    pub async fn get_run(&self, run_id: Uuid) -> Result<Run, Error> {
        self.get(&["runs", &run_id.to_string()], &[]).await
    }
}

/// `body` as a stream of 1 MiB chunks, calling `progress` after each.
fn chunked_with_progress(body: Bytes, progress: Progress) -> reqwest::Body {
    let total = body.len() as u64;
    let chunks = (0..body.len()).step_by(CHUNK).map(move |start| {
        let end = (start + CHUNK).min(body.len());
        progress(end as u64, total);
        Ok::<_, std::io::Error>(body.slice(start..end))
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}
