//! The whole-body deadline: a request body must arrive within the configured time of its head,
//! however it is sent, so a client that stalls or drips its body cannot hold a request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use bytes::Bytes;
use tokio::time::{Instant, Sleep};

/// Gives the body of `request` until `timeout` from now to arrive whole.
pub fn apply(request: Request, timeout: Duration) -> Request {
    if request.body().is_end_stream() {
        return request;
    }
    let deadline = Instant::now() + timeout;
    request.map(|body| {
        Body::new(DeadlineBody {
            body,
            deadline,
            sleep: None,
        })
    })
}

/// Whether `error`, or an error it wraps, is a body that missed its deadline.
pub fn missed(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<BodyTimedOut>())
}

/// The error of a body read past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

struct DeadlineBody {
    body: Body,
    deadline: Instant,
    /// Made at the first wait only: most bodies are already there.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
