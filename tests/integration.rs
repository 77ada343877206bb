//! The integration tests, compiled as one test crate (`autotests = false` and
//! one `[[test]]` in Cargo.toml): each file of `tests/` is a module here, so
//! the dependencies and the helpers (`util`, `netns`) are compiled and linked
//! once instead of once per file. A new `tests/NAME.rs` needs its `mod` line
//! below; `every_test_file_is_a_module` fails until it has one.

mod netns;
mod util;

mod bad_input;
mod checkpoint;
mod consistency;
mod errors;
mod faults;
mod heat;
mod k8s;
mod layers;
mod linalg;
mod multihost;
mod outputs;
mod partition;
mod progress;
mod report;
mod scale;
mod simd_paths;
mod transcode;
mod ulfm;

/// With `autotests = false` cargo no longer finds test files by itself: a
/// file in `tests/` without a `mod` line here would never be compiled or run.
#[test]
fn every_test_file_is_a_module() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let this = include_str!("integration.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let module = if path.is_dir() {
            if !path.join("mod.rs").exists() {
                continue;
            }
            name
        } else if let Some(stem) = name.strip_suffix(".rs") {
            stem.to_string()
        } else {
            continue;
        };
        if module != "integration" && !this.lines().any(|l| l == format!("mod {module};")) {
            missing.push(module);
        }
    }
    assert!(missing.is_empty(), "tests/ files with no `mod` line in tests/integration.rs: {missing:?}");
}
