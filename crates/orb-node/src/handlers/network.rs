//! `/v1/network/*`: the network as this node sees it.

use super::S;
use crate::ApiError;
use crate::caller::{self, Request, Token, op};
use crate::services::network;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

/// `GET /v1/network/nodes`: every node the network knows (gone ones too),
/// with its state, liveness, role, attributes and capacity. Any account's
/// private token may read it; a single node answers 404 `not_networked`.
pub(super) async fn list_nodes(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    caller::authorize_private(
        &node,
        &token,
        Request::op(op::NETWORK_READ),
        "reading the network",
    )
    .await?;
    network::nodes(&node).await.map(Json)
}
