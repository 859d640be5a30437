//! Mel spectrograms with the semantics of `torchaudio.transforms.MelSpectrogram`, and
//! the per-clip normalisation and fixed length the reference MELD pipeline applies.
//!
//! torchaudio's defaults, which [`MelConfig::torchaudio`] reproduces: `win_length =
//! n_fft`, a periodic Hann window, `center = true` with reflect padding of `n_fft / 2`
//! on both sides, power 2, the HTK mel scale, no filterbank normalisation, `f_min = 0`,
//! `f_max = sample_rate / 2`. The triangular filterbank is computed the way
//! `torchaudio.functional.melscale_fbanks` does (slopes over linearly spaced FFT bin
//! frequencies).

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Mel scale formula.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MelScale {
    /// `2595 · log10(1 + f / 700)`.
    Htk,
    /// Slaney's Auditory Toolbox scale (linear below 1 kHz, logarithmic above).
    Slaney,
}

/// Filterbank normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MelNorm {
    /// Triangles peak at 1.
    None,
    /// Each triangle divided by half its bandwidth in Hz (equal area).
    Slaney,
}

/// How the signal is padded when frames are centred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Mirror without repeating the edge sample (`torch.nn.functional.pad(mode="reflect")`).
    Reflect,
    /// Zeros.
    Constant,
}

/// Why a [`MelConfig`] is not usable: the parameter at fault and its rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MelConfigError(pub String);

/// Parameters of a mel spectrogram.
#[derive(Clone, Debug, PartialEq)]
pub struct MelConfig {
    /// Sample rate of the input in Hz.
    pub sample_rate: u32,
    /// FFT size.
    pub n_fft: usize,
    /// Window length (≤ `n_fft`; the window is zero-padded to `n_fft`, centred).
    pub win_length: usize,
    /// Samples between frames.
    pub hop_length: usize,
    /// Lowest filter frequency in Hz.
    pub f_min: f64,
    /// Highest filter frequency in Hz (`sample_rate / 2` in torchaudio by default).
    pub f_max: f64,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Exponent of the magnitude (2 = power, 1 = magnitude).
    pub power: f64,
    /// Centre frames on their sample by padding `n_fft / 2` on both sides.
    pub center: bool,
    /// Padding used when `center` is true.
    pub pad_mode: PadMode,
    /// Mel scale.
    pub mel_scale: MelScale,
    /// Filterbank normalisation.
    pub norm: MelNorm,
}

impl MelConfig {
    /// torchaudio's `MelSpectrogram(sample_rate, n_fft, hop_length, n_mels)` with every
    /// other argument at its default.
    pub fn torchaudio(sample_rate: u32, n_fft: usize, hop_length: usize, n_mels: usize) -> Self {
        Self {
            sample_rate,
            n_fft,
            win_length: n_fft,
            hop_length,
            f_min: 0.0,
            f_max: sample_rate as f64 / 2.0,
            n_mels,
            power: 2.0,
            center: true,
            pad_mode: PadMode::Reflect,
            mel_scale: MelScale::Htk,
            norm: MelNorm::None,
        }
    }

    /// Checks the parameters; the error names the offending one.
    pub fn validate(&self) -> Result<(), MelConfigError> {
        if self.sample_rate == 0 {
            return Err(MelConfigError("sample_rate must be > 0".into()));
        }
        if self.n_fft < 2 {
            return Err(MelConfigError("n_fft must be >= 2".into()));
        }
        if self.win_length == 0 || self.win_length > self.n_fft {
            return Err(MelConfigError(format!(
                "win_length must be in 1..={}",
                self.n_fft
            )));
        }
        if self.hop_length == 0 {
            return Err(MelConfigError("hop_length must be > 0".into()));
        }
        if self.n_mels == 0 {
            return Err(MelConfigError("n_mels must be > 0".into()));
        }
        if self.f_min.is_nan()
            || self.f_max.is_nan()
            || self.f_min < 0.0
            || self.f_min >= self.f_max
        {
            return Err(MelConfigError("need 0 <= f_min < f_max".into()));
        }
        if self.f_max > self.sample_rate as f64 / 2.0 + 1e-9 {
            return Err(MelConfigError(
                "f_max must not exceed sample_rate / 2".into(),
            ));
        }
        if self.power.is_nan() || self.power <= 0.0 {
            return Err(MelConfigError("power must be > 0".into()));
        }
        Ok(())
    }
}

// Slaney's scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
const SLANEY_F_SP: f64 = 200.0 / 3.0;
const SLANEY_MIN_LOG_HZ: f64 = 1000.0;
const SLANEY_MIN_LOG_MEL: f64 = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;

fn slaney_logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + f / 700.0).log10(),
        MelScale::Slaney if f >= SLANEY_MIN_LOG_HZ => {
            SLANEY_MIN_LOG_MEL + (f / SLANEY_MIN_LOG_HZ).ln() / slaney_logstep()
        }
        MelScale::Slaney => f / SLANEY_F_SP,
    }
}

fn mel_to_hz(m: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(m / 2595.0) - 1.0),
        MelScale::Slaney if m >= SLANEY_MIN_LOG_MEL => {
            SLANEY_MIN_LOG_HZ * (slaney_logstep() * (m - SLANEY_MIN_LOG_MEL)).exp()
        }
        MelScale::Slaney => SLANEY_F_SP * m,
    }
}

/// `torch.linspace(a, b, n)`.
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    let step = (b - a) / (n - 1) as f64;
    (0..n).map(|i| a + step * i as f64).collect()
}

/// The mel filterbank, `n_freqs × n_mels` row-major (`torchaudio.functional.melscale_fbanks`).
pub fn mel_filterbank(config: &MelConfig) -> Vec<f64> {
    let n_freqs = config.n_fft / 2 + 1;
    // torchaudio spaces bin frequencies over [0, sample_rate // 2] (integer division).
    let all_freqs = linspace(0.0, (config.sample_rate / 2) as f64, n_freqs);
    let m_min = hz_to_mel(config.f_min, config.mel_scale);
    let m_max = hz_to_mel(config.f_max, config.mel_scale);
    let f_pts: Vec<f64> = linspace(m_min, m_max, config.n_mels + 2)
        .into_iter()
        .map(|m| mel_to_hz(m, config.mel_scale))
        .collect();
    let mut fb = vec![0.0; n_freqs * config.n_mels];
    for (i, &f) in all_freqs.iter().enumerate() {
        for m in 0..config.n_mels {
            let down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
            let up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
            let mut v = down.min(up).max(0.0);
            if config.norm == MelNorm::Slaney {
                v *= 2.0 / (f_pts[m + 2] - f_pts[m]);
            }
            fb[i * config.n_mels + m] = v;
        }
    }
    fb
}

/// A mel spectrogram: `n_mels` rows of `frames` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Mel {
    /// Number of mel bands (rows).
    pub n_mels: usize,
    /// Number of frames (columns).
    pub frames: usize,
    /// `n_mels × frames` values.
    pub data: Vec<f32>,
}

/// Computes mel spectrograms for one configuration; reuses the FFT plan, window and
/// filterbank across calls.
pub struct MelSpectrogram {
    config: MelConfig,
    window: Vec<f64>,
    filterbank: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpectrogram")
            .field("config", &self.config)
            .finish()
    }
}

impl MelSpectrogram {
    /// Prepares the transform; fails with a message naming a bad parameter.
    pub fn new(config: MelConfig) -> Result<Self, MelConfigError> {
        config.validate()?;
        // Periodic Hann of win_length, zero-padded (centred) to n_fft, as torch.stft does.
        let mut window = vec![0.0; config.n_fft];
        let offset = (config.n_fft - config.win_length) / 2;
        for i in 0..config.win_length {
            window[offset + i] = 0.5 - 0.5 * (2.0 * PI * i as f64 / config.win_length as f64).cos();
        }
        let filterbank = mel_filterbank(&config);
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(config.n_fft);
        Ok(Self {
            config,
            window,
            filterbank,
            fft,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MelConfig {
        &self.config
    }

    /// Number of frames for `n` input samples.
    pub fn frame_count(&self, n: usize) -> usize {
        let padded = if self.config.center {
            n + 2 * (self.config.n_fft / 2)
        } else {
            n
        };
        if padded < self.config.n_fft {
            0
        } else {
            1 + (padded - self.config.n_fft) / self.config.hop_length
        }
    }

    fn padded_input(&self, samples: &[f32]) -> Vec<f64> {
        let x: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
        if !self.config.center {
            return x;
        }
        let pad = self.config.n_fft / 2;
        let n = x.len();
        let mut out = Vec::with_capacity(n + 2 * pad);
        // Reflect needs more than `pad` samples (torch refuses shorter input); shorter
        // clips are zero-padded instead.
        let reflect = self.config.pad_mode == PadMode::Reflect && n > pad;
        for i in (1..=pad).rev() {
            out.push(if reflect { x[i] } else { 0.0 });
        }
        out.extend_from_slice(&x);
        for i in 0..pad {
            out.push(if reflect { x[n - 2 - i] } else { 0.0 });
        }
        out
    }

    /// The mel spectrogram of mono `samples`.
    pub fn compute(&self, samples: &[f32]) -> Mel {
        let c = &self.config;
        let input = self.padded_input(samples);
        let frames = self.frame_count(samples.len());
        let n_freqs = c.n_fft / 2 + 1;
        let mut data = vec![0.0f32; c.n_mels * frames];
        let mut buf = self.fft.make_input_vec();
        let mut spec = self.fft.make_output_vec();
        let mut power = vec![0.0f64; n_freqs];
        for t in 0..frames {
            let start = t * c.hop_length;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = input[start + i] * self.window[i];
            }
            self.fft
                .process(&mut buf, &mut spec)
                .expect("buffer sizes come from the same plan");
            for (p, z) in power.iter_mut().zip(&spec) {
                let mag2 = z.re * z.re + z.im * z.im;
                *p = if c.power == 2.0 {
                    mag2
                } else {
                    mag2.sqrt().powf(c.power)
                };
            }
            for m in 0..c.n_mels {
                let mut acc = 0.0;
                for (f, p) in power.iter().enumerate() {
                    acc += p * self.filterbank[f * c.n_mels + m];
                }
                data[m * frames + t] = acc as f32;
            }
        }
        Mel {
            n_mels: c.n_mels,
            frames,
            data,
        }
    }
}

impl Mel {
    /// Standardises over the whole clip: `(x − mean) / std` with the unbiased standard
    /// deviation (`torch.std` default). A constant clip (std 0) becomes all zeros
    /// instead of NaN.
    pub fn normalize_per_clip(&mut self) {
        let n = self.data.len();
        if n == 0 {
            return;
        }
        let mean = self.data.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = if n > 1 {
            self.data
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / (n - 1) as f64
        } else {
            0.0
        };
        let std = var.sqrt();
        for v in &mut self.data {
            *v = if std > 0.0 {
                ((*v as f64 - mean) / std) as f32
            } else {
                0.0
            };
        }
    }

    /// Pads with zeros on the right, or truncates, to exactly `frames` frames.
    pub fn fit_frames(&mut self, frames: usize) {
        let mut out = vec![0.0f32; self.n_mels * frames];
        let keep = self.frames.min(frames);
        for m in 0..self.n_mels {
            out[m * frames..m * frames + keep]
                .copy_from_slice(&self.data[m * self.frames..m * self.frames + keep]);
        }
        self.frames = frames;
        self.data = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_config() -> MelConfig {
        MelConfig::torchaudio(16000, 1024, 512, 64)
    }

    #[test]
    fn frame_count_matches_torch_stft_with_centre() {
        let mel = MelSpectrogram::new(reference_config()).unwrap();
        // torch: 1 + len // hop for centred frames.
        assert_eq!(mel.frame_count(48000), 1 + 48000 / 512);
        assert_eq!(mel.frame_count(16000), 1 + 16000 / 512);
        assert_eq!(mel.compute(&vec![0.0; 16000]).frames, 32);
    }

    #[test]
    fn htk_scale_round_trips_and_hits_known_values() {
        assert!((hz_to_mel(700.0, MelScale::Htk) - 2595.0 * 2f64.log10()).abs() < 1e-9);
        for f in [0.0, 100.0, 1000.0, 7999.0] {
            for s in [MelScale::Htk, MelScale::Slaney] {
                assert!((mel_to_hz(hz_to_mel(f, s), s) - f).abs() < 1e-6);
            }
        }
        assert!((hz_to_mel(1000.0, MelScale::Slaney) - 15.0).abs() < 1e-9);
    }

    #[test]
    fn filterbank_triangles_peak_at_one_without_norm() {
        let c = reference_config();
        let fb = mel_filterbank(&c);
        let n_freqs = c.n_fft / 2 + 1;
        for m in 0..c.n_mels {
            let peak = (0..n_freqs)
                .map(|f| fb[f * c.n_mels + m])
                .fold(0.0, f64::max);
            assert!(peak > 0.0 && peak <= 1.0, "band {m} peak {peak}");
        }
        // Bin 0 (DC) belongs to no band at f_min = 0 (the first triangle starts there).
        assert!((0..c.n_mels).all(|m| fb[m] == 0.0));
    }

    #[test]
    fn a_tone_lands_in_the_right_band() {
        let c = reference_config();
        let mel = MelSpectrogram::new(c.clone()).unwrap();
        let tone: Vec<f32> = (0..16000)
            .map(|i| (2.0 * PI * 1000.0 * i as f64 / 16000.0).sin() as f32)
            .collect();
        let spec = mel.compute(&tone);
        let t = spec.frames / 2;
        let band = (0..c.n_mels)
            .max_by(|&a, &b| {
                spec.data[a * spec.frames + t].total_cmp(&spec.data[b * spec.frames + t])
            })
            .unwrap();
        // The band whose centre is nearest 1 kHz on the HTK scale.
        let m_max = hz_to_mel(8000.0, MelScale::Htk);
        let centres: Vec<f64> = (1..=c.n_mels)
            .map(|k| mel_to_hz(m_max * k as f64 / (c.n_mels + 1) as f64, MelScale::Htk))
            .collect();
        let expected = (0..c.n_mels)
            .min_by(|&a, &b| {
                (centres[a] - 1000.0)
                    .abs()
                    .total_cmp(&(centres[b] - 1000.0).abs())
            })
            .unwrap();
        assert!(
            (band as i64 - expected as i64).abs() <= 1,
            "band {band} expected {expected}"
        );
        // A unit sine through a 1024-point Hann window peaks at |X| = 1024/4 = 256, so
        // the band collects on the order of 256² of power.
        let v = spec.data[band * spec.frames + t];
        assert!(v.is_finite() && v > 1.0e4, "band power {v}");
    }

    #[test]
    fn reflect_padding_mirrors_without_the_edge_sample() {
        let c = MelConfig {
            n_fft: 4,
            win_length: 4,
            hop_length: 2,
            n_mels: 1,
            ..MelConfig::torchaudio(8, 4, 2, 1)
        };
        let mel = MelSpectrogram::new(c).unwrap();
        let padded = mel.padded_input(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(padded, vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn normalise_uses_unbiased_std_and_fit_pads_or_truncates() {
        let mut m = Mel {
            n_mels: 1,
            frames: 4,
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        m.normalize_per_clip();
        // mean 2.5, unbiased std sqrt(5/3).
        let s = (5.0f64 / 3.0).sqrt();
        assert!((m.data[0] as f64 + 1.5 / s).abs() < 1e-6);
        m.fit_frames(6);
        assert_eq!(m.data.len(), 6);
        assert_eq!(&m.data[4..], &[0.0, 0.0]);
        m.fit_frames(2);
        assert_eq!(m.frames, 2);
        assert!((m.data[1] as f64 + 0.5 / s).abs() < 1e-6);
    }

    #[test]
    fn bad_config_is_named() {
        let mut c = reference_config();
        c.hop_length = 0;
        assert!(MelSpectrogram::new(c).unwrap_err().0.contains("hop_length"));
    }
}
