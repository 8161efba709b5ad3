//! The Aerospike config format, as the server reads it: one directive a
//! line; `name [arg] {` opens a context, a lone `}` closes it; anything
//! else is `key value...`; `#` starts a comment that runs to the end of the
//! line; blank lines and any whitespace are free.
//!
//! The parser knows the structure, not the vocabulary: an unknown key is
//! kept like any other (real configs have hundreds, and new servers add
//! more). It refuses only what no server would read: unbalanced braces, a
//! context opener with junk on its line, a setting outside every context,
//! and a value missing from a key that always takes one.

use std::fmt;

/// A parsed config: the root stanza, whose children are the top-level
/// contexts (`service`, `logging`, `network`, `namespace NAME`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    root: Stanza,
}

/// One context: `name [arg] { entries and child contexts }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// The context's name (`namespace`, `storage-engine`, `heartbeat`);
    /// empty for the root.
    pub name: String,
    /// Its argument, if it has one (`test` in `namespace test {`, `device`
    /// in `storage-engine device {`, the path in `file PATH {`).
    pub arg: Option<String>,
    /// The line of its opener (1-based; 0 for the root).
    pub line: usize,
    /// Its settings, in file order; repeated keys stay repeated (lists).
    pub entries: Vec<Entry>,
    /// Its sub-contexts, in file order.
    pub children: Vec<Stanza>,
}

/// One setting: `key value...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key (`replication-factor`, `mesh-seed-address-port`).
    pub key: String,
    /// The whitespace-separated values after it (none, one, or several:
    /// `mesh-seed-address-port HOST PORT`, `context any info`).
    pub values: Vec<String>,
    /// Its line (1-based).
    pub line: usize,
}

/// Text that is not an Aerospike config; `line` is where (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line the problem is on.
    pub line: usize,
    /// What is wrong, e.g. "unbalanced `}`".
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Contexts that always take an argument (`namespace NAME {`).
const CONTEXTS_WITH_ARG: &[&str] = &["namespace", "storage-engine", "file", "set", "dc"];
/// Contexts that never take one (`service {`).
const CONTEXTS_WITHOUT_ARG: &[&str] = &[
    "service",
    "logging",
    "network",
    "heartbeat",
    "fabric",
    "info",
    "admin",
    "console",
    "syslog",
    "mod-lua",
    "security",
    "xdr",
    "geo2dsphere-within",
];

/// Keys that always take at least this many values. Keys not listed may
/// take none (`run-as-daemon` alone means true).
const MIN_VALUES: &[(&str, usize)] = &[
    ("address", 1),
    ("port", 1),
    ("mode", 1),
    ("cluster-name", 1),
    ("replication-factor", 1),
    ("interval", 1),
    ("timeout", 1),
    ("mesh-seed-address-port", 2),
    ("tls-mesh-seed-address-port", 2),
    ("access-address", 1),
    ("alternate-access-address", 1),
    ("default-ttl", 1),
    ("storage-engine", 1),
    ("file", 1),
    ("device", 1),
    ("filesize", 1),
    ("data-size", 1),
    ("context", 2),
    ("work-directory", 1),
    ("proto-fd-max", 1),
    ("node-id", 1),
    ("rack-id", 1),
    ("nsup-period", 1),
];

impl ServerConfig {
    /// Parses config text. Errors name the line: an unclosed `{` (the
    /// opener's line), a stray `}`, a context opener with junk, a setting
    /// outside any context, a key without the value it needs.
    pub fn parse(text: &str) -> Result<ServerConfig, ParseError> {
        let mut stack: Vec<Stanza> = vec![Stanza::new(String::new(), None, 0)];
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let content = match raw.find('#') {
                Some(at) => &raw[..at],
                None => raw,
            };
            let tokens: Vec<&str> = content.split_whitespace().collect();
            let Some(last) = tokens.last() else {
                continue;
            };
            if tokens == ["}"] {
                if stack.len() == 1 {
                    return Err(error(line, "unbalanced `}`: no context is open here"));
                }
                let done = stack.pop().expect("more than the root");
                stack
                    .last_mut()
                    .expect("the root stays")
                    .children
                    .push(done);
                continue;
            }
            if *last == "{" {
                let head = &tokens[..tokens.len() - 1];
                let stanza = opener(head, line)?;
                stack.push(stanza);
                continue;
            }
            if tokens.iter().any(|t| t.contains('{') || t.contains('}')) {
                return Err(error(
                    line,
                    format!(
                        "`{}`: a brace must stand alone: `name [arg] {{` opens a context and a \
                         line of its own `}}` closes it",
                        tokens.join(" ")
                    ),
                ));
            }
            let key = tokens[0];
            if stack.len() == 1 {
                return Err(error(
                    line,
                    format!(
                        "`{key}` is outside any context (settings belong in one, such as \
                         `service {{ ... }}`)"
                    ),
                ));
            }
            let values: Vec<String> = tokens[1..].iter().map(|s| s.to_string()).collect();
            if let Some((_, min)) = MIN_VALUES.iter().find(|(k, _)| *k == key) {
                if values.len() < *min {
                    let what = if *min == 1 {
                        "a value".to_string()
                    } else {
                        format!("{min} values")
                    };
                    return Err(error(line, format!("`{key}` needs {what}")));
                }
            }
            stack
                .last_mut()
                .expect("the root stays")
                .entries
                .push(Entry {
                    key: key.to_string(),
                    values,
                    line,
                });
        }
        if stack.len() > 1 {
            let open = stack.last().expect("more than the root");
            return Err(error(
                open.line,
                format!("`{}` is never closed (a `}}` is missing)", open.header()),
            ));
        }
        Ok(ServerConfig {
            root: stack.pop().expect("the root"),
        })
    }

    /// The root stanza (name `""`, line 0): its children are the top-level
    /// contexts.
    pub fn root(&self) -> &Stanza {
        &self.root
    }

    /// The `namespace NAME` stanzas, in file order.
    pub fn namespaces(&self) -> impl Iterator<Item = &Stanza> {
        self.root.children.iter().filter(|s| s.name == "namespace")
    }

    /// The stanza at `path` from the root, e.g. `["network", "heartbeat"]`
    /// or `["namespace test", "storage-engine"]`: each step is a context
    /// name, or a name and its argument separated by one space. The first
    /// match at each step.
    pub fn find(&self, path: &[&str]) -> Option<&Stanza> {
        let mut at = &self.root;
        for step in path {
            at = at.children.iter().find(|s| s.matches(step))?;
        }
        Some(at)
    }
}

impl fmt::Display for ServerConfig {
    /// The config in a canonical form (tabs, one directive a line, no
    /// comments) that parses back to the same tree, lines aside.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(stanza: &Stanza, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let pad = "\t".repeat(depth);
            for entry in &stanza.entries {
                if entry.values.is_empty() {
                    writeln!(f, "{pad}{}", entry.key)?;
                } else {
                    writeln!(f, "{pad}{} {}", entry.key, entry.values.join(" "))?;
                }
            }
            for child in &stanza.children {
                writeln!(f, "{pad}{} {{", child.header())?;
                write(child, depth + 1, f)?;
                writeln!(f, "{pad}}}")?;
            }
            Ok(())
        }
        write(&self.root, 0, f)
    }
}

impl Stanza {
    fn new(name: String, arg: Option<String>, line: usize) -> Stanza {
        Stanza {
            name,
            arg,
            line,
            entries: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The last entry with `key`: for a single-valued setting, the one the
    /// server applies (a later line overrides an earlier one).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// Every entry with `key`, in file order (list settings: `address`,
    /// `mesh-seed-address-port`, `file`, `device`, ...).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(move |e| e.key == key)
    }

    /// The first child context called `name` (or `"name arg"`).
    pub fn child(&self, name: &str) -> Option<&Stanza> {
        self.children.iter().find(|s| s.matches(name))
    }

    /// `name` or `name arg`, as on the opener's line.
    pub fn header(&self) -> String {
        match &self.arg {
            Some(arg) => format!("{} {arg}", self.name),
            None => self.name.clone(),
        }
    }

    fn matches(&self, step: &str) -> bool {
        match step.split_once(' ') {
            Some((name, arg)) => self.name == name && self.arg.as_deref() == Some(arg),
            None => self.name == step,
        }
    }
}

impl Entry {
    /// The first value, if any (`3` in `replication-factor 3`).
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }
}

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// `name [arg]` before a `{`.
fn opener(head: &[&str], line: usize) -> Result<Stanza, ParseError> {
    let (name, arg) = match head {
        [] => return Err(error(line, "`{` without a context name before it")),
        [name] => (*name, None),
        [name, arg] => (*name, Some(*arg)),
        _ => {
            return Err(error(
                line,
                format!(
                    "`{} {{`: a context opener is `name {{` or `name arg {{`, not {} words",
                    head.join(" "),
                    head.len()
                ),
            ))
        }
    };
    if let Some(bad) = [Some(name), arg]
        .into_iter()
        .flatten()
        .find(|t| t.contains('{') || t.contains('}'))
    {
        return Err(error(
            line,
            format!("`{bad}` in a context opener: a brace must stand alone"),
        ));
    }
    if arg.is_none() && CONTEXTS_WITH_ARG.contains(&name) {
        return Err(error(
            line,
            format!("`{name} {{` needs an argument: `{name} NAME {{`"),
        ));
    }
    if let Some(arg) = arg {
        if CONTEXTS_WITHOUT_ARG.contains(&name) {
            return Err(error(
                line,
                format!("`{name} {arg} {{`: `{name}` takes no argument (`{name} {{`)"),
            ));
        }
    }
    Ok(Stanza::new(name.to_string(), arg.map(str::to_string), line))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# comment
service {
\tcluster-name demo   # trailing
\tproto-fd-max 15000
}

network {
  heartbeat {
    mode mesh
    mesh-seed-address-port 10.0.0.1 3002
    mesh-seed-address-port 10.0.0.2 3002
  }
}
namespace test {
\treplication-factor 2
\tstorage-engine device {
\t\tfile /a
\t\tfile /b
\t}
}
namespace other {
\tstorage-engine memory
}
";

    #[test]
    fn parses_contexts_lists_comments_and_lines() {
        let config = ServerConfig::parse(EXAMPLE).unwrap();
        let service = config.find(&["service"]).unwrap();
        assert_eq!(service.line, 2);
        assert_eq!(service.get("cluster-name").unwrap().value(), Some("demo"));
        assert_eq!(service.get("cluster-name").unwrap().line, 3);
        let hb = config.find(&["network", "heartbeat"]).unwrap();
        let seeds: Vec<_> = hb
            .all("mesh-seed-address-port")
            .map(|e| e.values.join(":"))
            .collect();
        assert_eq!(seeds, ["10.0.0.1:3002", "10.0.0.2:3002"]);
        let names: Vec<_> = config
            .namespaces()
            .map(|n| n.arg.clone().unwrap())
            .collect();
        assert_eq!(names, ["test", "other"]);
        let storage = config.find(&["namespace test", "storage-engine"]).unwrap();
        assert_eq!(storage.arg.as_deref(), Some("device"));
        assert_eq!(storage.all("file").count(), 2);
        assert!(config
            .find(&["namespace other", "storage-engine"])
            .is_none());
        assert_eq!(
            config
                .find(&["namespace other"])
                .unwrap()
                .get("storage-engine")
                .unwrap()
                .value(),
            Some("memory")
        );
        assert!(config.find(&["namespace nosuch"]).is_none());
        // The canonical form parses back to the same tree.
        let again = ServerConfig::parse(&config.to_string()).unwrap();
        assert_eq!(again.to_string(), config.to_string());
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("service {\n  x 1\n", 1, "never closed"),
            ("service {\n}\n}\n", 3, "unbalanced `}`"),
            ("service {\n  cluster-name\n}\n", 2, "needs a value"),
            (
                "network {\n heartbeat {\n  mesh-seed-address-port 10.0.0.1\n }\n}\n",
                3,
                "needs 2 values",
            ),
            ("namespace a b c {\n}\n", 1, "not 4 words"),
            ("namespace {\n}\n", 1, "needs an argument"),
            ("service foo {\n}\n", 1, "takes no argument"),
            ("service{\n}\n", 1, "brace must stand alone"),
            ("proto-fd-max 1\n", 1, "outside any context"),
            ("service {\n x 1 }\n", 2, "brace must stand alone"),
            ("\n\n{\n}\n", 3, "without a context name"),
        ];
        for (text, line, what) in cases {
            let error = ServerConfig::parse(text).unwrap_err();
            assert_eq!(error.line, *line, "{text:?}: {error}");
            assert!(error.message.contains(what), "{text:?}: {error}");
            assert!(error.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn unknown_keys_and_valueless_keys_are_kept() {
        let config =
            ServerConfig::parse("service {\n  some-future-knob 7\n  run-as-daemon\n}\n").unwrap();
        let service = config.find(&["service"]).unwrap();
        assert_eq!(service.get("some-future-knob").unwrap().value(), Some("7"));
        assert!(service.get("run-as-daemon").unwrap().values.is_empty());
    }

    #[test]
    fn an_empty_file_is_an_empty_config() {
        let config = ServerConfig::parse("# nothing\n\n").unwrap();
        assert!(config.root().children.is_empty());
        assert_eq!(config.namespaces().count(), 0);
    }
}
