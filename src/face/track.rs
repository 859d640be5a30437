//! Faces across the frames of one window: detections on some frames, boxes held on
//! the frames in between, and boxes linked into tracks (one per person) by overlap.

use super::FaceBox;

/// One person's face through a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// The box on each frame it was seen (frame index, box).
    pub boxes: Vec<(usize, FaceBox)>,
}

impl Track {
    /// The latest box.
    pub fn last(&self) -> &FaceBox {
        &self.boxes.last().expect("a track has at least one box").1
    }

    /// Mean box area.
    pub fn mean_area(&self) -> f32 {
        self.boxes.iter().map(|(_, b)| b.area()).sum::<f32>() / self.boxes.len() as f32
    }

    /// Frames seen × mean area: the dominant face has the largest value.
    pub fn prominence(&self) -> f32 {
        self.boxes.len() as f32 * self.mean_area()
    }
}

/// Links per-frame boxes into tracks: a box joins the track whose latest box overlaps
/// it most (IoU ≥ `min_iou`), each track taking at most one box per frame; otherwise
/// it starts a new track. Returns the tracks by falling prominence.
pub fn link(frames: &[Vec<FaceBox>], min_iou: f32) -> Vec<Track> {
    let mut tracks: Vec<Track> = Vec::new();
    for (f, boxes) in frames.iter().enumerate() {
        let mut taken = vec![false; tracks.len()];
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| boxes[b].area().total_cmp(&boxes[a].area()));
        for i in order {
            let b = &boxes[i];
            let best = tracks
                .iter()
                .enumerate()
                .filter(|(t, _)| !taken[*t])
                .map(|(t, tr)| (t, tr.last().iou(b)))
                .filter(|(_, iou)| *iou >= min_iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((t, _)) => {
                    taken[t] = true;
                    tracks[t].boxes.push((f, b.clone()));
                }
                None => {
                    tracks.push(Track {
                        boxes: vec![(f, b.clone())],
                    });
                    taken.push(true);
                }
            }
        }
    }
    tracks.sort_by(|a, b| b.prominence().total_cmp(&a.prominence()));
    tracks
}

/// Windows a face may be missing before its id is forgotten.
const ID_MEMORY: u32 = 2;

/// Gives the faces of successive windows of one stream stable ids: a face takes the
/// id of the face of a recent window whose mean box overlaps it most (IoU ≥ 0.3),
/// otherwise a new one. Boxes are `[x, y, width, height]` frame fractions.
#[derive(Clone, Debug, Default)]
pub struct TrackIds {
    next: u64,
    /// (id, latest box, windows since seen).
    known: Vec<(u64, [f64; 4], u32)>,
}

impl TrackIds {
    /// Ids for one window's faces, in order.
    pub fn assign(&mut self, rects: &[[f64; 4]]) -> Vec<u64> {
        let iou = |a: &[f64; 4], b: &[f64; 4]| {
            let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
            let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            let union = a[2] * a[3] + b[2] * b[3] - inter;
            if union > 0.0 { inter / union } else { 0.0 }
        };
        // Best pairs first, each known face and each new face used once.
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (i, r) in rects.iter().enumerate() {
            for (k, (_, b, _)) in self.known.iter().enumerate() {
                let v = iou(r, b);
                if v >= 0.3 {
                    pairs.push((v, i, k));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ids: Vec<Option<u64>> = vec![None; rects.len()];
        let mut used = vec![false; self.known.len()];
        for (_, i, k) in pairs {
            if ids[i].is_none() && !used[k] {
                ids[i] = Some(self.known[k].0);
                used[k] = true;
                self.known[k].1 = rects[i];
                self.known[k].2 = 0;
            }
        }
        for (k, u) in used.iter().enumerate() {
            if !u {
                self.known[k].2 += 1;
            }
        }
        self.known.retain(|(_, _, age)| *age <= ID_MEMORY);
        ids.iter()
            .zip(rects)
            .map(|(id, r)| {
                id.unwrap_or_else(|| {
                    let id = self.next;
                    self.next += 1;
                    self.known.push((id, *r, 0));
                    id
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, s: f32) -> FaceBox {
        FaceBox {
            x1: x,
            y1: y,
            x2: x + s,
            y2: y + s,
            score: 1.0,
            landmarks: None,
        }
    }

    #[test]
    fn two_people_two_tracks_dominant_first() {
        let frames = vec![
            vec![b(0.0, 0.0, 50.0), b(200.0, 0.0, 100.0)],
            vec![b(205.0, 2.0, 100.0), b(3.0, 1.0, 50.0)],
            vec![b(2.0, 2.0, 50.0)],
        ];
        let tracks = link(&frames, 0.3);
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].boxes.len(), 2);
        assert_eq!(tracks[0].boxes[0].1.x1, 200.0);
        assert_eq!(tracks[1].boxes.len(), 3);
    }

    #[test]
    fn ids_follow_faces_across_windows() {
        let mut ids = TrackIds::default();
        let left = [0.1, 0.1, 0.2, 0.3];
        let right = [0.6, 0.1, 0.2, 0.3];
        assert_eq!(ids.assign(&[left, right]), vec![0, 1]);
        // Order changes, boxes move a little: the ids follow the faces.
        assert_eq!(
            ids.assign(&[[0.62, 0.1, 0.2, 0.3], [0.11, 0.1, 0.2, 0.3]]),
            vec![1, 0]
        );
        // The left face is away for one window and comes back with its id.
        assert_eq!(ids.assign(&[right]), vec![1]);
        assert_eq!(ids.assign(&[left, right]), vec![0, 1]);
        // A newcomer gets a new id.
        assert_eq!(ids.assign(&[[0.4, 0.6, 0.1, 0.1]]), vec![2]);
    }
}
