//! What `-o`, `--json` and `--archive` may name, driven through the real binary on the
//! README's no-model example (English articles, extractive summaries, offline): special files
//! are written through, never replaced (stand-ins made in the test's own folder: a FIFO, a
//! character device made with mknod as root, a symlink to this process's stdout); an output
//! that is an input or lies inside an input folder is refused before any work; the lock is
//! taken on the canonical path; a folder or a missing folder is refused up front.

use std::path::Path;
use std::process::Output;

use crate::support::offline_run::{english_example as example_input, run, stderr};

fn os(path: &Path) -> &std::ffi::OsStr {
    path.as_os_str()
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A refused run did no work: it wrote no stage-cache entry.
fn assert_no_work(dir: &Path, output: &Output) {
    assert!(
        !dir.join("stage-cache").join("v1").exists(),
        "the run did work before refusing: {}",
        stderr(output)
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_output_is_written_through_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let fifo = dir.path().join("pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path in the test's own folder.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (send, received) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || send.send(std::fs::read_to_string(fifo).unwrap()).unwrap());
    }
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&fifo)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );
    let brief = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the FIFO's reader got the brief");
    assert!(brief.starts_with("# News brief"), "{brief}");
    let names = names_in(dir.path());
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".lock") && !n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_character_device_output_is_written_through_with_no_lock_beside_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let null = dir.path().join("null");
    let c_path = std::ffi::CString::new(null.to_str().unwrap()).unwrap();
    // SAFETY: mknod of /dev/null's numbers (1, 3) in the test's own folder.
    if unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
        eprintln!(
            "skipped: mknod needs root ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    let output = run(
        dir.path(),
        &input,
        &["-o".as_ref(), os(&null), "--json".as_ref(), os(&null)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "the device was replaced by a file");
    let names = names_in(dir.path());
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".lock") && !n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_symlink_to_this_process_s_stdout_reaches_stdout_and_stays_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    // What /dev/stdout is on Linux, made here so the real /dev is never at risk.
    let stdout = dir.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout).unwrap();
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&stdout)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("# News brief"),
        "nothing reached stdout"
    );
    assert!(
        std::fs::symlink_metadata(&stdout)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced"
    );
}

#[test]
fn an_output_that_is_an_input_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let article = input.join("channel-post.txt");
    let before = std::fs::read(&article).unwrap();
    let output = run(dir.path(), &article, &["-o".as_ref(), os(&article)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: --output {} is also an input; the brief would overwrite the article; choose another --output",
            std::fs::canonicalize(&article).unwrap().display()
        )
    );
    assert_eq!(
        std::fs::read(&article).unwrap(),
        before,
        "the article is untouched"
    );
    assert_no_work(dir.path(), &output);
}

#[test]
fn outputs_inside_the_input_folder_are_refused_unless_in_a_hidden_folder() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let canonical = std::fs::canonicalize(&input).unwrap();
    for (flag, path) in [
        ("--json", input.join("brief.json")),
        ("--archive", input.join("briefs")),
    ] {
        let output = run(dir.path(), &input, &[flag.as_ref(), os(&path)]);
        assert_eq!(output.status.code(), Some(2), "{flag}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!(
                "{flag} {}",
                canonical.join(path.file_name().unwrap()).display()
            )) && stderr(&output).contains("is inside the input folder"),
            "{}",
            stderr(&output)
        );
        assert_no_work(dir.path(), &output);
    }
    // An archive in a hidden folder of the input is not read back, so it is allowed, and two
    // nights in a row read only the articles.
    let hidden = input.join(".briefs");
    for _ in 0..2 {
        let output = run(dir.path(), &input, &["--archive".as_ref(), os(&hidden)]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert!(hidden.join("latest.md").exists());
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let same = dir.path().join("brief.md");
    let output = run(
        dir.path(),
        &input,
        &["-o".as_ref(), os(&same), "--json".as_ref(), os(&same)],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: --output and --json both name {}; give each output its own file",
            std::fs::canonicalize(dir.path())
                .unwrap()
                .join("brief.md")
                .display()
        )
    );
    assert!(!same.exists());
}

#[cfg(unix)]
#[test]
fn the_lock_is_taken_on_the_file_a_symlink_names_and_the_symlink_survives() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let real = dir.path().join("real.md");
    let link = dir.path().join("link.md");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // Another run holds the real file's lock: the run through the symlink must see it.
    let held = polybrief::lock::OutputLock::acquire(
        &std::fs::canonicalize(dir.path()).unwrap().join("real.md"),
    )
    .unwrap();
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&link)]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    drop(held);
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&link)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a file"
    );
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .starts_with("# News brief"));
}

#[test]
fn an_output_folder_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let folder = dir.path().join("out");
    std::fs::create_dir(&folder).unwrap();
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&folder)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: --output {} is a folder; name a file inside it, such as {}",
            folder.display(),
            folder.join("brief.md").display()
        )
    );
    assert_no_work(dir.path(), &output);
}

#[test]
fn an_output_in_a_missing_folder_is_refused_naming_the_mkdir_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = example_input(dir.path());
    let brief = dir.path().join("no/such/dir/brief.md");
    let output = run(dir.path(), &input, &["-o".as_ref(), os(&brief)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let folder = dir.path().join("no/such/dir");
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: --output {}: the folder {} does not exist; create it first (`mkdir -p {}`) or choose another --output",
            brief.display(),
            folder.display(),
            folder.display()
        )
    );
    assert!(!dir.path().join("no").exists(), "no folder was created");
    assert_no_work(dir.path(), &output);
}
