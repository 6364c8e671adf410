//! A bounded random-input driver for the targets of `src/lib.rs`, for CI (`make fuzz`):
//! each target runs on pseudo-random byte strings for `FUZZ_SECONDS` (default 2) and a
//! failure prints the input as hex, which `FUZZ_REPLAY=<target>:<hex>` runs again and
//! which belongs in `findings.txt`, replayed first by every run.
//! The same targets build as libFuzzer binaries (`cargo fuzz run <target>`) for
//! longer, coverage-guided runs.

use std::time::{Duration, Instant};

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The target a `<target>:<hex>` line names, and its input.
fn parse(line: &str) -> (fn(&[u8]), Vec<u8>) {
    let (name, data) = line.split_once(':').expect("<target>:<hex>");
    let (_, target) = factorcore_fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    (*target, unhex(data))
}

#[test]
fn every_past_finding_passes() {
    let findings = include_str!("../findings.txt");
    for line in findings
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (target, data) = parse(line);
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            panic!("a past finding fails again: FUZZ_REPLAY={line}");
        }
    }
}

#[test]
fn targets_on_random_inputs() {
    if let Ok(replay) = std::env::var("FUZZ_REPLAY") {
        let (target, data) = parse(&replay);
        target(&data);
        return;
    }
    let seconds: f64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let only = std::env::var("FUZZ_TARGET").ok();
    let mut state: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("FUZZ_SEED={state}");
    // One line per failure instead of a backtrace per input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (name, target) in factorcore_fuzz::TARGETS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let start = Instant::now();
        let mut runs = 0usize;
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 8 + (state >> 33) as usize % 248;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            runs += 1;
            if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!(
                    "FAIL {name}: {message}\n  FUZZ_REPLAY={name}:{}",
                    hex(&data)
                );
                failures.push(name);
                if failures.len() >= 200 {
                    break;
                }
            }
        }
        println!(
            "{name}: {runs} inputs in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "failures: {failures:?}");
}
