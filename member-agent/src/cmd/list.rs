//! `list`: what the local store holds, newest first (and the table
//! `search` prints too).

use clap::Args;

use crate::localstore::ItemSummary;
use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long, conflicts_with = "ids")]
    json: bool,
    /// Only the item ids, one per line (for `bulletin --related`).
    #[arg(long)]
    ids: bool,
}

pub async fn run(state: &StateDir, args: ListArgs) -> Result<(), AgentError> {
    let agent = Agent::open(state)?;
    let items = agent.store.lock().expect("store").list(args.limit)?;
    print_items(&items, args.json, args.ids)
}

pub(super) fn print_items(items: &[ItemSummary], json: bool, ids: bool) -> Result<(), AgentError> {
    if ids {
        // Newest first: an item held in several revisions is one id.
        let mut seen = std::collections::HashSet::new();
        for i in items.iter().filter(|i| seen.insert(i.id.as_str())) {
            println!("{}", i.id);
        }
        return Ok(());
    }
    if json {
        for i in items {
            println!(
                "{}",
                serde_json::to_string(i).map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        }
        return Ok(());
    }
    println!(
        "{:>6}  {:<17} {:<13} {:<9} {:<44} {:<18} TITLE",
        "#", "TLP", "KIND", "SEVERITY", "VALUE", "SOURCE"
    );
    for i in items {
        let status = if i.status == "valid" {
            String::new()
        } else {
            format!(" [{}]", i.status)
        };
        println!(
            "{:>6}  {:<17} {:<13} {:<9} {:<44} {:<18} {}{}",
            i.sequence,
            format!("TLP:{}", i.tlp.to_uppercase()),
            i.kind,
            i.severity,
            truncate(&i.value, 44),
            i.source,
            truncate(&i.title, 60),
            status
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
