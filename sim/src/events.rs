//! The JSON-lines event log on stdout.
//!
//! Every line is one object with `ts` (UTC, RFC 3339 with milliseconds),
//! `node` (this node's id in hex, or null before it is known) and `event`,
//! plus the event's own fields. Tests and operators read it to see what a
//! node saw: which info commands arrived from whom, who joined and left,
//! every cluster change, migrations, and lost partitions. The field names
//! are listed in `sim/README.md` and are kept stable.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Where events go.
#[derive(Clone)]
enum Sink {
    Stdout,
    Memory(Arc<Mutex<Vec<Value>>>),
}

/// Where the server's console log lines go: stderr, or memory for tests.
#[derive(Clone)]
enum Console {
    Stderr,
    Memory(Arc<Mutex<Vec<String>>>),
}

/// A handle to the event log; cheap to clone. It also carries the
/// console log: the few lines the sim writes in the real server's text
/// form (see [`EventLog::console`]).
#[derive(Clone)]
pub struct EventLog {
    node: Option<String>,
    sink: Sink,
    console: Console,
}

impl EventLog {
    /// A log that writes lines to stdout.
    pub fn stdout() -> EventLog {
        EventLog {
            node: None,
            sink: Sink::Stdout,
            console: Console::Stderr,
        }
    }

    /// A log that keeps events in memory, for tests; returns the store too.
    /// Console lines are kept in memory as well ([`EventLog::console_lines`]).
    pub fn memory() -> (EventLog, Arc<Mutex<Vec<Value>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (
            EventLog {
                node: None,
                sink: Sink::Memory(store.clone()),
                console: Console::Memory(Arc::new(Mutex::new(Vec::new()))),
            },
            store,
        )
    }

    /// Writes one line of the server's console log, in its format:
    /// `Dec 02 2026 13:31:26 GMT: INFO (drv_ssd): (drv_ssd.c:3551) text`,
    /// to stderr (stdout is the JSON event log), or to memory for a
    /// [`EventLog::memory`] log.
    pub fn console(&self, context: &str, source: &str, text: &str) {
        self.console_at("INFO", context, source, text);
    }

    /// [`EventLog::console`] at another level (`CRITICAL`, `WARNING`).
    pub fn console_at(&self, level: &str, context: &str, source: &str, text: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{}: {level} ({context}): ({source}) {text}",
            console_time(now.as_millis() as u64)
        );
        match &self.console {
            Console::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
            Console::Memory(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        }
    }

    /// The console lines kept by a [`EventLog::memory`] log (empty for a
    /// log that writes to stderr).
    pub fn console_lines(&self) -> Vec<String> {
        match &self.console {
            Console::Stderr => Vec::new(),
            Console::Memory(lines) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }

    /// The same log, stamping `node` on every event from now on.
    pub fn for_node(&self, node: String) -> EventLog {
        EventLog {
            node: Some(node),
            sink: self.sink.clone(),
            console: self.console.clone(),
        }
    }

    /// Records one event. `fields` must be a JSON object (anything else is
    /// stored under `detail`).
    pub fn emit(&self, event: &str, fields: Value) {
        let ts = timestamp();
        let node = self.node.clone().map(Value::String).unwrap_or(Value::Null);
        let fields = match fields {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("detail".to_string(), other)]),
        };
        match &self.sink {
            Sink::Stdout => {
                let line = render_line(&ts, &node, event, &fields);
                let mut out = std::io::stdout().lock();
                // A closed stdout must not take the node down: the log is
                // for observers, the node's job is the protocol.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Sink::Memory(store) => {
                let mut object = fields;
                object.insert("ts".to_string(), Value::String(ts));
                object.insert("node".to_string(), node);
                object.insert("event".to_string(), Value::String(event.to_string()));
                if let Ok(mut events) = store.lock() {
                    events.push(Value::Object(object));
                }
            }
        }
    }
}

/// One log line with `ts`, `node` and `event` first, for people reading the
/// log; the event's own fields follow in name order.
fn render_line(ts: &str, node: &Value, event: &str, fields: &Map<String, Value>) -> String {
    let mut line = format!(
        "{{\"ts\":{},\"node\":{},\"event\":{}",
        Value::from(ts),
        node,
        Value::from(event)
    );
    for (key, value) in fields {
        if matches!(key.as_str(), "ts" | "node" | "event") {
            continue;
        }
        line.push(',');
        line.push_str(&Value::from(key.as_str()).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(now.as_millis() as u64)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC.
pub fn format_timestamp(millis: u64) -> String {
    let secs = millis / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        millis % 1000
    )
}

/// The server's console time stamp: `Dec 02 2026 13:31:26 GMT`.
pub fn console_time(millis: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = millis / 1000;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{} {day:02} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month as usize).clamp(1, 12) - 1],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so the sim needs no date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            format_timestamp(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
    }

    #[test]
    fn console_lines_have_the_server_form() {
        assert_eq!(console_time(1_709_210_096_789), "Feb 29 2024 12:34:56 GMT");
        let (log, _) = EventLog::memory();
        log.for_node("A1".into())
            .console("drv_ssd", "drv_ssd.c:1", "{test} hello");
        let lines = log.console_lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(" GMT: INFO (drv_ssd): (drv_ssd.c:1) {test} hello"));
    }

    #[test]
    fn stdout_lines_are_json_with_the_common_fields_first() {
        let fields = Map::from_iter([("peer".to_string(), json!("127.0.0.1:1"))]);
        let line = render_line("T", &Value::from("A1"), "info", &fields);
        assert_eq!(
            line,
            r#"{"ts":"T","node":"A1","event":"info","peer":"127.0.0.1:1"}"#
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["event"], "info");
    }

    #[test]
    fn events_carry_ts_node_event_and_fields() {
        let (log, store) = EventLog::memory();
        log.emit("config_error", json!({"line": 3}));
        log.for_node("A1".into())
            .emit("join", json!({"peer": "B2"}));
        let events = store.lock().unwrap();
        assert_eq!(events[0]["node"], Value::Null);
        assert_eq!(events[0]["event"], "config_error");
        assert_eq!(events[0]["line"], 3);
        assert_eq!(events[1]["node"], "A1");
        assert_eq!(events[1]["peer"], "B2");
        assert!(events[1]["ts"].as_str().unwrap().ends_with('Z'));
    }
}
