//! Frames converted only when a window picks them.
//!
//! A live camera delivers 30 frames a second and a window shows the model six of
//! them, so the windows keep each frame as it came (a reference to the input buffer)
//! and convert it to the sampling size on first use: on the inference worker, for
//! the frames a window chose, instead of on the streaming thread for every frame.

use std::sync::{Arc, Mutex, OnceLock};

use super::frame::RgbImage;

/// Makes the frame's picture at the sampling size (runs at most once).
type Convert = Box<dyn FnOnce() -> RgbImage + Send>;

/// A video frame as the windows hold it: either already an [`RgbImage`] or the
/// means to make it, run the first time [`image`](Self::image) is asked for.
pub struct LazyFrame {
    image: OnceLock<Arc<RgbImage>>,
    convert: Mutex<Option<Convert>>,
    size: (usize, usize),
}

impl LazyFrame {
    /// A frame that is already a picture.
    pub fn ready(image: RgbImage) -> Self {
        let size = (image.width, image.height);
        Self {
            image: OnceLock::from(Arc::new(image)),
            convert: Mutex::new(None),
            size,
        }
    }

    /// A frame whose `width`×`height` picture `convert` makes when first needed
    /// (it must make exactly that size).
    pub fn deferred(
        width: usize,
        height: usize,
        convert: impl FnOnce() -> RgbImage + Send + 'static,
    ) -> Self {
        Self {
            image: OnceLock::new(),
            convert: Mutex::new(Some(Box::new(convert))),
            size: (width, height),
        }
    }

    /// The picture, converted now if this is the first call (callers asking at the
    /// same time wait for the one conversion). What it was made from is released.
    pub fn image(&self) -> Arc<RgbImage> {
        self.image
            .get_or_init(|| {
                let convert = self
                    .convert
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let (w, h) = self.size;
                Arc::new(convert.map_or_else(|| RgbImage::black(w, h), |f| f()))
            })
            .clone()
    }

    /// Whether the picture has been made.
    pub fn is_converted(&self) -> bool {
        self.image.get().is_some()
    }

    /// Width and height of the picture.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }
}

impl From<RgbImage> for LazyFrame {
    fn from(image: RgbImage) -> Self {
        Self::ready(image)
    }
}

impl std::fmt::Debug for LazyFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyFrame")
            .field("size", &self.size)
            .field("converted", &self.is_converted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn converts_once_on_first_use_and_only_then() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let frame = Arc::new(LazyFrame::deferred(2, 1, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            RgbImage {
                width: 2,
                height: 1,
                data: vec![9; 6],
                faces: None,
            }
        }));
        assert!(!frame.is_converted());
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing converted before use"
        );
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let f = frame.clone();
                std::thread::spawn(move || f.image().data[0])
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 9);
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one conversion for all callers"
        );
        assert!(frame.is_converted());
        assert_eq!(frame.size(), (2, 1));
    }

    #[test]
    fn a_ready_frame_is_its_picture() {
        let frame = LazyFrame::from(RgbImage::black(3, 2));
        assert!(frame.is_converted());
        assert_eq!(*frame.image(), RgbImage::black(3, 2));
    }
}
