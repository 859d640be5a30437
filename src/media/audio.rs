//! The audio side of windowing: a mono ring buffer addressed by sample index on the
//! running-time axis, so windows can cut exactly the samples of their time span no
//! matter how upstream sized its buffers.

use std::collections::VecDeque;

/// Nanoseconds per second.
const NS: u128 = 1_000_000_000;

/// Converts a running time in nanoseconds to a sample index at `rate`, rounding to the
/// nearest sample.
pub fn time_to_sample(time_ns: u64, rate: u32) -> u64 {
    ((time_ns as u128 * rate as u128 + NS / 2) / NS) as u64
}

/// Converts a sample index at `rate` to a running time in nanoseconds (rounded down).
pub fn sample_to_time(index: u64, rate: u32) -> u64 {
    (index as u128 * NS / rate as u128) as u64
}

/// Mono samples in [-1, 1] placed on the running-time axis.
///
/// Incoming buffers are placed at the sample index of their running time. Small
/// timestamp jitter (under the alignment threshold) is absorbed by appending
/// contiguously; a larger gap is filled with silence; an overlap drops the samples
/// that were already covered. This is how `audiobasesink` and `audioaggregator` treat
/// timestamps too.
#[derive(Debug, Clone)]
pub struct AudioRing {
    rate: u32,
    threshold: u64,
    start: u64,
    samples: VecDeque<f32>,
    started: bool,
    real_samples: VecDeque<bool>,
}

/// What happened to one pushed buffer, for logging and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Silent samples inserted before the buffer because of a timestamp gap.
    pub gap_filled: u64,
    /// Samples of the buffer dropped because they overlapped audio already stored.
    pub overlap_dropped: u64,
}

impl AudioRing {
    /// A ring at `rate` Hz that treats timestamp differences up to `threshold_ns` as
    /// jitter (GStreamer's audio sinks use 40 ms).
    pub fn new(rate: u32, threshold_ns: u64) -> Self {
        Self {
            rate,
            threshold: time_to_sample(threshold_ns, rate),
            start: 0,
            samples: VecDeque::new(),
            started: false,
            real_samples: VecDeque::new(),
        }
    }

    /// Sample rate in Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// True until the first buffer is pushed.
    pub fn is_empty(&self) -> bool {
        !self.started
    }

    /// Sample index one past the last stored sample (the audio reached so far).
    pub fn end_index(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    /// Running time (ns) of the end of the stored audio.
    pub fn end_time(&self) -> u64 {
        sample_to_time(self.end_index(), self.rate)
    }

    /// Places `data` (mono, at this ring's rate) at running time `time_ns`.
    pub fn push(&mut self, time_ns: u64, data: &[f32]) -> PushOutcome {
        let at = time_to_sample(time_ns, self.rate);
        let mut outcome = PushOutcome::default();
        if !self.started {
            self.started = true;
            self.start = at;
        }
        let end = self.end_index();
        let mut data = data;
        if at > end + self.threshold {
            let gap = at - end;
            self.samples.extend(std::iter::repeat_n(0.0, gap as usize));
            self.real_samples
                .extend(std::iter::repeat_n(false, gap as usize));
            outcome.gap_filled = gap;
        } else if at + self.threshold < end {
            let overlap = ((end - at) as usize).min(data.len());
            data = &data[overlap..];
            outcome.overlap_dropped = overlap as u64;
        }
        self.samples.extend(data.iter().copied());
        self.real_samples
            .extend(std::iter::repeat_n(true, data.len()));
        outcome
    }

    /// Copies the samples `[from, to)` (sample indices); parts not covered by stored
    /// audio are silence. Returns the samples and how many of them were real audio.
    pub fn extract(&self, from: u64, to: u64) -> (Vec<f32>, usize) {
        let mut out = vec![0.0; to.saturating_sub(from) as usize];
        let lo = from.max(self.start);
        let hi = to.min(self.end_index());
        let mut real = 0;
        if lo < hi {
            for i in lo..hi {
                let k = (i - self.start) as usize;
                out[(i - from) as usize] = self.samples[k];
                real += usize::from(self.real_samples[k]);
            }
        }
        (out, real)
    }

    /// Forgets samples before index `index` (no window will ask for them again).
    pub fn discard_before(&mut self, index: u64) {
        let n = (index.saturating_sub(self.start) as usize).min(self.samples.len());
        self.samples.drain(..n);
        self.real_samples.drain(..n);
        self.start += n as u64;
    }

    /// Forgets everything (flush).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.real_samples.clear();
        self.start = 0;
        self.started = false;
    }
}

/// Sample formats the element accepts on its audio pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// 32-bit float, little endian.
    F32le,
    /// Signed 16-bit, little endian (scaled by 1/32768, as soundfile/torchaudio load PCM16).
    S16le,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn width(self) -> usize {
        match self {
            SampleFormat::F32le => 4,
            SampleFormat::S16le => 2,
        }
    }
}

/// Decodes interleaved PCM bytes of `channels` channels and averages them to mono
/// floats. Trailing bytes that do not make a whole frame are ignored.
pub fn pcm_to_mono(bytes: &[u8], format: SampleFormat, channels: usize) -> Vec<f32> {
    let channels = channels.max(1);
    let width = format.width();
    let sample = |b: &[u8]| -> f32 {
        match format {
            SampleFormat::F32le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            SampleFormat::S16le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
        }
    };
    bytes
        .chunks_exact(width * channels)
        .map(|frame| {
            if channels == 1 {
                sample(frame)
            } else {
                frame.chunks_exact(width).map(sample).sum::<f32>() / channels as f32
            }
        })
        .collect()
}

/// Root mean square of `samples` (0 for an empty slice).
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn time_sample_round_trip() {
        assert_eq!(time_to_sample(2_000 * MS, 16000), 32000);
        assert_eq!(sample_to_time(32000, 16000), 2_000 * MS);
        assert_eq!(time_to_sample(31_250, 16000), 1); // half a sample rounds up
    }

    #[test]
    fn codec_sized_buffers_are_contiguous() {
        let mut ring = AudioRing::new(16000, 40 * MS);
        // 341-sample buffers with timestamps rounded to the nanosecond like a demuxer's.
        let mut t = 0u64;
        let mut n = 0u64;
        for k in 0..100 {
            let buf = vec![k as f32; 341];
            let o = ring.push(t, &buf);
            assert_eq!(o, PushOutcome::default());
            n += 341;
            t = sample_to_time(n, 16000);
        }
        assert_eq!(ring.end_index(), 34100);
        let (s, real) = ring.extract(340, 343);
        assert_eq!(s, vec![0.0, 1.0, 1.0]);
        assert_eq!(real, 3);
    }

    #[test]
    fn gap_is_filled_with_silence_and_overlap_dropped() {
        let mut ring = AudioRing::new(1000, 10 * MS);
        ring.push(0, &[1.0; 100]); // 0..100 ms
        let o = ring.push(200 * MS, &[2.0; 10]); // 100 ms gap
        assert_eq!(o.gap_filled, 100);
        let (s, real) = ring.extract(95, 205);
        assert_eq!(real, 5 + 5);
        assert_eq!(s[0], 1.0);
        assert_eq!(s[10], 0.0);
        assert_eq!(s[105], 2.0);
        let o = ring.push(150 * MS, &[3.0; 100]); // overlaps 60 stored samples
        assert_eq!(o.overlap_dropped, 60);
        assert_eq!(ring.end_index(), 250);
    }

    #[test]
    fn extract_outside_is_silence_and_discard_keeps_indices() {
        let mut ring = AudioRing::new(1000, 0);
        ring.push(10 * MS, &[0.5; 20]);
        let (s, real) = ring.extract(0, 40);
        assert_eq!(real, 20);
        assert_eq!(s.iter().filter(|&&v| v == 0.5).count(), 20);
        ring.discard_before(20);
        assert_eq!(ring.extract(20, 30).1, 10);
        assert_eq!(ring.extract(10, 20).1, 0);
    }

    #[test]
    fn pcm_decoding_and_rms() {
        let f: Vec<u8> = [1.0f32, 0.0, 0.5, 0.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(pcm_to_mono(&f, SampleFormat::F32le, 2), vec![0.5, 0.5]);
        let s: Vec<u8> = [16384i16, -16384]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(pcm_to_mono(&s, SampleFormat::S16le, 1), vec![0.5, -0.5]);
        assert!((rms(&[1.0, -1.0, 1.0, -1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(rms(&[]), 0.0);
    }
}
