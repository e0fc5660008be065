//! Importers against hostile bytes: OSV records and CSV files, mutated
//! thousands of times from real samples, must parse or fail cleanly, and
//! whatever they accept must still pass statement validation before signing.

use member_agent::csv::drafts_from_csv;
use member_agent::osv::parse_osv;

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
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                let specials = [b'"', b',', b'\n', b'{', b'}', b'[', b':', b';', b'\\'];
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
            _ => {}
        }
    }
    v
}

const OSV: &str = include_str!("fixtures/osv/real/npm/@ctrl/tinycolor/MAL-2025-47141.json");
const CSV: &str = "kind,purl,domain,tlp,title,labels,confidence,description\n\
                   package,pkg:npm/evil@1.0.0,,green,\"evil, \"\"quoted\"\"\",a;b,90,\"multi\nline\"\n\
                   network,,c2.evil.example,clear,C2,,50,\n";

#[test]
fn osv_records_survive_mutation() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..2000 {
        let bytes = mutate(&mut rng, OSV.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(records) = parse_osv("x.json", &text) {
            for r in records {
                for mut d in r.drafts {
                    d.tlp = Some("clear".into());
                    // Either a valid statement or a clear refusal, never a panic.
                    let _ = d.into_prepared("acme-bank", "2026-11-25T12:00:00Z".into());
                }
            }
        }
    }
}

#[test]
fn csv_files_survive_mutation() {
    let mut rng = Rng(0x0fed_cba9_8765_4321);
    for _ in 0..3000 {
        let bytes = mutate(&mut rng, CSV.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(rows) = drafts_from_csv(&text) {
            for (_, row) in rows {
                if let Ok(d) = row {
                    let _ = d.into_prepared("acme-bank", "2026-11-25T12:00:00Z".into());
                }
            }
        }
    }
}
