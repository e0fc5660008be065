//! Fuzz target bodies for the member agent's importers (OSV JSON, CSV),
//! shared by `cargo fuzz` and the stable test
//! `tests/tests/e2e/fuzz_importers.rs` (which includes this file). An
//! importer answers Ok or a clear error; every draft it yields either
//! becomes a valid, canonical statement or is refused with an error, never
//! a panic.

use member_agent::csv::drafts_from_csv;
use member_agent::draft::IndicatorDraft;
use member_agent::osv::parse_osv;

fn check_draft(mut d: IndicatorDraft) {
    if d.tlp.is_none() {
        d.tlp = Some("clear".into());
    }
    if let Ok(p) = d.into_prepared("acme-bank", "2026-11-25T12:00:00Z".into()) {
        assert!(
            p.statement.validate().is_ok(),
            "an import made an invalid statement"
        );
        let bytes = p.statement.canonical_bytes();
        let back = isac_core::Statement::from_canonical_bytes(&bytes)
            .expect("an imported statement does not parse back");
        assert_eq!(back.canonical_bytes(), bytes);
    }
}

/// Target `osv`: bytes as an OSV record (or array of records).
pub fn osv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(records) = parse_osv("fuzz.json", &text) {
        for r in records {
            assert!(!r.osv_id.is_empty(), "an OSV record without an id");
            for d in r.drafts {
                check_draft(d);
            }
        }
    }
}

/// Target `csv`: bytes as a CSV import file.
pub fn csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(rows) = drafts_from_csv(&text) {
        for (line, row) in rows {
            assert!(
                line >= 2,
                "a data row on line {line} (the header is line 1)"
            );
            if let Ok(d) = row {
                check_draft(d);
            }
        }
    }
}

/// Target `witness_request`: bytes as a C2SP tlog-witness `add-checkpoint`
/// body (what `member-agent witness serve` reads from anyone). It parses
/// or is refused with a 400, never panics; what parses has at most 63
/// proof hashes and a non-empty note, and formats back to the same bytes.
/// Deciding it against a witness with no state and no log key is a refusal
/// (404 or 400), never a cosignature.
pub fn witness_request(data: &[u8]) {
    use member_agent::witness::protocol::{self, TrustedLogs};
    match protocol::parse_request(data) {
        Ok(r) => {
            assert!(r.proof.len() <= protocol::MAX_PROOF_LINES);
            assert!(!r.note.is_empty());
            if let Ok(note) = std::str::from_utf8(&r.note) {
                assert_eq!(
                    protocol::format_request(r.old_size, &r.proof, note).as_bytes(),
                    data,
                    "a witness request does not round-trip"
                );
            }
            let refused = protocol::check(&r, &TrustedLogs::default(), |_| None)
                .expect_err("a witness without logs cosigned");
            assert!(matches!(refused.status(), 400 | 404), "{refused}");
        }
        Err(e) => assert_eq!(e.status(), 400, "{e}"),
    }
}

/// Target `bulletin_markdown`: bytes as a bulletin body, rendered for the
/// console (`member_agent::ui::markdown`). Never panics; whatever the
/// text, the markup holds no element a bulletin may not carry, no event
/// handler attribute, and no link but http(s).
pub fn bulletin_markdown(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let out = member_agent::ui::markdown::to_markup(&text).into_string();
    let lower = out.to_ascii_lowercase();
    for bad in [
        "<script", "<img", "<iframe", "<object", "<embed", "<svg", "<style", "<form", "<input",
    ] {
        assert!(!lower.contains(bad), "{bad} in rendered markdown");
    }
    // Every tag is one of ours, every attribute one we write.
    let mut rest = out.as_str();
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').expect("an unclosed tag");
        let tag = &rest[..end];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            [
                "div",
                "p",
                "h3",
                "h4",
                "h5",
                "h6",
                "blockquote",
                "pre",
                "code",
                "ol",
                "ul",
                "li",
                "em",
                "strong",
                "del",
                "a",
                "span",
                "br",
                "hr",
            ]
            .contains(&name.as_str()),
            "tag <{tag}>"
        );
        if let Some(href) = tag.strip_prefix("a href=\"") {
            let lower = href.to_ascii_lowercase();
            assert!(
                lower.starts_with("http://") || lower.starts_with("https://"),
                "href {href}"
            );
        }
        assert!(!tag.contains(" on"), "an event attribute in <{tag}>");
    }
}
