//! Audio of any raw format, rate and channel layout on the `audio` pad, turned into
//! what the analysis takes (interleaved F32LE or S16LE at 16 kHz) by GStreamer's own
//! `audioconvert ! audioresample`, run inside the element on its streaming thread:
//! the windows are the same as with those two elements put in front of the pad
//! (tests/record.rs compares them), and the audio can leave on `audio_src` as it came.

use crossbeam_channel::{Receiver, unbounded};
use gst::prelude::*;

use crate::window::SAMPLE_RATE;

/// What the converter delivers: the caps the `audio` pad took directly before.
pub fn analysis_caps() -> gst::Caps {
    gst_audio::AudioCapsBuilder::new_interleaved()
        .format_list([gst_audio::AudioFormat::F32le, gst_audio::AudioFormat::S16le])
        .rate(SAMPLE_RATE as i32)
        .build()
}

/// Whether `caps` can be analysed as they are (no conversion).
pub fn is_analysable(caps: &gst::CapsRef) -> bool {
    caps.is_fixed() && caps.is_subset(&analysis_caps())
}

/// What comes out of the conversion chain, in order.
enum Out {
    Buffer(gst::Buffer),
    Caps(gst::Caps),
}

/// `audioconvert ! audioresample` between two pads of our own, driven synchronously.
pub struct Resampler {
    feed: gst::Pad,
    elements: Vec<gst::Element>,
    collect: gst::Pad,
    /// Filled by the collecting pad, on this thread, while it pushes.
    out: Receiver<Out>,
    /// The converted audio's caps, once negotiated.
    caps: Option<gst::Caps>,
    /// Converted audio not yet taken.
    buffers: Vec<gst::Buffer>,
    drained: bool,
}

/// Why audio could not be taken for the analysis.
#[derive(Debug, thiserror::Error)]
pub enum AudioInputError {
    /// An element the converter needs is missing.
    #[error("the {0} element is not installed (gst-plugins-base)")]
    Missing(String),
    /// The converter could not be set up: how.
    #[error("{0}")]
    Setup(String),
    /// The converter refused an event (its type name).
    #[error("the audio converter refused the {0} event")]
    Refused(String),
    /// The caps are not raw audio.
    #[error("not raw audio")]
    NotRaw,
}

impl Resampler {
    /// A chain converting audio with `caps`, timed by `segment`.
    pub fn new(caps: &gst::Caps, segment: &gst::Segment) -> Result<Self, AudioInputError> {
        let make = |name: &str| {
            gst::ElementFactory::make(name)
                .build()
                .map_err(|_| AudioInputError::Missing(name.to_string()))
        };
        let (convert, resample) = (make("audioconvert")?, make("audioresample")?);
        let (tx, out) = unbounded();
        let collect = {
            let events = tx.clone();
            gst::Pad::builder(gst::PadDirection::Sink)
                .name("emotionsense-resampled")
                .chain_function(move |_, _, buf| {
                    tx.send(Out::Buffer(buf))
                        .map_err(|_| gst::FlowError::Flushing)?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .event_function(move |_, _, event| {
                    if let gst::EventView::Caps(c) = event.view() {
                        let _ = events.send(Out::Caps(c.caps_owned()));
                    }
                    true
                })
                .query_function(|_, _, query| match query.view_mut() {
                    gst::QueryViewMut::Caps(q) => {
                        let caps = analysis_caps();
                        let caps = match q.filter() {
                            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                            None => caps,
                        };
                        q.set_result(&caps);
                        true
                    }
                    gst::QueryViewMut::AcceptCaps(q) => {
                        let ok = q.caps().is_subset(&analysis_caps());
                        q.set_result(ok);
                        true
                    }
                    _ => false,
                })
                .build()
        };
        let feed = gst::Pad::builder(gst::PadDirection::Src)
            .name("emotionsense-to-resample")
            .build();
        let link = |src: &gst::Pad, sink: &gst::Pad| {
            src.link(sink).map(|_| ()).map_err(|e| {
                AudioInputError::Setup(format!("cannot link the audio converter: {e:?}"))
            })
        };
        let pad = |e: &gst::Element, name: &str| e.static_pad(name).expect("always pad");
        link(&feed, &pad(&convert, "sink"))?;
        link(&pad(&convert, "src"), &pad(&resample, "sink"))?;
        link(&pad(&resample, "src"), &collect)?;
        for p in [&feed, &collect] {
            p.set_active(true).map_err(|_| {
                AudioInputError::Setup("cannot activate the audio converter's pads".into())
            })?;
        }
        for e in [&convert, &resample] {
            e.set_state(gst::State::Playing)
                .map_err(|_| AudioInputError::Setup("cannot start the audio converter".into()))?;
        }
        let r = Self {
            feed,
            elements: vec![convert, resample],
            collect,
            out,
            caps: None,
            buffers: Vec::new(),
            drained: false,
        };
        r.send(gst::event::StreamStart::new("emotionsense-audio"))?;
        r.send(gst::event::Caps::new(caps))?;
        r.send(gst::event::Segment::new(segment))?;
        Ok(r)
    }

    fn send(&self, event: gst::Event) -> Result<(), AudioInputError> {
        let name = event.type_().name();
        self.feed
            .push_event(event)
            .then_some(())
            .ok_or_else(|| AudioInputError::Refused(name.to_string()))
    }

    /// New input caps (a renegotiation).
    pub fn set_caps(&self, caps: &gst::Caps) -> Result<(), AudioInputError> {
        self.send(gst::event::Caps::new(caps))
    }

    /// A new segment (after a seek).
    pub fn set_segment(&self, segment: &gst::Segment) -> Result<(), AudioInputError> {
        self.send(gst::event::Segment::new(segment))
    }

    /// What the converted audio is: known once the chain has negotiated.
    pub fn output_caps(&mut self) -> Option<gst::Caps> {
        self.collect();
        self.caps.clone()
    }

    /// Takes what the chain delivered so far into `caps` and `buffers`.
    fn collect(&mut self) {
        for out in self.out.try_iter() {
            match out {
                Out::Buffer(b) => self.buffers.push(b),
                Out::Caps(c) => self.caps = Some(c),
            }
        }
    }

    /// The converted audio not yet taken.
    fn take(&mut self) -> Vec<gst::Buffer> {
        self.collect();
        std::mem::take(&mut self.buffers)
    }

    /// Converts `buf`; returns what came out (possibly nothing yet).
    pub fn push(&mut self, buf: gst::Buffer) -> Result<Vec<gst::Buffer>, gst::FlowError> {
        self.feed.push(buf)?;
        Ok(self.take())
    }

    /// End of stream: the samples still in the resampler's filter (once).
    pub fn drain(&mut self) -> Vec<gst::Buffer> {
        if !std::mem::replace(&mut self.drained, true) {
            let _ = self.feed.push_event(gst::event::Eos::new());
        }
        self.take()
    }

    /// A flushing seek: forget what is in the filter.
    pub fn flush(&mut self) {
        let _ = self.feed.push_event(gst::event::FlushStart::new());
        let _ = self.feed.push_event(gst::event::FlushStop::new(true));
        drop(self.take());
        self.drained = false;
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        for e in &self.elements {
            let _ = e.set_state(gst::State::Null);
        }
        let _ = self.feed.set_active(false);
        let _ = self.collect.set_active(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        s.parse().unwrap()
    }

    #[test]
    fn analysable_caps_are_16_khz_f32_or_s16_interleaved() {
        gst::init().unwrap();
        let ok = "audio/x-raw,format=S16LE,rate=16000,channels=2,layout=interleaved";
        assert!(is_analysable(&caps(ok)));
        let ok = "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved";
        assert!(is_analysable(&caps(ok)));
        for no in [
            "audio/x-raw,format=F32LE,rate=44100,channels=2,layout=interleaved",
            "audio/x-raw,format=S32LE,rate=16000,channels=1,layout=interleaved",
            "audio/x-raw,format=F32LE,rate=16000,channels=2,layout=non-interleaved",
        ] {
            assert!(!is_analysable(&caps(no)), "{no}");
        }
    }

    #[test]
    fn converts_44100_stereo_to_16_khz() {
        gst::init().unwrap();
        let input = caps("audio/x-raw,format=S16LE,rate=44100,channels=2,layout=interleaved");
        let segment = gst::FormattedSegment::<gst::ClockTime>::new();
        let mut r = Resampler::new(&input, segment.upcast_ref()).unwrap();
        let mut frames = 0;
        for k in 0..10u64 {
            // 100 ms of a 440 Hz tone.
            let data: Vec<u8> = (0..4410)
                .flat_map(|i| {
                    let t = (k * 4410 + i) as f64 / 44100.0;
                    let v = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
                    [v.to_le_bytes(), v.to_le_bytes()].concat()
                })
                .collect();
            let mut buf = gst::Buffer::from_mut_slice(data);
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * k));
            b.set_duration(gst::ClockTime::from_mseconds(100));
            for out in r.push(buf).unwrap() {
                frames += out.size() / (2 * 2);
            }
        }
        for out in r.drain() {
            frames += out.size() / (2 * 2);
        }
        let out = r.output_caps().expect("negotiated");
        let s = out.structure(0).unwrap();
        assert_eq!(s.get::<i32>("rate").unwrap(), 16000);
        assert_eq!(s.get::<&str>("format").unwrap(), "S16LE");
        assert_eq!(frames, 16000, "one second of audio in, one second out");
    }
}
