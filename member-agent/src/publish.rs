//! `member-agent publish`: build, sign with the member's own key, publish.

use isac_core::audience::AudienceOpening;
use isac_proto::v1 as pb;

use crate::draft::{IndicatorDraft, Prepared};
use crate::error::AgentError;
use crate::scrub::Choice;
use crate::sync::Agent;

#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub revision: u32,
    pub duplicate: bool,
    /// What the scan before signing replaced or let through.
    pub notes: Vec<String>,
}

pub async fn publish(agent: &Agent, draft: IndicatorDraft) -> Result<Published, AgentError> {
    publish_with(agent, draft, &agent.scrub_choice).await
}

/// [`publish`] with this call's own choice about scan findings (the
/// console's form), instead of the agent's (the command line's flags).
pub async fn publish_with(
    agent: &Agent,
    draft: IndicatorDraft,
    choice: &Choice,
) -> Result<Published, AgentError> {
    let created = isac_core::time::format_rfc3339(agent.clock.now());
    let prepared = draft.into_prepared(agent.org_id(), created)?;
    publish_prepared_with(agent, &prepared, choice).await
}

pub async fn publish_bulletin(
    agent: &Agent,
    draft: crate::draft::BulletinDraft,
) -> Result<Published, AgentError> {
    publish_bulletin_with(agent, draft, &agent.scrub_choice).await
}

pub async fn publish_bulletin_with(
    agent: &Agent,
    draft: crate::draft::BulletinDraft,
    choice: &Choice,
) -> Result<Published, AgentError> {
    let created = isac_core::time::format_rfc3339(agent.clock.now());
    let prepared = draft.into_prepared(agent.org_id(), created)?;
    publish_prepared_with(agent, &prepared, choice).await
}

/// Scans (`crate::scrub`: refused, redacted or let through as the person
/// chose), signs with the member's current key and publishes, with the
/// audience openings.
pub async fn publish_prepared(agent: &Agent, prepared: &Prepared) -> Result<Published, AgentError> {
    publish_prepared_with(agent, prepared, &agent.scrub_choice).await
}

async fn publish_prepared_with(
    agent: &Agent,
    prepared: &Prepared,
    choice: &Choice,
) -> Result<Published, AgentError> {
    let mut statement = prepared.statement.clone();
    let outcome = agent.scrub.apply(&mut statement, choice)?;
    let envelope = agent.loaded.signing_key.sign_statement(&statement)?;
    let mut request = pb::PublishRequest::signed(envelope, &prepared.openings);
    request.scrub_overrides = outcome.overrides();
    let mut published = send(agent, request).await?;
    published.notes = outcome.notes();
    Ok(published)
}

/// Publishes an already-signed envelope with no audience (also to re-send one).
pub async fn publish_envelope(
    agent: &Agent,
    envelope: isac_core::Envelope,
) -> Result<Published, AgentError> {
    publish_with_openings(agent, envelope, &[]).await
}

pub async fn publish_with_openings(
    agent: &Agent,
    envelope: isac_core::Envelope,
    openings: &[AudienceOpening],
) -> Result<Published, AgentError> {
    send(agent, pb::PublishRequest::signed(envelope, openings)).await
}

async fn send(agent: &Agent, request: pb::PublishRequest) -> Result<Published, AgentError> {
    let resp = agent
        .on_hub(|channel| {
            let request = request.clone();
            async move {
                Ok(pb::publisher_client::PublisherClient::new(channel)
                    .publish(request)
                    .await?
                    .into_inner())
            }
        })
        .await?;
    Ok(Published {
        id: resp.id,
        revision: resp.revision,
        duplicate: resp.duplicate,
        notes: Vec::new(),
    })
}

/// The TLP for a statement about `target`: the target's own level as held
/// locally, or a stricter one asked for.
fn derived_tlp(
    agent: &Agent,
    target: &str,
    asked: Option<&str>,
) -> Result<isac_core::Tlp, AgentError> {
    let held = agent
        .store
        .lock()
        .expect("local store lock")
        .item_tlp(target)?
        .ok_or_else(|| {
            AgentError::Usage(format!(
                "{target} is not in your local store; run `member-agent sync` first"
            ))
        })?;
    let held: isac_core::Tlp = held
        .parse()
        .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Invalid(e.to_string()))?;
    match asked {
        None => Ok(held),
        Some(a) => {
            let a: isac_core::Tlp = a
                .parse()
                .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Usage(e.to_string()))?;
            if !isac_core::tlp::derived_tlp_ok(a, held) {
                return Err(AgentError::Usage(format!(
                    "{a} is less restricted than the item ({held})"
                )));
            }
            Ok(a)
        }
    }
}

fn parse_target(id: &str) -> Result<uuid::Uuid, AgentError> {
    uuid::Uuid::parse_str(id)
        .map_err(|_| AgentError::Usage(format!("`{id}` is not a statement id (UUID)")))
}

/// Reports a sighting of `target`; anonymous unless `named`.
pub async fn sight(
    agent: &Agent,
    target: &str,
    count: u32,
    named: bool,
    tlp: Option<&str>,
) -> Result<Published, AgentError> {
    let indicator = parse_target(target)?;
    let tlp = derived_tlp(agent, target, tlp)?;
    let now = isac_core::time::format_rfc3339(agent.clock.now());
    let body = isac_core::Body::Sighting(isac_core::statement::Sighting {
        indicator,
        count,
        first_seen: now.clone(),
        last_seen: now.clone(),
    });
    // An audience-bound level needs an audience: reuse none; the hub checks
    // entitlement against the indicator itself. But an AMBER item from
    // another hub came through a cross-hub group: the sighting goes to that
    // group, so it stays inside it and crosses back to the origin.
    let audience = federated_group_audience(agent, target, tlp)?;
    let prepared = crate::draft::new_statement(agent.org_id(), now, tlp, &audience, !named, body)?;
    publish_prepared(agent, &prepared).await
}

/// The cross-hub groups through which an AMBER item from another hub
/// reached this member (`group:NAME` entries), for a statement about it
/// at that level; none otherwise.
fn federated_group_audience(
    agent: &Agent,
    target: &str,
    tlp: isac_core::Tlp,
) -> Result<Vec<String>, AgentError> {
    if tlp != isac_core::Tlp::Amber {
        return Ok(Vec::new());
    }
    let store = agent.store.lock().expect("local store lock");
    if !store.is_federated(target)? {
        return Ok(Vec::new());
    }
    Ok(store
        .named_as(target)?
        .into_iter()
        .filter(|e| e.starts_with("group:"))
        .collect())
}

/// Withdraws `target`.
pub async fn retract(agent: &Agent, target: &str, reason: &str) -> Result<Published, AgentError> {
    let t = parse_target(target)?;
    let tlp = derived_tlp(agent, target, None)?;
    let now = isac_core::time::format_rfc3339(agent.clock.now());
    let body = isac_core::Body::Retraction(isac_core::statement::Retraction {
        target: t,
        reason: reason.to_owned(),
    });
    // An AMBER item shared through a cross-hub group: the retraction goes
    // to the same audience, so it crosses to the peer hubs that got it.
    let audience = group_shared_audience(agent, target, tlp)?;
    let prepared = crate::draft::new_statement(agent.org_id(), now, tlp, &audience, false, body)?;
    publish_prepared(agent, &prepared).await
}

/// For a statement at AMBER about an item that names a sharing group in
/// what this member was shown of its audience: those entries (the whole
/// audience for its source), so the statement reaches what the item
/// reached, across hubs too; none otherwise.
fn group_shared_audience(
    agent: &Agent,
    target: &str,
    tlp: isac_core::Tlp,
) -> Result<Vec<String>, AgentError> {
    if tlp != isac_core::Tlp::Amber {
        return Ok(Vec::new());
    }
    let named = agent
        .store
        .lock()
        .expect("local store lock")
        .named_as(target)?;
    if named.iter().any(|e| e.starts_with("group:")) {
        Ok(named)
    } else {
        Ok(Vec::new())
    }
}

/// Publishes many signed envelopes in one `PublishBatch` call (at most
/// 1,000); returns one outcome per item, in order.
pub async fn publish_batch(
    agent: &Agent,
    items: Vec<(isac_core::Envelope, Vec<AudienceOpening>)>,
) -> Result<Vec<Result<Published, String>>, AgentError> {
    let items = items.into_iter().map(|(e, o)| (e, o, Vec::new())).collect();
    publish_batch_noted(agent, items).await
}

/// [`publish_batch`] with, for each item, the scan overrides the hub audits.
pub async fn publish_batch_noted(
    agent: &Agent,
    items: Vec<(isac_core::Envelope, Vec<AudienceOpening>, Vec<String>)>,
) -> Result<Vec<Result<Published, String>>, AgentError> {
    let requests = items
        .into_iter()
        .map(|(envelope, openings, overrides)| {
            let mut r = pb::PublishRequest::signed(envelope, &openings);
            r.scrub_overrides = overrides;
            r
        })
        .collect();
    let batch = pb::PublishBatchRequest { items: requests };
    let resp = agent
        .on_hub(|channel| {
            let batch = batch.clone();
            async move {
                Ok(pb::publisher_client::PublisherClient::new(channel)
                    .max_encoding_message_size(8 << 20)
                    .publish_batch(batch)
                    .await?
                    .into_inner())
            }
        })
        .await?;
    Ok(resp
        .results
        .into_iter()
        .map(|r| match r.accepted {
            Some(a) => Ok(Published {
                id: a.id,
                revision: a.revision,
                duplicate: a.duplicate,
                notes: Vec::new(),
            }),
            None => Err(format!(
                "{:?}: {}",
                tonic::Code::from_i32(r.code),
                r.message
            )),
        })
        .collect())
}
