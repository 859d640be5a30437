//! The warm-up (a blank window through the model at load) runs once per set of bundle
//! files and device: a later load of the same files skips it, a changed file brings it
//! back, and `always_warm_up` (`gst-emotion bundle check`) forces it. (Own test
//! binary: the warm-up count is process-wide.)

mod common;

use common::*;
use gst_emotion::infer::{DeviceChoice, Model, ModelOptions};

#[test]
fn a_bundle_that_passed_its_warm_up_is_not_warmed_up_again() {
    init();
    // A copy of the default bundle in a new folder (links to its large files), so
    // these files were never warmed up before.
    let dir = fixture_dir().join(format!("warm-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(default_bundle()).unwrap() {
        let entry = entry.unwrap();
        let to = dir.join(entry.file_name());
        if entry.file_name() == "bundle.toml" {
            std::fs::copy(entry.path(), &to).unwrap();
        } else {
            std::fs::hard_link(entry.path(), &to)
                .or_else(|_| std::fs::copy(entry.path(), &to).map(|_| ()))
                .unwrap();
        }
    }
    let options = ModelOptions {
        device: DeviceChoice::Cpu,
        ..ModelOptions::default()
    };
    let load = |options: ModelOptions| {
        let before = Model::warm_ups();
        let model = Model::shared(&dir, options).expect("the default bundle loads");
        drop(model);
        Model::warm_ups() - before
    };
    assert_eq!(load(options), 1, "new files: warmed up");
    assert_eq!(load(options), 0, "the same files passed already");
    let forced = ModelOptions {
        always_warm_up: true,
        ..options
    };
    assert_eq!(load(forced), 1, "bundle check always warms up");
    // A changed manifest (even only its time) is a new set of files.
    let manifest = dir.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(load(options), 1, "changed files: warmed up again");
    std::fs::remove_dir_all(&dir).unwrap();
}
