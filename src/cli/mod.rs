//! The `gst-emotion` command line.
//!
//! Subcommands:
//! - `info`: versions and the compute environment (GStreamer, libtorch/CUDA,
//!   whisper.cpp CPU features), and whether the element is registered.

use std::process::ExitCode;

const USAGE: &str = "\
usage: gst-emotion <command>

commands:
  info      print versions and the compute environment
  help      print this help
";

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("info") => match info() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gst-emotion info: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("gst-emotion: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn info() -> anyhow::Result<()> {
    gst::init()?;
    crate::register_static()?;
    println!("gst-emotion {}", env!("CARGO_PKG_VERSION"));
    println!("GStreamer: {}", gst::version_string());
    let factory = gst::ElementFactory::find("emotionsense")
        .ok_or_else(|| anyhow::anyhow!("emotionsense is not registered"))?;
    println!(
        "element: emotionsense ({})",
        factory.metadata("long-name").unwrap_or_default()
    );
    print!("{}", crate::infer::environment_report());
    Ok(())
}
