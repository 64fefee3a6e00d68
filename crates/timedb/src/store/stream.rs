//! [`ValueStream`]: the rows of a read, arriving in batches from a backend's worker so
//! the server can encode and send them while the store is still reading. The channel is
//! bounded, so a slow client slows the reader instead of growing memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::StoreError;
use crate::model::ValueRecord;

/// Rows per batch handed from the store to the encoder.
pub const BATCH_ROWS: usize = 2048;
/// Batches in flight between the store and the encoder.
pub const BATCHES_IN_FLIGHT: usize = 4;

pub type Batch = Result<Vec<ValueRecord>, StoreError>;

/// A stream of row batches. Dropping it stops the backend's read at its next batch.
pub struct ValueStream {
    rx: mpsc::Receiver<Batch>,
}

impl ValueStream {
    /// A stream and the sender a backend worker fills.
    pub fn channel() -> (mpsc::Sender<Batch>, Self) {
        let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        (tx, Self { rx })
    }

    pub fn empty() -> Self {
        Self::channel().1
    }

    pub async fn next_batch(&mut self) -> Option<Batch> {
        self.rx.recv().await
    }

    /// Every row, for tests and small reads.
    pub async fn collect_all(mut self) -> Result<Vec<ValueRecord>, StoreError> {
        let mut all = Vec::new();
        while let Some(batch) = self.next_batch().await {
            all.extend(batch?);
        }
        Ok(all)
    }
}

impl futures_util::Stream for ValueStream {
    type Item = Batch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
