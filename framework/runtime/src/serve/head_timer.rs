//! A bound on the time of every request head on a connection, not only the
//! first. actix-http times the first request's head
//! (`client_request_timeout`) and an idle kept-alive connection (its
//! keep-alive timer), but once a byte of a later request has arrived it
//! waits for the rest of the head for as long as the client sends it, a
//! byte at a time. [`HeadTimed`] wraps the accepted connection: once a
//! response has been written, the next byte read starts a head, which must
//! end (`\r\n\r\n`) within the timeout, or the read fails and actix closes
//! the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

/// The end of a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// An interim `100 Continue` answer: the request's body follows it, not a
/// new head.
const CONTINUE: &[u8] = b"HTTP/1.1 100 ";

/// A connection whose request heads after the first must each arrive within
/// a time limit (the first is actix-http's to time).
pub(super) struct HeadTimed<S> {
    inner: S,
    timeout: Duration,
    /// A response was written since the last head ended: the next byte read
    /// starts a head.
    between_requests: bool,
    /// The running head's deadline, from its first byte.
    deadline: Option<Pin<Box<Sleep>>>,
    /// How much of [`HEAD_END`] the bytes read so far end with.
    matched: usize,
}

impl<S> HeadTimed<S> {
    pub(super) fn new(inner: S, timeout: Duration) -> Self {
        HeadTimed {
            inner,
            timeout,
            between_requests: false,
            deadline: None,
            matched: 0,
        }
    }

    /// Follows the bytes just read: a head starts, or ends.
    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.between_requests && self.deadline.is_none() {
            self.deadline = Some(Box::pin(sleep(self.timeout)));
            self.matched = 0;
        }
        if self.deadline.is_none() {
            return;
        }
        for &b in bytes {
            self.matched = if b == HEAD_END[self.matched] {
                self.matched + 1
            } else if b == HEAD_END[0] {
                1
            } else {
                0
            };
            if self.matched == HEAD_END.len() {
                self.deadline = None;
                self.between_requests = false;
                self.matched = 0;
                return;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadTimed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "a request head did not arrive within {} s (MODELSTAGE_HEADER_TIMEOUT_SECS)",
                        this.timeout.as_secs()
                    ),
                )));
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadTimed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) && !data.starts_with(CONTINUE) {
            self.between_requests = true;
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_after_a_response_is_timed_until_it_ends() {
        let mut conn = HeadTimed::new(tokio::io::empty(), Duration::from_secs(2));
        // The first request's head and body: actix-http times that head.
        conn.saw(b"POST / HTTP/1.1\r\n\r\nbody");
        assert!(conn.deadline.is_none());
        // A response was written: the next byte starts a timed head, whose
        // end may come split across reads.
        conn.between_requests = true;
        conn.saw(b"GET /ping HTTP/1.1\r\nHost: x\r");
        assert!(conn.deadline.is_some());
        conn.saw(b"\n\r");
        assert!(conn.deadline.is_some());
        conn.saw(b"\n");
        assert!(conn.deadline.is_none());
        assert!(!conn.between_requests);
        // Its body is not a head.
        conn.saw(b"more body");
        assert!(conn.deadline.is_none());
    }

    #[tokio::test]
    async fn an_interim_100_continue_does_not_start_a_head() {
        use tokio::io::AsyncWriteExt;
        let mut conn = HeadTimed::new(tokio::io::sink(), Duration::from_secs(2));
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
        assert!(!conn.between_requests);
        conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert!(conn.between_requests);
    }
}
