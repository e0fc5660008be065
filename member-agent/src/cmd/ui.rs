//! `ui`: serve the analyst console over the local store.

use crate::ui::UiArgs;
use crate::{AgentError, StateDir};

pub async fn run(state: &StateDir, args: UiArgs) -> Result<(), AgentError> {
    crate::ui::run_console(state, &args).await
}
