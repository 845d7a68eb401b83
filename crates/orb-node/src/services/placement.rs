//! Where a function runs: the seam the network plugs into.
//!
//! Every call the node runs now goes through the node's [`Executor`]: a
//! synchronous call (`POST /v1/invoke`, `/v1/functions/{target}/{export}`),
//! a queued call when its turn comes, a schedule's tick, a sequence's step,
//! a kappa's message. What reaches it is a [`Prepared`] call — the caller
//! verified, the target resolved to a hash, the call's own fields checked —
//! with its [`RunContext`]; what comes back is the activation, not yet
//! stored (the caller of the executor stores it, as before).
//!
//! Single-node Orb uses [`Local`]: the call runs in this process. The
//! network (crate `orb-net`, wired in behind a cargo feature and
//! `orb serve --network`, so a single node never links NATS) supplies an
//! executor that sends the call to a live seeder of the function; the
//! forwarded call carries the token the caller presented
//! ([`RunContext::token`], set for calls that come from a request), so the
//! seeder verifies the caller itself instead of trusting the node that
//! forwarded it, and then checks the call against its own stored state
//! ([`check_prepared`]).
//!
//! HTTP functions (`/http/…`) ask [`Executor::runs_here`] too: a request
//! this node does not run goes whole (under the size caps) through
//! [`Executor::forward_http`], as bytes the `http` service encodes, with
//! the caller's token; the node that runs it checks both itself.

use crate::services::calls::{Prepared, Ready, RunContext, check_prepared, execute};
use crate::{ApiError, Node};
use orb_core::{Activation, FunctionId};

/// Runs prepared calls somewhere.
#[async_trait::async_trait]
pub(crate) trait Executor: Send + Sync {
    /// Whether a call of `function` would run in this process now (then
    /// the caller checks it here first and passes the result to
    /// [`Executor::run`]); `false`: the executor sends it elsewhere, where
    /// it is checked.
    fn runs_here(&self, node: &Node, function: &orb_core::FunctionId) -> bool {
        let _ = (node, function);
        true
    }

    /// Runs `call` and returns its activation (not stored). `checked` is the
    /// result of [`check_prepared`] when the caller already ran it (a
    /// synchronous call is checked before it is run or queued); `None`: the
    /// executor checks the call against the stored state first (a queued
    /// call, a tick, a message). `Err` is for a call that could not run at
    /// all; a function's own failure is in the activation.
    async fn run(
        &self,
        node: &Node,
        call: &Prepared,
        checked: Option<Ready>,
        ctx: RunContext,
    ) -> Result<Activation, ApiError>;

    /// Serves an `/http/{target}` request for `function` that does not run
    /// here ([`Executor::runs_here`] said no) where it runs: `token` is the
    /// bearer token the caller presented (none for a public route),
    /// `request` the request as `services::http` encodes it. Returns the
    /// activation (not stored) and the encoded response (`None`: the
    /// function gave none; its error is in the activation).
    async fn forward_http(
        &self,
        node: &Node,
        function: &FunctionId,
        token: Option<&str>,
        target: &str,
        request: bytes::Bytes,
    ) -> Result<(Activation, Option<bytes::Bytes>), ApiError>;
}

/// A single node: every call runs here.
pub(crate) struct Local;

#[async_trait::async_trait]
impl Executor for Local {
    async fn run(
        &self,
        node: &Node,
        call: &Prepared,
        checked: Option<Ready>,
        ctx: RunContext,
    ) -> Result<Activation, ApiError> {
        let ready = match checked {
            Some(ready) => ready,
            None => check_prepared(node, call).await?,
        };
        execute(node, call, ready, ctx).await
    }

    /// A single node runs every request itself (it is never asked to
    /// forward one; if it were, the request would run here).
    async fn forward_http(
        &self,
        node: &Node,
        _function: &FunctionId,
        token: Option<&str>,
        target: &str,
        request: bytes::Bytes,
    ) -> Result<(Activation, Option<bytes::Bytes>), ApiError> {
        crate::services::http::serve_forwarded(node, token.map(str::to_string), target, &request)
            .await
    }
}
