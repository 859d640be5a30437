//! `gst-emotion serve`: the reference service's HTTP endpoint, done right
//! (docs/serve.md).
//!
//! - the SageMaker container contract: `GET /ping` (200 once the models are loaded),
//!   `POST /invocations` (the reference's request and answer shapes, plus streamed
//!   JSON Lines, WebVTT and CSV), SIGTERM handled within 25 s;
//! - asynchronous jobs that survive a killed server (`/v1/jobs`), live streams with
//!   Server-Sent Events (`/v1/streams`), Prometheus metrics (`/metrics`) and a web page
//!   (`/`).
//!
//! One model per device serves every request, job and stream; `--max-concurrent`
//! pipelines run at once behind a bounded queue.

mod api;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod source;
pub mod streams;
pub mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::bundle::BundleChoice;
use crate::infer::{Model, ModelOptions};
use crate::speech::WhisperModel;
pub use api::router;
use jobs::Jobs;
use metrics::Metrics;
use source::Policy;
use streams::Streams;
use work::{ElementSettings, Pool};

/// Options of `gst-emotion serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub bind: String,
    /// Model bundle: a folder, "default" or "accurate". Without it: $SM_MODEL_DIR or
    /// /opt/ml/model when it holds a bundle.toml (the SageMaker layout), else the
    /// accurate bundle when it is built, else the default bundle.
    #[arg(long)]
    pub bundle: Option<BundleChoice>,
    /// Device for the model: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// A folder whose files requests may name by path or file:// URI (repeatable; none
    /// by default: local paths are refused).
    #[arg(long = "allow-dir", value_name = "DIR")]
    pub allow_dirs: Vec<PathBuf>,
    /// Allow http(s):// and rtsp:// sources.
    #[arg(long)]
    pub allow_remote: bool,
    /// Allow remote sources on loopback or private addresses (off: no server-side
    /// request forgery into this machine or its network).
    #[arg(long)]
    pub allow_private: bool,
    /// A network remote sources may resolve to although it is private, e.g. the
    /// cameras' 10.0.5.0/24 (repeatable; CIDR or one address).
    #[arg(long = "allow-net", value_name = "CIDR")]
    pub allow_nets: Vec<net::Network>,
    /// Allow live streams from local capture devices (/dev/video*).
    #[arg(long)]
    pub allow_devices: bool,
    /// Folder for jobs and their results (kept across restarts). With --jobs-store, a
    /// folder every replica mounts (a network file system).
    #[arg(long, default_value = "gst-emotion-state")]
    pub state_dir: PathBuf,
    /// Share jobs with other replicas through Redis: any replica accepts a job and
    /// answers for it, exactly one runs it (redis://[:PASSWORD@]HOST:PORT[/DB]; or set
    /// GST_EMOTION_JOBS_STORE). Without it, jobs are this server's own.
    #[arg(long, value_name = "URL")]
    pub jobs_store: Option<String>,
    /// Seconds a job taken by a replica may go without its heartbeat before another
    /// replica takes it over and runs it again.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub claim_after: f64,
    /// Pipelines running at once (they share one model).
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
    /// Synchronous requests that may wait for a pipeline; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 8)]
    pub queue: usize,
    /// Jobs that may wait; beyond, 503.
    #[arg(long, default_value_t = 1000)]
    pub max_jobs: usize,
    /// Live streams at once.
    #[arg(long, default_value_t = 4)]
    pub max_streams: usize,
    /// Largest request body or download (bytes; K, M, G suffixes).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub max_body: u64,
    /// Slowest average upload accepted after its first 10 s (bytes/s; K, M suffixes);
    /// slower uploads, or a pause over 30 s, get 408.
    #[arg(long, default_value = "16K", value_parser = parse_size)]
    pub min_upload_rate: u64,
    /// Seconds a synchronous call may take before 504, from when its video is stored
    /// (long videos: use /v1/jobs).
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// File holding the bearer token required on every endpoint but /ping and /metrics
    /// (or set GST_EMOTION_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// More emotionsense properties for every pipeline, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
}

/// A size option that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?}: a size like 500M or 1G")]
pub struct SizeError(String);

fn parse_size(s: &str) -> Result<u64, SizeError> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| SizeError(s.to_string()))
}

/// What every handler shares.
pub struct AppState {
    /// What requests may read.
    pub policy: Policy,
    /// Seconds a synchronous call may take.
    pub timeout: f64,
    /// The bearer token, when one is required.
    pub token: Option<String>,
    /// The models are loaded.
    pub ready: AtomicBool,
    /// Shutting down: nothing new is accepted.
    pub closing: AtomicBool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Pipelines and queue.
    pub pool: Arc<Pool>,
    /// Jobs.
    pub jobs: Arc<Jobs>,
    /// Live streams.
    pub streams: Arc<Streams>,
    /// How pipelines' elements are set up.
    pub settings: ElementSettings,
    /// Scratch space for synchronous requests' uploads and downloads.
    pub scratch: PathBuf,
}

/// The bundle folder the server uses.
fn bundle_dir(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    if let Some(b) = &args.bundle {
        if *b == BundleChoice::None {
            return Err(anyhow!("--bundle none: the server needs a model bundle"));
        }
        return Ok(b.folder()?);
    }
    let candidates = std::env::var_os("SM_MODEL_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/opt/ml/model")]);
    for dir in candidates {
        if dir.join(crate::bundle::MANIFEST).is_file() {
            return Ok(dir);
        }
    }
    Ok(BundleChoice::for_files().folder()?)
}

fn token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading --token-file {}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("GST_EMOTION_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    };
    match token {
        Some(t) if t.len() < 16 => {
            Err(anyhow!("the bearer token must have at least 16 characters"))
        }
        other => Ok(other.filter(|t| !t.is_empty())),
    }
}

/// Clients must send a request's headers within this (and an idle keep-alive
/// connection is closed after it).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's shared state for `args`: checks the arguments, resolves the bundle,
/// opens the state folder (0700; everything the server writes is private to its
/// user) and the jobs in it. The models are not loaded (`ready` is false).
pub fn prepare(args: &ServeArgs) -> anyhow::Result<Arc<AppState>> {
    gst::init()?;
    crate::register_static()?;
    let probe = gst::ElementFactory::make("emotionsense").build()?;
    for p in &args.properties {
        crate::pipeline::set_property_checked(&probe, p)?;
    }
    drop(probe);
    let bundle = bundle_dir(args)?;
    let token = token(args)?;
    let mut allow_dirs = Vec::new();
    for d in &args.allow_dirs {
        allow_dirs.push(
            d.canonicalize()
                .with_context(|| format!("--allow-dir {}", d.display()))?,
        );
    }
    let _: crate::infer::DeviceChoice =
        args.device.parse().map_err(|e| anyhow!("--device: {e}"))?;
    let store = args
        .jobs_store
        .clone()
        .or_else(|| std::env::var("GST_EMOTION_JOBS_STORE").ok())
        .filter(|s| !s.is_empty());
    let fleet = match &store {
        Some(url) => {
            if !(args.claim_after.is_finite() && args.claim_after >= 1.0) {
                return Err(anyhow!("--claim-after: at least 1 second"));
            }
            let claim_after = Duration::from_secs_f64(args.claim_after);
            let fleet = jobs::fleet::Fleet::new(url, claim_after)?;
            eprintln!(
                "gst-emotion serve: jobs shared through {} (replica {})",
                fleet.address(),
                fleet.consumer
            );
            Some(fleet)
        }
        None => None,
    };
    make_private(&args.state_dir)?;
    // Each replica sharing a state folder has its own scratch space (emptied at start).
    let scratch = match &fleet {
        Some(f) => args.state_dir.join("scratch").join(&f.consumer),
        None => args.state_dir.join("scratch"),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let metrics = Arc::new(Metrics::new());
    Ok(Arc::new(AppState {
        policy: Policy {
            allow_dirs,
            allow_remote: args.allow_remote,
            allow_private: args.allow_private,
            allow_nets: args.allow_nets.clone(),
            allow_devices: args.allow_devices,
            max_body: args.max_body,
            min_upload_rate: args.min_upload_rate,
        },
        timeout: args.timeout,
        token,
        ready: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        pool: Pool::new(args.max_concurrent, args.queue, metrics.clone()),
        jobs: Jobs::open(&args.state_dir, args.max_jobs, fleet)
            .with_context(|| format!("opening the jobs in {}", args.state_dir.display()))?,
        streams: Streams::new(args.max_streams, metrics.clone()),
        metrics,
        settings: ElementSettings {
            bundle: bundle.display().to_string(),
            device: args.device.clone(),
            properties: args.properties.clone(),
        },
        scratch,
    }))
}

/// Creates `state_dir` and makes it and everything already in it private (folders
/// 0700, files 0600); sets the process umask so that what is written later is too.
fn make_private(state_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask only sets the process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let mut todo = vec![state_dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
        for e in std::fs::read_dir(&dir)?.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file() {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    Ok(())
}

/// glibc's allocator, set for a server: each request's pipeline allocates and frees
/// some hundreds of megabytes of frames on a dozen threads, and glibc keeps what is
/// freed in per-thread arenas (up to 8 per core, 64 MiB heaps each) without giving it
/// back — 200 requests grew the server to 4–6 GB, most of it free. Two arenas, and
/// [`release_free_memory`] every few seconds, keep it near what is in use.
fn tune_allocator() {
    // SAFETY: mallopt only changes the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let _ = std::thread::Builder::new()
        .name("serve-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_EVERY);
                release_free_memory();
            }
        });
}

/// How often freed memory is given back to the system.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Gives the allocator's free memory back to the system (glibc `malloc_trim`); called
/// when a pipeline ends and every [`TRIM_EVERY`].
pub fn release_free_memory() {
    // SAFETY: malloc_trim takes the arenas' locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the server until SIGTERM or Ctrl-C; returns the exit code.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    tune_allocator();
    let state = prepare(&args)?;
    let bundle = PathBuf::from(&state.settings.bundle);
    let device: crate::infer::DeviceChoice =
        args.device.parse().map_err(|e| anyhow!("--device: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, state, bundle, device))
}

async fn serve(
    args: ServeArgs,
    state: Arc<AppState>,
    bundle: PathBuf,
    device: crate::infer::DeviceChoice,
) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    let addr: SocketAddr = listener.local_addr()?;
    eprintln!("gst-emotion serve: listening on http://{addr}");
    // Load the models in the background: /ping says 503 until they are ready.
    let loader = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let started = Instant::now();
            let options = ModelOptions {
                device,
                ..ModelOptions::default()
            };
            let model = Model::shared(&bundle, options)?;
            let whisper = crate::speech::default_model()
                .map(|p| WhisperModel::shared(&p))
                .transpose()?;
            state
                .metrics
                .model_load_seconds
                .set(started.elapsed().as_secs_f64());
            eprintln!(
                "gst-emotion serve: bundle {} ({}) loaded in {:.1} s; ready",
                model.bundle.manifest.name,
                bundle.display(),
                started.elapsed().as_secs_f64()
            );
            state.ready.store(true, Ordering::SeqCst);
            Ok((model, whisper))
        })
    };
    let runner = tokio::spawn(state.jobs.clone().run(
        state.pool.clone(),
        state.settings.clone(),
        state.policy.clone(),
    ));
    let app = api::router(state.clone());
    let shutdown_state = state.clone();
    let server = tokio::spawn(accept(listener, app, async move {
        shutdown_signal().await;
        begin_shutdown(&shutdown_state);
    }));
    // The models stay loaded (held here) for as long as the server runs; a bundle that
    // cannot be loaded stops the server with the reason.
    let models = match loader.await {
        Ok(Ok(models)) => models,
        Ok(Err(e)) => return Err(anyhow!("loading the models: {e:#}")),
        Err(e) => return Err(anyhow!("loading the models: {e}")),
    };
    server.await?;
    // Running jobs finish, or stop at the deadline and stay queued for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(24), runner).await;
    while state.metrics.pipelines.get() > 0 && !state.pool.abort.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(models);
    eprintln!("gst-emotion serve: stopped");
    Ok(0)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections
/// finish. Unlike `axum::serve`, a client must send its request headers within
/// [`HEADER_TIMEOUT`], so connections that never send a request are closed.
async fn accept(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors, say: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// SIGTERM (the container platform's stop) or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Stops accepting work; in-flight work gets 20 s to finish, then stops (jobs stay
/// queued for the next start); the process exits at 25 s whatever happens.
fn begin_shutdown(state: &Arc<AppState>) {
    eprintln!("gst-emotion serve: shutting down (in-flight work has 20 s)");
    state.closing.store(true, Ordering::SeqCst);
    state.jobs.close();
    state.streams.stop_all();
    let abort = state.pool.abort.clone();
    let _ = std::thread::Builder::new()
        .name("serve-shutdown".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(20));
            abort.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(5));
            eprintln!("gst-emotion serve: stopped at the deadline");
            std::process::exit(0);
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(super::parse_size("1234").unwrap(), 1234);
        assert!(super::parse_size("x").is_err());
        assert!(super::parse_size("0").is_err());
    }
}
