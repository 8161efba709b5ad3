//! A cold start, read from a node's console log.
//!
//! A node with `storage-engine device` reads its whole device back before
//! it binds any port (field notes §3: "beginning cold start" … "read
//! complete" … only then "Started client endpoint"). Meanwhile it refuses
//! connections: the info protocol cannot tell a cold start from a dead
//! node, but the server's console lines can, and Docker gives a task's
//! log (`GET /tasks/{id}/logs`). [`read`] finds, by their forms (the
//! server's format strings, not whole lines, which differ between
//! versions in their prefixes and fields):
//!
//! - `{test} beginning cold start` (as/src/base/namespace_ce.c);
//! - `{test} loaded: objects 500 device-pcts (12)` every 5 s
//!   (`as_storage_load_ticker_ssd`, as/src/storage/drv_ssd.c; one percent
//!   per device, comma-separated);
//! - `device /opt/aerospike/data/test.dat: read complete: UNIQUE 4096 …`;
//! - `Started client endpoint 10.0.1.5:3000`: the node listens; the cold
//!   start is over. (This form is the sim's and not yet checked on a 7.x
//!   server, sim/README.md; without it a cold start that ended is still
//!   told apart by the node answering, which the operator asks first.)

use std::collections::BTreeMap;

/// Where a node's cold start stands, from its console lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColdStart {
    /// The namespaces that began a cold start.
    pub namespaces: Vec<String>,
    /// Per namespace, the objects loaded at its latest ticker line.
    pub loaded: BTreeMap<String, u64>,
    /// Per namespace, its devices' percentages at its latest ticker line.
    pub percents: BTreeMap<String, Vec<u32>>,
    /// How many device reads completed.
    pub devices_read: usize,
    /// The node said it listens (`Started client endpoint`): the cold start
    /// is over.
    pub listening: bool,
}

impl ColdStart {
    /// Whether the node is still reading its storage back: it began a
    /// cold start and does not listen yet.
    pub fn in_progress(&self) -> bool {
        !self.namespaces.is_empty() && !self.listening
    }

    /// Objects loaded, over every namespace.
    pub fn objects(&self) -> u64 {
        self.loaded.values().sum()
    }

    /// The least device percentage of any namespace, if any ticker line
    /// came.
    pub fn percent(&self) -> Option<u32> {
        self.percents.values().flatten().copied().min()
    }

    /// A measure that grows while the cold start makes progress: the
    /// objects loaded, the device percentages, the devices read.
    pub fn progress_mark(&self) -> (u64, u32, usize) {
        let percent_sum = self.percents.values().flatten().sum();
        (self.objects(), percent_sum, self.devices_read)
    }

    /// For the status: `cold-starting namespace test: 500 objects loaded,
    /// device 12%`.
    pub fn describe(&self) -> String {
        let mut text = format!("cold-starting namespace {}", self.namespaces.join(", "));
        if self.loaded.is_empty() {
            text.push_str(": reading the device");
        } else {
            text.push_str(&format!(": {} objects loaded", self.objects()));
            if let Some(percent) = self.percent() {
                text.push_str(&format!(", device {percent}%"));
            }
        }
        text
    }
}

/// Reads the cold start out of a node's console lines, oldest first;
/// `None` when they show none (a memory namespace, or a node that has
/// logged nothing yet). Lines of other forms are skipped.
pub fn read<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<ColdStart> {
    let mut cold = ColdStart::default();
    for line in lines {
        if line.contains("Started client endpoint") {
            cold.listening = true;
        } else if let Some(ns) = namespace_before(line, "} beginning cold start") {
            if !cold.namespaces.contains(&ns) {
                cold.namespaces.push(ns);
            }
            // A restart within one log (the container restarted in place):
            // what came before is another run's.
            cold.listening = false;
        } else if let Some((ns, objects, percents)) = ticker(line) {
            cold.loaded.insert(ns.clone(), objects);
            cold.percents.insert(ns, percents);
        } else if line.contains(": read complete: UNIQUE ") {
            cold.devices_read += 1;
        }
    }
    (!cold.namespaces.is_empty()).then_some(cold)
}

/// The namespace in `{ns}` right before `marker` in `line`.
fn namespace_before(line: &str, marker: &str) -> Option<String> {
    let end = line.find(marker)?;
    let start = line[..end].rfind('{')?;
    let ns = &line[start + 1..end];
    (!ns.is_empty() && !ns.contains(char::is_whitespace)).then(|| ns.to_string())
}

/// `{ns} loaded: objects N device-pcts (a,b)`: the namespace, N and the
/// percentages.
fn ticker(line: &str) -> Option<(String, u64, Vec<u32>)> {
    let ns = namespace_before(line, "} loaded: objects ")?;
    let rest = &line[line.find("} loaded: objects ")? + "} loaded: objects ".len()..];
    let mut words = rest.split_whitespace();
    let objects = words.next()?.parse().ok()?;
    let percents = rest
        .split_once("device-pcts (")
        .and_then(|(_, p)| p.split_once(')'))
        .map(|(p, _)| p.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_default();
    Some((ns, objects, percents))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sim's console lines, in the server's forms (sim/README.md,
    /// "Storage, shutdown and cold start").
    const COLD: &[&str] = &[
        "Dec 02 2026 13:31:26 GMT: INFO (namespace): (namespace_ce.c:97) {test} beginning cold start",
        "Dec 02 2026 13:31:26 GMT: INFO (drv_ssd): (drv_ssd.c:3347) device /opt/aerospike/data/test.dat: reading device to load index",
        "Dec 02 2026 13:31:31 GMT: INFO (drv_ssd): (drv_ssd.c:2932) {test} loaded: objects 500 device-pcts (12)",
        "Dec 02 2026 13:31:36 GMT: INFO (drv_ssd): (drv_ssd.c:2932) {test} loaded: objects 1200 device-pcts (30)",
    ];

    #[test]
    fn a_cold_start_under_way_is_read_with_its_latest_ticker() {
        let cold = read(COLD.iter().copied()).expect("a cold start");
        assert!(cold.in_progress());
        assert_eq!(cold.namespaces, ["test"]);
        assert_eq!(cold.objects(), 1200);
        assert_eq!(cold.percent(), Some(30));
        assert_eq!(
            cold.describe(),
            "cold-starting namespace test: 1200 objects loaded, device 30%"
        );
        // Progress grows from one ticker to the next.
        let earlier = read(COLD[..3].iter().copied()).unwrap();
        assert!(earlier.progress_mark() < cold.progress_mark());
    }

    #[test]
    fn a_node_that_listens_is_not_cold_starting() {
        let mut lines = COLD.to_vec();
        lines.push("Dec 02 2026 13:32:07 GMT: INFO (drv_ssd): (drv_ssd.c:3311) device /opt/aerospike/data/test.dat: read complete: UNIQUE 4096 (REPLACED 0) (OLDER 0) (EXPIRED 0) (EVICTED 0) (UNPARSABLE 0) records");
        let read_back = read(lines.iter().copied()).unwrap();
        assert!(read_back.in_progress(), "read, not listening yet");
        assert_eq!(read_back.devices_read, 1);
        lines.push("Dec 02 2026 13:32:07 GMT: INFO (socket): (socket.c:839) Started client endpoint 10.0.1.5:3000");
        assert!(!read(lines.iter().copied()).unwrap().in_progress());
        // A restart in the same log begins again.
        lines.push(COLD[0]);
        assert!(read(lines.iter().copied()).unwrap().in_progress());
    }

    #[test]
    fn lines_of_other_forms_show_no_cold_start() {
        assert_eq!(read([] as [&str; 0]), None);
        let other = [
            "{\"event\":\"started\",\"service\":\"10.0.1.5:3000\"}",
            "Dec 02 2026 13:31:26 GMT: INFO (as): (as.c:320) <><><><><><><><><><>  Aerospike Community Edition build 7.1.0.23  <><><><><><><><><><>",
            "loaded: objects x device-pcts (",
            "{} beginning cold start",
        ];
        assert_eq!(read(other.iter().copied()), None);
        // A ticker with an unparsable count is skipped, not misread.
        let odd = [COLD[0], "{test} loaded: objects many device-pcts (12)"];
        assert_eq!(read(odd.iter().copied()).unwrap().objects(), 0);
    }

    #[test]
    fn several_namespaces_and_devices_add_up() {
        let lines = [
            "{a} beginning cold start",
            "{b} beginning cold start",
            "{a} loaded: objects 10 device-pcts (5,7)",
            "{b} loaded: objects 20 device-pcts (50)",
        ];
        let cold = read(lines.iter().copied()).unwrap();
        assert_eq!(cold.namespaces, ["a", "b"]);
        assert_eq!(cold.objects(), 30);
        assert_eq!(cold.percent(), Some(5));
    }
}
