//! `watch add|list|remove`: the applications (SBOMs and lockfiles) the
//! running agent judges against every indicator as it arrives.

use std::path::PathBuf;

use clap::Subcommand;

use crate::localstore::Watched;
use crate::{Agent, AgentError, StateDir};

#[derive(Subcommand)]
pub enum WatchCommand {
    /// Register an SBOM (CycloneDX JSON, SPDX 2.3 JSON or tag-value, SPDX
    /// 3.0 JSON-LD) or lockfile as application APP; `run` re-reads it
    /// when it changes.
    Add {
        /// The SBOM or lockfile (lockfiles by name: package-lock.json,
        /// Cargo.lock, poetry.lock, go.sum, requirements*.txt).
        path: PathBuf,
        /// The application's name in exposure events (unique).
        #[arg(long, value_name = "APP")]
        name: String,
    },
    /// The registered applications: name, file, components, exposures.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop watching APP; the running agent announces its exposures cleared.
    Remove {
        /// The application's name (see `watch list`).
        #[arg(value_name = "APP")]
        name: String,
    },
}

pub async fn run(state: &StateDir, command: WatchCommand) -> Result<(), AgentError> {
    let agent = Agent::open(state)?;
    match command {
        WatchCommand::Add { path, name } => add(&agent, path, name),
        WatchCommand::List { json } => list(&agent, json),
        WatchCommand::Remove { name } => remove(&agent, &name),
    }
}

/// Longest application name.
const MAX_NAME: usize = 200;

/// An application name fit for sinks and pages: printable, not blank.
fn check_name(name: &str) -> Result<(), AgentError> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(AgentError::Usage(format!(
            "--name `{}`: an application name is 1 to {MAX_NAME} printable characters",
            name.escape_default()
        )));
    }
    Ok(())
}

fn add(agent: &Agent, path: PathBuf, name: String) -> Result<(), AgentError> {
    check_name(&name)?;
    let path = std::fs::canonicalize(&path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    let inventory = crate::watch::read_inventory(&path)?;
    let report = crate::check::check_file(agent, &path)?;
    let w = Watched {
        name: name.clone(),
        path: path.display().to_string(),
        added: isac_core::time::format_rfc3339(agent.clock.now()),
    };
    let store = agent.store.lock().expect("local store lock");
    if !store.add_watched(&w)? {
        let taken = store
            .watched()?
            .into_iter()
            .find(|o| o.name == name)
            .map(|o| o.path)
            .unwrap_or_default();
        return Err(AgentError::Usage(format!(
            "an application named `{name}` is already watched ({taken}); \
             `member-agent watch remove {name}` first, or choose another --name"
        )));
    }
    println!(
        "watching `{name}`: {} ({}, {} component(s){})",
        w.path,
        inventory.format,
        inventory.components.len(),
        if inventory.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} not interpreted", inventory.skipped.len())
        }
    );
    eprintln!(
        "{} possible exposure(s) now; `member-agent run` (or `sync`) writes exposure events to its sinks as indicators and this file change",
        report.matches.len()
    );
    Ok(())
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    path: String,
    added: String,
    /// The file's format, or why it cannot be read now.
    format: Option<String>,
    components: Option<usize>,
    problem: Option<String>,
    /// Exposures announced and not cleared.
    exposures: usize,
}

fn list(agent: &Agent, json: bool) -> Result<(), AgentError> {
    let (watched, announced) = {
        let store = agent.store.lock().expect("local store lock");
        (store.watched()?, crate::watch::announced(&store)?)
    };
    let rows: Vec<Row> = watched
        .into_iter()
        .map(|w| {
            let read = crate::watch::read_inventory(std::path::Path::new(&w.path));
            let exposures = announced.iter().filter(|e| e.application == w.name).count();
            Row {
                format: read.as_ref().ok().map(|i| i.format.to_string()),
                components: read.as_ref().ok().map(|i| i.components.len()),
                problem: read.err().map(|e| e.to_string()),
                name: w.name,
                path: w.path,
                added: w.added,
                exposures,
            }
        })
        .collect();
    if json {
        for r in &rows {
            println!(
                "{}",
                serde_json::to_string(r).map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        }
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("no application is watched; `member-agent watch add PATH --name APP` adds one");
        return Ok(());
    }
    println!(
        "{:<24} {:>10} {:>9}  {:<28} FILE",
        "APPLICATION", "COMPONENTS", "EXPOSURES", "FORMAT"
    );
    for r in rows {
        println!(
            "{:<24} {:>10} {:>9}  {:<28} {}",
            r.name,
            r.components.map_or("-".into(), |n| n.to_string()),
            r.exposures,
            r.format.as_deref().unwrap_or("unreadable"),
            r.path
        );
        if let Some(p) = r.problem {
            println!("    {p}");
        }
    }
    Ok(())
}

fn remove(agent: &Agent, name: &str) -> Result<(), AgentError> {
    if !agent
        .store
        .lock()
        .expect("local store lock")
        .remove_watched(name)?
    {
        return Err(AgentError::Usage(format!(
            "no application named `{name}` is watched (see `member-agent watch list`)"
        )));
    }
    println!("no longer watching `{name}`; the running agent announces its exposures cleared");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_are_printable_and_bounded() {
        for ok in ["online-banking", "Online Banking 3.4", "paiements-é"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(MAX_NAME + 1)] {
            assert!(
                matches!(check_name(bad), Err(AgentError::Usage(_))),
                "{bad:?}"
            );
        }
    }
}
