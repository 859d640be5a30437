//! Transcribes a 16 kHz mono 16-bit WAV file with a whisper.cpp model, through the
//! same `speech::Transcriber` the element uses (used by the speech benchmark).
//!
//! usage: transcribe MODEL.bin AUDIO.wav [THREADS]

use std::time::Instant;

use gst_emotion::speech::{Transcriber, TranscriberConfig, WhisperModel};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() >= 2,
        "usage: transcribe MODEL.bin AUDIO.wav [THREADS]"
    );
    let wav = std::fs::read(&a[1])?;
    // Canonical 44-byte header of espeak-ng/sox output; samples follow.
    anyhow::ensure!(
        wav.len() > 44 && &wav[..4] == b"RIFF",
        "{} is not a WAV file",
        a[1]
    );
    let samples: Vec<f32> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let model = WhisperModel::load(std::path::Path::new(&a[0]))?;
    let mut config = TranscriberConfig::new(&a[0]);
    config.threads = a.get(2).map(|t| t.parse()).transpose()?.unwrap_or(1);
    let mut t = Transcriber::new(model, config)?;
    let start = Instant::now();
    let tr = t.transcribe(&samples, false)?;
    let secs = start.elapsed().as_secs_f64();
    println!("{}", tr.text());
    eprintln!(
        "audio {:.2} s, {:.2} s to transcribe, {:.1}x real time",
        samples.len() as f64 / 16000.0,
        secs,
        samples.len() as f64 / 16000.0 / secs
    );
    Ok(())
}
