use orb_core::{ErrorCode, OrbError};

/// An error of the node: a stable code, a message saying what to do, details.
/// The handlers answer it as `{"error": {...}}` with the status its code
/// implies (`handlers/error.rs`).
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
        if let orb_store::StoreError::Full(detail) = &e {
            tracing::warn!(error = %e, "write refused: the disk is full");
            return Self::new(
                ErrorCode::StorageFull,
                format!("the node's disk is full, so nothing was written: {detail}"),
            );
        }
        tracing::error!(error = %e, "store failure");
        Self::new(ErrorCode::Internal, format!("storage failed: {e}"))
    }
}
