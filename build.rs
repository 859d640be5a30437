//! Gives every binary and test of this package an rpath to libtorch, so they run
//! without LD_LIBRARY_PATH, and tells the code where libtorch lives.

fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect(
        "torch-sys did not report DEP_TCH_LIBTORCH_LIB: is LIBTORCH set? run scripts/setup",
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-env=GST_EMOTION_LIBTORCH_LIB={lib}");
}
