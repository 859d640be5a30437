//! `gst-emotion`: command-line tools around the `emotionsense` element.

fn main() -> std::process::ExitCode {
    gst_emotion::cli::main()
}
