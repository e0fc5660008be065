//! The running agent's watch (issue 17): the applications `watch add`
//! registered, judged continuously against the held package indicators
//! through `isac_packages::watch::Watch`, and the exposures that appear
//! or go written into every sink as `exposure.new` / `exposure.cleared`.
//!
//! The store is the truth on both sides: an indicator the agent has just
//! stored, revised, seen retracted or expired is read back from the store
//! (its newest valid revision, or nothing) and handed to the watch; a
//! registered file is re-read when its size or modification time changes
//! (checked on every sync batch and every second while `run` follows) and
//! handed over when its content hash differs. What the watch finds now is
//! compared with the exposures already announced (kept in the store), and
//! only the difference is announced, in the same transaction that records
//! it, so a restart neither repeats an announcement nor misses a clear.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use isac_packages::exposure::Advisory;
use isac_packages::sbom::{Inventory, SbomFormat};
use isac_packages::watch::{ExposureEvent, ExposureKey, Watch};
use isac_packages::{AffectedVersions, Purl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::AgentError;
use crate::localstore::{ExposureRow, ItemSummary, LocalStore};
use crate::lockfile::{is_lockfile_name, parse_lockfile};
use crate::sinks::Sinks;
use crate::sync::Agent;

/// The indicator an exposure is about, as sinks and the console show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorRef {
    pub id: String,
    pub revision: u32,
    pub title: String,
    pub tlp: String,
    pub source: String,
    pub severity: String,
    /// The purl the indicator names.
    pub value: String,
}

impl IndicatorRef {
    fn from_item(item: &ItemSummary, purl: &str) -> Self {
        IndicatorRef {
            id: item.id.clone(),
            revision: item.revision,
            title: item.title.clone(),
            tlp: item.tlp.clone(),
            source: item.source.clone(),
            severity: item.severity.clone(),
            value: purl.to_owned(),
        }
    }
}

/// One exposure: an application's component an indicator concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub application: String,
    /// The component's reference in its SBOM (`bom-ref`, `SPDXID`) or
    /// lockfile: with the application and indicator, the exposure's key.
    pub component_ref: String,
    /// Its purl with version, or its name when it has no purl.
    pub component: String,
    pub version: Option<String>,
    /// From the application to the component, where the SBOM records it.
    pub path: Option<Vec<String>>,
    pub indicator: IndicatorRef,
    /// Why it matched (the constraint that holds, or why it cannot be told).
    pub why: String,
    /// The version is affected for certain.
    pub certain: bool,
    /// When it was first announced (RFC 3339).
    pub since: String,
}

impl Exposure {
    fn key(&self) -> ExposureKey {
        ExposureKey {
            application: self.application.clone(),
            component: self.component_ref.clone(),
            indicator: self.indicator.id.clone(),
        }
    }

    /// A stable id for (application, component, indicator): the
    /// Elasticsearch document id, and what receivers recognise it by.
    pub fn id(&self) -> String {
        let digest = openssl::sha::sha256(
            format!(
                "{}\0{}\0{}",
                self.application, self.component_ref, self.indicator.id
            )
            .as_bytes(),
        );
        format!("exposure-{}", &isac_core::hex::encode(&digest)[..32])
    }

    /// The JSON record sinks receive (keys in docs/formats.md): `event` is
    /// this agent's exposure event number; for `exposure.cleared`, `why`
    /// says why it went.
    pub fn line(&self, action: &str, event: u64, at: &str, why: &str) -> Value {
        let tlp: Option<isac_core::Tlp> = self.indicator.tlp.parse().ok();
        json!({
            "action": action,
            "event": event,
            "id": self.id(),
            "application": self.application,
            "component": self.component,
            "component_ref": self.component_ref,
            "version": self.version,
            "path": self.path,
            "indicator": self.indicator,
            "tlp": self.indicator.tlp,
            "tlp_marking": tlp.map(|t| t.stix_marking_id()),
            "tlp_strict": tlp == Some(isac_core::Tlp::AmberStrict),
            "why": why,
            "certain": self.certain,
            "since": self.since,
            "at": at,
        })
    }
}

/// A registered file, as last read.
struct App {
    path: PathBuf,
    /// (size, modification time) when last looked at.
    seen: Option<(u64, SystemTime)>,
    /// SHA-256 of the content handed to the watch.
    hash: Option<[u8; 32]>,
    /// Why it could not be read last time (said once, not every second).
    problem: Option<String>,
}

/// The watch and what has been announced.
pub struct Exposures {
    watch: Watch<()>,
    /// The held indicators the watch knows, by id.
    indicators: HashMap<String, IndicatorRef>,
    apps: BTreeMap<String, App>,
    /// What the watch finds now.
    current: BTreeMap<ExposureKey, Exposure>,
    /// What the sinks have been told (the store's `exposures`).
    announced: BTreeMap<ExposureKey, Exposure>,
    /// Why findings went, for their `exposure.cleared`.
    cleared_why: HashMap<ExposureKey, String>,
}

/// Why a clear happened, by what changed.
const WHY_REVISED: &str = "the indicator was revised and no longer names this version";
const WHY_GONE: &str = "the indicator was retracted, expired or is no longer valid";
const WHY_INVENTORY: &str =
    "the component is no longer in the application's inventory at this version";
const WHY_UNWATCHED: &str = "the application is no longer watched";
const WHY_WHILE_STOPPED: &str = "no longer found (changed while the agent was stopped)";

/// Reads a registered file: a lockfile by its name, else an SBOM by its
/// content. Bad content is a usage error naming the file.
pub fn read_inventory(path: &Path) -> Result<Inventory, AgentError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(AgentError::Usage(format!(
            "{}: not a file (name one SBOM or lockfile)",
            path.display()
        )));
    }
    if meta.len() > crate::check::MAX_INPUT_BYTES {
        return Err(AgentError::Usage(format!(
            "{} is larger than 64 MiB",
            path.display()
        )));
    }
    let contents = crate::error::read_input(path)?;
    inventory_of(path, &contents)
}

fn inventory_of(path: &Path, contents: &str) -> Result<Inventory, AgentError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if is_lockfile_name(name) {
        let deps = parse_lockfile(name, contents)
            .map_err(|e| AgentError::Usage(format!("{}: {e}", path.display())))?;
        return Ok(Inventory {
            format: SbomFormat::Lockfile {
                name: name.to_owned(),
            },
            subject: None,
            subject_ref: None,
            components: deps.iter().map(|d| d.component()).collect(),
            skipped: Vec::new(),
            depends_on: BTreeMap::new(),
        });
    }
    isac_packages::sbom::read(contents.as_bytes()).map_err(|e| {
        AgentError::Usage(format!(
            "{}: neither a lockfile (by its name: package-lock.json, Cargo.lock, \
             poetry.lock, go.sum, requirements*.txt) nor an SBOM we read: {e}",
            path.display()
        ))
    })
}

fn advisories(rows: &[(ItemSummary, String, Vec<String>)]) -> Vec<Advisory<()>> {
    rows.iter()
        .filter_map(|(_, purl, versions)| {
            let package: Purl = purl.parse().ok()?;
            Some(Advisory {
                affected: AffectedVersions::from_statement(
                    package.ecosystem(),
                    package.version(),
                    versions,
                ),
                package: package.package(),
                meta: (),
            })
        })
        .collect()
}

/// What to tell the sinks: exposures to announce and to clear (with why).
pub struct Pending {
    pub new: Vec<Exposure>,
    pub cleared: Vec<(Exposure, String)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.cleared.is_empty()
    }
}

impl Exposures {
    /// The watch over what the store holds: the registered applications,
    /// every valid package indicator, and what was announced before.
    pub fn load(store: &LocalStore, now: &str) -> Result<Self, AgentError> {
        let mut announced = BTreeMap::new();
        for row in store.exposures()? {
            match serde_json::from_str::<Exposure>(&row.record_json) {
                Ok(e) if e.key() == key_of(&row) => {
                    announced.insert(e.key(), e);
                }
                _ => tracing::warn!(
                    application = %row.application,
                    indicator = %row.indicator,
                    "an announced exposure could not be read back; it will be announced again"
                ),
            }
        }
        let mut x = Exposures {
            watch: Watch::new(),
            indicators: HashMap::new(),
            apps: BTreeMap::new(),
            current: BTreeMap::new(),
            announced,
            cleared_why: HashMap::new(),
        };
        x.rescan(store, now)?;
        let mut by_id: BTreeMap<String, Vec<(ItemSummary, String, Vec<String>)>> = BTreeMap::new();
        for row in store.valid_package_indicators(now)? {
            by_id.entry(row.0.id.clone()).or_default().push(row);
        }
        for (id, rows) in by_id {
            x.set_indicator(&id, &rows, now);
        }
        // A registered file that cannot be read now keeps what was
        // announced for it (no clear on a guess) until it can be.
        for (key, e) in &x.announced {
            let unread = x
                .apps
                .get(&key.application)
                .is_some_and(|a| a.hash.is_none());
            if unread && x.indicators.contains_key(&key.indicator) && !x.current.contains_key(key) {
                x.current.insert(key.clone(), e.clone());
            }
        }
        for key in x.announced.keys() {
            if !x.current.contains_key(key) {
                x.cleared_why
                    .entry(key.clone())
                    .or_insert_with(|| WHY_WHILE_STOPPED.to_owned());
            }
        }
        Ok(x)
    }

    /// What the watch finds now, with details.
    pub fn current(&self) -> impl Iterator<Item = &Exposure> {
        self.current.values()
    }

    /// Hands an indicator's current state (`rows`: its newest valid
    /// revision's packages, or none) to the watch.
    fn set_indicator(&mut self, id: &str, rows: &[(ItemSummary, String, Vec<String>)], now: &str) {
        let events = match rows.first() {
            None => {
                self.indicators.remove(id);
                self.watch.remove_indicator(id)
            }
            Some((item, purl, _)) => {
                self.indicators
                    .insert(id.to_owned(), IndicatorRef::from_item(item, purl));
                self.watch.upsert_indicator(id, advisories(rows))
            }
        };
        let why = if rows.is_empty() {
            WHY_GONE
        } else {
            WHY_REVISED
        };
        self.absorb(events, now, why);
        if rows.is_empty() {
            self.drop_stale(|k| k.indicator == id, why);
        }
    }

    /// Re-reads indicator `id` from the store and hands it to the watch.
    pub fn refresh_indicator(
        &mut self,
        store: &LocalStore,
        id: &str,
        now: &str,
    ) -> Result<(), AgentError> {
        let rows = store.valid_package_indicator(id, now)?;
        if rows.is_empty() && !self.indicators.contains_key(id) {
            return Ok(());
        }
        self.set_indicator(id, &rows, now);
        Ok(())
    }

    /// Follows the registrations: new and removed applications, and
    /// registered files whose content changed.
    pub fn rescan(&mut self, store: &LocalStore, now: &str) -> Result<(), AgentError> {
        let registered = store.watched()?;
        let names: BTreeSet<&str> = registered.iter().map(|w| w.name.as_str()).collect();
        let gone: Vec<String> = self
            .apps
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.apps.remove(&name);
            let events = self.watch.remove_application(&name);
            self.absorb(events, now, WHY_UNWATCHED);
            self.drop_stale(|k| k.application == name, WHY_UNWATCHED);
        }
        for w in registered {
            let path = PathBuf::from(&w.path);
            let app = self.apps.entry(w.name.clone()).or_insert_with(|| App {
                path: path.clone(),
                seen: None,
                hash: None,
                problem: None,
            });
            if app.path != path {
                *app = App {
                    path: path.clone(),
                    seen: None,
                    hash: None,
                    problem: None,
                };
            }
            let seen = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
            if seen.is_some() && seen == app.seen {
                continue;
            }
            // Read first, then judge: an unreadable file keeps what was
            // last read (its exposures stay; nothing is cleared on a guess).
            let read = std::fs::read(&path)
                .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))
                .and_then(|bytes| {
                    let hash = openssl::sha::sha256(&bytes);
                    if app.hash == Some(hash) {
                        return Ok(None);
                    }
                    let text = String::from_utf8(bytes).map_err(|_| {
                        AgentError::Usage(format!("{}: not UTF-8 text", path.display()))
                    })?;
                    Ok(Some((hash, inventory_of(&path, &text)?)))
                });
            match read {
                Ok(None) => app.seen = seen,
                Ok(Some((hash, inventory))) => {
                    app.seen = seen;
                    app.hash = Some(hash);
                    app.problem = None;
                    let events = self.watch.set_application(&w.name, inventory);
                    self.absorb(events, now, WHY_INVENTORY);
                    self.drop_stale(|k| k.application == w.name, WHY_INVENTORY);
                }
                Err(e) => {
                    let message = e.to_string();
                    if app.problem.as_deref() != Some(message.as_str()) {
                        tracing::warn!(application = %w.name, error = %message, "watched file not read; keeping what was read before");
                        eprintln!("warning: watched application `{}`: {message}; keeping what was read before", w.name);
                        app.problem = Some(message);
                    }
                    app.seen = seen;
                }
            }
        }
        Ok(())
    }

    /// Forgets what is held as found (`about` says for which application
    /// or indicator) but the watch does not find: exposures carried over
    /// from before a restart while their file could not be read.
    fn drop_stale(&mut self, about: impl Fn(&ExposureKey) -> bool, why: &str) {
        let stale: Vec<ExposureKey> = self
            .current
            .keys()
            .filter(|k| about(k) && !self.watch.findings().contains(*k))
            .cloned()
            .collect();
        for key in stale {
            self.current.remove(&key);
            self.cleared_why.insert(key, why.to_owned());
        }
    }

    /// Folds the watch's events into what is found now.
    fn absorb(&mut self, events: Vec<ExposureEvent>, now: &str, why_cleared: &str) {
        for event in events {
            match event {
                ExposureEvent::New {
                    key,
                    component_id,
                    version,
                    why,
                    path,
                } => {
                    let Some(indicator) = self.indicators.get(&key.indicator).cloned() else {
                        continue;
                    };
                    let path = path.map(|p| match self.watch.application(&key.application) {
                        Some(inv) => crate::check::path_labels(inv, &p),
                        None => p,
                    });
                    let since = self
                        .announced
                        .get(&key)
                        .map_or_else(|| now.to_owned(), |e| e.since.clone());
                    self.cleared_why.remove(&key);
                    self.current.insert(
                        key.clone(),
                        Exposure {
                            application: key.application,
                            component_ref: key.component,
                            component: component_id,
                            version,
                            path,
                            indicator,
                            certain: why.is_certain(),
                            why: why.to_string(),
                            since,
                        },
                    );
                }
                ExposureEvent::Cleared { key } => {
                    self.current.remove(&key);
                    self.cleared_why.insert(key, why_cleared.to_owned());
                }
            }
        }
        // A revision that keeps a finding keeps the indicator's facts fresh.
        for e in self.current.values_mut() {
            if let Some(i) = self.indicators.get(&e.indicator.id) {
                if *i != e.indicator {
                    e.indicator = i.clone();
                }
            }
        }
    }

    /// What the sinks have not been told yet.
    pub fn pending(&self) -> Pending {
        let new = self
            .current
            .iter()
            .filter(|(k, _)| !self.announced.contains_key(*k))
            .map(|(_, e)| e.clone())
            .collect();
        let cleared = self
            .announced
            .iter()
            .filter(|(k, _)| !self.current.contains_key(*k))
            .map(|(k, e)| {
                let why = self
                    .cleared_why
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| WHY_WHILE_STOPPED.to_owned());
                (e.clone(), why)
            })
            .collect();
        Pending { new, cleared }
    }

    /// The sinks were told `pending` and the store recorded it.
    fn announced(&mut self, pending: Pending) {
        for e in pending.new {
            self.announced.insert(e.key(), e);
        }
        for (e, _) in pending.cleared {
            let key = e.key();
            self.announced.remove(&key);
            self.cleared_why.remove(&key);
        }
    }
}

fn key_of(row: &ExposureRow) -> ExposureKey {
    ExposureKey {
        application: row.application.clone(),
        component: row.component.clone(),
        indicator: row.indicator.clone(),
    }
}

/// The lines for `pending`, numbered from `first`, in the order they are
/// announced: new exposures, then clears.
pub fn lines(pending: &Pending, first: u64, at: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(pending.new.len() + pending.cleared.len());
    for e in &pending.new {
        out.push(e.line("exposure.new", first + out.len() as u64, at, &e.why));
    }
    for (e, why) in &pending.cleared {
        out.push(e.line("exposure.cleared", first + out.len() as u64, at, why));
    }
    out
}

/// The agent's watch: built on first use, once an application is
/// registered (or exposures are left to clear), and the indicators
/// touched since it last looked.
#[derive(Default)]
pub struct AgentWatch {
    inner: std::sync::Mutex<WatchInner>,
}

#[derive(Default)]
struct WatchInner {
    exposures: Option<Exposures>,
    /// Indicator ids stored, revised, retracted or expired since the
    /// watch last looked.
    touched: BTreeSet<String>,
}

impl AgentWatch {
    /// A statement was stored: the indicator it is (new or revised), or
    /// the one it retracts, is looked at again.
    pub fn touch(&self, statement: &isac_core::Statement) {
        let id = match &statement.body {
            isac_core::Body::Indicator(_) => statement.id,
            isac_core::Body::Retraction(r) => r.target,
            _ => return,
        };
        self.touch_id(&id.to_string());
    }

    pub fn touch_id(&self, id: &str) {
        self.lock().touched.insert(id.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Agent {
    /// Brings the watch up to date (registrations, changed files, the
    /// indicators touched) and announces what changed to every sink, in
    /// the transaction that records it. A sink failure fails this call;
    /// the difference stays pending and is announced by the next one.
    pub async fn update_exposures(&self, sinks: &mut Sinks) -> Result<(), AgentError> {
        let now = isac_core::time::format_rfc3339(self.clock.now());
        let (pending, first) = {
            let store = self.store.lock().expect("local store lock");
            let mut inner = self.watch.lock();
            if inner.exposures.is_none() {
                if store.watched()?.is_empty() && store.exposures()?.is_empty() {
                    // Nothing watched: what is touched is read whole when
                    // something is.
                    inner.touched.clear();
                    return Ok(());
                }
                inner.touched.clear();
                inner.exposures = Some(Exposures::load(&store, &now)?);
            }
            let WatchInner { exposures, touched } = &mut *inner;
            let x = exposures.as_mut().expect("loaded above");
            for id in std::mem::take(touched) {
                x.refresh_indicator(&store, &id, &now)?;
            }
            x.rescan(&store, &now)?;
            let pending = x.pending();
            if pending.is_empty() {
                return Ok(());
            }
            (pending, store.next_exposure_event()?)
        };
        let lines = lines(&pending, first, &now);
        sinks.send_exposures(&lines).await?;
        {
            let store = self.store.lock().expect("local store lock");
            let added: Vec<ExposureRow> = pending
                .new
                .iter()
                .map(|e| {
                    Ok(ExposureRow {
                        application: e.application.clone(),
                        component: e.component_ref.clone(),
                        indicator: e.indicator.id.clone(),
                        record_json: serde_json::to_string(e)
                            .map_err(|e| AgentError::Invalid(e.to_string()))?,
                    })
                })
                .collect::<Result<_, AgentError>>()?;
            let removed: Vec<(String, String, String)> = pending
                .cleared
                .iter()
                .map(|(e, _)| {
                    (
                        e.application.clone(),
                        e.component_ref.clone(),
                        e.indicator.id.clone(),
                    )
                })
                .collect();
            store.record_exposures(&added, &removed, lines.len() as u64, || {
                sinks.write_exposures(&lines)
            })?;
        }
        for line in &lines {
            tracing::info!(
                action = line["action"].as_str().unwrap_or_default(),
                application = line["application"].as_str().unwrap_or_default(),
                indicator = line["indicator"]["id"].as_str().unwrap_or_default(),
                "exposure"
            );
        }
        if let Some(x) = self.watch.lock().exposures.as_mut() {
            x.announced(pending);
        }
        Ok(())
    }
}

/// The exposures announced and not cleared, as the store holds them (for
/// `exposure list`, `exposure report` and the console: what the sinks
/// were told).
pub fn announced(store: &LocalStore) -> Result<Vec<Exposure>, AgentError> {
    Ok(store
        .exposures()?
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.record_json).ok())
        .collect())
}

/// Reports `application`'s exposure to `indicator` (which the watch finds
/// now) back to the ISAC as a sighting of the indicator, through the
/// sighting code: anonymous unless `named`, at the indicator's TLP or a
/// stricter one (`tlp`), `count` defaulting to the exposed components.
pub async fn report(
    agent: &Agent,
    application: &str,
    indicator: &str,
    count: Option<u32>,
    named: bool,
    tlp: Option<&str>,
) -> Result<crate::publish::Published, AgentError> {
    let now = isac_core::time::format_rfc3339(agent.clock.now());
    let components = {
        let store = agent.store.lock().expect("local store lock");
        Exposures::load(&store, &now)?
            .current()
            .filter(|e| e.application == application && e.indicator.id == indicator)
            .count()
    };
    if components == 0 {
        return Err(AgentError::Usage(format!(
            "`{application}` is not exposed to {indicator} now (see `member-agent exposure list`)"
        )));
    }
    let count = count.unwrap_or(u32::try_from(components).unwrap_or(u32::MAX));
    crate::publish::sight(agent, indicator, count, named, tlp).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::localstore::Watched;

    const NOW: &str = "2026-12-02T00:00:00Z";
    const CDXGEN: &str = include_str!("../../packages/fixtures/sbom/cdxgen-cyclonedx.json");

    struct World {
        dir: tempfile::TempDir,
        store: LocalStore,
        sbom: PathBuf,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let sbom = dir.path().join("bom.json");
        std::fs::write(&sbom, CDXGEN).unwrap();
        assert!(store
            .add_watched(&Watched {
                name: "online-banking".into(),
                path: sbom.display().to_string(),
                added: NOW.into(),
            })
            .unwrap());
        World { dir, store, sbom }
    }

    /// What `Agent::update_exposures` does with the sinks left out.
    fn announce(x: &mut Exposures, store: &LocalStore) -> Vec<Value> {
        let pending = x.pending();
        let lines = lines(&pending, store.next_exposure_event().unwrap(), NOW);
        let added: Vec<ExposureRow> = pending
            .new
            .iter()
            .map(|e| ExposureRow {
                application: e.application.clone(),
                component: e.component_ref.clone(),
                indicator: e.indicator.id.clone(),
                record_json: serde_json::to_string(e).unwrap(),
            })
            .collect();
        let removed: Vec<_> = pending
            .cleared
            .iter()
            .map(|(e, _)| {
                (
                    e.application.clone(),
                    e.component_ref.clone(),
                    e.indicator.id.clone(),
                )
            })
            .collect();
        store
            .record_exposures(&added, &removed, lines.len() as u64, || Ok(()))
            .unwrap();
        x.announced(pending);
        lines
    }

    fn actions(lines: &[Value]) -> Vec<(String, u64)> {
        lines
            .iter()
            .map(|l| {
                (
                    l["action"].as_str().unwrap().to_owned(),
                    l["event"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn an_indicator_then_a_restart_then_a_retraction() {
        let w = world();
        w.store
            .insert_synthetic_package(
                "ind-1",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.1"],
                "valid",
                None,
            )
            .unwrap();
        // A neighbouring version is not an exposure.
        w.store
            .insert_synthetic_package(
                "ind-2",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.2"],
                "valid",
                None,
            )
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.new".to_string(), 1)]);
        let l = &lines[0];
        assert_eq!(l["application"], "online-banking");
        assert_eq!(l["component"], "pkg:npm/flatmap-stream@0.1.1");
        assert_eq!(l["indicator"]["id"], "ind-1");
        assert_eq!(l["tlp"], "amber");
        assert_eq!(l["certain"], true);
        assert_eq!(
            l["path"],
            json!([
                "online-banking@3.4.0",
                "event-stream@3.3.6",
                "flatmap-stream@0.1.1"
            ])
        );
        assert!(l["id"].as_str().unwrap().starts_with("exposure-"));

        // A restart: the same findings, nothing to announce.
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        assert!(x.pending().is_empty());

        // Retracted (the agent marks it, then asks the watch).
        w.store.mark_retracted("ind-1").unwrap();
        x.refresh_indicator(&w.store, "ind-1", NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 2)]);
        assert_eq!(lines[0]["why"], WHY_GONE);
        assert_eq!(lines[0]["id"], l["id"], "the same exposure");
        assert!(w.store.exposures().unwrap().is_empty());
    }

    #[test]
    fn a_clear_while_stopped_is_announced_at_start() {
        let w = world();
        w.store
            .insert_synthetic_package("ind-1", 1, "pkg:npm/express", &["<4.21.2"], "valid", None)
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        assert_eq!(announce(&mut x, &w.store).len(), 1);
        drop(x);
        // Revised while no agent ran: the new revision spares 4.21.1.
        w.store
            .insert_synthetic_package("ind-1", 2, "pkg:npm/express", &["<4.20"], "valid", None)
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 2)]);
        assert_eq!(lines[0]["why"], WHY_WHILE_STOPPED);
    }

    #[test]
    fn the_file_changing_and_going_away() {
        let w = world();
        w.store
            .insert_synthetic_package(
                "ind-1",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.1"],
                "valid",
                None,
            )
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        announce(&mut x, &w.store);
        // Upgraded (a different size, so no timestamp granularity matters).
        let upgraded = CDXGEN
            .replace("flatmap-stream@0.1.1", "flatmap-stream@0.1.12")
            .replace(r#""version": "0.1.1""#, r#""version": "0.1.12""#);
        std::fs::write(&w.sbom, &upgraded).unwrap();
        x.rescan(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 2)]);
        assert_eq!(lines[0]["why"], WHY_INVENTORY);
        // Broken: what was read before stays (nothing cleared or raised).
        std::fs::write(&w.sbom, "{ not json").unwrap();
        x.rescan(&w.store, NOW).unwrap();
        assert!(x.pending().is_empty());
        // Back to the affected version, then no longer watched.
        std::fs::write(&w.sbom, format!("{CDXGEN}\n")).unwrap();
        x.rescan(&w.store, NOW).unwrap();
        assert_eq!(
            actions(&announce(&mut x, &w.store)),
            [("exposure.new".to_string(), 3)]
        );
        assert!(w.store.remove_watched("online-banking").unwrap());
        x.rescan(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(lines[0]["why"], WHY_UNWATCHED);
        let _ = &w.dir;
    }

    #[test]
    fn a_file_unreadable_at_start_keeps_its_exposures_until_it_is_read() {
        let w = world();
        w.store
            .insert_synthetic_package(
                "ind-1",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.1"],
                "valid",
                None,
            )
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        announce(&mut x, &w.store);
        drop(x);
        // Stopped; the file goes away for a while (a build rewriting it).
        std::fs::rename(&w.sbom, w.dir.path().join("elsewhere.json")).unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        assert!(x.pending().is_empty(), "nothing cleared on a guess");
        assert_eq!(x.current().count(), 1);
        // It comes back upgraded: now it clears.
        let upgraded = CDXGEN
            .replace("flatmap-stream@0.1.1", "flatmap-stream@0.1.12")
            .replace(r#""version": "0.1.1""#, r#""version": "0.1.12""#);
        std::fs::write(&w.sbom, upgraded).unwrap();
        x.rescan(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 2)]);
        assert_eq!(lines[0]["why"], WHY_INVENTORY);
        // And an unreadable application that is unwatched clears too.
        std::fs::write(&w.sbom, CDXGEN).unwrap();
        x.rescan(&w.store, NOW).unwrap();
        announce(&mut x, &w.store);
        drop(x);
        std::fs::remove_file(&w.sbom).unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        assert!(x.pending().is_empty());
        w.store.remove_watched("online-banking").unwrap();
        x.rescan(&w.store, NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 4)]);
        assert_eq!(lines[0]["why"], WHY_UNWATCHED);
    }

    #[test]
    fn a_retraction_clears_an_exposure_kept_for_an_unreadable_file() {
        let w = world();
        w.store
            .insert_synthetic_package(
                "ind-1",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.1"],
                "valid",
                None,
            )
            .unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        announce(&mut x, &w.store);
        std::fs::remove_file(&w.sbom).unwrap();
        let mut x = Exposures::load(&w.store, NOW).unwrap();
        assert!(x.pending().is_empty());
        w.store.mark_retracted("ind-1").unwrap();
        x.refresh_indicator(&w.store, "ind-1", NOW).unwrap();
        let lines = announce(&mut x, &w.store);
        assert_eq!(actions(&lines), [("exposure.cleared".to_string(), 2)]);
        assert_eq!(lines[0]["why"], WHY_GONE);
    }

    #[test]
    fn sinks_get_exposures_under_their_indicators_tlp_once() {
        let w = world();
        let jsonl = w.dir.path().join("out.jsonl");
        let exposure = |tlp: &str| Exposure {
            application: "a".into(),
            component_ref: "c".into(),
            component: "pkg:npm/x@1.0.0".into(),
            version: Some("1.0.0".into()),
            path: None,
            indicator: IndicatorRef {
                id: format!("i-{tlp}"),
                revision: 1,
                title: "t".into(),
                tlp: tlp.into(),
                source: "s".into(),
                severity: "high".into(),
                value: "pkg:npm/x".into(),
            },
            why: "affected: version 1.0.0".into(),
            certain: true,
            since: NOW.into(),
        };
        let lines = [
            exposure("red").line("exposure.new", 1, NOW, "w"),
            exposure("amber").line("exposure.new", 2, NOW, "w"),
            exposure("nonsense").line("exposure.new", 3, NOW, "w"),
        ];
        let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
        sinks.write_exposures(&lines).unwrap();
        let written = std::fs::read_to_string(&jsonl).unwrap();
        assert_eq!(
            written.lines().count(),
            1,
            "RED and unreadable labels stay: {written}"
        );
        assert!(written.contains("i-amber"));
        // Reopened after a crash before the commit: not written twice.
        let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
        sinks.write_exposures(&lines[1..2]).unwrap();
        assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 1);
        // A RED exposure goes out with --export-red.
        let mut sinks = Sinks::open(crate::sinks::SinkSettings {
            export_red: true,
            ..crate::sinks::SinkSettings::jsonl(Some(&jsonl))
        })
        .unwrap();
        sinks.write_exposures(&lines[..1]).unwrap();
        assert!(std::fs::read_to_string(&jsonl).unwrap().contains("i-red"));
    }

    #[test]
    fn a_lockfile_is_an_inventory_and_garbage_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("requirements.txt");
        std::fs::write(&lock, "Django==4.2.1\nrequests==2.31.0\n").unwrap();
        let inv = read_inventory(&lock).unwrap();
        assert_eq!(inv.components.len(), 2);
        assert_eq!(inv.format.to_string(), "requirements.txt (lockfile)");
        let bad = dir.path().join("bom.json");
        std::fs::write(&bad, "{\"hello\": 1}").unwrap();
        for path in [bad, dir.path().join("missing.json"), dir.path().to_owned()] {
            let err = read_inventory(&path).unwrap_err();
            assert!(
                matches!(&err, AgentError::Usage(m) if m.contains(&*path.display().to_string())),
                "{err}"
            );
        }
    }
}
