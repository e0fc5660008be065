//! `exposure list` and `exposure report`: the watched applications'
//! exposures now, and reporting one back to the ISAC as a sighting.

use clap::Subcommand;

use crate::watch::Exposure;
use crate::{Agent, AgentError, StateDir};

#[derive(Subcommand)]
pub enum ExposureCommand {
    /// What the watched applications are exposed to now (by the held
    /// indicators), with component, path, indicator and since when.
    List {
        /// Only this application.
        #[arg(long, value_name = "APP")]
        application: Option<String>,
        /// One JSON object per line (the exposure event's keys) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Report an exposure back as a sighting of the indicator (anonymous
    /// unless --named; at the indicator's TLP or stricter).
    Report {
        /// The watched application.
        #[arg(value_name = "APP")]
        application: String,
        /// The indicator it is exposed to.
        #[arg(value_name = "INDICATOR_ID")]
        indicator: String,
        /// How many times it was seen (default: the exposed components).
        #[arg(long)]
        count: Option<u32>,
        /// Let others see that your organisation reported it.
        #[arg(long)]
        named: bool,
        /// Stricter TLP than the indicator's (never looser).
        #[arg(long)]
        tlp: Option<String>,
    },
}

pub async fn run(state: &StateDir, command: ExposureCommand) -> Result<(), AgentError> {
    let agent = Agent::open(state)?;
    match command {
        ExposureCommand::List { application, json } => {
            let found: Vec<Exposure> = current(&agent)?
                .into_iter()
                .filter(|e| application.as_ref().is_none_or(|a| *a == e.application))
                .collect();
            print(&found, json)
        }
        ExposureCommand::Report {
            application,
            indicator,
            count,
            named,
            tlp,
        } => {
            let p = crate::watch::report(
                &agent,
                &application,
                &indicator,
                count,
                named,
                tlp.as_deref(),
            )
            .await?;
            println!("id={} revision={}", p.id, p.revision);
            Ok(())
        }
    }
}

/// What the watch finds now against the held indicators.
fn current(agent: &Agent) -> Result<Vec<Exposure>, AgentError> {
    let now = isac_core::time::format_rfc3339(agent.clock.now());
    let store = agent.store.lock().expect("local store lock");
    Ok(crate::watch::Exposures::load(&store, &now)?
        .current()
        .cloned()
        .collect())
}

fn print(found: &[Exposure], json: bool) -> Result<(), AgentError> {
    if json {
        for e in found {
            println!(
                "{}",
                serde_json::to_string(e).map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        }
        return Ok(());
    }
    if found.is_empty() {
        eprintln!("no watched application is exposed to a held indicator");
        return Ok(());
    }
    for e in found {
        println!(
            "{} {} {} -> {} [TLP:{} {}] {} ({}, from {}) since {}: {}",
            if e.certain { "EXPOSED" } else { "POSSIBLE" },
            e.application,
            e.component,
            e.indicator.value,
            e.indicator.tlp.to_uppercase(),
            e.indicator.severity,
            e.indicator.title,
            e.indicator.id,
            e.indicator.source,
            e.since,
            e.why
        );
        if let Some(path) = &e.path {
            println!("    via {}", path.join(" > "));
        }
    }
    Ok(())
}
