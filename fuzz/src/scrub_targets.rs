//! Fuzz target body for `isac-scrub`: the scanner and the benign-list
//! parser read outside text (statements, extension files). Every input must
//! be scanned or refused without a panic; findings sit on character
//! boundaries, in order, without overlap, and each one's placeholder is in
//! the redacted text. The fast matchers give exactly what the plain
//! one-pass ones they replaced give (`scan_text_reference`), with and
//! without the member's rules. `scrub/tests/fuzz_targets.rs` includes this
//! file and runs it on stable.
//!
//! Uses only `isac_scrub` (and std), so it compiles in both places.

use isac_scrub::benign::List;
use isac_scrub::{scan_text, scan_text_reference, Kind, Role, Rules};

pub fn scrub(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let rules = Rules {
        own_domains: vec!["acme.example".into()],
        people: vec!["Alice Martin".into()],
        patterns: vec!["bluebird".into()],
        disabled: vec![],
    };
    for role in [Role::Prose, Role::Locator, Role::Identifier] {
        for r in [&rules, &Rules::default()] {
            assert_eq!(
                scan_text("f", &text, role, r),
                scan_text_reference("f", &text, role, r),
                "fast and reference matchers differ on {text:?} ({role:?})"
            );
        }
        let Ok(scan) = scan_text("f", &text, role, &rules) else {
            assert!(text.len() > isac_scrub::MAX_FIELD_BYTES);
            return;
        };
        let mut last = 0;
        for f in &scan.findings {
            assert!(f.at >= last, "overlap or disorder at {} in {text:?}", f.at);
            assert!(text.is_char_boundary(f.at), "{f:?}");
            assert!(scan.redacted.contains(f.kind.placeholder()), "{f:?}");
            last = f.at + 1;
        }
        if scan.findings.is_empty() {
            assert_eq!(scan.redacted, text);
        }
        for f in &scan.findings {
            assert!(Kind::ALL.contains(&f.kind) && !f.to_string().is_empty());
        }
    }
    let _ = List::parse(&text);
}
