#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| factorcore_fuzz::linking(data));
