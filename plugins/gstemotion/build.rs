//! Plugin version info for `gst::plugin_define!`, and an rpath to libtorch so the
//! plugin loads without LD_LIBRARY_PATH.

fn main() {
    gst_plugin_version_helper::info();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
