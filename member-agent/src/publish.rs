//! `member-agent publish`: build, sign with the member's own key, publish.

use isac_core::PAYLOAD_TYPE_STATEMENT_V1;
use isac_proto::v1 as pb;

use crate::draft::IndicatorDraft;
use crate::error::AgentError;
use crate::sync::Agent;

#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub revision: u32,
    pub sequence: u64,
    pub duplicate: bool,
}

pub async fn publish(agent: &Agent, draft: IndicatorDraft) -> Result<Published, AgentError> {
    let created = isac_core::time::format_rfc3339(crate::now());
    let statement = draft.into_statement(agent.org_id(), created)?;
    publish_statement(agent, &statement).await
}

pub async fn publish_bulletin(
    agent: &Agent,
    draft: crate::draft::BulletinDraft,
) -> Result<Published, AgentError> {
    let created = isac_core::time::format_rfc3339(crate::now());
    let statement = draft.into_statement(agent.org_id(), created)?;
    publish_statement(agent, &statement).await
}

/// Signs with the member's current key and publishes.
pub async fn publish_statement(
    agent: &Agent,
    statement: &isac_core::Statement,
) -> Result<Published, AgentError> {
    let envelope = agent
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, statement.canonical_bytes())?;
    publish_envelope(agent, envelope).await
}

/// Publishes an already-signed envelope (also used to re-send one).
pub async fn publish_envelope(
    agent: &Agent,
    envelope: isac_core::Envelope,
) -> Result<Published, AgentError> {
    let channel = agent.channel().await?;
    let resp = pb::publisher_client::PublisherClient::new(channel)
        .publish(pb::PublishRequest {
            envelope: Some(pb::Envelope {
                payload_type: envelope.payload_type,
                payload: envelope.payload,
                signatures: envelope
                    .signatures
                    .into_iter()
                    .map(|s| pb::Signature {
                        keyid: s.keyid,
                        sig: s.sig,
                    })
                    .collect(),
            }),
        })
        .await?
        .into_inner();
    Ok(Published {
        id: resp.id,
        revision: resp.revision,
        sequence: resp.sequence,
        duplicate: resp.duplicate,
    })
}
