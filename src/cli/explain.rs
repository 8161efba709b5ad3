//! `explain [LABEL]`: the label reference, from the code
//! ([`aerospike_swarm_operator::spec::reference`]), as `kubectl explain`.

use std::process::ExitCode;

use clap::Args;

use aerospike_swarm_operator::spec::reference::{self, Label};

use super::exit;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A label (aerospike.cluster.replicas), a YAML path (spec.replicas,
    /// status.phase) or a bare name (replicas, config-secret). Without
    /// it, every label is listed.
    pub label: Option<String>,
}

pub fn run(args: ExplainArgs) -> ExitCode {
    match args.label {
        None => {
            print!("{}", list());
            ExitCode::from(exit::OK)
        }
        Some(name) => match reference::lookup(&name) {
            Ok(found) => {
                let shown: Vec<String> = found.into_iter().map(one).collect();
                print!("{}", shown.join("\n"));
                ExitCode::from(exit::OK)
            }
            Err(unknown) => {
                eprintln!("error: {unknown}");
                eprintln!("known labels (or their spec./status. YAML names):");
                for label in Label::all() {
                    eprintln!("  {}", label.label());
                }
                ExitCode::from(exit::FAILURE)
            }
        },
    }
}

/// Backticks are for markdown; the terminal shows the text plain.
fn plain(text: &str) -> String {
    text.replace('`', "")
}

/// One label in full.
pub fn one(label: Label) -> String {
    let doc = label.doc();
    let mut out = format!("{}  (YAML {})\n", label.label(), label.yaml_path());
    match label {
        Label::Spec(_) => out.push_str("  Spec label: written by you.\n"),
        Label::Status(_) => out.push_str("  Status label: written by the operator only.\n"),
    }
    out.push_str(&format!("  Value:   {}\n", plain(&doc.type_)));
    if let Some(default) = doc.default {
        out.push_str(&format!("  Default: {}\n", plain(default)));
    }
    out.push('\n');
    for line in wrap(&plain(doc.meaning), 74) {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// Every label, one line each: label, YAML path, and the first sentence.
pub fn list() -> String {
    let width = Label::all().map(|l| l.label().len()).max().unwrap_or(0);
    let yaml_width = Label::all().map(|l| l.yaml_path().len()).max().unwrap_or(0);
    let mut out = String::from("Spec labels (aerospike.cluster.*, written by you):\n");
    let mut in_status = false;
    for label in Label::all() {
        if matches!(label, Label::Status(_)) && !in_status {
            in_status = true;
            out.push_str("\nStatus labels (aerospike.status.*, written by the operator):\n");
        }
        let meaning = plain(label.doc().meaning);
        let first = match meaning.find(". ") {
            Some(end) => &meaning[..=end],
            None => meaning.as_str(),
        };
        out.push_str(&format!(
            "  {:width$}  {:yaml_width$}  {}\n",
            label.label(),
            label.yaml_path(),
            first.trim_end()
        ));
    }
    out.push_str("\n`explain LABEL` shows one in full.\n");
    out
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use aerospike_swarm_operator::spec::Field;

    use super::*;

    #[test]
    fn one_label_shows_value_default_and_meaning() {
        let text = one(Label::Spec(Field::Replicas));
        assert!(text.starts_with("aerospike.cluster.replicas  (YAML spec.replicas)\n"));
        assert!(text.contains("  Value:   whole number, 1–256"));
        assert!(text.contains("  Default: required\n"));
        assert!(text.contains("Its presence makes the service managed."));
        assert!(!text.contains('`'));
    }

    #[test]
    fn the_list_names_every_label_once() {
        let text = list();
        for label in Label::all() {
            assert_eq!(
                text.matches(&format!("  {} ", label.label())).count(),
                1,
                "{}",
                label.label()
            );
        }
        assert!(text.contains("Status labels"));
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("", 5), Vec::<String>::new());
    }
}
