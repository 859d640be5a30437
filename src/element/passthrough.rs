//! The `audio_src` pad: the audio of the `audio` pad leaves unchanged (its caps,
//! timestamps and events), released in step with the video the element sends on — up
//! to the running time of the last video buffer out — so that `e.src` and
//! `e.audio_src` can feed one muxer through ordinary queues. And a watchdog that says
//! what is wrong when the element can release nothing because one input starves (the
//! hand-made bypass: a `tee` sending the audio around the element through a queue
//! that fills up while the element holds the video).

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::CAT;
use super::imp::{EmotionSense, lock};
use super::inputs::Input;

/// Audio on its way out of `audio_src`, in the order it came in.
pub enum Passed {
    /// A buffer and its running time.
    Buffer(Option<u64>, gst::Buffer),
    /// A serialized event (stream-start, caps, segment, tags, EOS ...).
    Event(gst::Event),
}

/// How long the element may hold video without any progress, its inputs starving,
/// before it says so.
pub const STARVED_FOR: Duration = Duration::from_secs(10);

/// Whether the pipeline `obj` is in is playing or on its way to it (a pipeline stuck
/// prerolling is PAUSED on its way to PLAYING; one the user paused is not).
fn meant_to_play(obj: &impl IsA<gst::Element>) -> bool {
    let mut top: gst::Element = obj.clone().upcast();
    while let Some(parent) = top.parent().and_then(|p| p.downcast::<gst::Element>().ok()) {
        top = parent;
    }
    let (_, current, pending) = top.state(gst::ClockTime::ZERO);
    current == gst::State::Playing || pending == gst::State::Playing
}

impl EmotionSense {
    /// Makes the `audio_src` pad that comes with the `audio` sink pad.
    pub(super) fn make_audio_src(&self) -> gst::Pad {
        let templ = self
            .obj()
            .pad_template("audio_src")
            .expect("audio_src template");
        let weak = self.obj().downgrade();
        let query_weak = weak.clone();
        gst::Pad::builder_from_template(&templ)
            .name("audio_src")
            .query_function(move |_, _, query| {
                // Everything about this audio is upstream's to answer.
                let Some(obj) = query_weak.upgrade() else {
                    return false;
                };
                let sink = obj.imp().input_pad(Input::Audio);
                sink.is_some_and(|p| p.peer_query(query))
            })
            .event_function(move |_, _, event| {
                let Some(obj) = weak.upgrade() else {
                    return false;
                };
                if event.type_() == gst::EventType::Seek {
                    return obj.send_event(event);
                }
                let sink = obj.imp().input_pad(Input::Audio);
                sink.is_some_and(|p| p.push_event(event))
            })
            .build()
    }

    /// Adds `pad` (audio_src) to the element, active when the element is.
    pub(super) fn add_audio_src(&self, pad: &gst::Pad) {
        if self.obj().current_state() > gst::State::Ready {
            let _ = pad.set_active(true);
        }
        if let Err(e) = self.obj().add_pad(pad) {
            gst::warning!(CAT, imp = self, "cannot add audio_src: {e}");
        }
    }

    /// Handles an event of the `audio` sink pad for `audio_src`: flushes go out at
    /// once; serialized events wait in line with the buffers.
    pub(super) fn pass_audio_event(&self, event: &gst::Event) {
        let Some(src) = self.audio_src() else {
            return;
        };
        match event.type_() {
            gst::EventType::FlushStart => {
                let _ = src.push_event(event.clone());
            }
            gst::EventType::FlushStop => {
                self.with_state(|state| {
                    state.audio_out.clear();
                    state.audio_horizon = None;
                });
                let _ = src.push_event(event.clone());
            }
            _ if event.is_serialized() => {
                self.with_state(|state| state.audio_out.push_back(Passed::Event(event.clone())));
            }
            _ => {}
        }
    }

    /// Sends on `audio_src` the audio up to the video sent so far (all of it with
    /// `all`, at the end; live, also what the clock has passed: `position`).
    pub(super) fn release_audio(
        &self,
        all: bool,
        position: Option<u64>,
    ) -> Result<(), gst::FlowError> {
        let Some(src) = self.audio_src() else {
            return Ok(());
        };
        let has_video = self.input_pad(Input::Video).is_some();
        let items: Vec<Passed> = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Ok(());
            };
            let horizon = if all || !has_video {
                u64::MAX
            } else {
                state.audio_horizon.unwrap_or(0).max(position.unwrap_or(0))
            };
            let ready = state
                .audio_out
                .iter()
                .position(|p| matches!(p, Passed::Buffer(Some(t), _) if *t >= horizon))
                .unwrap_or(state.audio_out.len());
            state.audio_out.drain(..ready).collect()
        };
        for item in items {
            match item {
                Passed::Event(e) => {
                    let _ = src.push_event(e);
                }
                // Not linked, or its downstream is done: the analysis goes on.
                Passed::Buffer(_, buf) => match src.push(buf) {
                    Ok(_) | Err(gst::FlowError::NotLinked | gst::FlowError::Eos) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// The video left up to running time `end`: audio before it may follow.
    pub(super) fn video_sent_until(&self, end: u64) {
        self.with_state(|state| {
            state.audio_horizon = Some(state.audio_horizon.map_or(end, |h| h.max(end)));
        });
    }

    /// Caps the `audio` pad offers: any raw audio, and with `audio_src` linked what
    /// its downstream takes (the audio passes through).
    pub(super) fn audio_sink_caps(&self, pad: &gst_base::AggregatorPad) -> Option<gst::Caps> {
        let src = self.audio_src()?;
        if !src.is_linked() {
            return None;
        }
        let templ = pad.pad_template_caps();
        Some(src.peer_query_caps(Some(&templ)))
    }

    /// Starts the thread that warns when the element holds video and nothing moves
    /// because an input starves (see the module docs); it ends with the element's
    /// streaming (stop) or the element.
    pub(super) fn start_watchdog(&self) {
        let weak = self.obj().downgrade();
        let generation = self.shared.starts.load(std::sync::atomic::Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("emotionsense-watchdog".into())
            .spawn(move || {
                let mut last = (u64::MAX, Instant::now());
                let mut warned = false;
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let Some(obj) = weak.upgrade() else { return };
                    let imp = obj.imp();
                    let shared = &imp.shared;
                    if shared.starts.load(std::sync::atomic::Ordering::SeqCst) != generation {
                        return;
                    }
                    let progress = shared.progress();
                    let held = imp.with_state(|s| s.held.len()).unwrap_or(0);
                    let busy = shared.busy.load(std::sync::atomic::Ordering::SeqCst);
                    if progress != last.0 || held == 0 || busy || !meant_to_play(&obj) {
                        last = (progress, Instant::now());
                        warned = false;
                        continue;
                    }
                    if warned || last.1.elapsed() < STARVED_FOR {
                        continue;
                    }
                    warned = true;
                    imp.warn_starved(held);
                }
            });
        if let Err(e) = spawned {
            gst::warning!(CAT, imp = self, "cannot start the watchdog: {e}");
        }
    }

    /// Posts the WARNING for held video waiting on a starving input.
    fn warn_starved(&self, held: usize) {
        let starving: Vec<&str> = [Input::Video, Input::Audio]
            .into_iter()
            .filter(|i| {
                self.input_pad(*i)
                    .is_some_and(|p| !p.has_buffer() && !p.is_eos())
            })
            .map(Input::name)
            .collect();
        let input = starving.first().copied().unwrap_or("audio");
        let advice = if input == "audio" {
            "If the same audio is also sent around the element (a tee to a muxer), the \
             queue on that branch is full while the element holds the video: take the \
             audio from the element's audio_src pad instead (e.audio_src ! queue ! ... ! \
             mux.), or give that queue max-size-time=0 max-size-bytes=0 max-size-buffers=0"
        } else {
            "Something upstream of the video pad is blocked: is a queue before it full?"
        };
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "emotionsense has held {held} video buffer(s) for {} s waiting for its {input} \
                 input, which delivers nothing. {advice}",
                STARVED_FOR.as_secs()
            )
        );
    }
}
