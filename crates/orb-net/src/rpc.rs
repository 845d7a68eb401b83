//! Request/reply between nodes (routed calls): a thin layer over NATS
//! request/reply and queue groups, so the node never handles NATS types.

use crate::{NetError, Network};
use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailed {
    /// Nobody subscribes to the subject (no live seeder).
    #[error("no one serves {0}")]
    NoResponders(String),
    /// Someone does, but did not answer in time.
    #[error("no answer on {subject} within {secs:.1} s")]
    TimedOut { subject: String, secs: f64 },
    /// The connection failed.
    #[error("request on {subject} failed: {message}")]
    Other { subject: String, message: String },
}

/// Sends `payload` on `subject` and waits up to `timeout` for one answer.
pub async fn request(
    net: &Network,
    subject: String,
    payload: Bytes,
    timeout: Duration,
) -> Result<Bytes, RequestFailed> {
    let req = async_nats::Request::new()
        .payload(payload)
        .timeout(Some(timeout));
    match net.client.send_request(subject.clone(), req).await {
        Ok(msg) => Ok(msg.payload),
        Err(e) => Err(match e.kind() {
            RequestErrorKind::NoResponders => RequestFailed::NoResponders(subject),
            RequestErrorKind::TimedOut => RequestFailed::TimedOut {
                subject,
                secs: timeout.as_secs_f64(),
            },
            _ => RequestFailed::Other {
                subject,
                message: e.to_string(),
            },
        }),
    }
}

/// A request received on a served subject.
pub struct Incoming {
    pub subject: String,
    pub payload: Bytes,
    reply: Option<async_nats::Subject>,
}

/// Requests on a subject (wildcards allowed), shared with the other
/// members of `queue`: each request reaches one of them.
pub struct Served(async_nats::Subscriber);

impl Served {
    pub async fn subscribe(net: &Network, subject: &str, queue: &str) -> Result<Served, NetError> {
        net.client
            .queue_subscribe(subject.to_string(), queue.to_string())
            .await
            .map(Served)
            .map_err(|e| NetError::Invalid(format!("cannot serve {subject}: {e}")))
    }

    /// Stops taking new requests: the server stops sending them here; the
    /// ones already on their way are still returned by [`Served::next`],
    /// which then ends. Other members of the queue group get the rest.
    pub async fn drain(&mut self) -> Result<(), NetError> {
        self.0
            .drain()
            .await
            .map_err(|e| NetError::Invalid(format!("cannot drain a subscription: {e}")))
    }

    /// The next request; `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.0.next().await.map(|m| Incoming {
            subject: m.subject.to_string(),
            payload: m.payload,
            reply: m.reply,
        })
    }
}

/// Answers a request (nothing happens for a request that wants no answer).
pub async fn answer(net: &Network, to: &Incoming, payload: Bytes) -> Result<(), NetError> {
    let Some(reply) = to.reply.clone() else {
        return Ok(());
    };
    net.client
        .publish(reply, payload)
        .await
        .map_err(|e| NetError::Invalid(format!("answer not sent: {e}")))
}
