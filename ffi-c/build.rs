//! Gives libphasecast.so its soname (libphasecast.so.0) on Linux, so
//! programs linked against the installed library find it after upgrades.
fn main() {
    // Without this, cargo reruns the script (and rebuilds the crate) when any
    // file of the package changes, C examples and tests included.
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libphasecast.so.0");
    }
}
