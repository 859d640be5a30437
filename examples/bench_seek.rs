//! Preroll and scrubbing with and without `emotionsense` (run by scripts/bench-seek):
//! a clip decoded into a synchronised sink, as a player does; the time to preroll to
//! PAUSED, then ten flushing seeks issued 0.2 s apart (scrubbing: 2 s), each waited
//! for until the pipeline has prerolled again — each seek's preroll time and the time
//! until the tenth has prerolled.
//!
//! usage: bench_seek CLIP [BUNDLE=default]

use std::time::{Duration, Instant};

use gst::prelude::*;

/// Builds file → decodebin → (video) queue → videoconvert → [emotionsense] → sink and
/// (audio) queue → audioconvert → audioresample → [emotionsense.audio | fakesink].
fn pipeline(clip: &str, bundle: Option<&str>) -> anyhow::Result<gst::Pipeline> {
    let p = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", clip)
        .build()?;
    let decode = gst::ElementFactory::make("decodebin").build()?;
    let make = |f: &str| gst::ElementFactory::make(f).build();
    let (vq, vconv) = (make("queue")?, make("videoconvert")?);
    let (aq, aconv, ares) = (
        make("queue")?,
        make("audioconvert")?,
        make("audioresample")?,
    );
    let vsink = gst::ElementFactory::make("fakesink")
        .property("sync", true)
        .build()?;
    p.add_many([&src, &decode, &vq, &vconv, &aq, &aconv, &ares, &vsink])?;
    src.link(&decode)?;
    gst::Element::link_many([&vq, &vconv])?;
    gst::Element::link_many([&aq, &aconv, &ares])?;
    match bundle {
        Some(b) => {
            let sense = gst::ElementFactory::make("emotionsense")
                .property("bundle", b)
                .build()?;
            p.add(&sense)?;
            vconv.link_pads(None, &sense, Some("video"))?;
            ares.link_pads(None, &sense, Some("audio"))?;
            sense.link(&vsink)?;
        }
        None => {
            let asink = gst::ElementFactory::make("fakesink")
                .property("sync", true)
                .build()?;
            p.add(&asink)?;
            vconv.link(&vsink)?;
            ares.link(&asink)?;
        }
    }
    let (vq, aq) = (vq.downgrade(), aq.downgrade());
    decode.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let name = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let target = if name.starts_with("video/") {
            vq.upgrade()
        } else if name.starts_with("audio/") {
            aq.upgrade()
        } else {
            None
        };
        if let Some(sink) = target.and_then(|q| q.static_pad("sink")) {
            let _ = pad.link(&sink);
        }
    });
    Ok(p)
}

fn wait_preroll(p: &gst::Pipeline) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let (r, _, _) = p.state(gst::ClockTime::from_seconds(60));
    r.map_err(|_| anyhow::anyhow!("no preroll within 60 s"))?;
    Ok(t.elapsed())
}

struct Run {
    preroll: Duration,
    seeks: Vec<Duration>,
    scrub: Duration,
}

fn run(clip: &str, bundle: Option<&str>) -> anyhow::Result<Run> {
    let p = pipeline(clip, bundle)?;
    p.set_state(gst::State::Paused)?;
    let preroll = wait_preroll(&p)?;
    let duration = p
        .query_duration::<gst::ClockTime>()
        .ok_or_else(|| anyhow::anyhow!("the clip has no duration"))?;
    let start = Instant::now();
    let mut seeks = Vec::new();
    for k in 0..10u64 {
        // Issued 0.2 s apart (or as soon as the previous one prerolled, if later).
        let slot = Duration::from_millis(200 * k);
        if let Some(rest) = slot.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
        }
        let to = duration.mul_div_floor(2 * k + 1, 20).unwrap_or_default();
        let t = Instant::now();
        p.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, to)?;
        wait_preroll(&p)?;
        seeks.push(t.elapsed());
    }
    let scrub = start.elapsed();
    p.set_state(gst::State::Null)?;
    Ok(Run {
        preroll,
        seeks,
        scrub,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!args.is_empty(), "usage: bench_seek CLIP [BUNDLE=default]");
    let clip = &args[0];
    let bundle = args.get(1).map_or("default", String::as_str);
    gst::init()?;
    gst_emotion::register_static()?;
    println!("{clip}: preroll to PAUSED, then 10 flushing accurate seeks 0.2 s apart");
    println!(
        "{:28} {:>10} {:>14} {:>13} {:>16}",
        "", "preroll s", "seek mean s", "seek max s", "10 seeks done s"
    );
    for (name, b) in [
        ("without emotionsense", None),
        ("with emotionsense", Some(bundle)),
    ] {
        let r = run(clip, b)?;
        let mean = r.seeks.iter().sum::<Duration>().as_secs_f64() / r.seeks.len() as f64;
        let max = r.seeks.iter().max().copied().unwrap_or_default();
        println!(
            "{name:28} {:10.3} {:14.3} {:13.3} {:16.3}",
            r.preroll.as_secs_f64(),
            mean,
            max.as_secs_f64(),
            r.scrub.as_secs_f64()
        );
    }
    Ok(())
}
