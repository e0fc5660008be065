//! The cargo-fuzz targets' bodies for this crate
//! (`fuzz/src/packages_targets.rs`), run on stable with a deterministic
//! generator: random bytes and mutations of valid seeds. `scripts/fuzz
//! SECONDS purl version_range sbom` runs the same bodies under libFuzzer; any
//! crash it finds goes into `REGRESSIONS` below.
//!
//! `ISAC_FUZZ_SEED_DIR=DIR` also writes the seeds to `DIR/<target>/` (the
//! cargo-fuzz corpus layout); scripts/fuzz uses it.

#[path = "../../fuzz/src/packages_targets.rs"]
mod packages_targets;

use packages_targets::*;

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
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    const SPECIALS: [&[u8]; 16] = [
        b"%", b"%2F", b"%40", b"@", b"/", b"?", b"#", b"&", b"=", b".", b"-", b"||", b"\n", b"\0",
        b"^", b"*",
    ];
    let mut v = input.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                v.remove(rng.below(v.len()));
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(16)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            _ => {
                let s = SPECIALS[rng.below(SPECIALS.len())];
                let at = rng.below(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v
}

type Target = fn(&[u8]);

fn seeds() -> Vec<(&'static str, Target, Vec<Vec<u8>>)> {
    let bytes = |xs: &[&str]| xs.iter().map(|s| s.as_bytes().to_vec()).collect();
    vec![
        (
            "purl",
            purl as Target,
            bytes(&[
                "pkg:npm/%40scope/name@1.2.3?arch=x86&b=c#sub/path",
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?classifier=sources",
                "pkg:pypi/Django_Package@1.11.1.dev1",
                "pkg:golang/github.com/Azure/go@v0.0.0-20191109021931-daa7c04131f5",
                "pkg:composer/Laravel/Laravel@5.5.0",
                "pkg:nuget/Newtonsoft.Json@13.0.1",
                "pkg:github/actions/checkout@v4#sub",
                "pkg:docker/customer/dockerimage@sha256%3A244fd?repository_url=gcr.io",
            ]),
        ),
        (
            "version_range",
            version_range as Target,
            bytes(&[
                "1.2.3\n>=1.0.0 <2.0.0\ni0\nf1.5.0",
                "1.0rc1\n~=1.0\ni1.0a1\nl1.0",
                "v1.2.4-0.20191109021931-daa7c04131f5\n<v1.3.0\ni0\nx2.0.0",
                "2.0-SNAPSHOT\n^1.2.3 || 2.x\nf2.0",
                "1.0.0.0-beta\n1.0.0 - 2.0.0\ni1.0\nf1.0",
                "5.2.4.3.rc1\n==1.4.*, !=1.4.2\ni0",
            ]),
        ),
        ("sbom", sbom as Target, sbom_fixtures()),
    ]
}

/// The SBOM fixtures (one per generator shape) as seeds.
fn sbom_fixtures() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sbom");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Inputs that once broke a target (from `cargo fuzz` artifacts).
const REGRESSIONS: &[(&str, &[u8])] = &[];

#[test]
fn fuzz_target_bodies_hold_on_random_and_mutated_inputs() {
    let mut rng = Rng(0x5eed_f00d_9ac4_a9e5);
    for (name, target, inputs) in seeds() {
        for input in &inputs {
            target(input);
        }
        for (target_name, bytes) in REGRESSIONS {
            if *target_name == name {
                target(bytes);
            }
        }
        for _ in 0..3_000 {
            let input = if rng.below(8) == 0 {
                (0..rng.below(64))
                    .map(|_| (rng.next() & 0xff) as u8)
                    .collect()
            } else {
                let base = &inputs[rng.below(inputs.len())];
                mutate(&mut rng, base)
            };
            target(&input);
        }
    }
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
