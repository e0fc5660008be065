//! `show`: one held item in full.

use clap::Args;

use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct ShowArgs {
    id: String,
    /// Print only the DSSE envelope (JSON, one line) exactly as verified and
    /// stored: `payloadType`, base64 `payload`, `signatures` with `keyid` and
    /// base64 `sig`.
    #[arg(long)]
    envelope: bool,
}

pub async fn run(state: &StateDir, args: ShowArgs) -> Result<(), AgentError> {
    let id = args.id;
    let agent = Agent::open(state)?;
    let held = agent.store.lock().expect("store").show(&id)?;
    let (item, statement, envelope) =
        held.ok_or_else(|| AgentError::Usage(format!("{id} is not in the local store")))?;
    if args.envelope {
        println!("{envelope}");
        return Ok(());
    }
    let digest = isac_core::Envelope::from_json(&envelope)
        .map(|e| e.digest_ref())
        .map_err(|e| AgentError::Invalid(format!("held envelope of {id}: {e}")))?;
    let doc = serde_json::json!({
        "summary": item,
        "statement": serde_json::from_str::<serde_json::Value>(&statement).unwrap_or_default(),
        "envelope_digest": digest,
        "envelope": serde_json::from_str::<serde_json::Value>(&envelope).unwrap_or_default(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| AgentError::Invalid(e.to_string()))?
    );
    Ok(())
}
