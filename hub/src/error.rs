//! The hub's API error, and its one mapping to what a caller is told.
//!
//! Handlers return `ApiError`; only this file picks gRPC codes and HTTP
//! statuses. Both edges go through [`ApiError::answer`], which decides the
//! kind and the human message: internal and store details go to the log
//! with a request id, never to the caller, who sees the same id (gRPC:
//! the message ends with `(request id ID)` plus `x-request-id` metadata;
//! TAXII: `X-Request-Id` and the error body, see [`http`]).
//!
//! | error | gRPC | HTTP |
//! |---|---|---|
//! | `Unauthenticated` | UNAUTHENTICATED | 401 |
//! | `PermissionDenied` | PERMISSION_DENIED | 403 |
//! | `InvalidArgument` | INVALID_ARGUMENT | 400 |
//! | `AlreadyExists` | ALREADY_EXISTS | 409 |
//! | `FailedPrecondition` | FAILED_PRECONDITION | 400 |
//! | `NotFound` | NOT_FOUND | 404 |
//! | `ResourceExhausted` | RESOURCE_EXHAUSTED (+`retry-after-ms`) | 429 (+`Retry-After`) |
//! | `TooLarge` | RESOURCE_EXHAUSTED (no retry hint: retrying cannot help) | 413 |
//! | `Unavailable`, `Store(Closed/DiskFull/Io/Unavailable)` | UNAVAILABLE + id | 503 + id |
//! | `Internal`, `Store(Sqlite/Postgres/other)` | INTERNAL + id | 500 + id |

pub mod http;

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
    /// A request over a size limit (gRPC: a message over a service's
    /// decoding limit, see [`refuse_oversized`]).
    #[error("{0}")]
    TooLarge(String),
    /// FAILED_PRECONDITION telling a subscriber where to resume from
    /// (`x-isac-resume-cursor`, base64 of the sealed cursor; empty: the
    /// beginning).
    #[error("{message}")]
    ResumeFrom { message: String, cursor: Vec<u8> },
    #[error("internal error: {0}")]
    Internal(String),
    /// The store failed underneath the request (closed, disk full, I/O or
    /// SQLite error). The caller hears "unavailable" or "internal" in
    /// plain words; the store's own text reaches the log only.
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::AlreadyExists(m),
            StoreError::Refused(m) => ApiError::FailedPrecondition(m),
            StoreError::NotFound(m) => ApiError::FailedPrecondition(m),
            StoreError::Token(m) => ApiError::Unauthenticated(m),
            StoreError::Unsupported(m) => ApiError::FailedPrecondition(m),
            // `app::publish` checks again and retries; this is reached only
            // when the membership keeps changing under one call.
            StoreError::StaleAuthorization => ApiError::Unavailable(
                "membership or keys changed while this was published; nothing was stored, publish again".into(),
            ),
            other @ (StoreError::Closed
            | StoreError::DiskFull(_)
            | StoreError::Io(_)
            | StoreError::Unavailable(_)
            | StoreError::Sqlite(_)
            | StoreError::Postgres(_)) => ApiError::Store(other),
        }
    }
}

/// What kind of answer an error gets, whichever the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unauthenticated,
    PermissionDenied,
    InvalidArgument,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    /// Too large to take at all: RESOURCE_EXHAUSTED (what gRPC servers
    /// answer for a message over their limit), HTTP 413.
    TooLarge,
    /// Retry later: shutting down, store closed, disk full, I/O error.
    Unavailable,
    /// A fault of the hub; only the log says what.
    Internal,
}

impl Kind {
    pub fn grpc_code(self) -> Code {
        match self {
            Kind::Unauthenticated => Code::Unauthenticated,
            Kind::PermissionDenied => Code::PermissionDenied,
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::NotFound => Code::NotFound,
            Kind::ResourceExhausted | Kind::TooLarge => Code::ResourceExhausted,
            Kind::Unavailable => Code::Unavailable,
            Kind::Internal => Code::Internal,
        }
    }

    /// Errors the caller cannot fix name the request id, so the operator
    /// can find the logged detail.
    pub fn names_request_id(self) -> bool {
        matches!(self, Kind::Unavailable | Kind::Internal)
    }
}

/// What a caller is told about one error: no internal detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub kind: Kind,
    /// Human text for the caller.
    pub message: String,
    /// When to retry (`ResourceExhausted`).
    pub retry_after_ms: Option<u64>,
    /// Where a subscriber resumes (`ResumeFrom`): the sealed cursor, sent
    /// as `x-isac-resume-cursor` (base64; empty: the beginning).
    pub resume_cursor: Option<Vec<u8>>,
}

impl Answer {
    /// The message as a caller reads it: for errors it cannot fix, ending
    /// with `(request id ID)`.
    pub fn text(&self, request_id: &RequestId) -> String {
        if self.kind.names_request_id() {
            format!("{} (request id {request_id})", self.message)
        } else {
            self.message.clone()
        }
    }
}

pub use isac_core::request_id::RequestId;

const INTERNAL_MESSAGE: &str =
    "internal error in the hub; the operator can find details in its log";

impl ApiError {
    /// The one decision of what the caller is told. Details the caller
    /// must not read are logged here, with `request_id`.
    pub fn answer(self, request_id: &RequestId) -> Answer {
        let plain = |kind, message| Answer {
            kind,
            message,
            retry_after_ms: None,
            resume_cursor: None,
        };
        match self {
            ApiError::Unauthenticated(m) => plain(Kind::Unauthenticated, m),
            ApiError::PermissionDenied(m) => plain(Kind::PermissionDenied, m),
            ApiError::InvalidArgument(m) => plain(Kind::InvalidArgument, m),
            ApiError::AlreadyExists(m) => plain(Kind::AlreadyExists, m),
            ApiError::FailedPrecondition(m) => plain(Kind::FailedPrecondition, m),
            ApiError::NotFound(m) => plain(Kind::NotFound, m),
            ApiError::TooLarge(m) => plain(Kind::TooLarge, m),
            ApiError::ResourceExhausted {
                message,
                retry_after_ms,
            } => Answer {
                kind: Kind::ResourceExhausted,
                message,
                retry_after_ms: Some(retry_after_ms),
                resume_cursor: None,
            },
            ApiError::ResumeFrom { message, cursor } => Answer {
                kind: Kind::FailedPrecondition,
                message,
                retry_after_ms: None,
                resume_cursor: Some(cursor),
            },
            ApiError::Unavailable(m) => {
                tracing::debug!(%request_id, message = %m, "answered unavailable");
                plain(Kind::Unavailable, m)
            }
            ApiError::Internal(detail) => {
                tracing::error!(%request_id, %detail, "internal error");
                plain(Kind::Internal, INTERNAL_MESSAGE.to_owned())
            }
            ApiError::Store(e) => store_answer(e, request_id),
        }
    }

    /// [`ApiError::answer`] as a gRPC status: INTERNAL and UNAVAILABLE
    /// messages end with `(request id ID)` and carry `x-request-id`.
    pub fn into_status(self, request_id: &RequestId) -> Status {
        let answer = self.answer(request_id);
        let kind = answer.kind;
        let mut status = Status::new(kind.grpc_code(), answer.text(request_id));
        if kind.names_request_id() {
            if let Ok(v) = request_id.as_str().parse() {
                status.metadata_mut().insert("x-request-id", v);
            }
        }
        if let Some(ms) = answer.retry_after_ms {
            // A hint clients can act on without parsing the message.
            if let Ok(v) = ms.to_string().parse() {
                status.metadata_mut().insert("retry-after-ms", v);
            }
        }
        if let Some(cursor) = &answer.resume_cursor {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(cursor);
            if let Ok(v) = text.parse() {
                status.metadata_mut().insert("x-isac-resume-cursor", v);
            }
        }
        status
    }
}

fn store_answer(e: StoreError, request_id: &RequestId) -> Answer {
    let unavailable = |message: &str| Answer {
        kind: Kind::Unavailable,
        message: message.to_owned(),
        retry_after_ms: None,
        resume_cursor: None,
    };
    match e {
        StoreError::Closed => {
            tracing::info!(%request_id, "store closed (the hub is stopping); answered unavailable");
            unavailable("the hub is shutting down; retry shortly")
        }
        // Nothing was stored and the hub keeps running: the caller
        // should retry; the operator finds the detail in the log.
        StoreError::DiskFull(detail) => {
            tracing::error!(%request_id, %detail, "store: the data volume is full; writes are refused");
            unavailable(
                "the hub's disk is full: nothing was stored; retry later \
                 (the hub operator must free space on the data volume)",
            )
        }
        StoreError::Unavailable(detail) => {
            tracing::error!(%request_id, %detail, "store: the database is unreachable");
            unavailable("the hub cannot reach its database: nothing was stored; retry shortly")
        }
        StoreError::Io(detail) => {
            tracing::error!(%request_id, %detail, "store: I/O error; writes are refused");
            unavailable(
                "the hub cannot read or write its disk (I/O error): nothing was stored; \
                 retry later",
            )
        }
        other => {
            tracing::error!(%request_id, detail = %other, "store error");
            Answer {
                kind: Kind::Internal,
                message: INTERNAL_MESSAGE.to_owned(),
                retry_after_ms: None,
                resume_cursor: None,
            }
        }
    }
}

/// tonic refuses a request message over a service's
/// `max_decoding_message_size` before buffering it, but answers OUT_OF_RANGE
/// in its own words ("Error, decoded message length too large: ..."),
/// naming no setting. This turns that answer (trailers only, so the status
/// is in the headers) into RESOURCE_EXHAUSTED, the code gRPC servers use
/// for it, naming the size, the limit and `setting`, what sets it; any
/// other response passes unchanged. See `limits::MessageSizeLayer`.
pub fn refuse_oversized<B: Default>(
    response: tonic::codegen::http::Response<B>,
    setting: &str,
) -> tonic::codegen::http::Response<B> {
    if response.headers().get("grpc-status").map(|v| v.as_bytes()) != Some(b"11") {
        return response;
    }
    let Some(found_limit) = Status::from_header_map(response.headers())
        .filter(|s| s.code() == Code::OutOfRange)
        .and_then(|s| tonic_oversize(s.message()))
    else {
        return response;
    };
    let (found, limit) = found_limit;
    answer_http(ApiError::TooLarge(format!(
        "this request message is {found} bytes, over the limit of {limit} bytes ({setting}); \
         nothing was read or stored: send less in one call"
    )))
}

/// The sizes in tonic's refusal of a request message over its limit
/// ("Error, decoded message length too large: found N bytes, the limit
/// is: M bytes"): (N, M). `None` for any other message.
pub fn tonic_oversize(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

/// `e` as a whole gRPC response (trailers only), for layers that answer
/// before any service does (`limits::BodyBudgetLayer`).
pub fn answer_http<B: Default>(e: ApiError) -> tonic::codegen::http::Response<B> {
    e.into_status(&RequestId::new()).into_http()
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        // One error per call: the id generated here is the request's.
        e.into_status(&RequestId::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with the kind, gRPC code and HTTP status it maps to,
    /// and text the caller must never read.
    fn table() -> Vec<(ApiError, Kind, Code, u16, Option<&'static str>)> {
        vec![
            (
                ApiError::Unauthenticated("who?".into()),
                Kind::Unauthenticated,
                Code::Unauthenticated,
                401,
                None,
            ),
            (
                ApiError::PermissionDenied("no".into()),
                Kind::PermissionDenied,
                Code::PermissionDenied,
                403,
                None,
            ),
            (
                ApiError::InvalidArgument("bad".into()),
                Kind::InvalidArgument,
                Code::InvalidArgument,
                400,
                None,
            ),
            (
                ApiError::AlreadyExists("dup".into()),
                Kind::AlreadyExists,
                Code::AlreadyExists,
                409,
                None,
            ),
            (
                ApiError::ResumeFrom {
                    message: "resume there".into(),
                    cursor: vec![1, 2, 3],
                },
                Kind::FailedPrecondition,
                Code::FailedPrecondition,
                400,
                None,
            ),
            (
                ApiError::FailedPrecondition("later".into()),
                Kind::FailedPrecondition,
                Code::FailedPrecondition,
                400,
                None,
            ),
            (
                ApiError::NotFound("gone".into()),
                Kind::NotFound,
                Code::NotFound,
                404,
                None,
            ),
            (
                ApiError::ResourceExhausted {
                    message: "slow down".into(),
                    retry_after_ms: 1500,
                },
                Kind::ResourceExhausted,
                Code::ResourceExhausted,
                429,
                None,
            ),
            (
                ApiError::TooLarge("too big".into()),
                Kind::TooLarge,
                Code::ResourceExhausted,
                413,
                None,
            ),
            (
                ApiError::Unavailable("stopping".into()),
                Kind::Unavailable,
                Code::Unavailable,
                503,
                None,
            ),
            (
                ApiError::Internal("secret-internal-detail".into()),
                Kind::Internal,
                Code::Internal,
                500,
                Some("secret-internal-detail"),
            ),
            (
                ApiError::Store(StoreError::Closed),
                Kind::Unavailable,
                Code::Unavailable,
                503,
                Some("store is closed"),
            ),
            (
                ApiError::Store(StoreError::DiskFull(
                    "database or disk is full /var/lib/hub.db".into(),
                )),
                Kind::Unavailable,
                Code::Unavailable,
                503,
                Some("/var/lib/hub.db"),
            ),
            (
                ApiError::Store(StoreError::Io("disk I/O error at sector 9".into())),
                Kind::Unavailable,
                Code::Unavailable,
                503,
                Some("sector 9"),
            ),
            (
                ApiError::Store(StoreError::Sqlite("no such table: secret_table".into())),
                Kind::Internal,
                Code::Internal,
                500,
                Some("secret_table"),
            ),
        ]
    }

    #[test]
    fn tonic_oversize_reads_only_tonics_refusal() {
        assert_eq!(
            tonic_oversize(
                "Error, decoded message length too large: found 104857607 bytes, the limit is: 65536 bytes"
            ),
            Some((104_857_607, 65_536))
        );
        for other in [
            "",
            "Error, decoded message length too large: found x bytes, the limit is: 1 bytes",
            "Error, decoded message length too large: found 1 bytes, the limit is: 2 bytes and more",
            "Error, encoded message length too large: found 9 bytes, the limit is: 1 bytes",
            "the item is out of range",
        ] {
            assert_eq!(tonic_oversize(other), None, "{other}");
        }
    }

    #[test]
    fn every_variant_maps_to_one_kind_code_and_status() {
        for (error, kind, code, http, hidden) in table() {
            let shown = format!("{error:?}");
            let id = RequestId::new();
            let answer = error.answer(&id);
            assert_eq!(answer.kind, kind, "{shown}");
            assert_eq!(kind.grpc_code(), code, "{shown}");
            assert_eq!(http::status_of(kind).as_u16(), http, "{shown}");
            if let Some(hidden) = hidden {
                assert!(
                    !answer.message.contains(hidden),
                    "{shown} leaks: {}",
                    answer.message
                );
            }
            assert!(!answer.message.is_empty(), "{shown}");
        }
    }

    #[test]
    fn grpc_status_names_the_request_id_only_for_unavailable_and_internal() {
        for (error, kind, code, _, hidden) in table() {
            let shown = format!("{error:?}");
            let id = RequestId::new();
            let status = error.into_status(&id);
            assert_eq!(status.code(), code, "{shown}");
            let suffix = format!("(request id {id})");
            let meta = status
                .metadata()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok());
            if kind.names_request_id() {
                assert!(
                    status.message().ends_with(&suffix),
                    "{shown}: {}",
                    status.message()
                );
                assert_eq!(meta, Some(id.as_str()), "{shown}");
            } else {
                assert!(!status.message().contains("request id"), "{shown}");
                assert_eq!(meta, None, "{shown}");
            }
            if let Some(hidden) = hidden {
                assert!(
                    !status.message().contains(hidden),
                    "{shown}: {}",
                    status.message()
                );
            }
        }
    }

    #[test]
    fn resource_exhausted_keeps_its_retry_hint() {
        let status: Status = ApiError::ResourceExhausted {
            message: "slow down".into(),
            retry_after_ms: 1500,
        }
        .into();
        assert_eq!(
            status
                .metadata()
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok()),
            Some("1500")
        );
    }

    #[test]
    fn store_errors_convert_by_what_the_caller_can_do() {
        let cases = [
            (StoreError::Conflict("c".into()), Kind::AlreadyExists),
            (StoreError::Refused("r".into()), Kind::FailedPrecondition),
            (StoreError::NotFound("n".into()), Kind::FailedPrecondition),
            (StoreError::Token("t".into()), Kind::Unauthenticated),
            (StoreError::Closed, Kind::Unavailable),
            (StoreError::DiskFull("d".into()), Kind::Unavailable),
            (StoreError::Io("i".into()), Kind::Unavailable),
            (StoreError::Sqlite("s".into()), Kind::Internal),
            (StoreError::Postgres("p".into()), Kind::Internal),
            (StoreError::Unavailable("u".into()), Kind::Unavailable),
            (
                StoreError::Unsupported("x".into()),
                Kind::FailedPrecondition,
            ),
        ];
        for (e, kind) in cases {
            let shown = format!("{e:?}");
            assert_eq!(
                ApiError::from(e).answer(&RequestId::new()).kind,
                kind,
                "{shown}"
            );
        }
    }

    #[test]
    fn resume_from_tells_the_subscriber_where_to_resume() {
        use base64::Engine;
        let status = ApiError::ResumeFrom {
            message: "resume from the head".into(),
            cursor: vec![7; 37],
        }
        .into_status(&RequestId::new());
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "resume from the head");
        let sent = status.metadata().get("x-isac-resume-cursor").unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(sent.to_str().unwrap())
                .unwrap(),
            vec![7; 37]
        );
        let empty = ApiError::ResumeFrom {
            message: "from the beginning".into(),
            cursor: Vec::new(),
        }
        .into_status(&RequestId::new());
        assert_eq!(empty.metadata().get("x-isac-resume-cursor").unwrap(), "");
    }
}
