//! What a TAXII caller may list: collections, and the STIX objects of a
//! collection in hub sequence order. Every row passes the same TLP decision
//! as the gRPC read paths (`policy::may_see_as`, channel `Taxii`) before it
//! is converted, counted or used to decide `more`.

use isac_core::stix::{self, StixContext};
use isac_core::tlp::{AudienceRef, Channel};
use isac_core::{Body, Statement};
use serde_json::Value;

use super::query::{parse_timestamp_us, ObjectQuery, VersionMatch};
use crate::app::caller::Caller;
use crate::policy;
use crate::store::{Store, StoreError, StoredStatement};

/// Rows read from the store per step of a listing.
const PAGE_ROWS: u32 = 512;
/// Most rows one request examines; past it the answer says `more` with a
/// `next` token, so one poll never scans an unbounded history.
const SCAN_BUDGET: usize = 100_000;

/// Who is asking over TAXII.
#[derive(Debug, Clone)]
pub struct Who {
    pub caller: Caller,
    /// Set for an API key bound to one named person (RED needs it).
    pub person: Option<String>,
    pub can_write: bool,
    /// The API key's username, or the agent name for certificate callers.
    pub principal: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Indicators, their sightings and retractions.
    Indicators,
    /// Coordinators' bulletins (STIX reports).
    Bulletins,
    /// Items whose audience names this sharing group.
    Group(String),
}

pub struct CollectionInfo {
    pub id: String,
    pub kind: Collection,
    pub title: String,
    pub description: String,
}

pub fn collection_id(name: &str) -> String {
    stix::derived_uuid("taxii-collection", name).to_string()
}

/// The collections `who` may read: the two fixed ones and one per sharing
/// group its org belongs to now.
pub fn collections_for(who: &Who) -> Vec<CollectionInfo> {
    let mut out = vec![
        CollectionInfo {
            id: collection_id("indicators"),
            kind: Collection::Indicators,
            title: "Indicators".into(),
            description: "Every supply-chain indicator you may see (with sightings and retractions), under TLP 2.0".into(),
        },
        CollectionInfo {
            id: collection_id("bulletins"),
            kind: Collection::Bulletins,
            title: "Bulletins".into(),
            description: "Incident bulletins from the ISAC's coordinators".into(),
        },
    ];
    for g in &who.caller.groups {
        out.push(CollectionInfo {
            id: collection_id(&format!("group:{g}")),
            kind: Collection::Group(g.clone()),
            title: format!("Sharing group {g}"),
            description: format!("Items shared with the sharing group `{g}`"),
        });
    }
    out
}

/// One STIX object as listed: where it sits in the hub's order and when it
/// was added.
#[derive(Debug, Clone)]
pub struct Entry {
    pub added_us: i64,
    pub object: Value,
}

impl Entry {
    pub fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or("")
    }
    pub fn modified(&self) -> &str {
        self.object
            .get("modified")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

pub struct Page {
    pub entries: Vec<Entry>,
    pub more: bool,
    /// Continue after this sequence (the `next` token), when `more`.
    pub next: Option<u64>,
}

/// A row the caller may see, with what its collection test needs.
struct Visible {
    row: StoredStatement,
    /// For a retraction: the kind of the item it retracts.
    target_kind: Option<String>,
    /// For a retraction: `created` of the latest revision it retracts.
    target_created: Option<String>,
}

fn in_collection(c: &Collection, v: &Visible) -> bool {
    let bulletin = v.row.kind == "bulletin" || v.target_kind.as_deref() == Some("bulletin");
    match c {
        Collection::Indicators => !bulletin,
        Collection::Bulletins => bulletin,
        Collection::Group(g) => v
            .row
            .audience()
            .map(|a| {
                a.iter()
                    .any(|e| matches!(e, AudienceRef::Group(x) if x == g))
            })
            .unwrap_or(false),
    }
}

fn visible_alone(row: &StoredStatement, who: &Who) -> bool {
    policy::may_see_as(row, &who.caller, who.person.as_deref(), Channel::Taxii)
}

/// The full decision for one row; for a derived statement the caller must
/// also be entitled to the latest revision of its target.
async fn visible(
    store: &Store,
    row: StoredStatement,
    who: &Who,
) -> Result<Option<Visible>, StoreError> {
    if !visible_alone(&row, who) {
        return Ok(None);
    }
    let (target_kind, target_created) = match &row.target_id {
        None => (None, None),
        Some(t) => match store.revisions(t).await?.into_iter().next() {
            Some(target) if visible_alone(&target, who) => {
                let created = Statement::from_canonical_bytes(&target.payload)
                    .ok()
                    .map(|s| s.created);
                (Some(target.kind), created)
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(Visible {
        row,
        target_kind,
        target_created,
    }))
}

fn stix_type_of_kind(kind: Option<&str>) -> &'static str {
    match kind {
        Some("bulletin") => "report",
        Some("sighting") => "sighting",
        _ => "indicator",
    }
}

/// The STIX objects of one visible row, as this caller receives it (the
/// hub-signed anonymous version unless the caller is the source).
fn objects_of(v: &Visible, who: &Who) -> Vec<Value> {
    let envelope = policy::delivered_envelope(&v.row, &who.caller);
    let statement = match Statement::from_canonical_bytes(&envelope.payload) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(seq = v.row.seq, error = %e, "stored payload does not parse; withheld from TAXII");
            return Vec::new();
        }
    };
    let key_id = envelope
        .signatures
        .first()
        .map(|s| s.keyid.clone())
        .unwrap_or_default();
    let digest = isac_core::Envelope {
        payload_type: envelope.payload_type,
        payload: envelope.payload,
        signatures: Vec::new(),
    }
    .digest();
    // A federated row (issue 20): its author stands under its origin hub.
    let federated = v
        .row
        .provenance
        .as_deref()
        .and_then(|p| isac_core::federation::Provenance::decode(p).ok());
    let identity = match &federated {
        Some(p) if !statement.anonymous => {
            stix::identity_id(&stix::federated_org(statement.author(), &p.origin_hub))
        }
        _ => stix::identity_id(statement.author()),
    };
    let received = isac_core::time::format_rfc3339(v.row.received_at);
    let ctx = StixContext {
        source_identity_id: &identity,
        envelope_digest: &digest,
        key_id: &key_id,
        received_at: &received,
    };
    let mut objects = objects_by_kind(v, &statement, &ctx);
    if let Some(p) = &federated {
        stix::set_provenance(&mut objects, &p.origin_hub, &p.hub_path);
    }
    objects
}

fn objects_by_kind(v: &Visible, statement: &Statement, ctx: &StixContext<'_>) -> Vec<Value> {
    match &statement.body {
        Body::Retraction(_) => {
            stix::revocation_for(statement, stix_type_of_kind(v.target_kind.as_deref()), ctx)
                .map(|mut marker| {
                    // A retraction signed in the same second as what it retracts
                    // would carry the same `modified`, which STIX reads as the same
                    // version: make the revoked version strictly later.
                    if let Some(target) = &v.target_created {
                        let floor = parse_timestamp_us(&stix::stix_timestamp(target)).ok();
                        if let (Some(floor), Some(m)) = (floor, modified_us(&marker)) {
                            if m <= floor {
                                marker["modified"] =
                                    Value::String(super::query::format_timestamp_us(floor + 1_000));
                            }
                        }
                    }
                    marker
                })
                .into_iter()
                .collect()
        }
        _ => {
            let mut objects = stix::objects_for(statement, ctx);
            // The effective expiry taken at publish: the signed
            // `valid_until`, else the hub-wide default lifetime of the kind
            // (served also once it is past: TAXII keeps expired indicators).
            if let Some(until) = v.row.facts.valid_until {
                isac_core::lifetime::stix_set_valid_until(
                    &mut objects,
                    &isac_core::time::format_rfc3339(until),
                );
            }
            objects
        }
    }
}

fn object_matches(o: &Value, q: &ObjectQuery) -> bool {
    if !q.spec_2_1 {
        return false;
    }
    let id = o.get("id").and_then(Value::as_str).unwrap_or("");
    let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
    (q.ids.is_empty() || q.ids.iter().any(|i| i == id))
        && (q.types.is_empty() || q.types.iter().any(|t| t == ty))
}

fn modified_us(o: &Value) -> Option<i64> {
    o.get("modified")
        .and_then(Value::as_str)
        .and_then(|m| parse_timestamp_us(m).ok())
}

/// Is there a later version of `row`'s objects that the caller may see: a
/// newer revision, or (for an item) a retraction, which replaces it with
/// a revoked version?
fn superseded(row: &StoredStatement, later: &[StoredStatement], who: &Who) -> bool {
    later.iter().any(|v| {
        let newer_revision = v.id == row.id && v.revision > row.revision;
        let retracts = row.kind != "retraction"
            && v.kind == "retraction"
            && v.target_id.as_deref() == Some(row.id.as_str());
        (newer_revision || retracts) && visible_alone(v, who)
    })
}

/// Does this row's version pass `match[version]` (timestamps are checked
/// per object)?
fn version_wanted(v: &Visible, later: &[StoredStatement], who: &Who, vm: &VersionMatch) -> bool {
    vm.all
        || !vm.at_us.is_empty()
        || (vm.first && v.row.revision == 1 && v.row.kind != "retraction")
        || (vm.last && !superseded(&v.row, later, who))
}

/// Objects of `collection` visible to `who`, after the query's cursor
/// (`next`, `added_after`), filtered by its matches, in hub order. A
/// statement's objects are never split across pages, so a client paging
/// with `added_after` misses nothing either.
pub async fn list(
    store: &Store,
    who: &Who,
    collection: &Collection,
    q: &ObjectQuery,
) -> Result<Page, StoreError> {
    let mut cursor = q.next.unwrap_or(0);
    if let Some(after) = q.added_after_us {
        cursor = cursor.max(store.seq_at_added(after).await?);
    }
    let head = store.head();
    let mut entries: Vec<Entry> = Vec::new();
    let mut last_included: Option<u64> = None;
    let mut scanned = 0usize;
    let mut more = false;
    let mut next = None;
    'scan: while cursor < head {
        let rows = store.statements_after(cursor, PAGE_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        scanned += rows.len();
        // Each scanned sequence, with the row when this caller may list it.
        let mut candidates: Vec<(u64, Option<Visible>)> = Vec::new();
        for row in rows {
            if row.seq > head {
                break;
            }
            let seq = row.seq;
            let listed = visible(store, row, who)
                .await?
                .filter(|v| in_collection(collection, v));
            candidates.push((seq, listed));
        }
        let needs_later = q.versions.last && !q.versions.all;
        let later = if needs_later {
            let ids: Vec<String> = candidates
                .iter()
                .filter_map(|(_, v)| v.as_ref().map(|v| v.row.id.clone()))
                .collect();
            store.versions_of(ids).await?
        } else {
            Vec::new()
        };
        for (seq, v) in &candidates {
            cursor = *seq;
            let Some(v) = v else { continue };
            if !version_wanted(v, &later, who, &q.versions) {
                continue;
            }
            let objects: Vec<Value> = objects_of(v, who)
                .into_iter()
                .filter(|o| object_matches(o, q))
                .filter(|o| {
                    q.versions.all
                        || q.versions.first
                        || q.versions.last
                        || modified_us(o).is_some_and(|m| q.versions.at_us.contains(&m))
                })
                .collect();
            if objects.is_empty() {
                continue;
            }
            if entries.len() >= q.limit
                || (!entries.is_empty() && entries.len() + objects.len() > q.limit)
            {
                more = true;
                next = last_included;
                break 'scan;
            }
            for object in objects {
                entries.push(Entry {
                    added_us: v.row.added_us,
                    object,
                });
            }
            last_included = Some(v.row.seq);
        }
        if scanned >= SCAN_BUDGET && cursor < head {
            more = true;
            next = Some(cursor);
            break;
        }
    }
    Ok(Page {
        entries,
        more,
        next,
    })
}

/// Every version of one object the caller may see in `collection`, oldest
/// first (for `objects/{id}` and `objects/{id}/versions`).
pub async fn versions_of_object(
    store: &Store,
    who: &Who,
    collection: &Collection,
    object_id: &str,
) -> Result<Vec<Entry>, StoreError> {
    // Entitlement first, on rows read in one trip whether the id is missing
    // or hidden; only an entitled caller costs more work (issue 15: a hidden
    // id answered measurably slower than a random one).
    let (statement_id, mut rows) = store.versions_of_stix_id(object_id).await?;
    let entitled = rows
        .iter()
        .any(|r| Some(&r.id) == statement_id.as_ref() && visible_alone(r, who));
    if !entitled {
        return Ok(Vec::new());
    }
    rows.sort_by_key(|r| r.seq);
    let mut out = Vec::new();
    for row in rows {
        let Some(v) = visible(store, row, who).await? else {
            continue;
        };
        if !in_collection(collection, &v) {
            continue;
        }
        for object in objects_of(&v, who) {
            if object.get("id").and_then(Value::as_str) == Some(object_id) {
                out.push(Entry {
                    added_us: v.row.added_us,
                    object,
                });
            }
        }
    }
    Ok(out)
}

/// Applies `match[version]` to the versions of one object (oldest first).
pub fn pick_versions(mut versions: Vec<Entry>, vm: &VersionMatch) -> Vec<Entry> {
    if vm.all || versions.is_empty() {
        return versions;
    }
    let last = versions.len() - 1;
    let mut keep = Vec::new();
    for (i, e) in versions.drain(..).enumerate() {
        let at = modified_us(&e.object).is_some_and(|m| vm.at_us.contains(&m));
        if (vm.first && i == 0) || (vm.last && i == last) || at {
            keep.push(e);
        }
    }
    keep
}
