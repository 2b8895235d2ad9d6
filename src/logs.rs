//! Where logs go: whether standard error is systemd's journal stream (then vxtund logs to the
//! journal directly, with each record's level as its priority).

use std::os::unix::fs::MetadataExt;

/// Whether standard error is the journal stream systemd connected (`JOURNAL_STREAM` names
/// its device and inode, as systemd.exec(5) says to check).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    matches_stream(&stream.to_string_lossy(), meta.dev(), meta.ino())
}

/// Whether `JOURNAL_STREAM`'s `DEVICE:INODE` is `dev`, `ino`.
fn matches_stream(stream: &str, dev: u64, ino: u64) -> bool {
    stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_device_and_inode() {
        assert!(matches_stream("8:12345", 8, 12345));
        assert!(!matches_stream("8:12345", 8, 1));
        assert!(!matches_stream("junk", 8, 12345));
        // Not started by systemd in the test: standard error is no journal.
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert!(!stderr_is_journal());
        }
    }
}
