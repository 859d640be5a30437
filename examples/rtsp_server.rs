//! A small RTSP server for trying the live pipelines without a camera:
//!
//!   cargo run --release --example rtsp_server [-- PORT [FILE]]
//!
//! serves rtsp://127.0.0.1:PORT/cam (default port 8554): H.264 video and AAC audio —
//! a live test pattern and tone, or FILE (decoded, looped is not attempted) — and
//! rtsp://127.0.0.1:PORT/robot with H.264 video only, like many robot cameras.

use gst_rtsp_server::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    let args: Vec<String> = std::env::args().collect();
    let port = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("8554")
        .to_string();
    let video = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! rtph264pay name=pay0 pt=96";
    let (cam, robot) = match args.get(2) {
        Some(file) => (
            format!(
                "( filesrc location={file} ! decodebin name=d d. ! queue ! videoconvert ! {video} \
                 d. ! queue ! audioconvert ! audioresample ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )"
            ),
            format!("( filesrc location={file} ! decodebin ! queue ! videoconvert ! {video} )"),
        ),
        None => (
            format!(
                "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! {video} \
                 audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=1 \
                 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )"
            ),
            format!(
                "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! {video} )"
            ),
        ),
    };
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_service(&port);
    let mounts = server.mount_points().ok_or("no mount points")?;
    for (path, launch) in [("/cam", cam), ("/robot", robot)] {
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&launch);
        factory.set_shared(true);
        mounts.add_factory(path, factory);
    }
    let _source = server.attach(None)?;
    println!(
        "serving rtsp://127.0.0.1:{port}/cam (video + audio) and rtsp://127.0.0.1:{port}/robot (video)"
    );
    gst::glib::MainLoop::new(None, false).run();
    Ok(())
}
