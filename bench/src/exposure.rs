//! "Are we affected?" figures (issue 17), pure CPU, no hub: an SBOM read
//! and checked against held indicators through `isac_packages`' index by
//! package, and the watch's re-evaluation when an indicator arrives.

use std::time::Instant;

use isac_packages::exposure::{Advisory, Index};
use isac_packages::watch::Watch;
use isac_packages::{AffectedVersions, Purl};
use serde_json::{json, Value};

pub struct Sizes {
    pub components: usize,
    pub indicators: usize,
    pub applications: usize,
    pub app_components: usize,
    pub new_indicators: usize,
}

impl Sizes {
    pub fn new(smoke: bool) -> Sizes {
        if smoke {
            Sizes {
                components: 1_000,
                indicators: 10_000,
                applications: 4,
                app_components: 500,
                new_indicators: 200,
            }
        } else {
            Sizes {
                components: 10_000,
                indicators: 1_000_000,
                applications: 50,
                app_components: 2_000,
                new_indicators: 5_000,
            }
        }
    }
}

/// Ecosystems the synthetic packages cycle through, so lookups cross
/// every version order we hold.
const TYPES: [(&str, &str); 4] = [
    ("npm", "1.4.2"),
    ("pypi", "2.0.1"),
    ("maven", "3.2.1"),
    ("cargo", "1.9.3"),
];

fn package(i: usize) -> String {
    let (ty, _) = TYPES[i % TYPES.len()];
    match ty {
        "npm" => format!("pkg:npm/%40scope{}/pkg-{i}", i % 97),
        "maven" => format!("pkg:maven/org.example{}/artifact-{i}", i % 89),
        _ => format!("pkg:{ty}/pkg-{i}"),
    }
}

fn advisory(i: usize) -> Advisory<u32> {
    let purl: Purl = package(i).parse().expect("bench purl");
    // Ranges, not single versions: the matcher does real work per hit.
    let versions = vec![format!("<{}", TYPES[i % TYPES.len()].1)];
    Advisory {
        affected: AffectedVersions::from_statement(purl.ecosystem(), None, &versions),
        package: purl,
        meta: i as u32,
    }
}

/// A CycloneDX SBOM of `n` components, every tenth one a package the
/// indicators name (at an affected version), the rest not held.
fn sbom(n: usize, held: usize) -> String {
    let components: Vec<String> = (0..n)
        .map(|c| {
            let i = if c % 10 == 0 {
                (c * 7919) % held
            } else {
                held + c
            };
            let purl = format!("{}@1.0.0", package(i));
            format!(
                r#"{{"bom-ref":"c{c}","type":"library","name":"pkg-{i}","version":"1.0.0","purl":"{purl}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{{"component":{{"bom-ref":"app","type":"application","name":"app"}}}},"components":[{}]}}"#,
        components.join(",")
    )
}

/// Measures and returns the figures (JSON keys in docs/performance.md).
pub fn measure(s: &Sizes) -> Value {
    let started = Instant::now();
    let mut index = Index::new();
    for i in 0..s.indicators {
        index.insert(advisory(i));
    }
    let index_build_ms = started.elapsed().as_secs_f64() * 1e3;
    let text = sbom(s.components, s.indicators);
    let started = Instant::now();
    let inventory = isac_packages::sbom::read(text.as_bytes()).expect("bench SBOM");
    let findings = index.check(&inventory).len();
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(inventory.components.len(), s.components);
    assert_eq!(findings, s.components.div_ceil(10), "every tenth component");
    drop(index);

    // The watch: applications registered, indicators held, then new
    // indicators arriving one by one (each half about a package some
    // application has).
    let mut watch: Watch<u32> = Watch::new();
    for a in 0..s.applications {
        let text = sbom_for_app(a, s.app_components);
        let inv = isac_packages::sbom::read(text.as_bytes()).expect("bench app SBOM");
        watch.set_application(&format!("app-{a}"), inv);
    }
    let held = s.indicators.min(100_000);
    for i in 0..held {
        watch.upsert_indicator(&format!("held-{i}"), vec![advisory(1_000_000 + i)]);
    }
    let started = Instant::now();
    let mut events = 0;
    for k in 0..s.new_indicators {
        let i = if k % 2 == 0 {
            k % s.app_components
        } else {
            2_000_000 + k
        };
        events += watch
            .upsert_indicator(&format!("new-{k}"), vec![advisory(i)])
            .len();
    }
    let per_indicator_us = started.elapsed().as_secs_f64() * 1e6 / s.new_indicators as f64;
    assert!(
        events > 0,
        "new indicators about held packages raise exposures"
    );
    json!({
        "sbom_components": s.components,
        "sbom_held_indicators": s.indicators,
        "sbom_index_build_ms": round2(index_build_ms),
        "sbom_check_ms": round2(check_ms),
        "sbom_findings": findings,
        "watch_applications": s.applications,
        "watch_components_per_application": s.app_components,
        "watch_new_indicators": s.new_indicators,
        "watch_events": events,
        "watch_per_indicator_us": round2(per_indicator_us),
        "watch_per_indicator_per_application_us": round2(per_indicator_us / s.applications as f64),
    })
}

/// Application `a`'s SBOM: packages 0..n (so applications share them),
/// at an affected version.
fn sbom_for_app(a: usize, n: usize) -> String {
    let components: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"bom-ref":"a{a}c{i}","type":"library","name":"pkg-{i}","version":"1.0.0","purl":"{}@1.0.0"}}"#,
                package(i)
            )
        })
        .collect();
    format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{{"component":{{"bom-ref":"app-{a}","type":"application","name":"app-{a}"}}}},"components":[{}]}}"#,
        components.join(",")
    )
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
