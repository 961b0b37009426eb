//! Builds `tar.gz` archives entry by entry, hostile ones included, for the tests of
//! [`crate::archive`] and for the end-to-end tests, which include this file by its path.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{Builder, EntryType, Header};

/// One raw entry: name, type, link target, data.
pub(crate) type Raw<'a> = (&'a str, EntryType, &'a str, &'a [u8]);

/// A tar.gz of raw entries. The names are written byte by byte, so that names the `tar` crate's
/// setters refuse (`..`, absolute) can be produced.
pub(crate) fn craft(path: &Path, entries: &[Raw]) {
    let mut builder = Builder::new(GzEncoder::new(
        File::create(path).unwrap(),
        Compression::default(),
    ));
    for (name, kind, link, data) in entries {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// A gzip bomb: a tar.gz of one file, `name`, of `size` zeros, about a thousandth of that on disk.
pub(crate) fn zeros(path: &Path, name: &str, size: u64) {
    let mut builder = Builder::new(GzEncoder::new(File::create(path).unwrap(), Compression::fast()));
    let mut header = Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(EntryType::Regular);
    builder
        .append_data(&mut header, name, std::io::repeat(0).take(size))
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap();
}
