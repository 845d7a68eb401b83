use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orb_core::{ErrorCode, OrbError};
use serde_json::json;

/// An error answered as `{"error": {...}}` with the status its code implies.
#[derive(Debug)]
pub struct ApiError(pub OrbError);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(OrbError::new(code, message))
    }
}

impl From<OrbError> for ApiError {
    fn from(e: OrbError) -> Self {
        Self(e)
    }
}

impl From<orb_store::StoreError> for ApiError {
    fn from(e: orb_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::new(ErrorCode::Internal, format!("storage failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = %self.0.code, message = %self.0.message, "platform error");
        }
        let mut resp = (status, axum::Json(json!({ "error": self.0 }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs = self
                .0
                .details
                .get("retry_after")
                .and_then(|v| v.as_u64())
                .unwrap_or(1)
                .max(1);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
