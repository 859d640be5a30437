//! Sentences made into clips for `gst-emotion eval --speak`: a text-to-speech voice
//! says the sentence over a face-less grey picture, encoded as an MP4 the whole
//! pipeline (decoder, Whisper, words, fusion) then reads like any other file.
//!
//! Two voices, both offline Debian packages: espeak-ng (formant synthesis: robotic,
//! hard on a speech recogniser) and Festival with the CMU SLT HTS voice (a recorded
//! speaker's statistical voice: closer to people). A clip is made once per voice and
//! sentence and kept in the clips folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use gst::prelude::*;

/// The text-to-speech voice that says a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Voice {
    /// espeak-ng's en-us voice at 150 words a minute (Debian package espeak-ng).
    EspeakNg,
    /// Festival's cmu_us_slt_arctic_hts voice (Debian packages festival and
    /// festvox-us-slt-hts).
    Festival,
}

impl Voice {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Voice::EspeakNg => "espeak-ng",
            Voice::Festival => "festival",
        }
    }

    /// What to install when the voice is missing.
    fn packages(self) -> &'static str {
        match self {
            Voice::EspeakNg => "espeak-ng",
            Voice::Festival => "festival festvox-us-slt-hts",
        }
    }

    /// Writes `text_file`'s sentence as a WAV file at `wav`. The text goes through a
    /// file, never the command line (a sentence that starts with '-' is not an option).
    pub fn say(self, text_file: &Path, wav: &Path) -> Result<(), SpeechError> {
        let mut command = match self {
            Voice::EspeakNg => {
                let mut c = Command::new("espeak-ng");
                c.args(["-v", "en-us", "-s", "150", "-w"])
                    .arg(wav)
                    .arg("-f")
                    .arg(text_file);
                c
            }
            Voice::Festival => {
                let mut c = Command::new("text2wave");
                c.args(["-eval", "(voice_cmu_us_slt_arctic_hts)", "-o"])
                    .arg(wav)
                    .arg(text_file);
                c
            }
        };
        let output = command
            .output()
            .map_err(|error| SpeechError::Missing { voice: self, error })?;
        // text2wave exits 0 when its voice is missing; an empty WAV tells.
        if !output.status.success() || wav_seconds(wav).unwrap_or(0.0) <= 0.0 {
            return Err(SpeechError::Failed {
                voice: self,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

/// Why a sentence could not be made into a clip.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// The voice's program is not installed.
    #[error("{}: {error} (install the Debian package(s) {})", voice.name(), voice.packages())]
    Missing {
        /// The voice asked for.
        voice: Voice,
        /// Why it could not be started.
        error: std::io::Error,
    },
    /// The voice's program ran but wrote no speech.
    #[error("{} wrote no speech: {stderr} (is {} installed?)", voice.name(), voice.packages())]
    Failed {
        /// The voice asked for.
        voice: Voice,
        /// What the program said.
        stderr: String,
    },
    /// A file in the clips folder could not be written.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The clip could not be encoded.
    #[error("encoding the spoken clip: {0}")]
    Encode(String),
}

/// `text` said by `voice` over a grey picture (640×360, 30 fps) as an MP4 in `dir`,
/// made once per voice and sentence.
pub fn spoken_clip(text: &str, voice: Voice, dir: &Path) -> Result<PathBuf, SpeechError> {
    // espeak-ng's clips keep the names they had before there was a choice of voice.
    let key = match voice {
        Voice::EspeakNg => text.to_string(),
        other => format!("{}\n{text}", other.name()),
    };
    let name = format!("{:016x}", crate::cli::inputs::stable_hash(&key));
    let clip = dir.join(format!("{name}.mp4"));
    if clip.is_file() {
        return Ok(clip);
    }
    let file = |path: &Path| {
        let path = path.to_path_buf();
        move |error| SpeechError::File { path, error }
    };
    let wav = dir.join(format!("{name}.{}.wav", std::process::id()));
    let text_file = dir.join(format!("{name}.{}.txt", std::process::id()));
    std::fs::write(&text_file, text).map_err(file(&text_file))?;
    let said = voice.say(&text_file, &wav);
    let _ = std::fs::remove_file(&text_file);
    let encoded = said.and_then(|()| {
        let seconds = wav_seconds(&wav).map_err(file(&wav))?;
        let frames = ((seconds + 0.3) * 30.0).ceil() as u64;
        let tmp = dir.join(format!("{name}.tmp{}.mp4", std::process::id()));
        encode(&wav, frames, &tmp)?;
        std::fs::rename(&tmp, &clip).map_err(file(&clip))
    });
    let _ = std::fs::remove_file(&wav);
    encoded.map(|()| clip)
}

/// A WAV file's length in seconds, from its header: the data chunk's size over the
/// byte rate.
fn wav_seconds(wav: &Path) -> std::io::Result<f64> {
    let bytes = std::fs::read(wav)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a PCM WAV file");
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad());
    }
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (mut at, mut byte_rate) = (12usize, None);
    while let (Some(id), Some(size)) = (bytes.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        match id {
            b"fmt " => byte_rate = u32_at(body + 8),
            // espeak-ng, writing as it speaks, leaves the data size at its maximum:
            // the rest of the file is the data.
            b"data" => {
                let size = (size as usize).min(bytes.len() - body);
                let rate = byte_rate.filter(|r| *r > 0).ok_or_else(bad)?;
                return Ok(size as f64 / f64::from(rate));
            }
            _ => {}
        }
        at = body.saturating_add(size as usize + (size as usize & 1));
    }
    Err(bad())
}

/// Encodes a grey 640×360 30 fps picture of `frames` frames and the speech in `wav`
/// (H.264, AAC) into the MP4 `out`, waiting at most a minute.
fn encode(wav: &Path, frames: u64, out: &Path) -> Result<(), SpeechError> {
    let failed = |e: &dyn std::fmt::Display| SpeechError::Encode(e.to_string());
    let pipeline = clip_pipeline(wav, frames, out).map_err(|e| failed(&e))?;
    let bus = pipeline.bus().ok_or_else(|| failed(&"no bus"))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| failed(&e))?;
    let result = bus
        .iter_timed(gst::ClockTime::from_seconds(60))
        .find_map(|m| match m.view() {
            gst::MessageView::Eos(_) => Some(Ok(())),
            gst::MessageView::Error(e) => Some(Err(failed(&e.error()))),
            _ => None,
        })
        .unwrap_or_else(|| Err(failed(&"timed out after 60 s")));
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// A grey 640×360 30 fps picture of `frames` frames and the speech in `wav`, encoded
/// (H.264, AAC) into the MP4 `out`. Built from element factories: the paths are
/// properties, never part of a pipeline description.
fn clip_pipeline(wav: &Path, frames: u64, out: &Path) -> anyhow::Result<gst::Pipeline> {
    let make = |factory: &str| gst::ElementFactory::make(factory).build();
    let pipeline = gst::Pipeline::new();
    let mux = make("mp4mux")?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", out)
        .build()?;
    let picture = gst::ElementFactory::make("videotestsrc")
        .property_from_str("pattern", "solid-color")
        .property("foreground-color", 0xff80_8080u32)
        .property("num-buffers", i32::try_from(frames).unwrap_or(i32::MAX))
        .build()?;
    let filter = |caps: gst::Caps| {
        gst::ElementFactory::make("capsfilter")
            .property("caps", caps)
            .build()
    };
    let size = filter(
        gst::Caps::builder("video/x-raw")
            .field("width", 640)
            .field("height", 360)
            .field("framerate", gst::Fraction::new(30, 1))
            .build(),
    )?;
    let x264 = gst::ElementFactory::make("x264enc")
        .property_from_str("speed-preset", "ultrafast")
        .build()?;
    let speech = gst::ElementFactory::make("filesrc")
        .property("location", wav)
        .build()?;
    let rate = filter(
        gst::Caps::builder("audio/x-raw")
            .field("rate", 48000)
            .field("channels", 1)
            .build(),
    )?;
    let video = [picture, size, x264, make("h264parse")?, make("queue")?];
    let audio = [
        speech,
        make("wavparse")?,
        make("audioconvert")?,
        make("audioresample")?,
        rate,
        make("avenc_aac")?,
        make("aacparse")?,
        make("queue")?,
    ];
    pipeline.add_many([&mux, &sink])?;
    pipeline.add_many(&video)?;
    pipeline.add_many(&audio)?;
    mux.link(&sink)?;
    gst::Element::link_many(&video)?;
    gst::Element::link_many(&audio)?;
    video[video.len() - 1].link(&mux)?;
    audio[audio.len() - 1].link(&mux)?;
    Ok(pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, data: usize, declared: u32) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes()); // PCM
        b.extend(1u16.to_le_bytes()); // mono
        b.extend(rate.to_le_bytes());
        b.extend((rate * 2).to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"LIST");
        b.extend(5u32.to_le_bytes());
        b.extend(b"abcde\0"); // odd size, padded
        b.extend(b"data");
        b.extend(declared.to_le_bytes());
        b.extend(vec![0u8; data]);
        b
    }

    #[test]
    fn a_wav_files_length_comes_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, wav(32000, 64000, 64000)).unwrap();
        assert_eq!(wav_seconds(&path).unwrap(), 1.0);
        // A data size left at its maximum (espeak-ng) counts what is there.
        std::fs::write(&path, wav(22050, 22050, u32::MAX)).unwrap();
        assert_eq!(wav_seconds(&path).unwrap(), 0.5);
        std::fs::write(&path, b"RIFF\0\0\0\0WAVEdata").unwrap();
        assert!(wav_seconds(&path).is_err());
        std::fs::write(&path, b"not a wav").unwrap();
        assert!(wav_seconds(&path).is_err());
    }
}
