//! Known-benign observables: curated, versioned lists shipped as data files
//! (`scrub/lists/`), compiled in, extendable from a file of the same format.
//!
//! Format: `# list: NAME` and `# version: V` header lines, other `#` lines
//! are comments, then one entry a line, its shape saying what it is: an
//! address or CIDR range, a SHA-256/SHA-512 hex digest, a versionless purl
//! (`pkg:npm/lodash`), or else an exact host name.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use isac_core::statement::{Observable, PackageThreat};

const BUILTIN: [&str; 6] = [
    include_str!("../lists/public-dns-resolvers.txt"),
    include_str!("../lists/registries-and-code-hosts.txt"),
    include_str!("../lists/cdn-and-cloud.txt"),
    include_str!("../lists/documentation-ranges.txt"),
    include_str!("../lists/empty-file-hashes.txt"),
    include_str!("../lists/popular-packages.txt"),
];

/// An extension file larger than this is refused.
pub const MAX_LIST_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("a benign list needs `# list: NAME` and `# version: V` header lines")]
    MissingHeader,
    #[error("line {line}: `{entry}` is not an address, range, hash, purl or host name")]
    BadEntry { line: usize, entry: String },
    #[error("the list is {len} bytes; at most {max} are read")]
    TooLarge { len: usize, max: usize },
}

#[derive(Debug, Clone)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct List {
    pub name: String,
    pub version: String,
    nets: Vec<(Net, String)>,
    hosts: BTreeSet<String>,
    hashes: BTreeSet<String>,
    packages: BTreeSet<String>,
}

/// An observable found on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenignHit {
    /// The observable field (`ip`, `domain`, `url`, `sha256`, `purl`, ...).
    pub field: &'static str,
    pub value: String,
    pub list: String,
    pub version: String,
    pub entry: String,
}

impl fmt::Display for BenignHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` is on the benign list {} (version {}, entry `{}`)",
            self.field, self.value, self.list, self.version, self.entry
        )
    }
}

fn normalize_purl(p: &str) -> Option<String> {
    let rest = p.trim().strip_prefix("pkg:")?;
    let rest = rest.split(['?', '#']).next()?;
    // The version starts at the last `@` after the last `/`.
    let slash = rest.rfind('/')?;
    let end = rest[slash..].find('@').map_or(rest.len(), |i| slash + i);
    let mut s = format!("pkg:{}", &rest[..end]).to_ascii_lowercase();
    if s.starts_with("pkg:pypi/") {
        s = s.replace(['_', '.'], "-");
    }
    Some(s)
}

fn parse_net(e: &str) -> Option<Net> {
    let (a, p) = match e.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (e, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.parse().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some(Net { addr, prefix })
}

fn is_hostname(e: &str) -> bool {
    e.len() <= 253
        && e.contains('.')
        && e.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl List {
    pub fn parse(text: &str) -> Result<List, ListError> {
        if text.len() > MAX_LIST_BYTES {
            return Err(ListError::TooLarge {
                len: text.len(),
                max: MAX_LIST_BYTES,
            });
        }
        let mut list = List {
            name: String::new(),
            version: String::new(),
            nets: Vec::new(),
            hosts: BTreeSet::new(),
            hashes: BTreeSet::new(),
            packages: BTreeSet::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(c) = line.strip_prefix('#') {
                let c = c.trim();
                if let Some(v) = c.strip_prefix("list:") {
                    list.name = v.trim().to_owned();
                } else if let Some(v) = c.strip_prefix("version:") {
                    list.version = v.trim().to_owned();
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let e = line.to_ascii_lowercase();
            if let Some(net) = parse_net(&e) {
                list.nets.push((net, e));
            } else if (e.len() == 64 || e.len() == 128) && e.bytes().all(|b| b.is_ascii_hexdigit())
            {
                list.hashes.insert(e);
            } else if e.starts_with("pkg:") {
                let p = normalize_purl(&e).ok_or_else(|| ListError::BadEntry {
                    line: n + 1,
                    entry: line.to_owned(),
                })?;
                list.packages.insert(p);
            } else if is_hostname(&e) {
                list.hosts.insert(e.trim_end_matches('.').to_owned());
            } else {
                return Err(ListError::BadEntry {
                    line: n + 1,
                    entry: line.to_owned(),
                });
            }
        }
        if list.name.is_empty() || list.version.is_empty() {
            return Err(ListError::MissingHeader);
        }
        Ok(list)
    }
}

/// The lists in force: the built-in ones plus any extensions.
#[derive(Debug, Clone)]
pub struct Lists {
    lists: Vec<List>,
}

impl Default for Lists {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The host of a URL (no scheme, user info or port), and whether its path
/// says anything (a path, query or fragment beyond `/`).
fn url_host(url: &str) -> Option<(String, bool)> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    let tail = tail.trim_end_matches('/');
    Some((
        host.trim_end_matches('.').to_ascii_lowercase(),
        !tail.is_empty(),
    ))
}

impl Lists {
    pub fn builtin() -> Lists {
        Lists {
            lists: BUILTIN
                .iter()
                .map(|t| List::parse(t).expect("built-in benign lists parse"))
                .collect(),
        }
    }

    /// Adds a list (an extension file's text).
    pub fn extend(&mut self, text: &str) -> Result<(), ListError> {
        self.lists.push(List::parse(text)?);
        Ok(())
    }

    /// Names and versions of the lists in force.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.lists
            .iter()
            .map(|l| (l.name.clone(), l.version.clone()))
            .collect()
    }

    fn ip(&self, field: &'static str, value: &str, ip: IpAddr) -> Option<BenignHit> {
        self.lists.iter().find_map(|l| {
            l.nets
                .iter()
                .find(|(n, _)| n.contains(ip))
                .map(|(_, e)| BenignHit {
                    field,
                    value: value.to_owned(),
                    list: l.name.clone(),
                    version: l.version.clone(),
                    entry: e.clone(),
                })
        })
    }

    fn host(&self, field: &'static str, value: &str, host: &str) -> Option<BenignHit> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ip(field, value, ip);
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.lists.iter().find_map(|l| {
            l.hosts.get(&host).map(|e| BenignHit {
                field,
                value: value.to_owned(),
                list: l.name.clone(),
                version: l.version.clone(),
                entry: e.clone(),
            })
        })
    }

    fn set_hit(
        &self,
        field: &'static str,
        value: &str,
        key: &str,
        pick: fn(&List) -> &BTreeSet<String>,
    ) -> Option<BenignHit> {
        self.lists.iter().find_map(|l| {
            pick(l).get(key).map(|e| BenignHit {
                field,
                value: value.to_owned(),
                list: l.name.clone(),
                version: l.version.clone(),
                entry: e.clone(),
            })
        })
    }

    /// Every part of `obs` that is on a list.
    pub fn check(&self, obs: &Observable) -> Vec<BenignHit> {
        let mut hits = Vec::new();
        match obs {
            Observable::Network { domain, ip, url } => {
                if let Some(d) = domain {
                    hits.extend(self.host("domain", d, d.trim()));
                }
                if let Some(i) = ip {
                    if let Ok(a) = i.trim().parse::<IpAddr>() {
                        hits.extend(self.ip("ip", i, a));
                    }
                }
                if let Some(u) = url {
                    hits.extend(self.url("url", u));
                }
            }
            Observable::Repository { url, .. } => hits.extend(self.url("repo_url", url)),
            Observable::Artifact { sha256, sha512, .. } => {
                for (f, h) in [("sha256", sha256), ("sha512", sha512)] {
                    if let Some(h) = h {
                        let key = h.trim().to_ascii_lowercase();
                        hits.extend(self.set_hit(f, h, &key, |l| &l.hashes));
                    }
                }
            }
            // Only a claim that the real package itself is malicious: a
            // typosquat of it, a compromised version or a dependency
            // confusion are real indicators.
            Observable::Package {
                purl,
                versions,
                threat: PackageThreat::Malicious,
                ..
            } if versions.is_empty() => {
                let key = normalize_purl(purl);
                // A versioned purl claims that one version (a compromise).
                let every_version = !purl.rsplit('/').next().unwrap_or("").contains('@');
                if let Some(key) = key.filter(|_| every_version) {
                    hits.extend(self.set_hit("purl", purl, &key, |l| &l.packages));
                }
            }
            Observable::Package { .. }
            | Observable::Account { .. }
            | Observable::Vulnerability { .. } => {}
        }
        hits
    }

    /// A URL on a listed host is benign only when it names the host alone
    /// (`https://github.com/evil/repo` is a fine indicator); a URL on a
    /// listed address range is benign whatever its path.
    fn url(&self, field: &'static str, url: &str) -> Option<BenignHit> {
        let (host, has_path) = url_host(url)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ip(field, url, ip);
        }
        if has_path {
            return None;
        }
        self.host(field, url, &host)
    }
}
