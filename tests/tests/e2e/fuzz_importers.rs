//! The cargo-fuzz importer targets' bodies (`fuzz/src/agent_targets.rs`:
//! OSV and CSV), run on stable with a deterministic generator over random
//! bytes and mutations of real samples. `scripts/fuzz` runs the same bodies
//! under libFuzzer; crashes it finds go into `REGRESSIONS`.

#[path = "../../../fuzz/src/agent_targets.rs"]
mod agent_targets;

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
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                let specials = [
                    b'"', b',', b'\n', b'\r', b'{', b'}', b'[', b':', b';', b'\\', 0,
                ];
                v.insert(i, specials[rng.below(specials.len())]);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(80)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.insert(i, (rng.next() & 0xff) as u8);
            }
        }
    }
    v
}

const OSV: &str = include_str!(
    "../../../member-agent/tests/fixtures/osv/real/npm/@ctrl/tinycolor/MAL-2025-47141.json"
);
const CSV: &str = "kind,purl,domain,sha256,tlp,title,labels,confidence,description,severity\n\
                   package,pkg:npm/evil@1.0.0,,,green,\"evil, \"\"quoted\"\"\",a;b,90,\"multi\nline\",high\n\
                   network,,c2.evil.example,,clear,C2,,50,,\n\
                   artifact,,,e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,amber,hash,,10,,low\n";

/// Inputs that once broke a target (from `cargo fuzz` artifacts).
const REGRESSIONS: &[(&str, &[u8])] = &[];

fn run(name: &str, target: fn(&[u8]), seed_input: &[u8], rounds: usize, seed: u64) {
    target(seed_input);
    for (t, bytes) in REGRESSIONS {
        if *t == name {
            target(bytes);
        }
    }
    let mut rng = Rng(seed);
    for _ in 0..rounds {
        let input = if rng.below(8) == 0 {
            (0..rng.below(300))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            mutate(&mut rng, seed_input)
        };
        target(&input);
    }
}

#[test]
fn osv_target_body_holds_on_random_and_mutated_records() {
    run(
        "osv",
        agent_targets::osv,
        OSV.as_bytes(),
        3000,
        0x0511_f022_0000_0001,
    );
}

#[test]
fn csv_target_body_holds_on_random_and_mutated_files() {
    run(
        "csv",
        agent_targets::csv,
        CSV.as_bytes(),
        5000,
        0x0c5f_f022_0000_0002,
    );
}

/// A bulletin body with most of what Markdown and raw HTML can hold.
const BULLETIN: &str = "# INC-2026-042\n\nMembers **must** rotate *npm* tokens.\n\n\
- [advisory](https://example.org/a?b=1&c=2)\n- [bad](javascript:alert(1))\n\n\
> quoted `code`\n\n```\n<script>alert(1)</script>\n```\n\n<div onclick=x>raw</div>\n\n\
1. ![img](https://x.example/i.png \"t\")\n2. <https://auto.example/>\n\n---\n~~old~~ [^1]\n";

#[test]
fn bulletin_markdown_target_body_holds_on_random_and_mutated_bodies() {
    run(
        "bulletin_markdown",
        agent_targets::bulletin_markdown,
        BULLETIN.as_bytes(),
        5000,
        0xb011_e714_0000_0004,
    );
}

/// A real request: a signed checkpoint after a 3-hash proof.
fn witness_seed() -> String {
    use isac_core::tlog::checkpoint::Checkpoint;
    use isac_core::tlog::note::Ed25519Signer;
    let signer = Ed25519Signer::new(
        "isac.example/log",
        isac_core::SigningKey::from_seed(&[9; 32]).unwrap(),
    )
    .unwrap();
    let note = Checkpoint {
        origin: "isac.example/log".into(),
        size: 13,
        root: isac_core::tlog::merkle::leaf_hash(b"r"),
        extensions: vec![],
    }
    .sign(&[&signer])
    .unwrap();
    let proof: Vec<[u8; 32]> = (0..3u8)
        .map(|i| isac_core::tlog::merkle::leaf_hash(&[i]))
        .collect();
    isac_core::tlog::witness::add_checkpoint_request(5, &proof, &note)
}

#[test]
fn witness_request_target_body_holds_on_random_and_mutated_requests() {
    run(
        "witness_request",
        agent_targets::witness_request,
        witness_seed().as_bytes(),
        5000,
        0x3177_e55e_0000_0003,
    );
}

#[test]
fn write_seed_corpus_when_asked() {
    let Some(dir) = std::env::var_os("ISAC_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let witness = witness_seed();
    for (name, input) in [
        ("osv", OSV),
        ("csv", CSV),
        ("witness_request", witness.as_str()),
        ("bulletin_markdown", BULLETIN),
    ] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("seed-0"), input).unwrap();
    }
}
