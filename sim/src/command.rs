//! Info command syntax: splitting a request body into commands, parsing one
//! command, and assembling the reply body.
//!
//! A command is `name`, `name/subtree` (a "tree" lookup such as
//! `namespace/test`) or `name:k=v;k=v` (a command with parameters such as
//! `tip:host=10.0.0.2;port=3002`). The server checks for `:` first, so
//! `name:...` wins over `/` when both appear.

/// One parsed info command, borrowing from the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// Everything before the first `:` or `/`.
    pub name: &'a str,
    /// The part after `/`, for tree lookups (`namespace/test` -> `test`).
    pub subtree: Option<&'a str>,
    /// The raw part after `:`, for commands with parameters.
    pub params: Option<&'a str>,
}

impl<'a> Command<'a> {
    /// Parses a single command line (without its trailing `\n`).
    pub fn parse(line: &'a str) -> Command<'a> {
        if let Some((name, params)) = line.split_once(':') {
            return Command {
                name,
                subtree: None,
                params: Some(params),
            };
        }
        if let Some((name, subtree)) = line.split_once('/') {
            return Command {
                name,
                subtree: Some(subtree),
                params: None,
            };
        }
        Command {
            name: line,
            subtree: None,
            params: None,
        }
    }

    /// Looks up parameter `key` in `k=v;k=v` parameters.
    ///
    /// Returns `Some("")` for `key=` and for a bare `key` without `=`.
    pub fn param(&self, key: &str) -> Option<&'a str> {
        params(self.params.unwrap_or(""))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Iterates over `k=v` pairs of a `;`-separated parameter string, skipping
/// empty segments (a trailing `;` is common in scripts).
pub fn params(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split(';')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// Splits a request body into its command lines, as raw bytes.
///
/// Each command ends in `\n`; an unterminated last command is still a
/// command. Empty lines are skipped, so an empty body yields no command
/// (which the server answers with its default set, see
/// [`crate::info::DEFAULT_COMMANDS`]).
pub fn split_commands(body: &[u8]) -> Vec<&[u8]> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .collect()
}

/// Appends one reply line: the command exactly as sent, a tab, the value and
/// a newline.
pub fn append_reply_line(reply: &mut Vec<u8>, command: &[u8], value: &str) {
    reply.extend_from_slice(command);
    reply.push(b'\t');
    reply.extend_from_slice(value.as_bytes());
    reply.push(b'\n');
}

/// Parses a reply body into `(command, value)` pairs (client side).
///
/// Lines without a tab are returned with an empty value rather than dropped,
/// so a malformed reply is still visible to the caller.
pub fn parse_reply(body: &[u8]) -> Vec<(String, String)> {
    split_commands(body)
        .into_iter()
        .map(|line| {
            let line = String::from_utf8_lossy(line);
            match line.split_once('\t') {
                Some((cmd, value)) => (cmd.to_string(), value.to_string()),
                None => (line.to_string(), String::new()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_shapes() {
        assert_eq!(
            Command::parse("node"),
            Command {
                name: "node",
                subtree: None,
                params: None
            }
        );
        assert_eq!(
            Command::parse("namespace/test"),
            Command {
                name: "namespace",
                subtree: Some("test"),
                params: None
            }
        );
        let tip = Command::parse("tip:host=10.0.0.2;port=3002");
        assert_eq!(tip.name, "tip");
        assert_eq!(tip.param("host"), Some("10.0.0.2"));
        assert_eq!(tip.param("port"), Some("3002"));
        assert_eq!(tip.param("missing"), None);
    }

    #[test]
    fn colon_wins_over_slash() {
        let cmd = Command::parse("tip-clear:host-port-list=10.0.0.2:3002");
        assert_eq!(cmd.name, "tip-clear");
        assert_eq!(cmd.param("host-port-list"), Some("10.0.0.2:3002"));
    }

    #[test]
    fn splits_commands_and_skips_empty_lines() {
        assert_eq!(
            split_commands(b"node\n\nbuild\nstatistics"),
            vec![&b"node"[..], &b"build"[..], &b"statistics"[..]]
        );
        assert!(split_commands(b"").is_empty());
        assert!(split_commands(b"\n\n").is_empty());
    }

    #[test]
    fn reply_lines_echo_the_command_exactly() {
        let mut reply = Vec::new();
        append_reply_line(
            &mut reply,
            b"cluster-stable:size=3",
            "ERROR:7:unstable cluster",
        );
        assert_eq!(reply, b"cluster-stable:size=3\tERROR:7:unstable cluster\n");
        assert_eq!(
            parse_reply(&reply),
            vec![(
                "cluster-stable:size=3".to_string(),
                "ERROR:7:unstable cluster".to_string()
            )]
        );
    }

    proptest! {
        #[test]
        fn any_body_splits_and_parses_without_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for line in split_commands(&body) {
                prop_assert!(!line.contains(&b'\n'));
                let text = String::from_utf8_lossy(line);
                let cmd = Command::parse(&text);
                let _ = cmd.param("size");
                let _ = cmd.param("");
            }
            let _ = parse_reply(&body);
        }

        #[test]
        fn reply_round_trips(cmd in "[a-z/:=;.0-9-]{1,40}", value in "[ -~&&[^\t]]{0,80}") {
            let mut reply = Vec::new();
            append_reply_line(&mut reply, cmd.as_bytes(), &value);
            prop_assert_eq!(parse_reply(&reply), vec![(cmd, value)]);
        }
    }
}
