//! The Aerospike server config parser and the config-change plan as
//! properties: every config the repository runs parses; generated config
//! trees printed with any whitespace and comments parse back to the same
//! tree; no text makes the parser panic, and its errors name a line of the
//! text; no info command built from a config carries more separators than
//! its own, whatever the config says.

use std::path::Path;

use proptest::prelude::*;

use aerospike_swarm_operator::serverconf::{
    check, dynamic_table, plan_change, CheckContext, LiveContext, ServerConfig, Stanza,
};
use aerospike_swarm_operator::spec::Edition;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.conf` of `dir`.
fn confs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "conf"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_config_in_the_repository_parses() {
    let mut paths = confs(&root().join("tests/fixtures/serverconf"));
    paths.extend(confs(&root().join("crd-like-specs/examples")));
    assert!(paths.len() >= 7, "{paths:?}");
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let config =
            ServerConfig::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(config.find(&["service"]).is_some(), "{}", path.display());
        assert!(config.namespaces().count() >= 1, "{}", path.display());
        // The canonical form reads back to the same tree.
        let again = ServerConfig::parse(&config.to_string()).unwrap();
        assert_eq!(
            shape(again.root()),
            shape(config.root()),
            "{}",
            path.display()
        );
    }
    let sim = ServerConfig::parse(aerospike_sim::config::DEFAULT_CONFIG).unwrap();
    assert_eq!(
        sim.find(&["network", "heartbeat"])
            .unwrap()
            .get("mode")
            .unwrap()
            .value(),
        Some("mesh")
    );
}

#[test]
fn the_full_config_reads_as_aerospike_means_it_and_passes_the_checks() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/serverconf/aerospike-full.conf"))
            .unwrap();
    let config = ServerConfig::parse(&text).unwrap();
    let names: Vec<_> = config
        .namespaces()
        .map(|n| n.arg.clone().unwrap())
        .collect();
    assert_eq!(names, ["test", "bar", "raw"]);
    let bar = config
        .find(&["namespace bar", "storage-engine device"])
        .unwrap();
    assert_eq!(bar.all("file").count(), 2);
    let logging = config.find(&["logging", "file /var/log/aerospike/aerospike.log"]);
    assert_eq!(logging.unwrap().all("context").count(), 2);
    let seeds = config.find(&["network", "heartbeat"]).unwrap();
    assert_eq!(seeds.all("mesh-seed-address-port").count(), 2);
    let ctx = CheckContext {
        edition: Edition::Community,
        replicas: 3,
        service_port: 3000,
        heartbeat_port: 3002,
        fabric_port: 3001,
        multi_host: true,
    };
    assert_eq!(check(&config, &ctx), vec![]);
}

/// A stanza without its line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tree {
    name: String,
    arg: Option<String>,
    entries: Vec<(String, Vec<String>)>,
    children: Vec<Tree>,
}

fn shape(stanza: &Stanza) -> Tree {
    Tree {
        name: stanza.name.clone(),
        arg: stanza.arg.clone(),
        entries: stanza
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.values.clone()))
            .collect(),
        children: stanza.children.iter().map(shape).collect(),
    }
}

/// A value token: printable, no whitespace, no `#` and no braces.
fn word() -> impl Strategy<Value = String> {
    "[!-\"$-z|~]{1,10}"
}

fn entry() -> impl Strategy<Value = (String, Vec<String>)> {
    ("k[a-z0-9-]{0,8}", prop::collection::vec(word(), 0..4))
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (
        "c[a-z0-9-]{0,8}",
        prop::option::of(word()),
        prop::collection::vec(entry(), 0..4),
    )
        .prop_map(|(name, arg, entries)| Tree {
            name,
            arg,
            entries,
            children: vec![],
        });
    leaf.prop_recursive(4, 24, 4, |inner| {
        (
            "c[a-z0-9-]{0,8}",
            prop::option::of(word()),
            prop::collection::vec(entry(), 0..4),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, arg, entries, children)| Tree {
                name,
                arg,
                entries,
                children,
            })
    })
}

/// How one line is dressed: indent, separator, a trailing comment, a
/// blank or comment line before it.
#[derive(Debug, Clone)]
struct Dress(Vec<(u8, u8, bool, u8)>);

fn dress() -> impl Strategy<Value = Dress> {
    prop::collection::vec((0u8..4, 0u8..3, any::<bool>(), 0u8..4), 1..16).prop_map(Dress)
}

fn line(dress: &Dress, at: &mut usize, tokens: Vec<&str>, out: &mut String) {
    let (indent, sep, comment, before) = dress.0[*at % dress.0.len()];
    *at += 1;
    match before {
        1 => out.push('\n'),
        2 => out.push_str("  # a comment line { }\n"),
        3 => out.push_str(" \t \n"),
        _ => {}
    }
    out.push_str(["", " ", "\t", "\t  "][indent as usize]);
    out.push_str(&tokens.join([" ", "\t", "   "][sep as usize]));
    if comment {
        out.push_str(" #trailing } { ;=");
    }
    out.push('\n');
}

fn print(tree: &Tree, dress: &Dress, at: &mut usize, out: &mut String) {
    for (key, values) in &tree.entries {
        let mut tokens = vec![key.as_str()];
        tokens.extend(values.iter().map(String::as_str));
        line(dress, at, tokens, out);
    }
    for child in &tree.children {
        let mut tokens = vec![child.name.as_str()];
        if let Some(arg) = &child.arg {
            tokens.push(arg);
        }
        tokens.push("{");
        line(dress, at, tokens, out);
        print(child, dress, at, out);
        line(dress, at, vec!["}"], out);
    }
}

/// Text that looks like a config more often than chance would make it.
fn config_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        "[{}# a-z0-9\n\t]{0,300}",
        prop::collection::vec(
            prop::sample::select(vec![
                "service {",
                "}",
                "{",
                "namespace test {",
                "namespace {",
                "a b c d {",
                "port 3000",
                "cluster-name",
                "# c",
                "",
                "x { y",
                "mode mesh",
                "\t",
                "z }",
            ]),
            0..40
        )
        .prop_map(|lines| lines.join("\n")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printed_trees_parse_back_to_the_same_tree(children in prop::collection::vec(tree(), 0..5), dress in dress()) {
        let tree = Tree { name: String::new(), arg: None, entries: vec![], children };
        let mut text = String::new();
        print(&tree, &dress, &mut 0, &mut text);
        let parsed = ServerConfig::parse(&text);
        prop_assert!(parsed.is_ok(), "{text}\n{:?}", parsed.err());
        prop_assert_eq!(shape(parsed.unwrap().root()), tree);
    }

    #[test]
    fn no_text_panics_and_errors_name_a_line_of_it(text in config_like()) {
        if let Err(error) = ServerConfig::parse(&text) {
            let lines = text.split('\n').count();
            prop_assert!(error.line >= 1 && error.line <= lines, "{error} of {lines} lines");
            let prefix = format!("line {}: ", error.line);
            prop_assert!(error.to_string().starts_with(&prefix));
        }
    }

    /// The security rule: whatever the config says, a set/get command has
    /// only its own separators.
    #[test]
    fn info_commands_carry_only_their_own_separators(
        keys in prop::collection::vec(prop_oneof![
            3 => prop::sample::select(
                dynamic_table("7.1.0.23").unwrap().params.iter().map(|p| p.name).collect::<Vec<_>>()
            ).prop_map(str::to_string),
            1 => "[a-z.;=:-]{1,12}",
        ], 4),
        values in prop::collection::vec(word(), 4),
        ns in word(),
    ) {
        let render = |v: &[String]| format!(
            "service {{\n  {} {}\n}}\nnetwork {{\n  heartbeat {{\n    {} {}\n  }}\n}}\n\
             namespace {ns} {{\n  {} {}\n  storage-engine device {{\n    {} {}\n  }}\n}}\n",
            keys[0], v[0], keys[1], v[1], keys[2], v[2], keys[3], v[3]
        );
        let from = ServerConfig::parse(&render(&["1".into(), "1".into(), "1".into(), "1".into()]));
        let to = ServerConfig::parse(&render(&values));
        prop_assume!(from.is_ok() && to.is_ok());
        let change = plan_change(&from.unwrap(), &to.unwrap(), "7.1.0.23");
        for live in &change.live {
            let set = live.set_command();
            let get = live.get_command();
            let (semi, eq) = match &live.context {
                LiveContext::Service | LiveContext::Network => (1, 2),
                LiveContext::Namespace(_) => (2, 3),
            };
            let count = |s: &str, c: char| s.chars().filter(|x| *x == c).count();
            for (command, semi, eq) in [(&set, semi, eq), (&get, semi - 1, eq - 1)] {
                prop_assert_eq!(count(command, ':'), 1, "{}", command);
                prop_assert_eq!(count(command, ';'), semi, "{}", command);
                prop_assert_eq!(count(command, '='), eq, "{}", command);
                prop_assert!(!command.contains(['\n', '\t', ' ', '\r', '\0']), "{}", command);
            }
        }
    }
}
