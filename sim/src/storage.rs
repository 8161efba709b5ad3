//! `storage-engine device`: what a device namespace keeps across a
//! restart, and the file it keeps it in.
//!
//! What a device file holds is the node's data lineage, the set of
//! partition copies it holds in that namespace (see
//! [`crate::partitions`]), and the records of those copies (see
//! [`crate::record`]).
//! Changes are buffered in memory and written every `flush-max-ms` and on
//! a clean shutdown (see `node.rs`), as the server flushes its write
//! buffer; a kill loses what was not written yet. Each write goes to a
//! temporary file in the same directory and is renamed over the old one,
//! so a kill never leaves a torn file. `filesize` is never allocated.
//!
//! With several `file`/`device` lines, partition `pid` is written to file
//! `pid % n` (the server spreads records over its devices by digest); on
//! reading, every file's copies count. The text form, one key per line:
//!
//! ```text
//! aerospike-sim device 1
//! namespace test
//! stripe 0 of 1
//! lineage 18c2f0e1a2b 5f3a...   (created ms and id, hex; or "lineage none")
//! held <1024 hex digits, or nothing when no copy is held>
//! record <pid> {"d":"<digest hex>","g":<generation>,"l":<last update ms>,"b":[["<bin>",<particle type>,"<value hex>"],...]}
//! ...
//! end
//! ```

use std::fs;
use std::io::Write;
use std::path::Path;

use std::collections::BTreeMap;

use crate::config::DeviceConfig;
use crate::heartbeat::Lineage;
use crate::partitions::{Bitmap, N_PARTITIONS};
use crate::record::{Partition, WireRecord};

/// First line of every device file.
pub const MAGIC: &str = "aerospike-sim device 1";

/// What a device namespace persists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The data lineage the copies belong to; `None` before the node ever
    /// joined or formed a cluster.
    pub lineage: Option<Lineage>,
    /// The partition copies held.
    pub held: Bitmap,
    /// The records of the copies held, by partition.
    pub records: BTreeMap<usize, Partition>,
}

impl Stored {
    /// Whether there is anything to read back (a lineage or a copy).
    pub fn has_data(&self) -> bool {
        self.lineage.is_some() || !self.held.is_empty()
    }
}

/// The text of stripe `index` of `count` of namespace `namespace`: the
/// copies `pid` with `pid % count == index`.
pub fn encode(namespace: &str, index: usize, count: usize, stored: &Stored) -> String {
    let mut held = Bitmap::empty();
    for pid in (index..N_PARTITIONS).step_by(count.max(1)) {
        held.set(pid, stored.held.get(pid));
    }
    let lineage = match stored.lineage {
        Some(l) => format!("{:x} {:x}", l.created_ms, l.id),
        None => "none".to_string(),
    };
    let mut text = format!(
        "{MAGIC}\nnamespace {namespace}\nstripe {index} of {count}\nlineage {lineage}\nheld {}\n",
        held.to_hex()
    );
    for (pid, records) in &stored.records {
        if pid % count.max(1) != index {
            continue;
        }
        for (digest, record) in records {
            let wire = WireRecord::from_record(digest, record);
            let json = serde_json::to_string(&wire).unwrap_or_default();
            text.push_str(&format!("record {pid} {json}\n"));
        }
    }
    text.push_str("end\n");
    text
}

/// Parses [`encode`] output into the namespace name and what it holds.
/// An empty text is no data (a file created empty).
pub fn decode(text: &str) -> Result<(Option<String>, Stored), String> {
    if text.is_empty() {
        return Ok((None, Stored::default()));
    }
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!(
            "not a sim device file (first line is not '{MAGIC}')"
        ));
    }
    let mut namespace = None;
    let mut stored = Stored::default();
    let mut ended = false;
    let mut seen_held = false;
    for (number, line) in lines.enumerate() {
        if ended {
            return Err(format!("line {} after 'end'", number + 2));
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "record" => {
                let parsed = value.split_once(' ').and_then(|(pid, json)| {
                    let pid = pid.parse::<usize>().ok().filter(|p| *p < N_PARTITIONS)?;
                    let wire: WireRecord = serde_json::from_str(json).ok()?;
                    Some((pid, wire.to_record()?))
                });
                let Some((pid, (digest, record))) = parsed else {
                    return Err(format!("bad record on line {}", number + 2));
                };
                stored
                    .records
                    .entry(pid)
                    .or_default()
                    .insert(digest, record);
            }
            "namespace" => namespace = Some(value.to_string()),
            "stripe" => {}
            "lineage" if value == "none" => stored.lineage = None,
            "lineage" => {
                let parsed = value.split_once(' ').and_then(|(created, id)| {
                    Some(Lineage {
                        created_ms: u64::from_str_radix(created, 16).ok()?,
                        id: u64::from_str_radix(id, 16).ok()?,
                    })
                });
                stored.lineage = Some(parsed.ok_or_else(|| format!("bad lineage '{value}'"))?);
            }
            "held" => {
                stored.held = Bitmap::from_hex(value).ok_or("bad partition map")?;
                seen_held = true;
            }
            "end" => ended = true,
            other => return Err(format!("unknown line '{other}'")),
        }
    }
    if !ended || !seen_held {
        return Err("truncated file (no 'held' or 'end' line)".to_string());
    }
    Ok((namespace, stored))
}

/// Reads every file of a device namespace. A missing or empty file holds
/// no data; a file that cannot be read, or holds another namespace or
/// garbage, is an error naming its path. When files disagree on the
/// lineage, the oldest lineage's copies are kept.
pub fn read_device(device: &DeviceConfig, namespace: &str) -> Result<Stored, String> {
    let mut parts = Vec::new();
    for path in &device.files {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "{{{namespace}}} cannot read device file {}: {e}",
                    path.display()
                ))
            }
        };
        let (owner, stored) = decode(&text)
            .map_err(|e| format!("{{{namespace}}} device file {}: {e}", path.display()))?;
        if let Some(owner) = owner.filter(|o| o != namespace) {
            return Err(format!(
                "{{{namespace}}} device file {} belongs to namespace {owner}",
                path.display()
            ));
        }
        parts.push(stored);
    }
    let lineage = parts.iter().filter_map(|p| p.lineage).min();
    let mut held = Bitmap::empty();
    let mut records = BTreeMap::new();
    for part in parts.into_iter().filter(|p| p.lineage == lineage) {
        held.union_with(&part.held);
        records.extend(part.records);
    }
    Ok(Stored {
        lineage,
        held,
        records,
    })
}

/// Writes `stored` to every file of a device namespace, each atomically
/// (temporary file in the same directory, then rename), creating missing
/// parent directories. Errors name the path.
pub fn write_device(device: &DeviceConfig, namespace: &str, stored: &Stored) -> Result<(), String> {
    let count = device.files.len();
    for (index, path) in device.files.iter().enumerate() {
        write_atomically(path, &encode(namespace, index, count, stored)).map_err(|e| {
            format!(
                "{{{namespace}}} cannot write device file {}: {e}",
                path.display()
            )
        })?;
    }
    Ok(())
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    if path.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.sim-tmp-{}", std::process::id()));
    let mut file = fs::File::create(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    drop(file);
    fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aerospike-sim-storage-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample() -> Stored {
        let mut held = Bitmap::empty();
        for pid in [0, 1, 2, 77, 4095] {
            held.set(pid, true);
        }
        Stored {
            lineage: Some(Lineage {
                created_ms: 1_700_000_000_123,
                id: 0xDEAD_BEEF_0123_4567,
            }),
            held,
            records: BTreeMap::new(),
        }
    }

    fn with_records() -> Stored {
        let mut stored = sample();
        for pid in [1usize, 77, 4095] {
            let mut record = crate::record::Record {
                generation: pid as u32,
                last_update_ms: 1_700_000_000_000 + pid as u64,
                ..Default::default()
            };
            record.bins.insert(
                "v".into(),
                crate::record::Particle {
                    kind: 3,
                    value: format!("value {pid}").into_bytes(),
                },
            );
            let mut digest = [0u8; 20];
            digest[0] = (pid & 0xFF) as u8;
            digest[1] = (pid >> 8) as u8;
            stored
                .records
                .entry(pid)
                .or_default()
                .insert(digest, record);
        }
        stored
    }

    #[test]
    fn records_round_trip_and_a_torn_or_bad_record_is_an_error() {
        let stored = with_records();
        let text = encode("test", 0, 1, &stored);
        assert_eq!(text.matches("\nrecord ").count(), 3, "{text}");
        assert_eq!(
            decode(&text),
            Ok((Some("test".to_string()), stored.clone()))
        );
        // Cut anywhere: an error (no panic), never a silently shorter file.
        for cut in 1..text.len() - 1 {
            assert!(decode(&text[..cut]).is_err(), "cut at {cut}");
        }
        let bad = text.replace("record 77 {", "record 77 {\"x");
        assert!(decode(&bad).unwrap_err().contains("bad record on line"));
        let bad = text.replace("record 77 ", "record 9999 ");
        assert!(decode(&bad).is_err());
        // Stripes: every record goes to the file of its partition.
        let dir = scratch("record-stripes");
        let device = DeviceConfig {
            files: vec![dir.join("a.dat"), dir.join("b.dat")],
            filesize: Some(1 << 30),
            flush_max_ms: 1000,
        };
        write_device(&device, "test", &stored).unwrap();
        let a = fs::read_to_string(&device.files[0]).unwrap();
        assert!(a.contains("record 4095 ") == (4095 % 2 == 0));
        assert_eq!(read_device(&device, "test"), Ok(stored));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_text_form_round_trips() {
        let stored = sample();
        let text = encode("test", 0, 1, &stored);
        assert!(text.starts_with("aerospike-sim device 1\nnamespace test\nstripe 0 of 1\n"));
        let line = format!("lineage {:x} deadbeef01234567\n", 1_700_000_000_123u64);
        assert!(text.contains(&line), "{text}");
        assert_eq!(decode(&text), Ok((Some("test".to_string()), stored)));
        let empty = encode("test", 0, 1, &Stored::default());
        assert!(empty.contains("lineage none\nheld \nend\n"), "{empty}");
        assert_eq!(decode(&empty).unwrap().1, Stored::default());
        assert_eq!(decode("").unwrap().1, Stored::default());
    }

    #[test]
    fn torn_or_foreign_text_is_refused() {
        let text = encode("test", 0, 1, &sample());
        let torn = &text[..text.len() - 4];
        assert!(decode(torn).unwrap_err().contains("truncated"));
        assert!(decode("hello\n").is_err());
        assert!(decode(&text.replace("lineage ", "lineage zz")).is_err());
        assert!(decode(&text.replace("held ", "held 12")).is_err());
    }

    #[test]
    fn stripes_split_and_reunite_the_copies() {
        let dir = scratch("stripes");
        let device = DeviceConfig {
            files: vec![dir.join("a/one.dat"), dir.join("b/two.dat")],
            filesize: Some(1 << 30),
            flush_max_ms: 1000,
        };
        // Nothing written yet: no data, no error.
        assert_eq!(read_device(&device, "test"), Ok(Stored::default()));
        let stored = sample();
        write_device(&device, "test", &stored).unwrap();
        let one = decode(&fs::read_to_string(&device.files[0]).unwrap())
            .unwrap()
            .1;
        let two = decode(&fs::read_to_string(&device.files[1]).unwrap())
            .unwrap()
            .1;
        assert_eq!(one.held.count() + two.held.count(), 5);
        assert!(one.held.get(0) && two.held.get(1) && two.held.get(77));
        assert_eq!(read_device(&device, "test"), Ok(stored.clone()));
        // The file is small: `filesize` is not allocated.
        assert!(fs::metadata(&device.files[0]).unwrap().len() < 2000);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.join("a")).unwrap().count(), 1);
        // Another namespace's file is refused, naming the path.
        let err = read_device(&device, "bar").unwrap_err();
        assert!(
            err.contains("one.dat") && err.contains("namespace test"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_that_is_a_directory_is_an_error_naming_it() {
        let dir = scratch("isdir");
        fs::create_dir_all(dir.join("data.dat")).unwrap();
        let device = DeviceConfig {
            files: vec![dir.join("data.dat")],
            filesize: Some(1 << 20),
            flush_max_ms: 1000,
        };
        let err = write_device(&device, "test", &sample()).unwrap_err();
        assert!(err.contains("data.dat"), "{err}");
        let err = read_device(&device, "test").unwrap_err();
        assert!(
            err.contains("cannot read device file") && err.contains("data.dat"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
