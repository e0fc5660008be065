//! Scanning cost before signing (issue 21), pure CPU, no hub: MB/s of text
//! through `isac_scrub::scan_text`, on prose that holds one finding per
//! ~2 KiB (a realistic bulletin) and on a bulk import's worth of small
//! statements (`scan_statement` per indicator, as the agent does per row).

use std::time::Instant;

use isac_scrub::{scan_statement, scan_text, Role, Rules};
use serde_json::{json, Value};

fn prose(bytes: usize) -> String {
    let para = "The campaign publishes typosquats of popular packages; the postinstall \
        script downloads a second stage from a C2 at 45.77.10.3 and reads ~/.npmrc \
        for tokens. Hashes, versions 1.2.3 to 1.4.0 and CVE-2021-44228 are listed \
        below, dated 2026-11-25. ";
    let mut s = String::with_capacity(bytes + 256);
    let mut n = 0;
    while s.len() < bytes {
        s.push_str(para);
        n += 1;
        if n % 8 == 0 {
            s.push_str("Reported by soc@member.example. ");
        }
    }
    s
}

/// Adds `scrub_*` figures to `out`.
pub fn add_figures(out: &mut Value, smoke: bool) {
    let rules = Rules {
        own_domains: vec!["corp.member.example".into()],
        people: vec!["Alice Martin".into(), "Bob Jones".into()],
        ..Rules::default()
    };
    // 1 MB, under the field limit (`MAX_FIELD_BYTES`, 1 MiB): a larger
    // field is refused, not scanned.
    let text = prose(if smoke { 256 << 10 } else { 1_000_000 });
    let rounds = if smoke { 4 } else { 16 };
    let t = Instant::now();
    let mut found = 0;
    for _ in 0..rounds {
        found += scan_text("body", &text, Role::Prose, &rules)
            .expect("within bounds")
            .findings
            .len();
    }
    let prose_mb_s = (text.len() * rounds) as f64 / 1e6 / t.elapsed().as_secs_f64();

    let n = if smoke { 2_000 } else { 20_000 };
    let statements: Vec<isac_core::Statement> = (0..n)
        .map(|i| {
            member_agent::draft::IndicatorDraft {
                purl: Some(format!("pkg:npm/bench-scan-{i}@1.0.{i}")),
                tlp: Some("green".into()),
                title: Some(format!("typosquat {i} of a popular package")),
                description: Some(prose(300)),
                ..Default::default()
            }
            .into_statement("bench-org", "2026-12-02T12:00:00Z".into())
            .expect("valid")
        })
        .collect();
    let t = Instant::now();
    for s in &statements {
        found += scan_statement(s, &rules).expect("within bounds").0.len();
    }
    let per_s = n as f64 / t.elapsed().as_secs_f64();
    let (import_plain, import_scanned) = import_figures(if smoke { 1_000 } else { 10_000 });
    if let Some(o) = out.as_object_mut() {
        o.insert("import_prepare_per_s".into(), json!(import_plain.round()));
        o.insert(
            "import_prepare_scanned_per_s".into(),
            json!(import_scanned.round()),
        );
        // What scanning takes off a bulk import's own work (parse, build,
        // scan, sign), in per cent; the hub's side is the same either way.
        o.insert(
            "scrub_import_cost_pct".into(),
            json!((((1.0 - import_scanned / import_plain) * 1000.0).round() / 10.0).max(0.0)),
        );
        o.insert(
            "scrub_prose_mb_per_s".into(),
            json!((prose_mb_s * 10.0).round() / 10.0),
        );
        o.insert("scrub_statements_per_s".into(), json!(per_s.round()));
        o.insert("scrub_findings_seen".into(), json!(found));
    }
}

/// A CSV bulk import's agent-side work per row, as `publish --csv` does it
/// (parse the file into drafts, build each statement, then sign it), once
/// without and once with the scan before signing (`Scrubber::apply`, the
/// built-in rules and benign lists). Rows per second, best of three, the
/// two runs interleaved so the machine's load falls on both alike.
fn import_figures(rows: usize) -> (f64, f64) {
    let mut csv = String::from("purl,tlp,title,description,severity\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "pkg:npm/bench-import-{i}@1.0.{i},green,typosquat {i} of a popular package,\"{}\",high\n",
            prose(300).replace('"', "")
        ));
    }
    let key = isac_core::SigningKey::generate().expect("a key");
    let scrubber = member_agent::scrub::Scrubber::default();
    let choice = member_agent::scrub::Choice::default();
    let once = |scan: bool| {
        let t = Instant::now();
        let drafts = member_agent::csv::drafts_from_csv(&csv).expect("a valid CSV");
        let mut signed = 0usize;
        for (_, draft) in drafts {
            let mut st = draft
                .expect("a valid row")
                .into_statement("bench-org", "2026-12-02T12:00:00Z".into())
                .expect("valid");
            if scan {
                scrubber.apply(&mut st, &choice).expect("clean rows");
            }
            key.sign_envelope(isac_core::PAYLOAD_TYPE_STATEMENT_V1, st.canonical_bytes())
                .expect("signed");
            signed += 1;
        }
        signed as f64 / t.elapsed().as_secs_f64()
    };
    let (mut plain, mut scanned) = (0f64, 0f64);
    for _ in 0..3 {
        plain = plain.max(once(false));
        scanned = scanned.max(once(true));
    }
    (plain, scanned)
}
