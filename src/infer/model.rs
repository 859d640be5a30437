//! [`Model`]: a loaded bundle shared by every user in the process — one per (bundle
//! folder, device). What kind of bundle it is (one TorchScript model, or late fusion of
//! several) is decided once, at load; after that every window goes the same way:
//! [`Model::prepare`] on the caller's thread, then [`Model::predict`] through one
//! inference thread that batches the windows waiting from all streams (up to
//! `max_batch`, waiting at most `max_wait` for more) and answers probabilities per
//! head (softmax inside), plus logits or fusion details.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::ModelError;
use super::device::{DeviceChoice, Precision, resolve_device};
use super::fusion::{FaceStage, FusionModel};
use super::outputs::{faces_output, order_faces, window_output};
use super::prepare::{self, Prepared, PreparedFace, frames_tensor, prepare};
use super::torchscript::{HeadLogits, TorchScriptModel};
use crate::bundle::{Bundle, BundleError, InputSpec};
use crate::face::sequence::FaceSequencer;
use crate::media::RgbImage;
use crate::output::{FaceReport, FrameProbs, FusionDetails};
use crate::speculation::Speculation;
use crate::window::{SECOND, WindowJob, WindowSpan};

/// Models loaded in this process so far (a second user of the same bundle and device
/// shares the first one's).
static LOADS: AtomicU64 = AtomicU64::new(0);

/// How a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelOptions {
    /// Device setting.
    pub device: DeviceChoice,
    /// Most windows in one forward pass.
    pub max_batch: usize,
    /// Longest wait for more windows once one is waiting.
    pub max_wait: Duration,
    /// Run the warm-up even when these very files already passed it on this device
    /// (`gst-emotion bundle check`).
    pub always_warm_up: bool,
    /// Number format of a single-model bundle's forward pass (fusion bundles run in
    /// fp32 and refuse another).
    pub precision: Precision,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::Auto,
            max_batch: 4,
            max_wait: Duration::from_millis(10),
            always_warm_up: false,
            precision: Precision::Fp32,
        }
    }
}

/// What the model says about one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelOutput {
    /// Probabilities per head, in the bundle's head order.
    pub probs: Vec<Vec<f64>>,
    /// Per head, each sampled frame's probabilities (per-frame heads; empty for the
    /// others).
    pub frames: Vec<Vec<FrameProbs>>,
    /// The logits behind them (single TorchScript models).
    pub logits: Option<HeadLogits>,
    /// What a late-fusion bundle saw and how it decided.
    pub fusion: Option<FusionDetails>,
    /// Milliseconds per stage inside the model (fusion: face detection, face
    /// classification, text).
    pub timings: Vec<(String, f64)>,
}

/// The loaded model of a bundle, by kind.
enum Backend {
    TorchScript(TorchScriptModel),
    Fusion(Box<FusionModel>),
}

impl Backend {
    fn load(
        bundle: &Arc<Bundle>,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self, BundleError> {
        if bundle.is_fusion() && precision != Precision::Fp32 {
            return Err(BundleError::Model {
                path: manifest_path(bundle),
                reason: format!(
                    "precision {precision} applies to single-model bundles; a fusion bundle \
                     runs in fp32 (set precision=fp32)"
                ),
            });
        }
        if bundle.is_fusion() {
            FusionModel::load(bundle.clone(), device)
                .map(|m| Backend::Fusion(Box::new(m)))
                .map_err(|reason| BundleError::Model {
                    path: manifest_path(bundle),
                    reason: reason.to_string(),
                })
        } else {
            TorchScriptModel::load(bundle, device, precision).map(Backend::TorchScript)
        }
    }

    /// Windows one pass can take: fusion bundles analyse one window at a time (their
    /// work is face detection and crops, not one large forward).
    fn max_batch(&self, options: &ModelOptions) -> usize {
        match self {
            Backend::TorchScript(_) => options.max_batch.max(1),
            Backend::Fusion(_) => 1,
        }
    }

    fn run(&self, bundle: &Bundle, batch: &[&Prepared]) -> Vec<Result<ModelOutput, ModelError>> {
        match self {
            Backend::TorchScript(m) if bundle.manifest.faces.is_some() => {
                run_faces(m, bundle, batch)
            }
            Backend::TorchScript(m) => m
                .run(bundle, batch)
                .into_iter()
                .zip(batch)
                .map(|(r, p)| r.map(|logits| window_output(bundle, p, logits)))
                .collect(),
            Backend::Fusion(m) => batch
                .iter()
                .map(|p| {
                    let started = Instant::now();
                    let out = m.analyse(&p.frames, &p.text, p.face_stage.clone());
                    super::FORWARD_NANOS
                        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    out
                })
                .collect(),
        }
    }

    /// A fusion window's face branch alone; `pause` runs between its steps.
    fn face_stage(
        &self,
        frames: &[Arc<RgbImage>],
        pause: &mut dyn FnMut(),
    ) -> Result<FaceStage, ModelError> {
        match self {
            Backend::Fusion(m) => {
                let out = m.face_stage(frames, pause);
                // The stage's own timings leave out the pauses (other windows' work).
                if let Ok(stage) = &out {
                    let own_ms: f64 = stage.timings.iter().map(|(_, ms)| ms).sum();
                    super::FORWARD_NANOS.fetch_add((own_ms * 1e6) as u64, Ordering::Relaxed);
                }
                out
            }
            Backend::TorchScript(_) => Err(ModelError::Bundle(
                "this bundle has no fusion face branch".into(),
            )),
        }
    }

    /// The file a warm-up failure is reported against.
    fn warm_up_path(&self, bundle: &Bundle) -> String {
        match self {
            Backend::TorchScript(m) => m.path().display().to_string(),
            Backend::Fusion(_) => manifest_path(bundle),
        }
    }
}

/// A `[faces]` bundle's batch: one model row per face of every window (all in as few
/// forward passes as shapes allow), then each window's answer from its faces'.
fn run_faces(
    m: &TorchScriptModel,
    bundle: &Bundle,
    batch: &[&Prepared],
) -> Vec<Result<ModelOutput, ModelError>> {
    let input = bundle
        .manifest
        .faces
        .as_ref()
        .map(|f| f.input.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut owner = Vec::new();
    for (w, p) in batch.iter().enumerate() {
        for face in p.faces.as_deref().unwrap_or_default() {
            let mut inputs = p.inputs.clone();
            inputs.insert(input.clone(), face.tensor.clone());
            rows.push(Prepared {
                inputs,
                text: p.text.clone(),
                frames: Vec::new(),
                frame_times: Vec::new(),
                faces: None,
                timings: Vec::new(),
                face_stage: None,
            });
            owner.push(w);
        }
    }
    let refs: Vec<&Prepared> = rows.iter().collect();
    let mut answers: Vec<Option<Result<HeadLogits, ModelError>>> = if refs.is_empty() {
        Vec::new()
    } else {
        m.run(bundle, &refs).into_iter().map(Some).collect()
    };
    batch
        .iter()
        .enumerate()
        .map(|(w, p)| {
            let mut faces = Vec::new();
            for (row, _) in owner.iter().enumerate().filter(|(_, o)| **o == w) {
                faces.push(answers[row].take().expect("each row read once")?);
            }
            Ok(faces_output(bundle, p, faces))
        })
        .collect()
}

fn manifest_path(bundle: &Bundle) -> String {
    bundle
        .dir
        .join(crate::bundle::MANIFEST)
        .display()
        .to_string()
}

/// Where an inference thread sends one answer.
type Reply<T> = Sender<Result<T, ModelError>>;

/// Work for an inference thread.
enum Request {
    /// A window's answer.
    Predict {
        input: Prepared,
        reply: Reply<ModelOutput>,
        queued: Instant,
    },
    /// A fusion window's face branch, ahead of its transcript; `early`: the window is
    /// a guess not confirmed yet (served after the others, skipped once withdrawn).
    Faces {
        frames: Vec<Arc<RgbImage>>,
        reply: Reply<FaceStage>,
        early: Option<Speculation>,
        queued: Instant,
    },
}

/// A window's face branch under way on the inference thread ([`Model::start_faces`]).
pub struct PendingFaces(Receiver<Result<FaceStage, ModelError>>);

impl PendingFaces {
    /// Waits for the face branch's findings.
    pub fn wait(self) -> Result<FaceStage, ModelError> {
        self.0
            .recv()
            .map_err(|_| ModelError::NotRun("the inference thread has stopped".to_string()))?
    }
}

/// A model ready to analyse windows; cheap to share (`Arc`).
pub struct Model {
    tx: Sender<Request>,
    /// `[faces]` bundles: the face detector, run on the caller's thread in `prepare`.
    faces: Option<FaceSequencer>,
    /// The bundle the model comes from.
    pub bundle: Arc<Bundle>,
    /// The device it runs on.
    pub device: tch::Device,
    /// Set when the requested device was not usable.
    pub device_note: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("bundle", &self.bundle.manifest.name)
            .field("device", &self.device)
            .finish()
    }
}

type Registry = HashMap<(PathBuf, DeviceChoice, Precision), Weak<Model>>;
static MODELS: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl Model {
    /// The model of the bundle in `dir` on `options.device`, loading it (manifest
    /// validation, model load, warm-up checking every head's output) unless another
    /// user in this process already has.
    pub fn shared(dir: &Path, options: ModelOptions) -> Result<Arc<Model>, BundleError> {
        let key_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut registry = MODELS.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|_, w| w.strong_count() > 0);
        if let Some(model) = registry
            .get(&(key_dir.clone(), options.device, options.precision))
            .and_then(Weak::upgrade)
        {
            return Ok(model);
        }
        let model = Arc::new(Self::load(dir, options)?);
        registry.insert(
            (key_dir, options.device, options.precision),
            Arc::downgrade(&model),
        );
        Ok(model)
    }

    /// How many models this process has loaded (shared ones count once).
    pub fn loads() -> u64 {
        LOADS.load(Ordering::SeqCst)
    }

    /// How many warm-ups this process has run (a bundle whose files already passed
    /// one on this device is not warmed up again).
    pub fn warm_ups() -> u64 {
        WARM_UPS.load(Ordering::SeqCst)
    }

    fn load(dir: &Path, options: ModelOptions) -> Result<Model, BundleError> {
        let bundle = Arc::new(Bundle::load(dir)?);
        let (device, device_note) = resolve_device(options.device);
        let (tx, rx) = unbounded::<Request>();
        let threads = inference_threads(&bundle, device);
        let (ready_tx, ready_rx) = bounded(threads);
        for k in 0..threads {
            let (thread_bundle, rx, ready_tx) = (bundle.clone(), rx.clone(), ready_tx.clone());
            std::thread::Builder::new()
                .name(format!("emotion-inference-{k}"))
                .spawn(move || serve(thread_bundle, device, options, rx, ready_tx))
                .map_err(|e| BundleError::Io {
                    path: dir.display().to_string(),
                    reason: format!("cannot start the inference thread: {e}"),
                })?;
        }
        drop(ready_tx);
        // Every thread must load and warm up; the first failure is the answer.
        let mut ready = Ok(Ok(()));
        for _ in 0..threads {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                other => {
                    ready = other;
                    break;
                }
            }
        }
        match ready {
            Ok(Ok(())) => {
                let faces =
                    FaceSequencer::load(&bundle, device).map_err(|reason| BundleError::Model {
                        path: manifest_path(&bundle),
                        reason: reason.to_string(),
                    })?;
                LOADS.fetch_add(1, Ordering::SeqCst);
                Ok(Model {
                    tx,
                    faces,
                    bundle,
                    device,
                    device_note,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BundleError::Model {
                path: dir.display().to_string(),
                reason: "the inference thread stopped while loading".into(),
            }),
        }
    }

    /// The window's inputs as the bundle declares them (`text`: the transcript, `None`
    /// for the bundle's filler). Runs on the caller's thread.
    pub fn prepare(&self, job: &WindowJob, text: Option<&str>) -> Result<Prepared, ModelError> {
        let mut p = prepare(&self.bundle, job, text)?;
        if let Some(seq) = &self.faces {
            let started = Instant::now();
            let (frames, real) = job
                .frames
                .as_ref()
                .map(|s| (s.images(), s.real))
                .unwrap_or_default();
            let mut faces = Vec::new();
            for s in seq.sequences(&frames, real)? {
                let crops: Vec<&RgbImage> = s.crops.iter().collect();
                faces.push(PreparedFace {
                    tensor: frames_tensor(seq.input_name(), seq.input(), &crops)?,
                    report: FaceReport {
                        rect: s.rect,
                        frames: s.seen,
                        score: s.score,
                        upstream: s.upstream,
                        ..FaceReport::default()
                    },
                    crops: s.crops,
                });
            }
            if let Some(spec) = &self.bundle.manifest.faces {
                order_faces(spec.face_select, &mut faces);
            }
            p.faces = Some(faces);
            p.timings
                .push(("face-detect".into(), started.elapsed().as_secs_f64() * 1e3));
        }
        Ok(p)
    }

    /// Late-fusion bundles with a face branch: starts the window's face detection and
    /// classification on the inference thread and returns at once, so the caller can
    /// transcribe meanwhile; the findings go into [`Prepared::face_stage`] before
    /// [`Model::predict`]. `None` for other bundles. `early`: the window is analysed
    /// on a guess (live utterances not confirmed yet), so it waits for other windows'
    /// faces, and is skipped if the guess is withdrawn before its turn.
    pub fn start_faces(
        &self,
        job: &WindowJob,
        early: Option<&Speculation>,
    ) -> Option<PendingFaces> {
        let fusion = self.bundle.manifest.fusion.as_ref()?;
        fusion.face.as_ref()?;
        let frames = prepare::fusion_frames(job);
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request::Faces {
                frames,
                reply,
                early: early.cloned(),
                queued: Instant::now(),
            })
            .ok()?;
        Some(PendingFaces(rx))
    }

    /// The model's answer for one window (blocking; batched with other waiting windows).
    pub fn predict(&self, input: Prepared) -> Result<ModelOutput, ModelError> {
        // One answer per input: the `None` arm is never taken.
        (self.predict_many(vec![input]).pop()).unwrap_or_else(|| {
            Err(ModelError::NotRun(
                "the inference thread has stopped".to_string(),
            ))
        })
    }

    /// Answers for several windows at once (they reach the inference thread together,
    /// so they batch up to `max_batch`), in order.
    pub fn predict_many(&self, inputs: Vec<Prepared>) -> Vec<Result<ModelOutput, ModelError>> {
        let receivers: Vec<_> = inputs
            .into_iter()
            .map(|input| {
                let (reply, rx) = bounded(1);
                let sent = self
                    .tx
                    .send(Request::Predict {
                        input,
                        reply,
                        queued: Instant::now(),
                    })
                    .is_ok();
                (sent, rx)
            })
            .collect();
        receivers
            .into_iter()
            .map(|(sent, rx)| {
                if !sent {
                    return Err(ModelError::NotRun(
                        "the inference thread has stopped".to_string(),
                    ));
                }
                rx.recv().map_err(|_| {
                    ModelError::NotRun("the inference thread has stopped".to_string())
                })?
            })
            .collect()
    }
}

/// How many inference threads serve a model, each with its own copy: late-fusion
/// bundles do their work (face detection and crops, small networks) one window at a
/// time, so on a CPU with 4 or more cores two windows — of several cameras — run side
/// by side (on 2 cores it gained nothing measurable for ~130 MB, docs/benchmarks.md);
/// a TorchScript model runs one batched forward pass at a time, which libtorch already
/// spreads over the cores. `GST_EMOTION_INFERENCE_THREADS` overrides (1–8).
fn inference_threads(bundle: &Bundle, device: tch::Device) -> usize {
    if let Some(n) = std::env::var("GST_EMOTION_INFERENCE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.clamp(1, 8);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if bundle.is_fusion() && device == tch::Device::Cpu && cores >= 4 {
        2
    } else {
        1
    }
}

/// An inference thread: loads the model, warms it up on a blank window (every head
/// must give as many finite probabilities as it has labels), then answers batches.
fn serve(
    bundle: Arc<Bundle>,
    device: tch::Device,
    options: ModelOptions,
    rx: Receiver<Request>,
    ready: Sender<Result<(), BundleError>>,
) {
    let backend = match Backend::load(&bundle, device, options.precision) {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let passed = validated_marker(&bundle, device);
    // The marker records fp32 runs; another precision is always warmed up.
    let known = !options.always_warm_up
        && options.precision == Precision::Fp32
        && passed.as_ref().is_some_and(|(m, _)| m.is_file());
    if !known {
        if let Err(reason) = warm_up(&backend, &bundle) {
            let _ = ready.send(Err(BundleError::Model {
                path: backend.warm_up_path(&bundle),
                reason: format!("warm-up failed: {reason}"),
            }));
            return;
        }
        WARM_UPS.fetch_add(1, Ordering::SeqCst);
        // Remembered for the next load (an unwritable cache only costs the next
        // warm-up).
        if let Some((marker, key)) = passed
            && let Some(parent) = marker.parent()
        {
            let _ = std::fs::create_dir_all(parent).and_then(|()| std::fs::write(&marker, key));
        }
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    let max_batch = backend.max_batch(&options);
    let mut queue = Queue::default();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(r) => queue.push(r),
                Err(_) => return,
            }
        }
        rx.try_iter().for_each(|r| queue.push(r));
        if !queue.predicts.is_empty() {
            let deadline = Instant::now() + options.max_wait;
            while queue.predicts.len() < max_batch {
                match rx.recv_deadline(deadline) {
                    Ok(r) => queue.push(r),
                    Err(_) => break,
                }
            }
            answer(&backend, &bundle, &mut queue, max_batch);
        } else if let Some((frames, reply, queued)) = queue.next_faces() {
            let waited = queued.elapsed();
            // Between its detections, windows that came due meanwhile are answered:
            // they wait for one detection, not for the whole face branch.
            let mut answer_due = || {
                rx.try_iter().for_each(|r| queue.push(r));
                while !queue.predicts.is_empty() {
                    answer(&backend, &bundle, &mut queue, max_batch);
                }
            };
            let stage = backend.face_stage(&frames, &mut answer_due);
            let _ = reply.send(stage.map(|mut f| {
                f.timings.push((INFERENCE_WAIT, waited.as_secs_f64() * 1e3));
                f
            }));
        }
    }
}

/// Answers the first `max_batch` windows waiting in `queue` in one pass.
fn answer(backend: &Backend, bundle: &Bundle, queue: &mut Queue, max_batch: usize) {
    let n = queue.predicts.len().min(max_batch);
    let batch: Vec<_> = queue.predicts.drain(..n).collect();
    let inputs: Vec<&Prepared> = batch.iter().map(|(input, ..)| input).collect();
    super::BATCHES.fetch_add(1, Ordering::Relaxed);
    super::BATCHED_WINDOWS.fetch_add(n as u64, Ordering::Relaxed);
    super::LARGEST_BATCH.fetch_max(n as u64, Ordering::Relaxed);
    let started = Instant::now();
    let outputs = backend.run(bundle, &inputs);
    for ((_, reply, queued), out) in batch.into_iter().zip(outputs) {
        let waited = started.saturating_duration_since(queued);
        let _ = reply.send(out.map(|mut o| {
            add_timing(&mut o.timings, INFERENCE_WAIT, waited);
            o
        }));
    }
}

/// An inference thread's waiting work. Windows' answers go before face branches
/// started ahead (finishing a window, its text and fusion, is short, and its result
/// is due), and those of windows not yet confirmed go last.
#[derive(Default)]
struct Queue {
    predicts: VecDeque<(Prepared, Reply<ModelOutput>, Instant)>,
    faces: VecDeque<FacesRequest>,
    early_faces: VecDeque<(FacesRequest, Speculation)>,
}

/// A face branch waiting: its frames, where the answer goes, when it was asked for.
type FacesRequest = (Vec<Arc<RgbImage>>, Reply<FaceStage>, Instant);

impl Queue {
    fn push(&mut self, r: Request) {
        match r {
            Request::Predict {
                input,
                reply,
                queued,
            } => self.predicts.push_back((input, reply, queued)),
            Request::Faces {
                frames,
                reply,
                early: None,
                queued,
            } => self.faces.push_back((frames, reply, queued)),
            Request::Faces {
                frames,
                reply,
                early: Some(guess),
                queued,
            } => self.early_faces.push_back(((frames, reply, queued), guess)),
        }
    }

    /// The next face branch to run: confirmed windows' first, then those of guesses
    /// still standing (a withdrawn one is answered at once, without running).
    fn next_faces(&mut self) -> Option<FacesRequest> {
        if let Some(r) = self.faces.pop_front() {
            return Some(r);
        }
        while let Some((r, guess)) = self.early_faces.pop_front() {
            if !guess.is_withdrawn() {
                return Some(r);
            }
            let _ = r.1.send(Err(ModelError::Withdrawn));
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.predicts.is_empty() && self.faces.is_empty() && self.early_faces.is_empty()
    }
}

/// The timing of how long a window's work waited for the inference thread (busy
/// with other windows, e.g. other cameras').
const INFERENCE_WAIT: &str = "inference-wait";

/// Adds `d` to the timing `name` (milliseconds), appending it when absent.
fn add_timing(timings: &mut Vec<(String, f64)>, name: &str, d: Duration) {
    let ms = d.as_secs_f64() * 1e3;
    match timings.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v += ms,
        None => timings.push((name.to_string(), ms)),
    }
}

/// Warm-ups run in this process (a bundle whose files already passed is not warmed up
/// again).
static WARM_UPS: AtomicU64 = AtomicU64::new(0);

/// The file remembering that this bundle's files — as they are now: path, size,
/// modification time of the manifest and every model file — passed the warm-up on
/// `device` with this build and libtorch (`validated/` in the cache folder), and the
/// key it holds. A warm-up is a full forward pass (~3 s for a MELD bundle on 2
/// cores): every later load of the same files skips it.
fn validated_marker(bundle: &Bundle, device: tch::Device) -> Option<(PathBuf, String)> {
    use sha2::Digest;
    let mut key = format!(
        "gst-emotion {} libtorch {}\ndevice {device:?}\n",
        env!("CARGO_PKG_VERSION"),
        super::LIBTORCH_LIB_DIR
    );
    let files = std::iter::once(bundle.dir.join(crate::bundle::MANIFEST))
        .chain((0..bundle.manifest.models.len()).map(|i| bundle.model_file(i, device)));
    for file in files {
        let meta = std::fs::metadata(&file).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let path = file.canonicalize().ok()?;
        key.push_str(&format!("{} {} {mtime}\n", path.display(), meta.len()));
    }
    let digest = sha2::Sha256::digest(key.as_bytes());
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some((crate::paths::cache_dir()?.join("validated").join(name), key))
}

/// A silent, black, text-less window through the model.
fn warm_up(backend: &Backend, bundle: &Bundle) -> Result<(), ModelError> {
    let blank = WindowJob {
        span: WindowSpan {
            index: 0,
            start: 0,
            end: (bundle.manifest.window.length * SECOND as f64) as u64,
        },
        frames: None,
        audio: None,
        kind: Default::default(),
        stream_span: None,
        degraded: None,
    };
    let mut input = prepare(bundle, &blank, None)?;
    if let (Some(faces), Some(InputSpec::Video(v))) = (
        input.faces.as_mut(),
        bundle
            .manifest
            .faces
            .as_ref()
            .and_then(|f| bundle.manifest.inputs.get(&f.input)),
    ) {
        // One black face, so the model itself runs.
        let black = RgbImage::black(v.width, v.height);
        faces.push(PreparedFace {
            tensor: frames_tensor("warm-up", v, &vec![&black; v.frames])?,
            crops: Vec::new(),
            report: FaceReport::default(),
        });
    }
    let out = backend
        .run(bundle, &[&input])
        .pop()
        .ok_or(ModelError::Run("no answer for the blank window".into()))??;
    for (spec, p) in bundle.manifest.heads.iter().zip(&out.probs) {
        if p.len() != spec.labels.len() || p.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Run(format!(
                "heads.{}: {} values for {} labels",
                spec.name,
                p.len(),
                spec.labels.len()
            )));
        }
    }
    Ok(())
}
