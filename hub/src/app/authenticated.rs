//! [`Caller`]: who a call is from, once `app::caller` resolved it. A file
//! of its own so that the hub's shared state can hold callers
//! (`app::epoch_cache`) without importing the resolver (which imports the
//! state).

use isac_core::membership::Role;

#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub agent_name: String,
    pub role: Role,
    pub cert_fingerprint: String,
    /// Sharing groups the org belongs to now.
    pub groups: Vec<String>,
    /// The membership epoch this was read at, when it came through the
    /// cache of callers (a client certificate): what a publish hands the
    /// store to check in its transaction. `None`: read from the store for
    /// this call alone.
    pub authorized_at: Option<u64>,
}

impl Caller {
    pub fn is_coordinator(&self) -> bool {
        self.role == Role::Coordinator
    }
}
