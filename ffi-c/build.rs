//! Gives libphasecast.so its soname (libphasecast.so.0) on Linux, so
//! programs linked against the installed library find it after upgrades.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libphasecast.so.0");
    }
}
