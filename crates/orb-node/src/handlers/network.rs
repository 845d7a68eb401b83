//! `/v1/network/*`: the network as this node sees it.

use super::S;
use crate::ApiError;
use crate::caller::{self, Request, Token, op};
use crate::services::{functions, net, network};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

/// `GET /v1/network/nodes`: every node the network knows (gone ones too),
/// with its state, liveness, role, attributes and capacity. Any account's
/// private token may read it; a single node answers 404 `not_networked`.
#[utoipa::path(get, path = "/v1/network/nodes", tag = "network", operation_id = "list_network_nodes",
    responses(
        (status = 200, description = "The nodes", body = super::openapi::NetworkNodes),
        (status = 404, description = "not_networked (this node runs alone)"),
    ))]
pub(super) async fn list_nodes(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    caller::authorize_private(
        &node,
        &token,
        Request::op(op::NETWORK_READ),
        "reading the network",
    )
    .await?;
    net::nodes(&node).await.map(Json)
}

/// `GET /v1/network/functions/{id}`: the function's placement and its
/// seeders (slot, node, state, liveness, attributes), for an account that
/// owns it (its private token).
#[utoipa::path(get, path = "/v1/network/functions/{id}", tag = "network", operation_id = "show_network_function",
    params(("id" = String, Path, description = "The function's hash (`sha256:<hex>`)", example = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")),
    responses(
        (status = 200, description = "The function's placement and seeders", body = super::openapi::NetworkFunction),
        (status = 400, description = "invalid_function_id"),
        (status = 404, description = "not_networked (this node runs alone), function_not_found"),
    ))]
pub(super) async fn show_function(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = functions::parse_id(&id)?;
    let fn_text = id.to_string();
    let claims = caller::authorize_private(
        &node,
        &token,
        Request {
            operation: op::NETWORK_READ,
            function: Some(&fn_text),
            namespace: None,
        },
        "reading the network",
    )
    .await?;
    network::function(&node, &claims.account, &id)
        .await
        .map(Json)
}
