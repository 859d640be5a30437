//! A loaded model shared by every element of the process: one per (bundle folder,
//! device). Its inference thread batches the windows waiting from all streams (up to
//! `max_batch`, waiting at most `max_wait` for more) and runs one forward pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use tch::{IValue, Tensor};

use super::device::{DeviceChoice, resolve_device};
use super::first_line;
use super::fusion::{FusionModel, FusionOutput};
use super::prepare::{InputTensor, Prepared, prepare};
use crate::bundle::{Bundle, BundleError, HeadSpec};
use crate::media::RgbImage;
use crate::window::{SECOND, WindowJob, WindowSpan};

/// Time spent in forward passes by every engine of the process (ns), for benchmarks.
pub static FORWARD_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Logits of one window: one vector per head, in the bundle's head order.
pub type HeadLogits = Vec<Vec<f32>>;

/// How an engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Device setting.
    pub device: DeviceChoice,
    /// Most windows in one forward pass.
    pub max_batch: usize,
    /// Longest wait for more windows once one is waiting.
    pub max_wait: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::Auto,
            max_batch: 4,
            max_wait: Duration::from_millis(10),
        }
    }
}

/// What the inference thread answers.
enum Reply {
    /// A single model's logits per head.
    Logits(HeadLogits),
    /// A fusion bundle's probabilities per head and details.
    Fused(Box<FusionOutput>),
}

struct Request {
    inputs: Prepared,
    reply: Sender<Result<Reply, String>>,
}

fn logits(r: Result<Reply, String>) -> Result<HeadLogits, String> {
    match r? {
        Reply::Logits(l) => Ok(l),
        Reply::Fused(_) => Err("this is a fusion bundle: use Engine::fuse".into()),
    }
}

/// A model ready to analyse windows; cheap to share (`Arc`).
pub struct Engine {
    tx: Sender<Request>,
    /// The bundle the model comes from.
    pub bundle: Arc<Bundle>,
    /// The device it runs on.
    pub device: tch::Device,
    /// Set when the requested device was not usable.
    pub device_note: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bundle", &self.bundle.manifest.name)
            .field("device", &self.device)
            .finish()
    }
}

type Registry = HashMap<(PathBuf, DeviceChoice), Weak<Engine>>;
static ENGINES: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl Engine {
    /// The engine for the bundle in `dir` on `options.device`, loading it (manifest
    /// validation, model load, warm-up forward checking output shapes) unless another
    /// element of this process already has.
    pub fn shared(dir: &Path, options: EngineOptions) -> Result<Arc<Engine>, BundleError> {
        let key_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut registry = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|_, w| w.strong_count() > 0);
        if let Some(engine) = registry
            .get(&(key_dir.clone(), options.device))
            .and_then(Weak::upgrade)
        {
            return Ok(engine);
        }
        let engine = Arc::new(Self::load(dir, options)?);
        registry.insert((key_dir, options.device), Arc::downgrade(&engine));
        Ok(engine)
    }

    fn load(dir: &Path, options: EngineOptions) -> Result<Engine, BundleError> {
        let bundle = Arc::new(Bundle::load(dir)?);
        let (device, device_note) = resolve_device(options.device);
        let (tx, rx) = unbounded::<Request>();
        let (ready_tx, ready_rx) = bounded(1);
        let thread_bundle = bundle.clone();
        std::thread::Builder::new()
            .name("emotion-inference".into())
            .spawn(move || serve(thread_bundle, device, options, rx, ready_tx))
            .map_err(|e| BundleError::Io {
                path: dir.display().to_string(),
                reason: format!("cannot start the inference thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Engine {
                tx,
                bundle,
                device,
                device_note,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BundleError::Model {
                path: dir.display().to_string(),
                reason: "the inference thread stopped while loading".into(),
            }),
        }
    }

    /// Runs the model on several windows at once (they reach the inference thread
    /// together, so they batch up to `max_batch`); logits per window, in order.
    pub fn infer_many(&self, inputs: Vec<Prepared>) -> Vec<Result<HeadLogits, String>> {
        let receivers: Vec<_> = inputs
            .into_iter()
            .map(|inputs| {
                let (reply, rx) = bounded(1);
                let sent = self.tx.send(Request { inputs, reply }).is_ok();
                (sent, rx)
            })
            .collect();
        receivers
            .into_iter()
            .map(|(sent, rx)| match sent {
                true => logits(
                    rx.recv()
                        .map_err(|_| "the inference thread has stopped".to_string())?,
                ),
                false => Err("the inference thread has stopped".to_string()),
            })
            .collect()
    }

    /// Runs the model on one window's inputs (blocking; batched with other waiting
    /// windows). Returns logits per head.
    pub fn infer(&self, inputs: Prepared) -> Result<HeadLogits, String> {
        logits(self.request(inputs))
    }

    /// Runs a fusion bundle on one window: probabilities per head and the details.
    pub fn fuse(&self, inputs: Prepared) -> Result<FusionOutput, String> {
        match self.request(inputs)? {
            Reply::Fused(f) => Ok(*f),
            Reply::Logits(_) => Err("this is not a fusion bundle: use Engine::infer".into()),
        }
    }

    fn request(&self, inputs: Prepared) -> Result<Reply, String> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request { inputs, reply })
            .map_err(|_| "the inference thread has stopped".to_string())?;
        rx.recv()
            .map_err(|_| "the inference thread has stopped".to_string())?
    }
}

fn serve(
    bundle: Arc<Bundle>,
    device: tch::Device,
    options: EngineOptions,
    rx: Receiver<Request>,
    ready: Sender<Result<(), BundleError>>,
) {
    if bundle.is_fusion() {
        return serve_fusion(bundle, device, rx, ready);
    }
    let path = bundle.model_file(0, device);
    let model_error = |reason: String| BundleError::Model {
        path: path.display().to_string(),
        reason,
    };
    let module = match tch::CModule::load_on_device(&path, device) {
        Ok(mut m) => {
            m.set_eval();
            m
        }
        Err(e) => {
            let _ = ready.send(Err(model_error(format!(
                "cannot load TorchScript: {}",
                first_line(&e)
            ))));
            return;
        }
    };
    // Warm-up: a silent, black, text-less window must give one row per head with as
    // many logits as the head has labels.
    let length = (bundle.manifest.window.length * SECOND as f64) as u64;
    let blank = WindowJob {
        span: WindowSpan {
            index: 0,
            start: 0,
            end: length,
        },
        frames: None,
        audio: None,
    };
    let warm = prepare(&bundle, &blank, None).and_then(|p| run(&module, &bundle, device, &[&p]));
    if let Err(e) = warm {
        let _ = ready.send(Err(model_error(format!("warm-up forward failed: {e}"))));
        return;
    }
    let _ = ready.send(Ok(()));
    drop(ready);

    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + options.max_wait;
        while batch.len() < options.max_batch.max(1) {
            match rx.recv_deadline(deadline) {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Windows batch together when their tensors have the same shapes (text of
        // different lengths too, when the bundle pads to the longest in a batch).
        let same = batch
            .iter()
            .all(|r| batch_shapes(&bundle, &r.inputs) == batch_shapes(&bundle, &batch[0].inputs));
        if same {
            let inputs: Vec<&Prepared> = batch.iter().map(|r| &r.inputs).collect();
            match run(&module, &bundle, device, &inputs) {
                Ok(rows) => {
                    for (r, logits) in batch.into_iter().zip(rows) {
                        let _ = r.reply.send(Ok(Reply::Logits(logits)));
                    }
                }
                Err(e) => {
                    for r in batch {
                        let _ = r.reply.send(Err(e.clone()));
                    }
                }
            }
        } else {
            for r in batch {
                let out = run(&module, &bundle, device, &[&r.inputs])
                    .map(|mut v| Reply::Logits(v.remove(0)));
                let _ = r.reply.send(out);
            }
        }
    }
}

/// The inference thread of a fusion bundle: loads every branch, checks a blank window
/// gives one probability per label, then answers windows one at a time (its models
/// are small; the work per window is face detection, crops and one sentence).
fn serve_fusion(
    bundle: Arc<Bundle>,
    device: tch::Device,
    rx: Receiver<Request>,
    ready: Sender<Result<(), BundleError>>,
) {
    let model_error = |reason: String| BundleError::Model {
        path: bundle
            .dir
            .join(crate::bundle::MANIFEST)
            .display()
            .to_string(),
        reason,
    };
    let model = match FusionModel::load(bundle.clone(), device) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(model_error(e)));
            return;
        }
    };
    let blank = RgbImage::black(64, 48);
    let warm = model
        .analyse(&[Arc::new(blank)], "")
        .and_then(|(heads, _)| check_heads(&bundle, &heads));
    if let Err(e) = warm {
        let _ = ready.send(Err(model_error(format!("warm-up failed: {e}"))));
        return;
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    while let Ok(r) = rx.recv() {
        let started = Instant::now();
        let out = model.analyse(&r.inputs.frames, &r.inputs.text);
        FORWARD_NANOS.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let _ = r.reply.send(out.map(|o| Reply::Fused(Box::new(o))));
    }
}

fn check_heads(bundle: &Bundle, heads: &[Vec<f64>]) -> Result<(), String> {
    for (spec, p) in bundle.manifest.heads.iter().zip(heads) {
        if p.len() != spec.labels.len() || p.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "heads.{}: {} values for {} labels",
                spec.name,
                p.len(),
                spec.labels.len()
            ));
        }
    }
    Ok(())
}

/// The shapes that must agree for windows to share a forward pass.
fn batch_shapes<'a>(bundle: &Bundle, p: &'a Prepared) -> Vec<&'a [i64]> {
    let longest = pads_to_longest(bundle);
    p.inputs
        .iter()
        .filter(|(name, _)| !(longest && is_text(bundle, name)))
        .map(|(_, t)| t.shape())
        .collect()
}

fn pads_to_longest(bundle: &Bundle) -> bool {
    bundle
        .manifest
        .text
        .as_ref()
        .is_some_and(|t| t.padding == "longest")
}

fn is_text(bundle: &Bundle, name: &str) -> bool {
    matches!(
        bundle.manifest.inputs.get(name),
        Some(crate::bundle::InputSpec::TextIds | crate::bundle::InputSpec::TextMask)
    )
}

/// One forward pass over `batch`; returns logits per window per head.
fn run(
    module: &tch::CModule,
    bundle: &Bundle,
    device: tch::Device,
    batch: &[&Prepared],
) -> Result<Vec<HeadLogits>, String> {
    let model = &bundle.manifest.models[0];
    let n = batch.len() as i64;
    let longest = pads_to_longest(bundle);
    let pad_id = bundle.text.as_ref().map_or(0, |t| t.pad_id());
    let mut args = Vec::with_capacity(model.forward.len());
    for name in &model.forward {
        let first = batch[0]
            .inputs
            .get(name)
            .ok_or_else(|| format!("input {name} was not prepared"))?;
        if longest && is_text(bundle, name) {
            // Pad every window's text to the longest in the batch.
            let len = batch
                .iter()
                .map(|p| p.inputs[name].shape().last().copied().unwrap_or(0))
                .max()
                .unwrap_or(0)
                .max(1) as usize;
            let fill = match bundle.manifest.inputs.get(name) {
                Some(crate::bundle::InputSpec::TextIds) => pad_id,
                _ => 0,
            };
            let mut data = Vec::with_capacity(batch.len() * len);
            for p in batch {
                let InputTensor::I64 { data: d, .. } = &p.inputs[name] else {
                    return Err(format!("input {name}: expected int64 tokens"));
                };
                data.extend_from_slice(d);
                data.extend(std::iter::repeat_n(fill, len - d.len()));
            }
            let tensor = Tensor::from_slice(&data)
                .reshape([n, len as i64])
                .to_device(device);
            args.push(IValue::Tensor(tensor));
            continue;
        }
        let mut shape = vec![n];
        shape.extend_from_slice(first.shape());
        let tensor = match first {
            InputTensor::F32 { .. } => {
                let data: Vec<f32> = batch
                    .iter()
                    .flat_map(|p| match &p.inputs[name] {
                        InputTensor::F32 { data, .. } => data.as_slice(),
                        InputTensor::I64 { .. } => &[],
                    })
                    .copied()
                    .collect();
                Tensor::from_slice(&data)
            }
            InputTensor::I64 { .. } => {
                let data: Vec<i64> = batch
                    .iter()
                    .flat_map(|p| match &p.inputs[name] {
                        InputTensor::I64 { data, .. } => data.as_slice(),
                        InputTensor::F32 { .. } => &[],
                    })
                    .copied()
                    .collect();
                Tensor::from_slice(&data)
            }
        };
        let tensor = tensor
            .f_reshape(shape.as_slice())
            .map_err(|e| format!("input {name}: {}", first_line(&e)))?
            .to_device(device);
        args.push(IValue::Tensor(tensor));
    }
    let started = Instant::now();
    let output = tch::no_grad(|| module.forward_is(&args))
        .map_err(|e| format!("forward: {}", first_line(&e)))?;
    FORWARD_NANOS.fetch_add(
        started.elapsed().as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut per_window: Vec<HeadLogits> =
        vec![Vec::with_capacity(bundle.manifest.heads.len()); batch.len()];
    for head in &bundle.manifest.heads {
        let t = head_output(&output, head)?;
        let size = t.size();
        if size != [n, head.labels.len() as i64] {
            return Err(format!(
                "output for heads.{} has shape {size:?}, expected [{n}, {}] ({} labels)",
                head.name,
                head.labels.len(),
                head.labels.len()
            ));
        }
        let flat: Vec<f32> = Vec::<f32>::try_from(
            t.to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Float)
                .reshape([-1]),
        )
        .map_err(|e| format!("heads.{}: {e}", head.name))?;
        for (w, row) in per_window.iter_mut().zip(flat.chunks(head.labels.len())) {
            w.push(row.to_vec());
        }
    }
    Ok(per_window)
}

fn head_output<'a>(output: &'a IValue, head: &HeadSpec) -> Result<&'a Tensor, String> {
    let found = match (output, &head.output_key, head.output_index) {
        (IValue::GenericDict(items), Some(key), _) => items.iter().find_map(|(k, v)| match k {
            IValue::String(s) if s == key => Some(v),
            _ => None,
        }),
        (IValue::Tuple(items) | IValue::GenericList(items), _, Some(i)) => items.get(i),
        (IValue::Tensor(_), None, None | Some(0)) => Some(output),
        _ => None,
    };
    match found {
        Some(IValue::Tensor(t)) => Ok(t),
        _ => {
            let what = match output {
                IValue::GenericDict(items) => format!(
                    "a dict with keys {:?}",
                    items
                        .iter()
                        .filter_map(|(k, _)| match k {
                            IValue::String(s) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                ),
                IValue::Tuple(v) => format!("a tuple of {}", v.len()),
                IValue::Tensor(_) => "a single tensor".into(),
                _ => "an unsupported value".into(),
            };
            Err(format!(
                "heads.{}: the model returns {what}; set output_key or output_index to match",
                head.name
            ))
        }
    }
}
