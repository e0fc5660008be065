//! The hub's transparency log (issue 19): signing checkpoints, and the
//! questions members ask of it (latest checkpoint, inclusion and
//! consistency proofs, tiles), each bounded by the latest checkpoint.
//!
//! Leaves are appended by the store in the transaction that stores their
//! statement; this module only integrates them into signed checkpoints, on
//! its own task, so a publish acknowledgement never waits for one.

use std::time::Duration;

use isac_core::tlog::checkpoint::Checkpoint;
use isac_core::tlog::note::{Ed25519Signer, Ed25519Verifier};
use isac_core::tlog::Hash;

use crate::app::HubState;
use crate::error::ApiError;
use crate::store::{CheckpointRow, Store, StoreError};

/// The log key as a note signer, named by the log's origin.
pub fn signer(key: &isac_core::SigningKey, origin: &str) -> Result<Ed25519Signer, ApiError> {
    Ed25519Signer::new(origin, key.clone())
        .map_err(|e| ApiError::Internal(format!("log key for origin {origin:?}: {e}")))
}

/// The verifier key of the log in the C2SP signed-note vkey format.
pub fn vkey(key: &isac_core::SigningKey, origin: &str) -> Result<String, ApiError> {
    let verifier: Ed25519Verifier = signer(key, origin)?
        .verifier()
        .map_err(|e| ApiError::Internal(format!("log verifier key: {e}")))?;
    Ok(verifier.to_vkey())
}

/// Integrates every leaf appended since the latest checkpoint and stores a
/// new signed checkpoint; `None` when there is nothing new.
pub async fn checkpoint_once(
    store: &Store,
    signer: &Ed25519Signer,
    origin: &str,
    now: i64,
) -> Result<Option<CheckpointRow>, ApiError> {
    let from = store.latest_checkpoint().await?.map_or(0, |c| c.size);
    let leaves = store.log_leaf_count().await?;
    if leaves <= from {
        return Ok(None);
    }
    let extension = store.extend_log(from, leaves).await?;
    let note = Checkpoint {
        origin: origin.to_owned(),
        size: extension.size,
        root: extension.root,
        extensions: Vec::new(),
    }
    .sign(&[signer])
    .map_err(|e| ApiError::Internal(format!("signing a checkpoint: {e}")))?;
    match store.integrate_checkpoint(extension, note, now).await {
        Ok(row) => Ok(Some(row)),
        // Another checkpointer (a CLI, a second process) got there first;
        // the next round starts from its checkpoint.
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Signs a checkpoint at start (if leaves exist past the last one), then
/// every `checkpoint_interval_ms` while new leaves arrive, and once more
/// when the hub stops, so everything acknowledged is in a checkpoint.
pub async fn run_checkpointer(state: HubState) {
    let origin = state.config.log_origin();
    let signer = match signer(&state.material.log_key, &origin) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the log key cannot sign checkpoints");
            return;
        }
    };
    let mut stop = state.shutdown.clone();
    let period = state.config.checkpoint_interval();
    loop {
        let began = std::time::Instant::now();
        match checkpoint_once(&state.store, &signer, &origin, state.now()).await {
            Ok(Some(c)) => {
                tracing::debug!(size = c.size, took = ?began.elapsed(), "log checkpoint signed");
                state.witnesses.signed(c.size);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot sign a log checkpoint"),
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = state.witnesses.checkpoint_wanted() => {
                // A caller waits for leaves not yet in a checkpoint: sign
                // now, but not more often than every ON_DEMAND_GAP.
                let gap = ON_DEMAND_GAP.min(period);
                let since = began.elapsed();
                if since < gap {
                    tokio::time::sleep(gap - since).await;
                }
            }
            changed = stop.changed() => {
                // Stopping: one last round, then return above. A dropped
                // sender means the hub is gone without a clean stop.
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts one task per configured witness (`app::witness::run_one`).
pub fn spawn_witnesses(state: &HubState) -> Vec<tokio::task::JoinHandle<()>> {
    (0..state.witnesses.witnesses.len())
        .map(|i| {
            let st = state.clone();
            tokio::spawn(async move {
                let interval = st.config.checkpoint_interval();
                crate::app::witness::run_one(
                    &st.store,
                    &st.witnesses,
                    i,
                    st.shutdown.clone(),
                    interval,
                    || st.now(),
                )
                .await;
            })
        })
        .collect()
}

/// The shortest time between two checkpoints signed because a caller
/// waits for one (`GetCheckpoint` with `min_size`): bounds the signatures
/// and stored checkpoints members can cause to 5 a second, and only while
/// new leaves arrive.
pub const ON_DEMAND_GAP: Duration = Duration::from_millis(200);

/// How long `GetCheckpoint` with `min_size` waits for such a checkpoint.
pub const MIN_SIZE_WAIT: Duration = Duration::from_secs(5);

/// How long shutdown waits for the last checkpoint.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The latest signed checkpoint, or FAILED_PRECONDITION before the first.
pub async fn latest(state: &HubState) -> Result<CheckpointRow, ApiError> {
    state.store.latest_checkpoint().await?.ok_or_else(|| {
        ApiError::FailedPrecondition("the log has no checkpoint yet; retry in a second".into())
    })
}

/// The checkpoint members are served (gRPC GetCheckpoint, `GET
/// /log/checkpoint`): with its witnesses' cosignature lines appended, and
/// the newest every witness now up has cosigned (`app::witness::served`).
pub async fn served(state: &HubState) -> Result<CheckpointRow, ApiError> {
    let latest = latest(state).await?;
    Ok(crate::app::witness::served(&state.store, &state.witnesses, latest).await?)
}

/// [`served`] once it has at least `min_size` leaves: the checkpointer is
/// asked for one sooner than its interval, and the caller waits up to
/// [`MIN_SIZE_WAIT`], then gets the latest there is. A size past the
/// log's leaves is not waited for (it cannot come from this request).
pub async fn served_at_least(state: &HubState, min_size: u64) -> Result<CheckpointRow, ApiError> {
    if min_size == 0 || min_size > state.store.log_leaf_count().await? {
        return served(state).await;
    }
    let deadline = tokio::time::Instant::now() + MIN_SIZE_WAIT;
    let mut signed = state.witnesses.watch_signed();
    loop {
        let now = served(state).await;
        match &now {
            Ok(c) if c.size >= min_size => return now,
            _ if tokio::time::Instant::now() >= deadline => return now,
            _ => {}
        }
        state.witnesses.want_checkpoint();
        // Woken by the next signature; witnesses' cosignatures are not
        // announced, so look again at least every 100 ms.
        let next = deadline.min(tokio::time::Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(next, signed.changed()).await;
    }
}

/// The checkpointed size a proof is asked about must exist.
fn check_size(what: &str, size: u64, latest: u64) -> Result<(), ApiError> {
    if size == 0 {
        return Err(ApiError::InvalidArgument(format!(
            "{what} must be at least 1"
        )));
    }
    if size > latest {
        return Err(ApiError::FailedPrecondition(format!(
            "{what} {size} is beyond the latest checkpoint ({latest}); fetch the checkpoint first"
        )));
    }
    Ok(())
}

/// Inclusion proof of leaf `index` in the tree of `size` leaves.
pub async fn inclusion_proof(
    state: &HubState,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ApiError> {
    let latest = latest(state).await?.size;
    check_size("tree_size", size, latest)?;
    if index >= size {
        return Err(ApiError::InvalidArgument(format!(
            "leaf_index {index} is not below tree_size {size}"
        )));
    }
    Ok(state.store.inclusion_proof(index, size).await?)
}

/// Most leaves one `GetInclusionProofs` call may ask about.
pub const MAX_BATCH_PROOFS: usize = 1024;

/// Inclusion proofs of each of `indices` in the tree of `size` leaves, in
/// order: one checkpoint read for the whole batch.
pub async fn inclusion_proofs(
    state: &HubState,
    indices: &[u64],
    size: u64,
) -> Result<Vec<Vec<Hash>>, ApiError> {
    if indices.len() > MAX_BATCH_PROOFS {
        return Err(ApiError::InvalidArgument(format!(
            "{} leaf indices asked at once; at most {MAX_BATCH_PROOFS}",
            indices.len()
        )));
    }
    let latest = latest(state).await?.size;
    check_size("tree_size", size, latest)?;
    if let Some(index) = indices.iter().find(|&&i| i >= size) {
        return Err(ApiError::InvalidArgument(format!(
            "leaf_index {index} is not below tree_size {size}"
        )));
    }
    let mut out = Vec::with_capacity(indices.len());
    for &index in indices {
        out.push(state.store.inclusion_proof(index, size).await?);
    }
    Ok(out)
}

/// Consistency proof from the tree of `first` leaves to that of `second`.
pub async fn consistency_proof(
    state: &HubState,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ApiError> {
    let latest = latest(state).await?.size;
    check_size("first_size", first, latest)?;
    check_size("second_size", second, latest)?;
    if first > second {
        return Err(ApiError::InvalidArgument(format!(
            "first_size {first} is larger than second_size {second}"
        )));
    }
    Ok(state.store.consistency_proof(first, second).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log_tests::statement;
    use isac_core::tlog::checkpoint;

    #[tokio::test]
    async fn a_checkpoint_integrates_new_leaves_and_verifies_with_the_vkey() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        let key = isac_core::SigningKey::generate().unwrap();
        let origin = "isac.example/log";
        let signer = signer(&key, origin).unwrap();
        assert_eq!(
            checkpoint_once(&store, &signer, origin, 1).await.unwrap(),
            None
        );
        store
            .append_statements((0..5).map(|n| statement(n, false)).collect())
            .await;
        let first = checkpoint_once(&store, &signer, origin, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.size, 5);
        assert_eq!(
            checkpoint_once(&store, &signer, origin, 3).await.unwrap(),
            None
        );
        let vkey = vkey(&key, origin).unwrap();
        assert!(vkey.starts_with("isac.example/log+"), "{vkey}");
        let verifier = Ed25519Verifier::from_vkey(&vkey).unwrap();
        let opened = checkpoint::open(first.note.as_bytes(), origin, &[&verifier]).unwrap();
        assert_eq!(opened.checkpoint.size, 5);
        assert_eq!(opened.checkpoint.root, first.root);
        store.close();
    }
}
