//! The `gst-emotion` command line.
//!
//! - `info`: versions and the compute environment (GStreamer, libtorch/CUDA,
//!   whisper.cpp CPU features), and whether the element is registered.
//! - `analyze`: emotion analysis over many files (docs/batch.md).
//! - `merge`: combines the summaries of shards.
//! - `watch`: live analysis of a webcam, an RTSP camera or any URI.
//! - `eval`: accuracy of a bundle on labelled data (docs/eval.md).
//!
//! Pipelines are built and run by [`crate::pipeline`], shared with `serve`.

pub mod analyze;
pub mod annotate;
pub mod bundle;
pub mod eval;
pub mod inputs;
pub mod merge;
pub mod publish;
pub mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Emotion and sentiment recognition in video, from the command line.
#[derive(Debug, Parser)]
#[command(name = "gst-emotion", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print versions and the compute environment.
    Info,
    /// Analyse many files: JSONL, CSV and WebVTT per input, summary.json per run.
    ///
    /// Exit status: 0 when every input succeeded (or was already done), 1 when some
    /// input failed (see summary.json), 2 for a usage error.
    Analyze(Box<analyze::AnalyzeArgs>),
    /// Live analysis of a webcam (/dev/videoN), an RTSP camera or any URI: one line per
    /// window, optionally JSONL; RTSP streams are reconnected when they drop.
    ///
    /// Ctrl-C ends the stream with EOS and exits 0. Exit status 1 when the source fails
    /// (or --max-reconnects is exhausted), 2 for a usage error.
    Watch(Box<watch::WatchArgs>),
    /// Measure a bundle on labelled data: accuracy, F1, confusion matrices, WER, cost.
    ///
    /// DATA is a MELD-format CSV (with --clips) or a labelled text file (CSV/TSV with
    /// text, emotion, sentiment). Writes report.json, predictions.jsonl and
    /// confusion-HEAD.svg into --out.
    Eval(Box<eval::EvalArgs>),
    /// HTTP endpoint: the reference service's /invocations, async jobs, live streams,
    /// metrics and a web page (docs/serve.md). Listens on 0.0.0.0:8080 by default.
    Serve(Box<crate::serve::ServeArgs>),
    /// Write the video with the results drawn on it in step with the frames, the audio
    /// passed through and the transcript + emotion as subtitles (docs/annotate.md).
    ///
    /// Exit status 0 when written, 1 when the input failed, 2 for a usage error.
    Annotate(Box<annotate::AnnotateArgs>),
    /// Check a model bundle, or pack it as a deployable archive (model.tar.gz).
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Combine the summaries of shards (or runs) into one summary.json.
    ///
    /// Reads summary*.json in each DIR; an input done in several keeps its best status
    /// (ok > skipped > error). Exit status 0 when no input failed, 1 otherwise.
    Merge {
        /// Output folders (or s3://BUCKET/PREFIX) of `analyze` runs (e.g. one per shard).
        #[arg(required = true)]
        dirs: Vec<std::path::PathBuf>,
        /// Where to write the merged summary, a file or s3://BUCKET/KEY (default: stdout).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Info => info().map(|_| 0),
        Command::Analyze(args) => analyze::run(*args),
        Command::Watch(args) => watch::run(*args),
        Command::Eval(args) => eval::run(*args),
        Command::Annotate(args) => annotate::run(*args),
        Command::Serve(args) => crate::serve::run(*args),
        Command::Bundle(cmd) => bundle::run(cmd),
        Command::Merge { dirs, out } => merge::run(&dirs, out.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gst-emotion: {e:#}");
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
