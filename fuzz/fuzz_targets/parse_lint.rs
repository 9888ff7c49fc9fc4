//! Any bytes: parsing and linting must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(df) = corral_dockerfiles::parse_bytes(data) {
        // every span lies inside the input
        for ins in &df.instructions {
            assert!(ins.span.start <= ins.span.end && ins.span.end <= data.len());
        }
    }
    let _ = corral_dockerfiles::lint::lint_bytes(data);
});
