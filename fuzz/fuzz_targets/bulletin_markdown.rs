#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| isac_fuzz::agent_targets::bulletin_markdown(data));
