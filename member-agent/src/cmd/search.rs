//! `search`: the local store by purl, package name, hash, domain or text.

use clap::Args;

use super::list::print_items;
use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct SearchArgs {
    query: String,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long, conflicts_with = "ids")]
    json: bool,
    /// Only the item ids, one per line (for `bulletin --related`).
    #[arg(long)]
    ids: bool,
}

pub async fn run(state: &StateDir, args: SearchArgs) -> Result<(), AgentError> {
    let agent = Agent::open(state)?;
    let items = agent
        .store
        .lock()
        .expect("store")
        .search(&args.query, args.limit)?;
    if items.is_empty() {
        eprintln!("nothing held matches `{}`", args.query);
    }
    print_items(&items, args.json, args.ids)
}
