//! Streamed answers: a long export is written by a producer on a blocking thread into a
//! [`Sink`] and sent as it is written. Unless the producer finishes, the answer ends
//! without its last chunk (a failure, or a producer that stopped), so the client sees a
//! cut transfer instead of a complete-looking export.

use std::io::Write;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// How much a sink gathers before it sends a chunk.
const CHUNK: usize = 64 * 1024;

/// A piece of a streamed body.
pub(crate) enum Piece {
    /// More of the body.
    Data(Bytes),
    /// The body is complete.
    End,
    /// The body cannot be completed; why.
    Failed(String),
}

/// A body fed from a channel: complete only when its producer sends [`Piece::End`]; a
/// producer that stops without it (or fails) cuts the body.
pub(crate) struct ChannelBody(tokio::sync::mpsc::Receiver<Piece>);

/// A body, and the channel its producer feeds it through.
pub(crate) fn channel_body(
    capacity: usize,
) -> (tokio::sync::mpsc::Sender<Piece>, axum::body::Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (tx, axum::body::Body::new(ChannelBody(rx)))
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        match self.0.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => Poll::Ready(None),
            Poll::Ready(Some(Piece::Failed(why))) => {
                Poll::Ready(Some(Err(std::io::Error::other(why))))
            }
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::other(
                "the body stopped before it was complete",
            )))),
        }
    }
}

/// Where a producer writes a streamed answer; a write fails once the client has left.
pub(super) struct Sink {
    tx: tokio::sync::mpsc::Sender<Piece>,
    buffer: Vec<u8>,
}

impl Sink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.tx
            .blocking_send(Piece::Data(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// An answer of `content_type` that `produce` writes on a blocking thread while it is
/// sent; an error from `produce` cuts the answer (and is logged).
pub(super) fn streamed(
    content_type: &'static str,
    produce: impl FnOnce(&mut Sink) -> Result<(), String> + Send + 'static,
) -> Response {
    let (tx, body) = channel_body(16);
    // The producer outlives the handler: it runs while the answer is read.
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let last = match produce(&mut sink).and_then(|()| sink.send().map_err(|e| e.to_string())) {
            Ok(()) => Piece::End,
            Err(why) => {
                tracing::error!("a streamed answer stopped: {why}");
                Piece::Failed(why)
            }
        };
        let _ = tx.blocking_send(last);
    });
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn collect(pieces: Vec<Piece>) -> Result<Bytes, std::io::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            for piece in pieces {
                tx.send(piece).await.unwrap();
            }
            drop(tx);
            ChannelBody(rx).collect().await.map(|c| c.to_bytes())
        })
    }

    #[test]
    fn a_streamed_export_is_complete_only_when_its_producer_says_so() {
        let line = || Piece::Data(Bytes::from_static(b"{\"seq\":1}\n"));
        assert_eq!(
            collect(vec![line(), Piece::End]).unwrap(),
            Bytes::from_static(b"{\"seq\":1}\n")
        );
        let failed = collect(vec![line(), Piece::Failed("the store failed".into())]);
        assert_eq!(failed.unwrap_err().to_string(), "the store failed");
        // A producer that stopped without a word (it panicked) cuts the transfer too.
        let stopped = collect(vec![line()]);
        assert!(
            stopped
                .unwrap_err()
                .to_string()
                .contains("before it was complete")
        );
    }
}
