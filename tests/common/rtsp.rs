//! An RTSP camera served in the test process on 127.0.0.1: H.264 + AAC, live, at
//! `/cam` (gstreamer-rtsp-server with its own main loop on a thread), and at
//! `/cam-mute` the same camera whose audio track stops sending after 4 s while the
//! video goes on (a microphone unplugged).

use std::sync::mpsc;

use gst::glib;
use gst_rtsp_server::prelude::*;

/// An RTSP server running its own main loop on a thread.
pub struct Server {
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `/cam` on 127.0.0.1:`port` until stopped.
    pub fn start(port: u16) -> Server {
        super::init();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ctx = glib::MainContext::new();
            let _guard = ctx.acquire().expect("own the context");
            ctx.with_thread_default(|| serve(&ctx, port, &tx))
                .expect("thread-default context");
        });
        Server {
            main_loop: rx.recv().unwrap(),
            thread: Some(thread),
        }
    }
}

/// The server: one H.264 + AAC live mount at /cam, until the main loop quits.
fn serve(ctx: &glib::MainContext, port: u16, tx: &mpsc::Sender<glib::MainLoop>) {
    let main_loop = glib::MainLoop::new(Some(ctx), false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let launch = "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 \
                 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 \
                 audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=1 \
                 ! avenc_aac ! valve name=mute ! rtpmp4gpay name=pay1 pt=97 )";
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(launch);
    factory.set_shared(true);
    let mute = gst_rtsp_server::RTSPMediaFactory::new();
    mute.set_launch(launch);
    mute.connect_media_configure(|_, media| {
        // The audio stops after 4 s: no packets, no BYE.
        let valve = media
            .element()
            .downcast::<gst::Bin>()
            .ok()
            .and_then(|b| b.by_name("mute"));
        if let Some(valve) = valve {
            let weak = valve.downgrade();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(4));
                if let Some(v) = weak.upgrade() {
                    v.set_property("drop", true);
                }
            });
        }
    });
    let mounts = server.mount_points().expect("mount points");
    mounts.add_factory("/cam", factory);
    mounts.add_factory("/cam-mute", mute);
    let source = server.attach(Some(ctx)).expect("attach the RTSP server");
    tx.send(main_loop.clone()).unwrap();
    main_loop.run();
    // Stop: no new connections, drop every client and its media.
    // (SourceId::remove only looks in the default context.)
    if let Some(src) = ctx.find_source_by_id(&source) {
        src.destroy();
    }
    server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
    while ctx.iteration(false) {}
}

impl Server {
    /// Stops serving and drops every client.
    pub fn stop(mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}
