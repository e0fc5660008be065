#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| isac_fuzz::packages_targets::sbom(data));
