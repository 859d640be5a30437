//! A single-TorchScript bundle (e.g. an exported MELD model): the module's forward
//! over a batch of prepared windows, its outputs picked per head by dict key or tuple
//! index, and checked against the manifest's label counts.

use std::time::Instant;

use tch::{IValue, Tensor};

use super::ModelError;
use super::device::Precision;
use super::prepare::{InputTensor, Prepared};
use super::{FORWARD_NANOS, first_line};
use crate::bundle::{Bundle, BundleError, HeadSpec, InputSpec, TextPadding};

/// Logits of one window: one vector per head, in the bundle's head order.
pub type HeadLogits = Vec<Vec<f32>>;

/// A loaded TorchScript module and what its forward takes.
pub struct TorchScriptModel {
    module: tch::CModule,
    device: tch::Device,
    /// Kind of the float inputs (the kind of the file's weights).
    float_kind: tch::Kind,
    /// The file loaded.
    path: std::path::PathBuf,
}

impl TorchScriptModel {
    /// Loads the bundle's model file for `device` (its CPU variant on the CPU) in
    /// `precision`: fp32 is the main file; bf16 and fp16 are the variants the bundle
    /// lists in `precision_files` (libtorch's module conversion would also convert
    /// integer buffers such as BERT's position ids, so the conversion is done at
    /// export, where PyTorch converts floating-point tensors only).
    pub fn load(
        bundle: &Bundle,
        device: tch::Device,
        precision: Precision,
    ) -> Result<Self, BundleError> {
        let main = bundle.manifest.main_model();
        let path = if precision == Precision::Fp32 {
            bundle.model_file(main, device)
        } else {
            let model = &bundle.manifest.models[main];
            let file = model
                .precision_files
                .get(&precision.to_string())
                .ok_or_else(|| BundleError::Model {
                    path: bundle.dir.join(&model.file).display().to_string(),
                    reason: format!(
                        "models.{} has no {precision} variant (precision_files); export one \
                         (models/export_meld.py --half {precision}) or set precision=fp32",
                        model.name
                    ),
                })?;
            bundle.dir.join(file)
        };
        let mut module =
            tch::CModule::load_on_device(&path, device).map_err(|e| BundleError::Model {
                path: path.display().to_string(),
                reason: format!("cannot load TorchScript: {}", first_line(&e)),
            })?;
        module.set_eval();
        Ok(Self {
            module,
            device,
            float_kind: precision.kind(),
            path,
        })
    }

    /// The TorchScript file this model was loaded from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs the windows of `batch` that share tensor shapes in one forward pass (each
    /// alone otherwise); logits per window, in order.
    pub fn run(&self, bundle: &Bundle, batch: &[&Prepared]) -> Vec<Result<HeadLogits, ModelError>> {
        let same = batch
            .iter()
            .all(|p| batch_shapes(bundle, p) == batch_shapes(bundle, batch[0]));
        if same {
            match self.forward(bundle, batch) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
            }
        } else {
            batch
                .iter()
                .map(|p| self.forward(bundle, &[p]).map(|mut v| v.remove(0)))
                .collect()
        }
    }

    /// One forward pass over `batch`; returns logits per window per head.
    fn forward(&self, bundle: &Bundle, batch: &[&Prepared]) -> Result<Vec<HeadLogits>, ModelError> {
        let model = &bundle.manifest.models[bundle.manifest.main_model()];
        let n = batch.len() as i64;
        let mut args = Vec::with_capacity(model.forward.len());
        for name in &model.forward {
            let t = batch_tensor(bundle, batch, name)?.to_device(self.device);
            let t = if t.kind() == tch::Kind::Float && self.float_kind != tch::Kind::Float {
                t.to_kind(self.float_kind)
            } else {
                t
            };
            args.push(IValue::Tensor(t));
        }
        let started = Instant::now();
        let output = tch::no_grad(|| self.module.forward_is(&args)).map_err(|e| {
            let fed: Vec<String> = model
                .forward
                .iter()
                .zip(&args)
                .map(|(name, a)| match a {
                    IValue::Tensor(t) => format!("inputs.{name} {:?} {:?}", t.size(), t.kind()),
                    _ => name.clone(),
                })
                .collect();
            ModelError::Run(format!(
                "forward on {} failed (check the inputs' layout, size and dtype against the \
                 model): {}",
                fed.join(", "),
                first_line(&e)
            ))
        })?;
        FORWARD_NANOS.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let frames = bundle.video().map_or(0, |v| v.frames) as i64;
        let mut per_window: Vec<HeadLogits> =
            vec![Vec::with_capacity(bundle.manifest.heads.len()); batch.len()];
        for head in &bundle.manifest.heads {
            let t = head_output(&output, head)?;
            let size = t.size();
            let labels = head.labels.len() as i64;
            let want = if head.per_frame {
                vec![n, frames, labels]
            } else {
                vec![n, labels]
            };
            if size != want {
                let hint = match (head.per_frame, size.len()) {
                    (true, _) => format!(
                        "heads.{}.per_frame = true: the model must answer [N, T = {frames}, \
                         {labels} labels]",
                        head.name
                    ),
                    (false, 3) => format!(
                        "one answer per frame? set heads.{}.per_frame = true",
                        head.name
                    ),
                    _ => format!("{labels} labels"),
                };
                return Err(ModelError::Run(format!(
                    "output for heads.{} has shape {size:?}, expected {want:?} ({hint})",
                    head.name
                )));
            }
            let flat: Vec<f32> = Vec::<f32>::try_from(
                t.to_device(tch::Device::Cpu)
                    .to_kind(tch::Kind::Float)
                    .reshape([-1]),
            )
            .map_err(|e| ModelError::Run(format!("heads.{}: {e}", head.name)))?;
            let row = (flat.len() / batch.len().max(1)).max(1);
            for (w, row) in per_window.iter_mut().zip(flat.chunks(row)) {
                w.push(row.to_vec());
            }
        }
        Ok(per_window)
    }
}

/// Input `name` of every window of `batch`, stacked along a new batch dimension (text
/// padded to the longest in the batch when the bundle says so).
fn batch_tensor(bundle: &Bundle, batch: &[&Prepared], name: &str) -> Result<Tensor, ModelError> {
    let n = batch.len() as i64;
    let parts: Vec<&InputTensor> = batch
        .iter()
        .map(|p| p.inputs.get(name))
        .collect::<Option<_>>()
        .ok_or_else(|| ModelError::Input(format!("input {name} was not prepared")))?;
    if pads_to_longest(bundle) && is_text(bundle, name) {
        let pad_id = bundle.text.as_ref().map_or(0, |t| t.pad_id());
        let len = parts
            .iter()
            .map(|t| t.shape().last().copied().unwrap_or(0))
            .max()
            .unwrap_or(0)
            .max(1) as usize;
        let fill = match bundle.manifest.inputs.get(name) {
            Some(InputSpec::TextIds) => pad_id,
            _ => 0,
        };
        let mut data = Vec::with_capacity(batch.len() * len);
        for t in &parts {
            let InputTensor::I64 { data: d, .. } = t else {
                return Err(ModelError::Input(format!(
                    "input {name}: expected int64 tokens"
                )));
            };
            data.extend_from_slice(d);
            data.extend(std::iter::repeat_n(fill, len - d.len()));
        }
        return Ok(Tensor::from_slice(&data).reshape([n, len as i64]));
    }
    InputTensor::stack(&parts)
        .and_then(|t| t.to_tch())
        .map_err(|e| ModelError::Input(format!("input {name}: {e}")))
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
        .is_some_and(|t| t.padding == TextPadding::Longest)
}

fn is_text(bundle: &Bundle, name: &str) -> bool {
    matches!(
        bundle.manifest.inputs.get(name),
        Some(InputSpec::TextIds | InputSpec::TextMask)
    )
}

fn head_output<'a>(output: &'a IValue, head: &HeadSpec) -> Result<&'a Tensor, ModelError> {
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
            Err(ModelError::Run(format!(
                "heads.{}: the model returns {what}; set output_key or output_index to match",
                head.name
            )))
        }
    }
}
