//! The `format=arrow` read: the rows of a value read as an Arrow IPC stream, for clients
//! that load results into pandas/polars/DuckDB without parsing text.
//!
//! Rows go straight from the store's batches into column builders; every
//! [`ARROW_BATCH_ROWS`] rows (and at the end) the builders become one record batch, which
//! is written as one IPC message and sent as one chunk of the response body. Memory is
//! one record batch, whatever the size of the result. The columns and their order are
//! the JSON/CSV columns of the same mode (see [`Columns`]), with timestamps as UTC
//! microseconds and `tags` as JSON array text.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures_util::Stream;
use timedb::model::ValueRecord;
use timedb::model::time::to_micros;
use timedb::store::ValueStream;

use super::encode::Columns;

/// Most rows in one record batch of the response.
pub const ARROW_BATCH_ROWS: usize = 8192;

/// Every timestamp column: microseconds, UTC.
fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// The schema of a read with these columns.
pub fn schema(cols: Columns) -> SchemaRef {
    let mut fields = vec![
        Field::new("valid_time", timestamp(), false),
        Field::new("valid_time_end", timestamp(), true),
        Field::new("series_id", DataType::Utf8, false),
        Field::new("series_key", DataType::Utf8, false),
        Field::new("series_unit", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ];
    if cols.run {
        fields.push(Field::new("known_time", timestamp(), false));
        fields.push(Field::new("run_id", DataType::Utf8, false));
    }
    if cols.audit {
        fields.extend([
            Field::new("value_id", DataType::Int64, false),
            Field::new("annotation", DataType::Utf8, true),
            Field::new("tags", DataType::Utf8, true),
            Field::new("changed_by", DataType::Utf8, true),
            Field::new("change_time", timestamp(), false),
            Field::new("is_current", DataType::Boolean, false),
        ]);
    }
    Arc::new(Schema::new(fields))
}

/// One record batch under construction. Builders of columns the read does not show stay
/// empty and are left out of the batch.
struct Builders {
    cols: Columns,
    schema: SchemaRef,
    rows: usize,
    valid_time: TimestampMicrosecondBuilder,
    valid_time_end: TimestampMicrosecondBuilder,
    series_id: StringBuilder,
    series_key: StringBuilder,
    series_unit: StringBuilder,
    value: Float64Builder,
    known_time: TimestampMicrosecondBuilder,
    run_id: StringBuilder,
    value_id: Int64Builder,
    annotation: StringBuilder,
    tags: StringBuilder,
    changed_by: StringBuilder,
    change_time: TimestampMicrosecondBuilder,
    is_current: BooleanBuilder,
}

impl Builders {
    fn new(cols: Columns, schema: SchemaRef) -> Self {
        let ts = || TimestampMicrosecondBuilder::with_capacity(ARROW_BATCH_ROWS);
        let text = || StringBuilder::with_capacity(ARROW_BATCH_ROWS, ARROW_BATCH_ROWS * 16);
        Self {
            cols,
            schema,
            rows: 0,
            valid_time: ts(),
            valid_time_end: ts(),
            series_id: text(),
            series_key: text(),
            series_unit: text(),
            value: Float64Builder::with_capacity(ARROW_BATCH_ROWS),
            known_time: ts(),
            run_id: text(),
            value_id: Int64Builder::new(),
            annotation: StringBuilder::new(),
            tags: StringBuilder::new(),
            changed_by: StringBuilder::new(),
            change_time: TimestampMicrosecondBuilder::new(),
            is_current: BooleanBuilder::new(),
        }
    }

    fn push(&mut self, r: &ValueRecord) {
        self.rows += 1;
        self.valid_time.append_value(to_micros(r.valid_time));
        self.valid_time_end.append_option(r.valid_time_end.map(to_micros));
        // A string builder is a `fmt::Write`: the id is formatted into it, not into a
        // temporary `String`, and `append_value("")` ends the value.
        let _ = write!(self.series_id, "{}", r.series.series_id);
        self.series_id.append_value("");
        self.series_key.append_value(r.series.key.as_str());
        self.series_unit.append_value(r.series.unit.as_str());
        self.value.append_option(r.value);
        if self.cols.run {
            self.known_time.append_value(to_micros(r.known_time));
            let _ = write!(self.run_id, "{}", r.run_id);
            self.run_id.append_value("");
        }
        if self.cols.audit {
            self.value_id.append_value(r.value_id.0);
            self.annotation.append_option(r.annotation.as_deref());
            match &r.tags {
                Some(t) => {
                    let text = serde_json::to_string(t.as_slice()).expect("strings serialise");
                    self.tags.append_value(text);
                }
                None => self.tags.append_null(),
            }
            self.changed_by.append_option(r.changed_by.as_deref());
            self.change_time.append_value(to_micros(r.change_time));
            self.is_current.append_value(r.is_current);
        }
    }

    /// The rows so far as a record batch; the builders start over empty.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let ts = |b: &mut TimestampMicrosecondBuilder| -> ArrayRef { Arc::new(b.finish().with_timezone("+00:00")) };
        let mut columns: Vec<ArrayRef> = vec![
            ts(&mut self.valid_time),
            ts(&mut self.valid_time_end),
            Arc::new(self.series_id.finish()),
            Arc::new(self.series_key.finish()),
            Arc::new(self.series_unit.finish()),
            Arc::new(self.value.finish()),
        ];
        if self.cols.run {
            columns.push(ts(&mut self.known_time));
            columns.push(Arc::new(self.run_id.finish()));
        }
        if self.cols.audit {
            columns.push(Arc::new(self.value_id.finish()));
            columns.push(Arc::new(self.annotation.finish()));
            columns.push(Arc::new(self.tags.finish()));
            columns.push(Arc::new(self.changed_by.finish()));
            columns.push(ts(&mut self.change_time));
            columns.push(Arc::new(self.is_current.finish()));
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

struct ArrowState {
    rows: ValueStream,
    builders: Builders,
    /// Writes into its `Vec`, which is taken after every message.
    writer: StreamWriter<Vec<u8>>,
    /// Messages written and not yet sent, one body chunk each.
    ready: VecDeque<Bytes>,
    done: bool,
}

impl ArrowState {
    /// Queue everything written since the last call as one chunk.
    fn take_written(&mut self) {
        let written = std::mem::take(self.writer.get_mut());
        if !written.is_empty() {
            self.ready.push_back(Bytes::from(written));
        }
    }

    fn write_batch(&mut self) -> Result<(), ArrowError> {
        let batch = self.builders.finish()?;
        self.writer.write(&batch)?;
        self.take_written();
        Ok(())
    }

    /// The last, partial batch and the end-of-stream marker.
    fn finish(&mut self) -> Result<(), ArrowError> {
        if self.builders.rows > 0 {
            self.write_batch()?;
        }
        self.writer.finish()?;
        self.take_written();
        self.done = true;
        Ok(())
    }
}

fn io_error(e: ArrowError) -> std::io::Error {
    tracing::error!(error = %e, "arrow encoding failed");
    std::io::Error::other(e.to_string())
}

/// Encode a value stream as an Arrow IPC stream body: the schema message, one message
/// per record batch of at most [`ARROW_BATCH_ROWS`] rows, and the end-of-stream marker,
/// each its own body chunk. A store error mid-stream ends the body with an error (a
/// truncated response, as the text formats do).
pub fn encode(rows: ValueStream, cols: Columns) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let schema = schema(cols);
    let start = StreamWriter::try_new(Vec::new(), &schema).map(|writer| {
        let mut st =
            ArrowState { rows, builders: Builders::new(cols, schema), writer, ready: VecDeque::new(), done: false };
        st.take_written(); // the schema message
        st
    });
    futures_util::stream::unfold(Some(start), |st| async move {
        let mut st = match st? {
            Ok(st) => st,
            Err(e) => return Some((Err(io_error(e)), None)),
        };
        loop {
            if let Some(chunk) = st.ready.pop_front() {
                return Some((Ok(chunk), Some(Ok(st))));
            }
            if st.done {
                return None;
            }
            let step = match st.rows.next_batch().await {
                Some(Ok(batch)) => {
                    crate::metrics::global().values_read(batch.len());
                    batch.iter().try_for_each(|r| {
                        st.builders.push(r);
                        if st.builders.rows == ARROW_BATCH_ROWS { st.write_batch() } else { Ok(()) }
                    })
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "value read failed mid-stream");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
                None => st.finish(),
            };
            if let Err(e) = step {
                return Some((Err(io_error(e)), None));
            }
        }
    })
}
