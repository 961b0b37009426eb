//! Hostile archives, built entry by entry, against [`super::unpack_with`].

#[path = "archive_craft.rs"]
mod craft;

use super::*;
use craft::{craft, zeros, Raw};

/// A fresh folder of its own for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("modelstage-archive-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Unpacks a crafted archive into `<scratch>/a/b/dest` and returns the error, after checking
/// that nothing landed beside the target folder and that it was removed again.
fn refused(tag: &str, entries: &[Raw], needle: &str) {
    let scratch = Scratch::new(tag);
    let tar_gz = scratch.0.join("evil.tar.gz");
    craft(&tar_gz, entries);
    fs::create_dir_all(scratch.0.join("a/b")).unwrap();
    let dest = scratch.0.join("a/b/dest");
    let err = format!(
        "{:#}",
        unpack_with(&tar_gz, &dest, &Limits::default()).unwrap_err()
    );
    assert!(err.contains(needle), "{err}");
    assert!(
        !dest.exists(),
        "the folder unpacking created is removed on an error"
    );
    assert_eq!(fs::read_dir(scratch.0.join("a/b")).unwrap().count(), 0);
    assert!(!scratch.0.join("a/evil.txt").exists() && !scratch.0.join("evil.txt").exists());
}

fn unpacked(tag: &str, entries: &[Raw]) -> (Scratch, PathBuf) {
    let scratch = Scratch::new(tag);
    let tar_gz = scratch.0.join("ok.tar.gz");
    craft(&tar_gz, entries);
    let dest = scratch.0.join("dest");
    unpack_with(&tar_gz, &dest, &Limits::default()).unwrap();
    (scratch, dest)
}

#[test]
fn refuses_parent_dir_and_absolute_names() {
    refused(
        "dotdot",
        &[
            ("ok.txt", EntryType::Regular, "", b"fine"),
            ("../evil.txt", EntryType::Regular, "", b"x"),
        ],
        "refusing entry '../evil.txt': it contains '..'",
    );
    refused(
        "dotdot-deep",
        &[("sub/../../../evil.txt", EntryType::Regular, "", b"x")],
        "refusing entry 'sub/../../../evil.txt'",
    );
    refused(
        "abs",
        &[("/tmp/evil.txt", EntryType::Regular, "", b"x")],
        "it is an absolute path",
    );
}

#[test]
fn refuses_links_that_leave_the_folder() {
    refused(
        "symlink-abs",
        &[("etc", EntryType::Symlink, "/etc", b"")],
        "refusing entry 'etc': a symbolic link to the absolute path '/etc'",
    );
    refused(
        "symlink-up",
        &[("sub/up", EntryType::Symlink, "../../evil.txt", b"")],
        "refusing entry 'sub/up': a symbolic link to '../../evil.txt', which leads outside",
    );
    // Leaving and coming back is leaving: the way back depends on what is outside.
    refused(
        "symlink-out-and-back",
        &[("x", EntryType::Symlink, "../dest/y", b"")],
        "which leads outside",
    );
}

#[test]
fn refuses_a_chain_of_links_that_is_harmless_lexically() {
    // `c/..` is `.` on paper, but `c` is a link to `.`, so `c/..` is the folder above.
    refused(
        "chain",
        &[
            ("c", EntryType::Symlink, ".", b""),
            ("u1", EntryType::Symlink, "c/..", b""),
        ],
        "refusing entry 'u1': a symbolic link to 'c/..', which leads outside",
    );
    // The order of the entries does not matter: the link is judged against the whole tree.
    refused(
        "chain-reversed",
        &[
            ("u1", EntryType::Symlink, "c/..", b""),
            ("c", EntryType::Symlink, ".", b""),
        ],
        "refusing entry 'u1': a symbolic link to 'c/..', which leads outside",
    );
    // A longer chain: u2 -> u1/x with u1 -> c/c/.., c -> .
    refused(
        "chain-long",
        &[
            ("c", EntryType::Symlink, ".", b""),
            ("d/u1", EntryType::Symlink, "../c/c/../..", b""),
            ("u2", EntryType::Symlink, "d/u1/featurizer.json", b""),
        ],
        "refusing entry 'd/u1': a symbolic link to '../c/c/../..', which leads outside",
    );
    refused(
        "cycle",
        &[
            ("a", EntryType::Symlink, "b", b""),
            ("b", EntryType::Symlink, "a", b""),
        ],
        "a cycle of symbolic links",
    );
}

#[test]
fn refuses_entries_written_through_a_link() {
    refused(
        "through-link",
        &[
            ("here", EntryType::Symlink, ".", b""),
            ("here/up", EntryType::Symlink, "../x", b""),
        ],
        "refusing entry 'here/up': it goes through 'here', a symbolic link of the same archive",
    );
    refused(
        "file-through-link",
        &[
            ("sub", EntryType::Directory, "", b""),
            ("out", EntryType::Symlink, "sub", b""),
            ("out/featurizer.json", EntryType::Regular, "", b"{}"),
        ],
        "refusing entry 'out/featurizer.json': it goes through 'out'",
    );
    // A link whose name lies under a link that comes later.
    refused(
        "link-under-later-link",
        &[
            ("a/b", EntryType::Symlink, "x", b""),
            ("a", EntryType::Symlink, ".", b""),
        ],
        "refusing entry 'a/b': it goes through 'a', a symbolic link of the same archive",
    );
}

#[test]
fn refuses_hard_links_that_leave_or_follow_links() {
    refused(
        "hardlink-up",
        &[("h", EntryType::Link, "../../evil.txt", b"")],
        "refusing entry 'h': a hard link to '../../evil.txt', which it contains '..'",
    );
    refused(
        "hardlink-abs",
        &[("h", EntryType::Link, "/etc/passwd", b"")],
        "a hard link to '/etc/passwd', which it is an absolute path",
    );
    refused(
        "hardlink-to-symlink",
        &[
            ("s", EntryType::Symlink, "data.txt", b""),
            ("h", EntryType::Link, "s", b""),
        ],
        "a hard link to 's', which is a symbolic link",
    );
    refused(
        "hardlink-missing",
        &[("h", EntryType::Link, "nothing", b"")],
        "a hard link to 'nothing', which is not a file unpacked before it",
    );
}

#[test]
fn a_link_on_disk_is_replaced_not_followed() {
    let scratch = Scratch::new("replace");
    let outside = scratch.0.join("outside.txt");
    fs::write(&outside, "keep").unwrap();
    let dest = scratch.0.join("dest");
    fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("model.bin")).unwrap();
    let tar_gz = scratch.0.join("m.tar.gz");
    craft(&tar_gz, &[("model.bin", EntryType::Regular, "", b"new")]);
    unpack_with(&tar_gz, &dest, &Limits::default()).unwrap();
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    assert_eq!(fs::read_to_string(dest.join("model.bin")).unwrap(), "new");
    assert!(!fs::symlink_metadata(dest.join("model.bin"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn links_inside_are_kept() {
    let (_scratch, dest) = unpacked(
        "inside",
        &[
            ("sub/data.txt", EntryType::Regular, "", b"42"),
            ("sub/link.txt", EntryType::Symlink, "data.txt", b""),
            ("top.txt", EntryType::Symlink, "sub/../sub/data.txt", b""),
            ("here", EntryType::Symlink, ".", b""),
            ("via-here.txt", EntryType::Symlink, "here/here/sub/data.txt", b""),
            ("hard.txt", EntryType::Link, "sub/data.txt", b""),
            ("dangling", EntryType::Symlink, "not-there", b""),
        ],
    );
    for name in ["sub/link.txt", "top.txt", "via-here.txt", "hard.txt"] {
        assert_eq!(fs::read_to_string(dest.join(name)).unwrap(), "42", "{name}");
    }
    assert!(fs::symlink_metadata(dest.join("dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn refuses_devices_and_garbage() {
    refused(
        "fifo",
        &[("pipe", EntryType::Fifo, "", b"")],
        "entries of type Fifo are not unpacked",
    );
    let scratch = Scratch::new("garbage");
    fs::write(scratch.0.join("x.tar.gz"), b"not a tarball").unwrap();
    assert!(unpack_with(
        &scratch.0.join("x.tar.gz"),
        &scratch.0.join("d"),
        &Limits::default()
    )
    .is_err());
    assert!(!scratch.0.join("d").exists());
}

#[test]
fn a_gzip_bomb_stops_at_the_ratio_cap() {
    let scratch = Scratch::new("bomb");
    let tar_gz = scratch.0.join("bomb.tar.gz");
    zeros(&tar_gz, "zeros.bin", 80 * 1024 * 1024);
    let compressed = fs::metadata(&tar_gz).unwrap().len();
    assert!(compressed < 2 * 1024 * 1024, "{compressed}");
    let dest = scratch.0.join("dest");
    let err = unpack_with(&tar_gz, &dest, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 200 bytes per compressed byte"), "{err}");
    assert!(err.contains("MODELSTAGE_UNPACK_MAX_RATIO"), "{err}");
    assert!(!dest.exists());
    // Lifted, the same archive unpacks in full.
    let lifted = Limits {
        max_ratio: 0,
        ..Limits::default()
    };
    unpack_with(&tar_gz, &dest, &lifted).unwrap();
    assert_eq!(
        fs::metadata(dest.join("zeros.bin")).unwrap().len(),
        80 * 1024 * 1024
    );
}

#[test]
fn the_byte_and_entry_caps_name_their_variables() {
    let scratch = Scratch::new("caps");
    let tar_gz = scratch.0.join("m.tar.gz");
    craft(
        &tar_gz,
        &[
            ("a.bin", EntryType::Regular, "", &[7u8; 600]),
            ("b.bin", EntryType::Regular, "", &[7u8; 600]),
            ("c.bin", EntryType::Regular, "", b"x"),
        ],
    );
    let dest = scratch.0.join("dest");
    let bytes = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let err = unpack_with(&tar_gz, &dest, &bytes).unwrap_err().to_string();
    assert!(
        err.contains("more than 1000 bytes (MODELSTAGE_UNPACK_MAX_BYTES"),
        "{err}"
    );
    let entries = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    let err = unpack_with(&tar_gz, &dest, &entries).unwrap_err().to_string();
    assert!(
        err.contains("more than 2 entries (MODELSTAGE_UNPACK_MAX_ENTRIES"),
        "{err}"
    );
    let enough = Limits {
        max_bytes: 1201,
        max_entries: 3,
        ..Limits::default()
    };
    unpack_with(&tar_gz, &dest, &enough).unwrap();
    assert_eq!(fs::read(dest.join("c.bin")).unwrap(), b"x");
}

#[test]
fn a_private_model_is_removed_when_dropped() {
    let scratch = Scratch::new("private");
    let tar_gz = scratch.0.join("m.tar.gz");
    craft(&tar_gz, &[("w.bin", EntryType::Regular, "", b"w")]);
    let private = PrivateModel::unpack(&tar_gz).unwrap();
    let dir = private.model_dir().to_path_buf();
    assert_eq!(fs::read(dir.join("w.bin")).unwrap(), b"w");
    let folder = dir.parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
    drop(private);
    assert!(!folder.exists());
}

#[test]
fn names_from_the_archive_cannot_forge_a_log_line() {
    refused(
        "forged-name",
        &[("x\n[ERROR] forged/../../evil.txt", EntryType::Regular, "", b"x")],
        "refusing entry 'x\\n[ERROR] forged/../../evil.txt': it contains '..'",
    );
    let scratch = Scratch::new("forged-target");
    let tar_gz = scratch.0.join("evil.tar.gz");
    craft(&tar_gz, &[("l", EntryType::Symlink, "/etc\r\nforged", b"")]);
    let err = format!(
        "{:#}",
        unpack_with(&tar_gz, &scratch.0.join("d"), &Limits::default()).unwrap_err()
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'/etc\\r\\nforged'"), "{err}");
}
