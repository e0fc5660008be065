#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| isac_fuzz::scrub_targets::scrub(data));
