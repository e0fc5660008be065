//! The hub's API error, and its one mapping to `tonic::Status`.
//!
//! Handlers return `ApiError`; only this file picks gRPC codes. `Internal`
//! details go to the log, never to the caller.

use tonic::{Code, Status};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after_ms: u64,
    },
    /// FAILED_PRECONDITION telling a subscriber where to resume from
    /// (`x-isac-resume-cursor`, base64 of the sealed cursor; empty: the
    /// beginning).
    #[error("{message}")]
    ResumeFrom { message: String, cursor: Vec<u8> },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::AlreadyExists(m),
            StoreError::Refused(m) => ApiError::FailedPrecondition(m),
            StoreError::NotFound(m) => ApiError::FailedPrecondition(m),
            StoreError::Token(m) => ApiError::Unauthenticated(m),
            StoreError::Closed => {
                ApiError::Unavailable("the hub is shutting down; retry shortly".into())
            }
            // Nothing was stored and the hub keeps running: the caller
            // should retry; the operator finds the detail in the log.
            StoreError::DiskFull(detail) => {
                tracing::error!(%detail, "store: the data volume is full; writes are refused");
                ApiError::Unavailable(
                    "the hub's disk is full: nothing was stored; retry later \
                     (the hub operator must free space on the data volume)"
                        .into(),
                )
            }
            StoreError::Io(detail) => {
                tracing::error!(%detail, "store: I/O error; writes are refused");
                ApiError::Unavailable(
                    "the hub cannot write to its disk (I/O error): nothing was stored; \
                     retry later"
                        .into(),
                )
            }
            StoreError::Sqlite(m) => ApiError::Internal(format!("store: {m}")),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let (code, message) = match e {
            ApiError::Unauthenticated(m) => (Code::Unauthenticated, m),
            ApiError::PermissionDenied(m) => (Code::PermissionDenied, m),
            ApiError::InvalidArgument(m) => (Code::InvalidArgument, m),
            ApiError::AlreadyExists(m) => (Code::AlreadyExists, m),
            ApiError::FailedPrecondition(m) => (Code::FailedPrecondition, m),
            ApiError::NotFound(m) => (Code::NotFound, m),
            ApiError::Unavailable(m) => (Code::Unavailable, m),
            ApiError::ResourceExhausted {
                message,
                retry_after_ms,
            } => {
                let mut status = Status::new(Code::ResourceExhausted, message);
                // A hint clients can act on without parsing the message.
                if let Ok(v) = retry_after_ms.to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", v);
                }
                return status;
            }
            ApiError::ResumeFrom { message, cursor } => {
                use base64::Engine;
                let mut status = Status::new(Code::FailedPrecondition, message);
                let text = base64::engine::general_purpose::STANDARD.encode(cursor);
                if let Ok(v) = text.parse() {
                    status.metadata_mut().insert("x-isac-resume-cursor", v);
                }
                return status;
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    Code::Internal,
                    "internal error in the hub; the operator can find details in its log"
                        .to_owned(),
                )
            }
        };
        Status::new(code, message)
    }
}
