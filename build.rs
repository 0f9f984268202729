//! Gives the build an identity, `PGBR_BUILD_ID`: a hash of the sources and
//! features it was compiled from. `pgbr` and `pgbr-agent` of one build
//! carry the same one, which is how `pgbr` knows that the `pgbr-agent`
//! next to it speaks exactly its own deploy rules (`apply/target/ssh.rs`).
// Cargo reads a build script's stdout: printing is its interface.
#![allow(clippy::disallowed_macros)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = vec![
        root.join("build.rs"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    walk(&root.join("src"), &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in &files {
        file.strip_prefix(&root).unwrap_or(file).hash(&mut hasher);
        // A file that cannot be read (Cargo.lock before the first
        // resolve) counts as empty: cargo then fails on its own.
        std::fs::read(file).unwrap_or_default().hash(&mut hasher);
    }
    let mut features: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("CARGO_FEATURE_"))
        .collect();
    features.sort();
    features.hash(&mut hasher);
    println!("cargo:rustc-env=PGBR_BUILD_ID={:016x}", hasher.finish());
    for dependency in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={dependency}");
    }
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
