//! The API's call (`POST /v1/invoke`, `/v1/functions/{target}/{export}`):
//! a sequence runs step by step, an `async` call is queued, any other call
//! runs now, wherever the node's executor puts it ([`super::placement`]).

use crate::caller::Token;
use crate::services::calls::{
    InvokeRequest, InvokeResponse, RunContext, check_prepared, prepare_target,
};
use crate::{ApiError, Node};
use orb_core::{ErrorCode, OrbError};
use serde_json::Value as Json;

/// What `POST /v1/invoke` answers: the call's result, or 202 with the
/// activation id of a queued asynchronous call.
pub(crate) enum Invoked {
    Done(InvokeResponse),
    Queued(Json),
}

/// A call from the API: runs it now, or queues it when `async` is set.
pub(crate) async fn invoke(
    node: &Node,
    token: &Token,
    req: InvokeRequest,
) -> Result<Invoked, ApiError> {
    if let Some(seq) = crate::services::sequences::lookup(node, token, &req).await? {
        return crate::services::sequences::run(node, token, req, seq)
            .await
            .map(Invoked::Done);
    }
    let prepared = prepare_target(node, token, req).await?;
    if prepared.req.is_async {
        check_prepared(node, &prepared).await?;
        return crate::services::queue::enqueue(node, prepared)
            .await
            .map(Invoked::Queued);
    }
    // Checked here when it runs here (always on a single node); a call the
    // executor sends to another node is checked there, parameters included.
    let ready = if node.executor.runs_here(node, &prepared.function) {
        Some(check_prepared(node, &prepared).await?)
    } else {
        None
    };
    let activation = node
        .executor
        .run(
            node,
            &prepared,
            ready,
            RunContext {
                token: Some(token.clone()),
                ..Default::default()
            },
        )
        .await?;
    node.store.put_activation(&activation).await?;
    match activation.result {
        Some(result) if activation.error.is_none() => Ok(Invoked::Done(InvokeResponse {
            activation: activation.id,
            function: prepared.function,
            result,
            duration_us: activation.duration_us,
            fuel: activation.fuel,
        })),
        _ => Err(ApiError(activation.error.unwrap_or_else(|| {
            OrbError::new(ErrorCode::Internal, "the call ended without a result")
        }))),
    }
}
