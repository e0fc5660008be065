//! Status: identity, hub connection, cursor, counts, key directory, sinks.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use isac_client::Identity;
use isac_proto::v1 as pb;
use maud::{html, Markup};

use super::html::{self};
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
        // Fails over like the daemon does, so the page does not call a
        // replica that is down "not reachable" while another serves.
        let r = c
            .agent()
            .on_hub(|channel| async move {
                Ok(pb::key_directory_client::KeyDirectoryClient::new(channel)
                    .list_keys(pb::ListKeysRequest {})
                    .await?
                    .into_inner())
            })
            .await
            .map_err(|e| e.to_string())?;
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
    // The URL the agent last used (`run` records it when it fails over),
    // which may not be the one it enrolled with.
    let hub_in_use = c
        .blocking(|a| a.store.lock().expect("store").hub_in_use())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| c.agent().hub_url().to_owned());
    let directory = match super::held_directory(c.agent()) {
        Some(d) => format!(
            "version {}, {} key(s), expires {}",
            d.version,
            d.keys.len(),
            d.expires
        ),
        None => "none yet (run member-agent sync)".into(),
    };
    let view = View {
        identity: &c.agent().loaded.identity,
        hub_in_use,
        hubs: c.agent().hubs(),
        state_root: c.agent().state.root.display().to_string(),
        hub,
        directory,
        counts: counts.map_err(|e| super::error::classify("Not readable", &e).message),
        sinks: c.0.sinks.as_deref(),
    };
    let (alert, checkpoint) = c
        .blocking(|a| Ok((a.log_alert()?, a.trusted_checkpoint()?)))
        .await
        .unwrap_or((None, None));
    let log = checkpoint.map_or("no checkpoint verified yet".to_owned(), |t| {
        format!(
            "verified checkpoint size {} root {} (log {})",
            t.size,
            t.reference().root,
            t.origin
        )
    });
    html_response(
        StatusCode::OK,
        html::page(
            "Status",
            "/status",
            c.agent().org_id(),
            &auth.csrf,
            maud::html! {
                (html::log_alert_banner(alert.as_ref()))
                (body(&view))
                p.log-checkpoint { "Transparency log: " (log) }
            },
        ),
    )
}

/// What the status page shows, gathered before rendering.
struct View<'a> {
    identity: &'a Identity,
    /// The hub URL in use, and all the agent fails over between.
    hub_in_use: String,
    hubs: &'a [String],
    state_root: String,
    /// The hub check's answer, or why it failed.
    hub: Result<String, String>,
    directory: String,
    /// The local store's counts, or what the page may say about its failure.
    counts: Result<Counts, String>,
    /// The daemon's sinks; `None` when the console runs on its own.
    sinks: Option<&'a [String]>,
}

fn body(v: &View) -> Markup {
    let id = v.identity;
    let joined = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        dl.summary #status {
            dt { "Organisation" } dd { (id.org_id) }
            dt { "Agent" } dd { (id.agent_name) }
            dt { "Hub" } dd #hub-in-use { code { (v.hub_in_use) } }
            @if v.hubs.len() > 1 {
                dt { "Hub URLs (fail-over order)" }
                dd { @for (i, h) in v.hubs.iter().enumerate() { @if i > 0 { ", " } code { (h) } } }
            }
            @if id.hub_url != v.hub_in_use {
                dt { "Enrolled at" } dd { code { (id.hub_url) } }
            }
            dt { "Hub connection" }
            @match &v.hub {
                Ok(s) => dd.sig-ok { (s) },
                Err(e) => dd.sig-bad { "not reachable: " (e) },
            }
            dt { "Hub CA (pinned)" } dd { code { (id.ca_fingerprint) } }
            dt { "Signing key" } dd { code { (id.signing_key_id) } }
            dt { "Key directory held" } dd { (v.directory) }
            dt { "Enrolled" } dd { (id.enrolled_at) }
            dt { "State directory" } dd { code { (v.state_root) } }
            @match &v.counts {
                Ok(n) => {
                    dt { "Cursor" } dd #cursor { (n.cursor) }
                    dt { "Items held" } dd #count { (n.items) }
                    dt { "By TLP" } dd { (joined(&n.by_tlp)) }
                    dt { "By kind" } dd { (joined(&n.by_kind)) }
                    dt { "By status" } dd { (joined(&n.by_status)) }
                    dt { "Refused (failed verification)" } dd { (n.rejected) }
                },
                Err(message) => {
                    dt { "Local store" } dd.sig-bad { (message) }
                },
            }
            dt { "Sinks" }
            dd {
                @match v.sinks {
                    Some(sinks) => ul { @for s in sinks { li { (s) } } },
                    None => {
                        "configured on " code { "member-agent run" } ", a separate process; \
    start the console with " code { "member-agent run --ui ADDR" } " to list them here"
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;

    #[test]
    fn the_status_page_shows_hostile_text_as_text() {
        let h = hostile::all();
        let identity = Identity {
            hub_url: h.clone(),
            org_id: h.clone(),
            agent_name: h.clone(),
            signing_key_id: h.clone(),
            ca_fingerprint: h.clone(),
            enrolled_at: h.clone(),
            hub_directory_key_id: h.clone(),
            hubs: vec![h.clone()],
        };
        let sinks = [h.clone()];
        let hubs = [h.clone(), format!("{h}2")];
        let view = View {
            identity: &identity,
            hub_in_use: format!("{h}2"),
            hubs: &hubs,
            state_root: h.clone(),
            hub: Err(h.clone()),
            directory: h.clone(),
            counts: Err(h.clone()),
            sinks: Some(&sinks),
        };
        let page = body(&view).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("<dd class=\"sig-bad\">not reachable: "));
        assert!(page.contains("Hub URLs (fail-over order)"), "{page}");
        assert!(page.contains("Enrolled at"), "{page}");
        let counted = |name: &str| BTreeMap::from([(name.to_owned(), 2)]);
        let view = View {
            hub: Ok(h.clone()),
            counts: Ok(Counts {
                cursor: 5,
                items: 6,
                rejected: 7,
                by_tlp: counted(&h),
                by_kind: counted(&h),
                by_status: counted(&h),
            }),
            sinks: None,
            ..view
        };
        let page = body(&view).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("<dd id=\"cursor\">5</dd>"), "{page}");
        assert!(page.contains("<code>member-agent run --ui ADDR</code>"));
    }
}
