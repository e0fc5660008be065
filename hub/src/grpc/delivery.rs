//! What a recipient is handed (`policy::handed`), as an `isac.v1.Delivery`.

use isac_proto::v1 as pb;

use crate::app::caller::Caller;
use crate::policy::{self, Handed};
use crate::store::{Decoded, StoredStatement};

pub fn delivery(row: &StoredStatement, caller: &Caller, directory_version: u64) -> pb::Delivery {
    delivery_decoded(row, &row.decode(), caller, directory_version)
}

/// [`delivery`] for a row whose columns are already decoded (`row.decode()`).
pub fn delivery_decoded(
    row: &StoredStatement,
    decoded: &Decoded,
    caller: &Caller,
    directory_version: u64,
) -> pb::Delivery {
    let Handed {
        envelope,
        received_at,
        openings,
    } = policy::handed_decoded(row, decoded, caller);
    pb::Delivery {
        // Positions leave the hub only sealed (`cursor`), on streams.
        sequence: 0,
        envelope: Some(envelope.into()),
        received_at: isac_core::time::format_rfc3339(received_at),
        directory_version,
        audience_openings: openings.iter().map(pb::AudienceOpening::from).collect(),
        cursor: Vec::new(),
        log_index: row.leaf_index,
        provenance: row.provenance.clone().unwrap_or_default(),
    }
}
