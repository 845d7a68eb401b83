//! Activations: the records of calls, HTTP requests, firings and ticks, as
//! their caller may see them (a public token only what its own lineage
//! made), and the long poll for an asynchronous call's end.

use crate::caller::{self, Claims};
use crate::{ApiError, Node};
use orb_core::{Activation, ErrorCode, FunctionId};
use orb_store::ActivationQuery;
use std::time::Duration;

/// Pages of the account's activations a public token's listing reads.
const MAX_PAGES: usize = 20;

/// Longest `?wait=` of `GET /v1/activations/{id}`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One page of the account's activations (newest first, of `function`
/// only if given, older than `before`): those the caller sees, and the
/// `before` of the next page (`None` after the last).
pub(crate) async fn page(
    node: &Node,
    claims: &Claims,
    function: Option<&FunctionId>,
    before: Option<String>,
    limit: usize,
) -> Result<(Vec<Activation>, Option<String>), ApiError> {
    let page = node
        .store
        .list_activations(&ActivationQuery {
            account: claims.account.clone(),
            function: function.cloned(),
            before,
            limit,
        })
        .await?;
    let next = if page.len() < limit {
        None
    } else {
        page.last().map(|a| a.id.clone())
    };
    let seen = page
        .into_iter()
        .filter(|a| caller::sees(claims, a.lineage.as_deref()))
        .collect();
    Ok((seen, next))
}

/// `GET /v1/activations`: newest first, at most `limit`, before the
/// activation `before`, of `function` only if given.
pub(crate) async fn list(
    node: &Node,
    claims: &Claims,
    function: Option<FunctionId>,
    mut before: Option<String>,
    limit: usize,
) -> Result<Vec<Activation>, ApiError> {
    // A public token sees only the activations of its own lineage: pages
    // of the account's are read and filtered until `limit` are found.
    let mut acts = Vec::new();
    for _ in 0..MAX_PAGES {
        let (seen, next) = page(node, claims, function.as_ref(), before, limit).await?;
        acts.extend(seen);
        before = next;
        if acts.len() >= limit || before.is_none() {
            break;
        }
    }
    acts.truncate(limit);
    Ok(acts)
}

/// `GET /v1/activations/{id}[?wait=5s]`: with `wait`, a queued or running
/// asynchronous call is waited for (long poll, at most 60 s).
pub(crate) async fn show(
    node: &Node,
    claims: &Claims,
    id: &str,
    wait: Option<Duration>,
) -> Result<Activation, ApiError> {
    if let Some(wait) = wait {
        let owned = node.store.get_activation(id).await?.is_some_and(|a| {
            a.account == claims.account && caller::sees(claims, a.lineage.as_deref())
        });
        if owned {
            crate::services::queue::wait_final(node, id, wait.min(MAX_WAIT)).await;
        }
    }
    match node.store.get_activation(id).await? {
        Some(a) if a.account == claims.account && caller::sees(claims, a.lineage.as_deref()) => {
            Ok(a)
        }
        _ => Err(ApiError::new(
            ErrorCode::ActivationNotFound,
            format!("no activation `{id}` (it may have been pruned)"),
        )),
    }
}
