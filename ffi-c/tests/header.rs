//! `include/phasecast.h` is generated from the crate's source by cbindgen
//! and committed. This test regenerates it and fails when the committed
//! file differs; `PHASECAST_BLESS=1` rewrites it instead.
//!
//! Generating from a test (rather than `cargo install cbindgen`) pins the
//! generator through Cargo.lock, so CI produces exactly the committed bytes,
//! and it reuses the workspace's already built `syn`/`serde`.

use std::path::PathBuf;

#[test]
fn committed_header_is_current() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    let path = crate_dir.join("include/phasecast.h");
    if std::env::var_os("PHASECAST_BLESS").is_some() {
        std::fs::write(&path, &out).expect("write include/phasecast.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != out {
        let fresh = crate_dir.join("include/phasecast.h.new");
        let _ = std::fs::write(&fresh, &out);
        panic!(
            "include/phasecast.h is stale: the regenerated header is in {}; \
             run `make ffi-header` (PHASECAST_BLESS=1 cargo test -p phasecast-ffi --test header) and commit it",
            fresh.display()
        );
    }
}
