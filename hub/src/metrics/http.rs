//! The plain-HTTP `/metrics` listener and the exposition text.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::app::HubState;
use crate::tls::{Listener, Refusal, Timeout};

/// The exposition text for `state`: counters, open streams, head, per-member
/// ack lag (read from the store), store commit latency.
pub async fn render(state: &HubState) -> String {
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "# HELP isac_publish_accepted_total Statements accepted by Publish and PublishBatch.\n\
         # TYPE isac_publish_accepted_total counter\n\
         isac_publish_accepted_total {}",
        m.publish_accepted.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP isac_publish_refused_total Statements refused, by gRPC status code.\n\
         # TYPE isac_publish_refused_total counter"
    );
    for (code, n) in m.publish_refused.lock().expect("metrics lock").iter() {
        let _ = writeln!(out, "isac_publish_refused_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP isac_deliveries_total Items sent on subscription streams.\n\
         # TYPE isac_deliveries_total counter\n\
         isac_deliveries_total {}",
        m.deliveries.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP isac_open_streams Open subscription streams.\n\
         # TYPE isac_open_streams gauge\n\
         isac_open_streams {}",
        state.limits.open_streams()
    );
    let conns = &state.connections;
    let _ = writeln!(
        out,
        "# HELP isac_open_connections Open TLS connections (handshakes included), by listener.\n\
         # TYPE isac_open_connections gauge"
    );
    for l in Listener::ALL {
        let _ = writeln!(
            out,
            "isac_open_connections{{listener=\"{}\"}} {}",
            l.label(),
            conns.open(l)
        );
    }
    let _ = writeln!(
        out,
        "# HELP isac_connections_refused_total Connections closed right after accept, before the TLS handshake, because a cap was reached (max_connections_per_source, or the listener's total).\n\
         # TYPE isac_connections_refused_total counter"
    );
    for l in Listener::ALL {
        for r in Refusal::ALL {
            let _ = writeln!(
                out,
                "isac_connections_refused_total{{listener=\"{}\",reason=\"{}\"}} {}",
                l.label(),
                r.label(),
                conns.refused(l, r)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP isac_no_cert_connections_closed_total gRPC connections without a client certificate closed by the hub (idle: no_cert_idle_timeout_secs; max_age: no_cert_max_age_secs).\n\
         # TYPE isac_no_cert_connections_closed_total counter"
    );
    for t in Timeout::ALL {
        let _ = writeln!(
            out,
            "isac_no_cert_connections_closed_total{{reason=\"{}\"}} {}",
            t.label(),
            conns.timed_out_count(t)
        );
    }
    let head = state.store.head();
    let _ = writeln!(
        out,
        "# HELP isac_head_sequence Highest committed statement sequence.\n\
         # TYPE isac_head_sequence gauge\n\
         isac_head_sequence {head}"
    );
    let _ = writeln!(
        out,
        "# HELP isac_member_ack_lag Statements between the head and the furthest cursor a member's current agents acknowledged.\n\
         # TYPE isac_member_ack_lag gauge"
    );
    match state.store.list_members().await {
        Ok(members) => {
            for (member, _, _) in members {
                if member.status == isac_core::membership::MemberStatus::Removed {
                    continue;
                }
                let acked = match state.store.agents_of(&member.org_id).await {
                    Ok(agents) => agents
                        .iter()
                        .filter(|a| a.superseded_at.is_none())
                        .map(|a| a.acked_seq)
                        .max(),
                    Err(_) => continue,
                };
                let Some(acked) = acked else { continue };
                let _ = writeln!(
                    out,
                    "isac_member_ack_lag{{org=\"{}\"}} {}",
                    escape_label(&member.org_id),
                    head.saturating_sub(acked)
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot list members"),
    }
    if !state.witnesses.witnesses.is_empty() {
        let _ = writeln!(
            out,
            "# HELP isac_log_witness_up Whether the witness's last add-checkpoint succeeded (1) or not (0).\n\
             # TYPE isac_log_witness_up gauge"
        );
        let all: Vec<_> = state
            .witnesses
            .witnesses
            .iter()
            .map(|w| (escape_label(&w.name), w.status()))
            .collect();
        for (name, st) in &all {
            let _ = writeln!(
                out,
                "isac_log_witness_up{{witness=\"{name}\"}} {}",
                u8::from(st.up)
            );
        }
        let _ = writeln!(
            out,
            "# HELP isac_log_witness_cosigned_size Largest checkpoint size the witness cosigned for this hub.\n\
             # TYPE isac_log_witness_cosigned_size gauge"
        );
        for (name, st) in &all {
            let _ = writeln!(
                out,
                "isac_log_witness_cosigned_size{{witness=\"{name}\"}} {}",
                st.cosigned_size.unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP isac_log_witness_failures_total Checkpoint submissions to the witness that got no cosignature.\n\
             # TYPE isac_log_witness_failures_total counter"
        );
        for (name, st) in &all {
            let _ = writeln!(
                out,
                "isac_log_witness_failures_total{{witness=\"{name}\"}} {}",
                st.failures_total
            );
        }
    }
    state.store.commit_latency().write(
        &mut out,
        "isac_store_commit_seconds",
        "Time from BEGIN to COMMIT of one group commit by the store writer.",
    );
    out
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` (plain HTTP/1.1) until the hub stops.
pub async fn serve(listener: TcpListener, state: HubState) {
    let mut stop = state.shutdown.clone();
    loop {
        let tcp = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn respond(state: &HubState, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(state).await,
        ),
        // For load balancers and probes: 503 while the database is
        // unavailable, so traffic goes to a replica that still has it.
        (&Method::GET, "/healthz") => match state.store.watch_unavailable().borrow().clone() {
            None => (
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "serving\n".to_owned(),
            ),
            // The reason (hosts, ports) goes to the log, not to an
            // unauthenticated listener.
            Some(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "not serving: the database is unavailable; see the hub's log\n".to_owned(),
            ),
        },
        (_, "/metrics") | (_, "/healthz") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at /metrics, health at /healthz\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}
