//! The HTTP half of the one error mapping: an [`ApiError`] (through
//! [`ApiError::answer`]) as an HTTP status and a TAXII 2.1 error message
//! (section 3.6.1). Every answer carries the request id in `X-Request-Id`;
//! a 500 or 503 body also names it (`error_id`, `details.request_id`), like
//! gRPC INTERNAL and UNAVAILABLE. Other error bodies stay fixed text, so a
//! hidden object's 404 is byte-identical to a missing one's.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::{ApiError, Kind, RequestId};

/// The response header naming the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::PermissionDenied => StatusCode::FORBIDDEN,
        Kind::InvalidArgument | Kind::FailedPrecondition => StatusCode::BAD_REQUEST,
        Kind::AlreadyExists => StatusCode::CONFLICT,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn title_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Unauthenticated => "Authentication required",
        Kind::PermissionDenied => "Not allowed",
        Kind::InvalidArgument | Kind::FailedPrecondition => "Bad request",
        Kind::AlreadyExists => "Conflict",
        Kind::NotFound => "Not found",
        Kind::ResourceExhausted => "Too many requests",
        Kind::TooLarge => "Request too large",
        Kind::Unavailable => "Service unavailable",
        Kind::Internal => "Internal error",
    }
}

/// An error as an HTTP edge answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub title: String,
    /// Human text, no internal detail.
    pub description: String,
    /// Seconds for `Retry-After` (503 and 429).
    pub retry_after_secs: Option<u64>,
    /// The body names the request id (500, 503).
    pub names_request_id: bool,
}

impl HttpError {
    /// An error the edge itself decides (bad query, unknown path, ...).
    pub fn new(status: StatusCode, title: &str, description: &str) -> HttpError {
        HttpError {
            status,
            title: title.to_owned(),
            description: description.to_owned(),
            retry_after_secs: None,
            names_request_id: false,
        }
    }

    /// The TAXII 2.1 error message for this error.
    pub fn taxii_body(&self, request_id: &RequestId) -> Value {
        let mut body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        if self.names_request_id {
            body["error_id"] = json!(request_id.as_str());
            body["details"] = json!({ "request_id": request_id.as_str() });
        }
        body
    }
}

impl ApiError {
    /// [`ApiError::answer`] as an HTTP error (details logged with `request_id`).
    pub fn into_http(self, request_id: &RequestId) -> HttpError {
        let answer = self.answer(request_id);
        let retry_after_secs = match answer.kind {
            Kind::Unavailable => Some(5),
            _ => answer.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1)),
        };
        HttpError {
            status: status_of(answer.kind),
            title: title_of(answer.kind).to_owned(),
            description: answer.message,
            retry_after_secs,
            names_request_id: answer.kind.names_request_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn store_failures_answer_503_or_500_without_their_text() {
        let id = RequestId::new();
        let cases = [
            (StoreError::Closed, 503, "the store is closed"),
            (
                StoreError::DiskFull("SQLITE_FULL on /data/hub.db".into()),
                503,
                "/data/hub.db",
            ),
            (
                StoreError::Io("SQLITE_IOERR_READ".into()),
                503,
                "SQLITE_IOERR",
            ),
            (
                StoreError::Sqlite("no such column: secret".into()),
                500,
                "secret",
            ),
        ];
        for (e, status, hidden) in cases {
            let http = ApiError::from(e).into_http(&id);
            assert_eq!(http.status.as_u16(), status);
            let body = http.taxii_body(&id).to_string();
            assert!(!body.contains(hidden), "{body}");
            assert!(
                !body.contains("sqlite") && !body.contains("SQLITE"),
                "{body}"
            );
        }
    }

    #[test]
    fn the_taxii_error_body_names_the_request_id() {
        let id = RequestId::new();
        let http = ApiError::Internal("boom".into()).into_http(&id);
        let body = http.taxii_body(&id);
        assert_eq!(body["http_status"], "500");
        assert_eq!(body["error_id"], id.as_str());
        assert_eq!(body["details"]["request_id"], id.as_str());
        assert_eq!(body["title"], "Internal error");
        assert!(!body.to_string().contains("boom"));
        let unavailable = ApiError::from(StoreError::Closed).into_http(&id);
        assert_eq!(
            unavailable.taxii_body(&id)["details"]["request_id"],
            id.as_str()
        );
    }

    #[test]
    fn client_error_bodies_are_fixed_text() {
        // A hidden object's 404 must be byte-identical to a missing one's.
        let a = ApiError::NotFound("no such object".into()).into_http(&RequestId::new());
        let b = ApiError::NotFound("no such object".into()).into_http(&RequestId::new());
        assert_eq!(
            a.taxii_body(&RequestId::new()).to_string(),
            b.taxii_body(&RequestId::new()).to_string()
        );
        let fixed = HttpError::new(StatusCode::NOT_FOUND, "Not found", "nothing");
        assert!(fixed
            .taxii_body(&RequestId::new())
            .get("error_id")
            .is_none());
    }

    #[test]
    fn retry_after_for_unavailable_and_rate_limits_only() {
        let id = RequestId::new();
        assert_eq!(
            ApiError::Unavailable("x".into())
                .into_http(&id)
                .retry_after_secs,
            Some(5)
        );
        let limited = ApiError::ResourceExhausted {
            message: "slow".into(),
            retry_after_ms: 1200,
        };
        assert_eq!(limited.into_http(&id).retry_after_secs, Some(2));
        assert_eq!(
            ApiError::NotFound("x".into())
                .into_http(&id)
                .retry_after_secs,
            None
        );
    }
}
