//! The cargo-fuzz target's body for this crate (`fuzz/src/scrub_targets.rs`),
//! run on stable with a deterministic generator: random bytes and mutations
//! of seeds that hold one of each finding. `scripts/fuzz SECONDS scrub` runs
//! the same body under libFuzzer; any crash it finds goes into `REGRESSIONS`.
//!
//! `ISAC_FUZZ_SEED_DIR=DIR` also writes the seeds to `DIR/scrub/`.

#[path = "../../fuzz/src/scrub_targets.rs"]
mod scrub_targets;

/// xorshift64: reproducible; the seed is in the test.
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

const SEEDS: [&str; 8] = [
    "mail bob@acme.example, +1 555 123 4567, Alice Martin, 10.0.0.7 fd00::1",
    r"C:\Users\jdoe\x /home/alice ACME\jdoe build.acme.example bluebird",
    "AKIAIOSFODNN7EXAMPLE ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa glpat-abcdefghij0123456789",
    "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig https://u:p@h.example/",
    "pkg:npm/%40scope/x@1.0.0 2026-11-25 CVE-2021-44228 Zoë 8Q~ AccountKey=",
    "# list: x\n# version: 1\n192.0.2.0/24\nexample.com\npkg:npm/lodash\n",
    "xoxb-1234567890-abc https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXXXXXX",
];

const SPECIALS: [&[u8]; 12] = [
    b"@",
    b".",
    b":",
    b"\\",
    b"/",
    b"-",
    b"+",
    b"(",
    b"~",
    b"\xc3\xa9",
    b"\n",
    b"-----",
];

/// Inputs that once broke the target (from `cargo fuzz` artifacts).
const REGRESSIONS: &[&[u8]] = &[];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                v.remove(rng.below(v.len()));
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            _ => {
                let s = SPECIALS[rng.below(SPECIALS.len())];
                let at = rng.below(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v
}

#[test]
fn fuzz_target_body_holds_on_random_and_mutated_inputs() {
    let mut rng = Rng(0x5c2b_f00d_1ac4_77e1);
    for s in SEEDS {
        scrub_targets::scrub(s.as_bytes());
    }
    for r in REGRESSIONS {
        scrub_targets::scrub(r);
    }
    for _ in 0..5_000 {
        let input: Vec<u8> = if rng.below(8) == 0 {
            (0..rng.below(64))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())];
            mutate(&mut rng, seed.as_bytes())
        };
        scrub_targets::scrub(&input);
    }
}

#[test]
fn write_seed_corpus_when_asked() {
    let Some(dir) = std::env::var_os("ISAC_FUZZ_SEED_DIR") else {
        return;
    };
    let d = std::path::PathBuf::from(dir).join("scrub");
    std::fs::create_dir_all(&d).unwrap();
    for (i, s) in SEEDS.iter().enumerate() {
        std::fs::write(d.join(format!("seed-{i}")), s).unwrap();
    }
}
