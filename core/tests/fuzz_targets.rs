//! The cargo-fuzz targets' bodies (`fuzz/src/core_targets.rs`), run on
//! stable in the normal test suite with a deterministic generator: random
//! bytes, and mutations of valid seeds (bit flips, insertions, deletions,
//! truncation, splices, hostile bytes). `cargo fuzz` (scripts/fuzz) runs the
//! same bodies for as long as you like; any crash it finds is added to
//! `REGRESSIONS` below.
//!
//! `ISAC_FUZZ_SEED_DIR=DIR` also writes the seeds to `DIR/<target>/` (the
//! cargo-fuzz corpus layout); scripts/fuzz uses it.

#[path = "../../fuzz/src/core_targets.rs"]
mod core_targets;

use core_targets::*;

/// xorshift64: reproducible; the seed is in each test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, (rng.next() & 0xff) as u8);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            5 | 6 => {
                let specials: [&[u8]; 14] = [
                    b"\"",
                    b"\\",
                    b"\\u0000",
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b",",
                    b"\0",
                    "\u{202e}".as_bytes(),
                    "\u{feff}".as_bytes(),
                    b"%",
                    b"@",
                    b"1e999",
                ];
                let s = specials[rng.below(specials.len())];
                let at = rng.below(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
            _ => {}
        }
    }
    v
}

type Target = fn(&[u8]);

fn seeds() -> Vec<(&'static str, Target, Vec<Vec<u8>>)> {
    let f = fixture();
    let payload = f.envelope.payload.clone();
    let json = f.envelope.to_json().into_bytes();
    let observables: Vec<Vec<u8>> = [
        "pkg:npm/%40scope/name@1.2.3?arch=x86#sub/path",
        "pkg:maven/org.apache/log4j-core@2.14.1",
        "pkg:pypi/requests@2.31.0",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "c2.evil.example",
        "2001:db8::1",
        "https://evil.example/payload?x=1",
        "https://github.com/acme/widget.git",
        "npm:evil-maintainer",
        "GHSA-xxxx-xxxx-xxxx",
        "MAL-2024-1234",
        "person:acme-bank/jdoe",
        "amber+strict",
        "2026-11-25T16:51:18Z",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let patterns: Vec<Vec<u8>> = [
        "[domain-name:value = 'c2.evil.example']",
        "[software:name = 'left-pad' AND software:vendor = 'npm' AND software:version = '1.3.0']",
        "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
        "[(ipv4-addr:value = '203.0.113.7' OR url:value = 'https://evil.example/x')] OR [domain-name:value = 'b.example']",
        "[((((domain-name:value = 'deep.example'))))]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let log = log_fixture();
    let log_seeds: Vec<Vec<u8>> = vec![
        log.signed.clone().into_bytes(),
        log.checkpoint.to_text().unwrap().into_bytes(),
        // golang.org/x/mod/sumdb/note's two-signature example.
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
            .as_bytes()
            .to_vec(),
    ];
    let origin = origin_log_fixture();
    let hashes = |p: &[isac_core::tlog::Hash]| p.iter().map(|h| h.to_vec()).collect::<Vec<_>>();
    let origin_seeds: Vec<Vec<u8>> = (0..ORIGIN_LEAVES as u8)
        .map(|i| {
            origin_inclusion_input(
                i,
                i,
                origin.signed.as_bytes(),
                &hashes(&origin.proofs[i as usize]),
            )
        })
        .chain([
            origin_inclusion_input(1, 2, origin.signed.as_bytes(), &hashes(&origin.proofs[1])),
            origin_inclusion_input(0, 0, b"", &[]),
        ])
        .collect();
    vec![
        (
            "statement",
            statement as Target,
            vec![payload.clone(), sample_statement().canonical_bytes_v2()],
        ),
        (
            "jcs",
            jcs as Target,
            vec![
                sample_statement().canonical_bytes_v2(),
                br#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#.to_vec(),
                "{\"\\ud83d\\ude00\":1,\"\\ufb33\":[-0,1e21,5e-324,{\"\":\"é\"}]}".as_bytes().to_vec(),
            ],
        ),
        ("envelope", envelope as Target, vec![json]),
        ("signed_payload", signed_payload as Target, vec![payload]),
        ("observable", observable as Target, observables),
        ("stix_pattern", stix_pattern as Target, patterns),
        ("note", note as Target, log_seeds.clone()),
        ("checkpoint", checkpoint as Target, log_seeds),
        (
            "tile_path",
            tile_path as Target,
            [
                "tile/0/000",
                "tile/0/x001/234.p/17",
                "tile/3/x123/x456/789",
                "tile/1/000.p/255",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        ),
        (
            "extract",
            extract as Target,
            [
                "see pkg:npm/%40scope/evil@1.0.0 and hxxps://c2[.]evil[.]example/x?y=1, \
                 203.0.113.7 (2001:db8::1) CVE-2024-12345 abuse@evil.example",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855; GHSA-abcd-efgh-ijkl",
                "- evil.example.\n- github.com/acme/x\n* `pkg:pypi/requests@2.31.0`",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        ),
        (
            "provenance",
            provenance as Target,
            [
                r#"{"origin_hub":"hub-a","hub_path":["hub-a"]}"#,
                r#"{"origin_hub":"hub-a","origin_log_index":6,"hub_path":["hub-a","hub-c"]}"#,
                // The first form, with the origin's raw sequence (still read).
                r#"{"origin_hub":"hub-a","origin_seq":7,"hub_path":["hub-a"]}"#,
                r#"{"origin_hub":"hub-a","origin_seq":7,"origin_log_index":6,"hub_path":["hub-a","hub-c"]}"#,
                r#"{"origin_hub":"hub-a","origin_seq":1,"hub_path":["hub-a","hub-b"]}"#,
                // Relayed: through hub-c and a hub the origin never knew,
                // and through one it removed.
                r#"{"origin_hub":"hub-a","hub_path":["hub-a","hub-c","hub-d"]}"#,
                r#"{"origin_hub":"hub-a","hub_path":["hub-a","hub-c","hub-x"]}"#,
                r#"{"origin_hub":"hub-a","hub_path":["hub-a","hub-c","hub-d","hub-e","hub-f","hub-g","hub-h","hub-i"]}"#,
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        ),
        ("origin_inclusion", origin_inclusion as Target, origin_seeds),
        (
            "group_manifest",
            group_manifest as Target,
            [
                r#"{"hub":"hub-a","peer":"hub-b","issued":1700000000,"groups":[{"name":"supply-chain","members":["alice-bank@hub-a","dave-bank@hub-b"]}]}"#,
                r#"{"hub":"hub-a","peer":"hub-b","issued":0,"groups":[]}"#,
                r#"{"hub":"a","peer":"b","issued":-1,"groups":[{"name":"g","members":["x@a"]},{"name":"h","members":["x@a","y@b"]}]}"#,
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        ),
    ]
}

/// Inputs that once broke a target (from `cargo fuzz` artifacts), per target.
const REGRESSIONS: &[(&str, &[u8])] = &[
    // Issue 15: a pattern nested 5,000 deep overflowed the stack. The bytes
    // are built in `run` (too long to spell here).
];

fn run(rounds: usize, seed: u64) {
    let mut rng = Rng(seed);
    for (name, target, inputs) in seeds() {
        for input in &inputs {
            target(input);
        }
        for (target_name, bytes) in REGRESSIONS {
            if *target_name == name {
                target(bytes);
            }
        }
        if name == "stix_pattern" {
            let deep = format!(
                "[{}domain-name:value = 'x.example'{}]",
                "(".repeat(5_000),
                ")".repeat(5_000)
            );
            target(deep.as_bytes());
        }
        for _ in 0..rounds {
            let input = if rng.below(4) == 0 {
                rng.bytes(512)
            } else {
                let base = &inputs[rng.below(inputs.len())];
                mutate(&mut rng, base)
            };
            target(&input);
        }
    }
}

#[test]
fn fuzz_target_bodies_hold_on_random_and_mutated_inputs() {
    run(10_000, 0x5eed_f00d_0bad_cafe);
}

#[test]
fn the_signed_seed_itself_verifies() {
    // Guards the oracle: if the fixture stopped verifying, `signed_payload`
    // would pass vacuously.
    let f = fixture();
    assert!(isac_core::verify_envelope(&f.envelope, |_| Some(f.record.clone())).is_ok());
    signed_payload(&f.envelope.payload);
}

#[test]
fn write_seed_corpus_when_asked() {
    let Some(dir) = std::env::var_os("ISAC_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for (name, _, inputs) in seeds() {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), input).unwrap();
        }
    }
}

#[test]
fn the_origin_inclusion_seeds_are_accepted() {
    let f = origin_log_fixture();
    for i in 0..ORIGIN_LEAVES {
        let proof: Vec<Vec<u8>> = f.proofs[i as usize].iter().map(|h| h.to_vec()).collect();
        assert_eq!(
            isac_core::fed_log::check_origin_inclusion(
                &origin_envelope(i as u8),
                Some(i),
                f.signed.as_bytes(),
                &proof,
                &f.directory,
                None,
            ),
            Ok(f.checkpoint.clone())
        );
    }
}

#[test]
fn the_signed_checkpoint_seed_itself_opens() {
    // Guards the oracle of `note` and `checkpoint`: the fixture must open.
    let log = log_fixture();
    let opened =
        isac_core::tlog::checkpoint::open(log.signed.as_bytes(), LOG_ORIGIN, &[&log.verifier])
            .unwrap();
    assert_eq!(opened.checkpoint, log.checkpoint);
    note(log.signed.as_bytes());
    checkpoint(log.signed.as_bytes());
}
