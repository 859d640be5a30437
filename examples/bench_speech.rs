//! Real-time factor of the speech branch (voice activity + Whisper) on a spoken clip,
//! for each installed Whisper model and 1 and 2 threads (run by scripts/bench).
//!
//! usage: bench_speech AUDIO.wav (16 kHz mono 16-bit) [MODEL.bin ...]

use std::time::Instant;

use gst_emotion::speech::vad::{FRAME, RATE};
use gst_emotion::speech::{
    SegmenterConfig, Transcriber, TranscriberConfig, VoiceDetector, WhisperModel,
    default_vad_model, speech_segments,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        !args.is_empty(),
        "usage: bench_speech AUDIO.wav [MODEL.bin ...]"
    );
    let wav = std::fs::read(&args[0])?;
    anyhow::ensure!(
        wav.len() > 44 && &wav[..4] == b"RIFF",
        "{} is not a WAV file",
        args[0]
    );
    let audio: Vec<f32> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let seconds = audio.len() as f64 / RATE as f64;
    let mut vad = match default_vad_model() {
        Some(p) => VoiceDetector::silero(&p)?,
        None => VoiceDetector::energy(),
    };
    let t = Instant::now();
    let probs = vad.probabilities(&audio)?;
    let segments = speech_segments(
        &probs,
        FRAME as f64 / RATE as f64,
        seconds,
        &SegmenterConfig::default(),
    );
    let vad_time = t.elapsed().as_secs_f64();
    println!(
        "audio {seconds:.1} s, {} speech segment(s); VAD ({vad:?}) {:.0}x real time",
        segments.len(),
        seconds / vad_time
    );
    for model_path in &args[1..] {
        let model = WhisperModel::load(std::path::Path::new(model_path))?;
        for threads in [1, 2] {
            let mut config = TranscriberConfig::new(model_path);
            config.threads = threads;
            let mut tr = Transcriber::new(model.clone(), config)?;
            let t = Instant::now();
            let mut words = 0;
            for (s, e) in &segments {
                let (from, to) = (
                    (s * RATE as f64) as usize,
                    ((e * RATE as f64) as usize).min(audio.len()),
                );
                words += tr
                    .transcribe(&audio[from..to], true)?
                    .text()
                    .split_whitespace()
                    .count();
            }
            let asr = t.elapsed().as_secs_f64();
            let name = std::path::Path::new(model_path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            println!(
                "RESULT speech {name} threads {threads}: VAD+ASR {:.1}x real time ({words} words, {:.2} s)",
                seconds / (asr + vad_time),
                asr + vad_time
            );
        }
    }
    Ok(())
}
