//! Status: identity, hub connection, cursor, counts, key directory, sinks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use isac_proto::v1 as pb;

use super::html::{self, esc};
use super::{html_response, Authed, Console};

struct Counts {
    cursor: u64,
    items: u64,
    rejected: u64,
    by_tlp: BTreeMap<String, u64>,
    by_kind: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
}

/// Asks the hub for its signed key directory over the agent's mTLS
/// channel: proves the certificate, the pinned CA and the hub all work.
async fn hub_check(c: &Console) -> Result<String, String> {
    let call = async {
        let channel = c.agent().channel().await.map_err(|e| e.to_string())?;
        let r = pb::key_directory_client::KeyDirectoryClient::new(channel)
            .list_keys(pb::ListKeysRequest {})
            .await
            .map_err(|e| format!("{}: {}", e.code(), e.message()))?
            .into_inner();
        Ok::<_, String>(r.keys.len())
    };
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Ok(n)) => Ok(format!(
            "connected over mutual TLS; the hub lists {n} signing key(s)"
        )),
        Ok(Err(e)) => {
            c.agent().reset_channel();
            Err(e)
        }
        Err(_) => {
            c.agent().reset_channel();
            Err("no answer within 5 s".into())
        }
    }
}

pub async fn page(State(c): State<Console>, Extension(auth): Extension<Authed>) -> Response {
    let counts = c
        .blocking(|a| {
            let store = a.store.lock().expect("store");
            let mut counts = Counts {
                cursor: store.cursor()?,
                items: store.count_items()?,
                rejected: store.count_rejected()?,
                by_tlp: BTreeMap::new(),
                by_kind: BTreeMap::new(),
                by_status: BTreeMap::new(),
            };
            for i in store.list(u32::MAX)? {
                *counts.by_tlp.entry(i.tlp).or_default() += 1;
                *counts.by_kind.entry(i.kind).or_default() += 1;
                *counts.by_status.entry(i.status).or_default() += 1;
            }
            Ok(counts)
        })
        .await;
    let hub = hub_check(&c).await;
    let id = &c.agent().loaded.identity;
    let dir = super::held_directory(c.agent());
    let mut b = String::new();
    let _ = write!(
        b,
        "<dl class=\"summary\" id=\"status\">\
<dt>Organisation</dt><dd>{org}</dd><dt>Agent</dt><dd>{agent}</dd>\
<dt>Hub</dt><dd><code>{hub_url}</code></dd>\
<dt>Hub connection</dt><dd class=\"{hub_class}\">{hub_text}</dd>\
<dt>Hub CA (pinned)</dt><dd><code>{ca}</code></dd>\
<dt>Signing key</dt><dd><code>{key}</code></dd>\
<dt>Key directory held</dt><dd>{dir}</dd>\
<dt>Enrolled</dt><dd>{enrolled}</dd>\
<dt>State directory</dt><dd><code>{state}</code></dd>",
        org = esc(&id.org_id),
        agent = esc(&id.agent_name),
        hub_url = esc(&id.hub_url),
        hub_class = if hub.is_ok() { "sig-ok" } else { "sig-bad" },
        hub_text = esc(&match &hub {
            Ok(s) => s.clone(),
            Err(e) => format!("not reachable: {e}"),
        }),
        ca = esc(&id.ca_fingerprint),
        key = esc(&id.signing_key_id),
        dir = esc(&match &dir {
            Some(d) => format!(
                "version {}, {} key(s), expires {}",
                d.version,
                d.keys.len(),
                d.expires
            ),
            None => "none yet (run member-agent sync)".into(),
        }),
        enrolled = esc(&id.enrolled_at),
        state = esc(&c.agent().state.root.display().to_string()),
    );
    match &counts {
        Ok(n) => {
            let fmt = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = write!(
                b,
                "<dt>Cursor</dt><dd id=\"cursor\">{}</dd><dt>Items held</dt><dd id=\"count\">{}</dd>\
<dt>By TLP</dt><dd>{}</dd><dt>By kind</dt><dd>{}</dd><dt>By status</dt><dd>{}</dd>\
<dt>Refused (failed verification)</dt><dd>{}</dd>",
                n.cursor,
                n.items,
                esc(&fmt(&n.by_tlp)),
                esc(&fmt(&n.by_kind)),
                esc(&fmt(&n.by_status)),
                n.rejected
            );
        }
        Err(e) => {
            let _ = write!(
                b,
                "<dt>Local store</dt><dd class=\"sig-bad\">{}</dd>",
                esc(&super::error::classify("Not readable", e).message)
            );
        }
    }
    b.push_str("<dt>Sinks</dt><dd>");
    match &c.0.sinks {
        Some(sinks) => {
            b.push_str("<ul>");
            for s in sinks {
                let _ = write!(b, "<li>{}</li>", esc(s));
            }
            b.push_str("</ul>");
        }
        None => b.push_str(
            "configured on <code>member-agent run</code>, a separate process; \
start the console with <code>member-agent run --ui ADDR</code> to list them here",
        ),
    }
    b.push_str("</dd></dl>");
    html_response(
        StatusCode::OK,
        html::page("Status", "/status", c.agent().org_id(), &auth.csrf, &b),
    )
}
