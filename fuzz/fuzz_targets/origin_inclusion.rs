#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| isac_fuzz::core_targets::origin_inclusion(data));
