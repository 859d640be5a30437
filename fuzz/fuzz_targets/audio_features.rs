//! The audio feature path on arbitrary bytes and mel settings: PCM to mono, the
//! settings' validation, the mel spectrogram, per-clip normalisation and fitting to a
//! frame count never panic, and every value is finite.
#![no_main]

use gst_emotion::media::audio::SampleFormat;
use gst_emotion::media::{MelConfig, MelSpectrogram, pcm_to_mono};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, pcm) = data.split_at(8);
    let format = if head[0] & 1 == 0 {
        SampleFormat::F32le
    } else {
        SampleFormat::S16le
    };
    let channels = (head[1] % 8) as usize + 1;
    let samples = pcm_to_mono(pcm, format, channels);
    let n_fft = 1usize << (head[2] % 12);
    let hop = (head[3] as usize % 1024) + 1;
    let n_mels = (head[4] as usize % 128) + 1;
    let mut config = MelConfig::torchaudio(16000, n_fft, hop, n_mels);
    config.center = head[5] & 1 == 0;
    if config.validate().is_err() {
        return;
    }
    let Ok(mel) = MelSpectrogram::new(config) else {
        return;
    };
    // Non-finite input samples (NaN/inf floats) are possible from F32 bytes.
    let finite = samples.iter().all(|v| v.is_finite());
    let mut spec = mel.compute(&samples);
    spec.normalize_per_clip();
    spec.fit_frames((head[6] as usize % 64) + 1);
    if finite {
        assert!(spec.data.iter().all(|v| v.is_finite()), "non-finite mel from finite audio");
    }
});
