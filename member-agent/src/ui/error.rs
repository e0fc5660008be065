//! The console's one error model: [`classify`] maps an `AgentError` to a
//! status and what the analyst may read, and [`page`] renders every error
//! page. What the analyst cannot act on (a local store or I/O failure, a
//! key directory that does not verify) shows a human message and a request
//! id; the error's own text goes to the log under that id, never to a page.
//!
//! | error | status | the page shows |
//! |---|---|---|
//! | `Usage` | 400 | the message (the analyst's own input) |
//! | `Hub` UNAVAILABLE, RESOURCE_EXHAUSTED | 503 | the hub's message (written for callers) |
//! | `Hub` other codes | 422 | the hub's message |
//! | `Connect` | 502 | "the hub could not be reached" + request id |
//! | `Directory`, `Pin` | 502 | "the hub's answer did not verify" + request id |
//! | anything else | 500 | "internal error" + request id |

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use maud::Markup;

use super::{html, html_response, Authed, Console};
use crate::error::AgentError;

pub use isac_core::request_id::RequestId;

/// What an error page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub status: StatusCode,
    /// Text for the analyst (escaped when rendered).
    pub message: String,
    /// Set when the message names it (the detail is in the log).
    pub request_id: Option<RequestId>,
}

/// The one mapping from an agent error to what the console answers.
/// `doing` says what failed ("sighting not sent"). Details the analyst
/// must not see are logged here, under a fresh request id.
pub fn classify(doing: &str, e: &AgentError) -> Shown {
    let shown = |status, message: String| Shown {
        status,
        message: format!("{doing}: {message}"),
        request_id: None,
    };
    let hidden = |status, message: &str| {
        let id = RequestId::new();
        tracing::error!(request_id = %id, error = %e, "console: {doing}");
        Shown {
            status,
            message: format!("{doing}: {message} (request id {id})"),
            request_id: Some(id),
        }
    };
    match e {
        AgentError::Usage(m) => shown(StatusCode::BAD_REQUEST, m.clone()),
        AgentError::Hub { code, message } => match code {
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted => shown(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the hub cannot answer now ({message}); try again shortly"),
            ),
            _ => shown(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the hub refused: {message}"),
            ),
        },
        AgentError::Connect { .. } => hidden(
            StatusCode::BAD_GATEWAY,
            "the hub could not be reached; try again, and check `member-agent status`",
        ),
        AgentError::Directory(_) | AgentError::Pin(_) => hidden(
            StatusCode::BAD_GATEWAY,
            "the hub's answer did not verify, so nothing was used; tell the agent's operator",
        ),
        _ => hidden(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the console hit an internal error; the agent's operator can find details in its log",
        ),
    }
}

/// The one error page, with the request id (when there is one) in
/// `X-Request-Id` too.
pub fn page(c: &Console, auth: &Authed, shown: &Shown) -> Response {
    let mut r = html_response(shown.status, markup(c.agent().org_id(), &auth.csrf, shown));
    if let Some(id) = &shown.request_id {
        if let Ok(v) = HeaderValue::from_str(id.as_str()) {
            r.headers_mut().insert("x-request-id", v);
        }
    }
    r
}

/// The error page's HTML: the layout around one notice.
fn markup(org: &str, csrf: &str, shown: &Shown) -> Markup {
    html::page(
        "Error",
        "",
        org,
        csrf,
        html::notice("error", &shown.message),
    )
}

/// A page for an error the console decides itself (unknown id, bad form).
pub fn plain(status: StatusCode, message: &str) -> Shown {
    Shown {
        status,
        message: message.to_owned(),
        request_id: None,
    }
}

/// [`classify`] then [`page`].
pub fn fail(c: &Console, auth: &Authed, doing: &str, e: &AgentError) -> Response {
    page(c, auth, &classify(doing, e))
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;

    #[test]
    fn the_error_page_shows_hostile_text_as_text() {
        let h = hostile::all();
        let page = markup(&h, &h, &plain(StatusCode::BAD_REQUEST, &h)).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("<p class=\"notice notice-error\" role=\"alert\">"));
    }

    #[test]
    fn every_agent_error_maps_to_one_status_and_hides_what_the_analyst_cannot_use() {
        let io = || AgentError::Io {
            path: "/secret/state/agent.db".into(),
            source: std::io::Error::other("disk exploded"),
        };
        let cases: Vec<(AgentError, u16, bool, &str)> = vec![
            (AgentError::Usage("count must be 1+".into()), 400, false, ""),
            (
                AgentError::Hub {
                    code: tonic::Code::InvalidArgument,
                    message: "bad purl".into(),
                },
                422,
                false,
                "",
            ),
            (
                AgentError::Hub {
                    code: tonic::Code::Unavailable,
                    message: "disk full (request id ab)".into(),
                },
                503,
                false,
                "",
            ),
            (
                AgentError::Hub {
                    code: tonic::Code::ResourceExhausted,
                    message: "slow down".into(),
                },
                503,
                false,
                "",
            ),
            (
                AgentError::Connect {
                    url: "https://hub:7443".into(),
                    message: "tcp connect error 111".into(),
                },
                502,
                true,
                "tcp connect error",
            ),
            (
                AgentError::Directory("signature mismatch at v7".into()),
                502,
                true,
                "v7",
            ),
            (
                AgentError::Pin("fingerprint aa:bb".into()),
                502,
                true,
                "aa:bb",
            ),
            (
                AgentError::Crypto("EVP_DigestSign failed".into()),
                500,
                true,
                "EVP_",
            ),
            (
                AgentError::Store(rusqlite::Error::InvalidQuery),
                500,
                true,
                "Query",
            ),
            (io(), 500, true, "/secret/state"),
            (
                AgentError::Invalid("console task: panicked".into()),
                500,
                true,
                "panicked",
            ),
            (
                AgentError::NotEnrolled("/secret/state".into()),
                500,
                true,
                "/secret/state",
            ),
            (AgentError::Matched(3), 500, true, "3 dependency"),
        ];
        for (e, status, hidden, leak) in cases {
            let shown = classify("not done", &e);
            assert_eq!(shown.status.as_u16(), status, "{e:?}");
            assert!(shown.message.starts_with("not done: "), "{}", shown.message);
            match (&shown.request_id, hidden) {
                (Some(id), true) => {
                    assert!(
                        shown.message.contains(&format!("(request id {id})")),
                        "{}",
                        shown.message
                    );
                    assert!(
                        !shown.message.contains(leak),
                        "{e:?} leaks: {}",
                        shown.message
                    );
                }
                (None, false) => {}
                _ => panic!("{e:?}: request id {:?}", shown.request_id),
            }
        }
    }
}
