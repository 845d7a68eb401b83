//! Request/reply between nodes (routed calls): a thin layer over NATS
//! request/reply and queue groups, so the node never handles NATS types.

use crate::{NetError, Network};
use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailed {
    /// Nobody subscribes to the subject (no live seeder).
    #[error("no one serves {0}")]
    NoResponders(String),
    /// Someone does, but did not answer in time.
    #[error("no answer on {subject} within {secs:.1} s")]
    TimedOut { subject: String, secs: f64 },
    /// No one said it took the request ([`Caller::call`]): it was lost on
    /// its way, so it never ran and may be sent again.
    #[error("no one took the request on {subject} within {secs:.1} s")]
    NotTaken { subject: String, secs: f64 },
    /// The request is over the NATS servers' `max_payload`.
    #[error("{size} bytes on {subject} is over the network's limit of {max} bytes a message")]
    TooLarge {
        subject: String,
        size: usize,
        max: usize,
    },
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

/// The largest message the NATS servers take (their `max_payload`, 1 MiB
/// unless configured), headers included.
pub fn max_payload(net: &Network) -> usize {
    net.client.server_info().max_payload
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
    ///
    /// A JetStream push consumer delivers stream messages to whatever
    /// subject its creator names, even one the creator may not publish to
    /// (nats-io/nats-server#8274): a node could have a stream message it
    /// wrote delivered to `orb.control.<id>`. Such a delivery's reply is a
    /// `$JS.ACK.…` subject, never a requester's inbox: it is dropped.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            let m = self.0.next().await?;
            if m.reply.as_ref().is_some_and(|r| r.starts_with("$JS.")) {
                tracing::warn!(subject = %m.subject, "dropped a JetStream delivery sent to a request subject (a member created a push consumer that delivers there)");
                continue;
            }
            return Some(Incoming {
                subject: m.subject.to_string(),
                payload: m.payload,
                reply: m.reply,
            });
        }
    }
}

/// The header of the message that says a request was taken
/// ([`accept`]); the answer follows.
const TAKEN_HEADER: &str = "Orb-Taken";

/// Says that `to` was taken: it will run, and its answer follows. A
/// [`Caller`] that hears nothing knows the request was lost on its way (a
/// member of a queue group that unsubscribed just as the server sent it
/// there: the client drops such messages) and sends it again.
pub async fn accept(net: &Network, to: &Incoming) -> Result<(), NetError> {
    let Some(reply) = to.reply.clone() else {
        return Ok(());
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(TAKEN_HEADER, "1");
    net.client
        .publish_with_headers(reply, headers, Bytes::new())
        .await
        .map_err(|e| NetError::Invalid(format!("acceptance not sent: {e}")))
}

/// Requests whose answerer first says it took them ([`accept`]), through
/// one inbox subscription shared by all of them.
pub struct Caller {
    net: Network,
    prefix: String,
    pending: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<async_nats::Message>>>>,
    next: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes a call's entry when the call ends, however it ends.
struct Pending<'a>(&'a Caller, u64);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.lock().expect("pending lock").remove(&self.1);
    }
}

impl Caller {
    /// Subscribes to this caller's inbox (`<inbox>.<call number>`).
    pub async fn start(net: &Network) -> Result<Caller, NetError> {
        let prefix = net.client.new_inbox();
        let mut sub = net
            .client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| NetError::Invalid(format!("cannot take answers: {e}")))?;
        let pending: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<async_nats::Message>>>> =
            Arc::default();
        let task = {
            let pending = pending.clone();
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    let Some(id) = m.subject.rsplit('.').next().and_then(|n| n.parse().ok()) else {
                        continue;
                    };
                    if let Some(tx) = pending.lock().expect("pending lock").get(&id) {
                        let _ = tx.send(m);
                    }
                }
            })
        };
        Ok(Caller {
            net: net.clone(),
            prefix,
            pending,
            next: AtomicU64::new(0),
            task,
        })
    }

    /// Sends `payload` on `subject`; waits up to `take_within` for the
    /// answerer to take it (or answer at once), then up to `timeout` for
    /// the answer.
    pub async fn call(
        &self,
        subject: String,
        payload: Bytes,
        take_within: Duration,
        timeout: Duration,
    ) -> Result<Bytes, RequestFailed> {
        let max = max_payload(&self.net);
        if payload.len() > max {
            return Err(RequestFailed::TooLarge {
                subject,
                size: payload.len(),
                max,
            });
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let _pending = Pending(self, id);
        let other = |message: String| RequestFailed::Other {
            subject: subject.clone(),
            message,
        };
        self.net
            .client
            .publish_with_reply(subject.clone(), format!("{}.{id}", self.prefix), payload)
            .await
            .map_err(|e| other(e.to_string()))?;
        let first = match tokio::time::timeout(take_within, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(other("the inbox closed".into())),
            Err(_) => {
                return Err(RequestFailed::NotTaken {
                    subject,
                    secs: take_within.as_secs_f64(),
                });
            }
        };
        if first.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(RequestFailed::NoResponders(subject));
        }
        let taken = first
            .headers
            .as_ref()
            .is_some_and(|h| h.get(TAKEN_HEADER).is_some());
        if !taken {
            return Ok(first.payload);
        }
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(m)) => Ok(m.payload),
            Ok(None) => Err(other("the inbox closed".into())),
            Err(_) => Err(RequestFailed::TimedOut {
                subject,
                secs: timeout.as_secs_f64(),
            }),
        }
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
