//! The validation rules of a cluster spec, and the errors they report.
//!
//! Labels and YAML documents both arrive here as text per [`Field`], so one
//! set of rules serves both; only the [`Location`] an error points at
//! differs. Every problem is collected rather than stopping at the first,
//! because a user fixing a spec wants the whole list at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::names;
use super::{ClusterSpec, Edition, Field, StorageSpec, COMMUNITY_MAX_REPLICAS, MAX_REPLICAS};

/// Where a problem is: a service label, or a field of a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A service label key, e.g. `aerospike.cluster.replicas`.
    Label(String),
    /// A field of a YAML document, e.g. `spec.replicas`, with the label it
    /// maps to when there is one.
    Field {
        /// Dotted path from the document root.
        path: String,
        /// The service label this field becomes, if any.
        label: Option<String>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Label(key) => f.write_str(&printable(key)),
            Location::Field {
                path,
                label: Some(label),
            } => write!(f, "{} (label {})", printable(path), printable(label)),
            Location::Field { path, label: None } => f.write_str(&printable(path)),
        }
    }
}

/// A name as is, or quoted and escaped when it holds control characters:
/// a label key with a newline must not split an error across lines.
fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        format!("{name:?}").into()
    } else {
        name.into()
    }
}

/// One thing wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The label or YAML field at fault.
    pub location: Location,
    /// The offending value as written, if there was one.
    pub value: Option<String>,
    /// What is wrong, phrased to follow the quoted value.
    pub problem: String,
}

/// Values longer than this are cut in messages: a label can hold kilobytes.
const MAX_SHOWN_VALUE: usize = 80;

impl SpecError {
    /// Whether this error points at `name`: a label key, or a YAML path.
    pub fn names(&self, name: &str) -> bool {
        match &self.location {
            Location::Label(key) => key == name,
            Location::Field { path, label } => path == name || label.as_deref() == Some(name),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(value) = &self.value {
            if value.chars().count() > MAX_SHOWN_VALUE {
                let cut: String = value.chars().take(MAX_SHOWN_VALUE).collect();
                write!(f, "{:?}... ", cut)?;
            } else {
                write!(f, "{value:?} ")?;
            }
        }
        f.write_str(&self.problem)
    }
}

/// Every problem found in one spec; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(Vec<SpecError>);

impl SpecErrors {
    /// Wraps a list of errors. Callers only build one when something is
    /// wrong; an empty list would claim failure without saying why.
    pub(crate) fn new(errors: Vec<SpecError>) -> SpecErrors {
        debug_assert!(!errors.is_empty(), "SpecErrors built from no errors");
        SpecErrors(errors)
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }

    /// Whether any error points at `name` (a label key or a YAML path).
    pub fn names(&self, name: &str) -> bool {
        self.0.iter().any(|e| e.names(name))
    }
}

impl fmt::Display for SpecErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl IntoIterator for SpecErrors {
    type Item = SpecError;
    type IntoIter = std::vec::IntoIter<SpecError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Builds a [`ClusterSpec`] from the text of each field that was given.
///
/// `unreadable` lists fields that were given but could not even be turned
/// into text (a YAML list, say) and were reported already: they are
/// neither "missing" nor checked against other fields. `at` says where
/// each field lives (label or YAML path) for error messages;
/// `current_image` is the service's image, which decides the default
/// repository and hence the inferred edition. Problems are pushed onto
/// `errors`; a spec comes back only when none were found here.
pub(crate) fn build_spec(
    raw: &BTreeMap<Field, String>,
    unreadable: &BTreeSet<Field>,
    current_image: Option<&str>,
    at: &dyn Fn(Field) -> Location,
    errors: &mut Vec<SpecError>,
) -> Option<ClusterSpec> {
    let before = errors.len();
    let mut fields = Fields {
        raw,
        unreadable,
        at,
        errors,
    };

    let replicas = fields.required(
        Field::Replicas,
        "is required: it gives the number of Aerospike nodes (1 to 256), and only a service that has it is managed",
        parse_replicas,
    );
    let version = fields.required(
        Field::Version,
        "is required: it gives the server version, used as the image tag (e.g. 7.1.0.0)",
        |v| names::check_tag(v).map(|()| v.to_string()),
    );
    let image = fields.optional(Field::Image, text(names::check_repository));
    let config_secret = fields.optional(Field::ConfigSecret, text(names::check_secret_name));
    let config_object = fields.optional(Field::ConfigObject, text(names::check_secret_name));
    let config_target = fields.optional(Field::ConfigTarget, text(check_absolute_path));
    if fields.given(Field::ConfigSecret) && fields.given(Field::ConfigObject) {
        fields.fail(
            Field::ConfigObject,
            format!(
                "is set and so is {}: the config comes from one of them; keep the config object \
                 (readable: checked before it rolls, dynamic changes applied live) or the secret \
                 (for a config that holds credentials)",
                Field::ConfigSecret.label()
            ),
        );
    }
    let paused = fields.optional(Field::Paused, parse_bool);
    let heartbeat_port = fields.optional(Field::HeartbeatPort, parse_port);
    let service_port = fields.optional(Field::ServicePort, parse_port);
    let fabric_port = fields.optional(Field::FabricPort, parse_port);
    let network = fields.optional(Field::Network, text(names::check_network_name));
    let edition = fields.optional(Field::Edition, parse_edition);
    let storage = storage(&mut fields, config_target.as_deref());

    // Compare ports only when every given one is valid: a collision with
    // a port that is wrong anyway would be noise.
    let ports = [
        (
            Field::ServicePort,
            service_port,
            super::DEFAULT_SERVICE_PORT,
        ),
        (Field::FabricPort, fabric_port, super::DEFAULT_FABRIC_PORT),
        (
            Field::HeartbeatPort,
            heartbeat_port,
            super::DEFAULT_HEARTBEAT_PORT,
        ),
    ];
    if ports
        .iter()
        .all(|(field, parsed, _)| parsed.is_some() || !fields.given(*field))
    {
        check_ports_distinct(ports, &mut fields);
    }

    if replicas.is_some_and(|r| r > COMMUNITY_MAX_REPLICAS) {
        check_community_cap(
            image.as_deref(),
            version.as_deref(),
            edition,
            current_image,
            &mut fields,
        );
    }

    if errors.len() > before {
        return None;
    }
    Some(ClusterSpec {
        replicas: replicas?,
        version: version?,
        image,
        config_secret,
        config_object,
        config_target,
        paused,
        heartbeat_port,
        service_port,
        fabric_port,
        network,
        edition,
        storage,
    })
}

/// The storage fields: a volume, and where and how it is mounted. Only
/// the volume enables storage, so the others without it are an error
/// rather than silently nothing. `config_target` is the checked config
/// target, if given: the data volume must not hide the config secret.
fn storage(fields: &mut Fields<'_>, config_target: Option<&str>) -> Option<StorageSpec> {
    let volume = fields.optional(Field::StorageVolume, text(names::check_volume_name));
    let path = fields.optional(Field::StoragePath, text(check_mount_path));
    let driver = fields.optional(Field::StorageDriver, text(names::check_volume_driver));
    let driver_options = fields.optional(Field::StorageDriverOptions, parse_driver_options);
    if !fields.given(Field::StorageVolume) {
        for field in [
            Field::StoragePath,
            Field::StorageDriver,
            Field::StorageDriverOptions,
        ] {
            if fields.given(field) {
                fields.fail(
                    field,
                    format!(
                        "is set but {} is not: name the volume to give the cluster storage, or \
                         leave this out",
                        Field::StorageVolume.label()
                    ),
                );
            }
        }
        return None;
    }
    if let Some(path) = &path {
        let config = config_target.unwrap_or(super::DEFAULT_CONFIG_TARGET);
        let within = |inner: &str, outer: &str| {
            inner == outer || inner.starts_with(&format!("{}/", outer.trim_end_matches('/')))
        };
        if within(config, path) {
            fields.fail(
                Field::StoragePath,
                format!(
                    "would hide the config secret mounted at {config}; mount the data volume \
                     elsewhere (the default is {})",
                    super::DEFAULT_STORAGE_PATH
                ),
            );
            return None;
        }
    }
    let given_and_bad = |field: Field, parsed: bool| fields.given(field) && !parsed;
    if given_and_bad(Field::StoragePath, path.is_some())
        || given_and_bad(Field::StorageDriver, driver.is_some())
        || given_and_bad(Field::StorageDriverOptions, driver_options.is_some())
    {
        return None;
    }
    Some(StorageSpec {
        volume: volume?,
        path,
        driver,
        driver_options: driver_options.unwrap_or_default(),
    })
}

fn text(check: fn(&str) -> Result<(), String>) -> impl Fn(&str) -> Result<String, String> {
    move |v: &str| check(v).map(|()| v.to_string())
}

/// A mount target: an absolute directory path. The root, `..`, control
/// characters and the `,` and `:` of Docker's mount syntax are refused.
fn check_mount_path(value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err("is not an absolute path (it must start with '/')".into());
    }
    if value.trim_end_matches('/').is_empty() {
        return Err("is the root directory; give the directory the data goes in".into());
    }
    if value.split('/').any(|part| part == "..") {
        return Err("may not contain '..'".into());
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == ',' || c == ':')
    {
        return Err("contains a control character, ',' or ':'".into());
    }
    Ok(())
}

/// `key=value,key=value`: keys non-empty, without whitespace, `=` or `,`;
/// values without `,` (they cannot be told from the separator); each key
/// once.
pub(crate) fn parse_driver_options(value: &str) -> Result<BTreeMap<String, String>, String> {
    if value.is_empty() {
        return Err("is empty; give key=value pairs separated by commas, or leave it out".into());
    }
    let mut options = BTreeMap::new();
    for pair in value.split(',') {
        let Some((key, option)) = pair.split_once('=') else {
            return Err(format!(
                "has {pair:?}, which is not key=value; give key=value pairs separated by commas \
                 (a value cannot contain a comma)"
            ));
        };
        check_option_key(key)?;
        if options
            .insert(key.to_string(), option.to_string())
            .is_some()
        {
            return Err(format!("gives the option {key:?} twice"));
        }
    }
    Ok(options)
}

/// A driver option's name: non-empty, without whitespace, `=` or `,`.
pub(crate) fn check_option_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("has an option with an empty name".into());
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '=' || c == ',')
    {
        return Err(format!(
            "has the option name {key:?}, which contains whitespace, '=' or ','"
        ));
    }
    Ok(())
}

/// The fields being checked, and where their problems go.
struct Fields<'a> {
    raw: &'a BTreeMap<Field, String>,
    unreadable: &'a BTreeSet<Field>,
    at: &'a dyn Fn(Field) -> Location,
    errors: &'a mut Vec<SpecError>,
}

impl Fields<'_> {
    /// Whether the user gave `field` at all, readable or not.
    fn given(&self, field: Field) -> bool {
        self.raw.contains_key(&field) || self.unreadable.contains(&field)
    }

    fn fail(&mut self, field: Field, problem: String) {
        self.errors.push(SpecError {
            location: (self.at)(field),
            value: self.raw.get(&field).cloned(),
            problem,
        });
    }

    /// The parsed value of an optional field; `None` when it is absent or
    /// invalid (the problem is recorded).
    fn optional<T>(
        &mut self,
        field: Field,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.raw.get(&field)?;
        parse(value)
            .map_err(|problem| self.fail(field, problem))
            .ok()
    }

    /// Like [`Fields::optional`], and a missing field is a problem too.
    fn required<T>(
        &mut self,
        field: Field,
        missing: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.given(field) {
            self.fail(field, missing.to_string());
        }
        self.optional(field, parse)
    }
}

/// Called when more than [`COMMUNITY_MAX_REPLICAS`] nodes are asked for:
/// Community Edition builds refuse a ninth node, so those would never
/// join. The edition is the declared one, else guessed from the image.
fn check_community_cap(
    image: Option<&str>,
    version: Option<&str>,
    edition: Option<Edition>,
    current_image: Option<&str>,
    fields: &mut Fields<'_>,
) {
    let repository = match image {
        Some(image) => image,
        None => current_image
            .filter(|c| !c.is_empty())
            .map_or(super::DEFAULT_REPOSITORY, names::repository_of),
    };
    let version = version.unwrap_or("");
    let why = match edition {
        Some(Edition::Enterprise) => return,
        Some(Edition::Community) => "the spec says edition community".to_string(),
        None if Edition::infer(repository, version) == Edition::Enterprise => return,
        None => format!(
            "the edition is inferred from the image {repository}:{version}; set {}=enterprise if it is an Enterprise image",
            super::EDITION
        ),
    };
    fields.fail(
        Field::Replicas,
        format!(
            "is more than {COMMUNITY_MAX_REPLICAS}: Community Edition caps a cluster at {COMMUNITY_MAX_REPLICAS} nodes ({why})"
        ),
    );
}

/// The service, fabric and heartbeat ports must all differ (defaults
/// included): Aerospike binds each one separately and will not start if
/// two collide. The error goes to a port the user set, not a default.
fn check_ports_distinct(ports: [(Field, Option<u16>, u16); 3], fields: &mut Fields<'_>) {
    for i in 0..ports.len() {
        for j in (i + 1)..ports.len() {
            let (a, a_set, a_default) = ports[i];
            let (b, b_set, b_default) = ports[j];
            if a_set.unwrap_or(a_default) != b_set.unwrap_or(b_default) {
                continue;
            }
            // Blame the one the user wrote; when both were, the later one.
            let (blamed, other, other_set) = if b_set.is_some() {
                (b, a, a_set)
            } else {
                (a, b, b_set)
            };
            let other = if other_set.is_some() {
                other.label().to_string()
            } else {
                format!("the default of {}", other.label())
            };
            fields.fail(
                blamed,
                format!("is the same port as {other}; the service, fabric and heartbeat ports must all differ"),
            );
        }
    }
}

/// Replicas: a whole number from 1 to [`MAX_REPLICAS`].
fn parse_replicas(value: &str) -> Result<u16, String> {
    let n = whole_number(value)?;
    if n < 1 {
        return Err("must be at least 1".into());
    }
    if n > i64::from(MAX_REPLICAS) {
        return Err(format!(
            "is more than {MAX_REPLICAS}, the most nodes an Aerospike cluster can have"
        ));
    }
    u16::try_from(n).map_err(|_| "is out of range".to_string())
}

/// A TCP port: a whole number from 1 to 65535.
fn parse_port(value: &str) -> Result<u16, String> {
    let n = whole_number(value)?;
    match u16::try_from(n) {
        Ok(port) if port >= 1 => Ok(port),
        _ => Err("is not a port number: it must be from 1 to 65535".into()),
    }
}

/// Parses `-?[0-9]+`, saturating on overflow so that a huge number is
/// reported as out of range rather than as "not a number".
fn whole_number(value: &str) -> Result<i64, String> {
    if value.is_empty() {
        return Err("is empty; give a whole number".into());
    }
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let hint = if value.trim() != value {
            " (remove the surrounding spaces)"
        } else {
            ""
        };
        return Err(format!("is not a whole number{hint}"));
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Ok(if negative { -magnitude } else { magnitude })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn parse_edition(value: &str) -> Result<Edition, String> {
    match value {
        "community" => Ok(Edition::Community),
        "enterprise" => Ok(Edition::Enterprise),
        _ => Err("must be community or enterprise".into()),
    }
}

/// The config target must be an absolute path inside the container; swarm
/// mounts secrets only at absolute paths.
fn check_absolute_path(value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err("is not an absolute path (it must start with '/')".into());
    }
    if value.ends_with('/') {
        return Err("names a directory; give the path of the file itself".into());
    }
    if value.split('/').any(|part| part == "..") {
        return Err("may not contain '..'".into());
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    Ok(())
}

/// The candidate closest to `unknown`, if one is close enough to be a
/// likely typo. Case, `-`, `_` and `.` are ignored first, so that
/// `configSecret` suggests `config-secret`.
pub(crate) fn suggest<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let normalise = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = normalise(unknown);
    // Allow about one edit per four characters, at least one, at most three.
    let budget = (wanted.len() / 4).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&wanted, &normalise(c)), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_at(field: Field) -> Location {
        Location::Label(field.label().to_string())
    }

    fn build(
        pairs: &[(Field, &str)],
        current_image: Option<&str>,
    ) -> Result<ClusterSpec, Vec<SpecError>> {
        let raw = pairs.iter().map(|(f, v)| (*f, v.to_string())).collect();
        let mut errors = Vec::new();
        build_spec(
            &raw,
            &BTreeSet::new(),
            current_image,
            &label_at,
            &mut errors,
        )
        .ok_or(errors)
    }

    fn messages(errors: &[SpecError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn replicas_rules() {
        for (value, expected) in [
            (
                "abc",
                r#"aerospike.cluster.replicas: "abc" is not a whole number"#,
            ),
            ("0", r#"aerospike.cluster.replicas: "0" must be at least 1"#),
            (
                "-3",
                r#"aerospike.cluster.replicas: "-3" must be at least 1"#,
            ),
            (
                "2.5",
                r#"aerospike.cluster.replicas: "2.5" is not a whole number"#,
            ),
            (
                " 3",
                r#"aerospike.cluster.replicas: " 3" is not a whole number (remove the surrounding spaces)"#,
            ),
            (
                "257",
                r#"aerospike.cluster.replicas: "257" is more than 256, the most nodes an Aerospike cluster can have"#,
            ),
            ("99999999999999999999999", "is more than 256"),
        ] {
            let errors = build(
                &[(Field::Replicas, value), (Field::Version, "ee-7.1.0.0")],
                None,
            )
            .unwrap_err();
            let shown = messages(&errors);
            assert_eq!(shown.len(), 1, "{shown:?}");
            assert!(shown[0].contains(expected), "{value}: {shown:?}");
        }
        assert_eq!(
            build(&[(Field::Replicas, "256"), (Field::Version, "ee-7")], None)
                .unwrap()
                .replicas,
            256
        );
        assert_eq!(
            build(&[(Field::Replicas, "1"), (Field::Version, "7")], None)
                .unwrap()
                .replicas,
            1
        );
    }

    #[test]
    fn community_edition_caps_at_eight() {
        assert!(build(&[(Field::Replicas, "8"), (Field::Version, "7.1.0.0")], None).is_ok());
        let errors =
            build(&[(Field::Replicas, "9"), (Field::Version, "7.1.0.0")], None).unwrap_err();
        let shown = messages(&errors).join("\n");
        assert!(shown.starts_with(r#"aerospike.cluster.replicas: "9" is more than 8: Community Edition caps a cluster at 8 nodes"#), "{shown}");
        assert!(
            shown.contains("aerospike/aerospike-server:7.1.0.0"),
            "{shown}"
        );

        // Enterprise, by tag, repository, current image or declaration.
        assert!(build(
            &[(Field::Replicas, "9"), (Field::Version, "ee-7.1.0.0")],
            None
        )
        .is_ok());
        assert!(build(
            &[
                (Field::Replicas, "9"),
                (Field::Version, "7.1.0.0"),
                (Field::Image, "aerospike/aerospike-server-enterprise")
            ],
            None
        )
        .is_ok());
        assert!(build(
            &[(Field::Replicas, "9"), (Field::Version, "7.1.0.0")],
            Some("aerospike/aerospike-server-enterprise:7.0.0.0@sha256:00")
        )
        .is_ok());
        assert!(build(
            &[
                (Field::Replicas, "9"),
                (Field::Version, "7.1.0.0"),
                (Field::Edition, "enterprise")
            ],
            None
        )
        .is_ok());
        // A declared community edition wins over an enterprise-looking tag.
        let errors = build(
            &[
                (Field::Replicas, "9"),
                (Field::Version, "ee-7"),
                (Field::Edition, "community"),
            ],
            None,
        )
        .unwrap_err();
        assert!(messages(&errors)[0].contains("the spec says edition community"));
    }

    #[test]
    fn required_fields_and_all_errors_at_once() {
        let errors = build(
            &[
                (Field::HeartbeatPort, "0"),
                (Field::Paused, "yes"),
                (Field::Image, "a/b:7"),
            ],
            None,
        )
        .unwrap_err();
        let shown = messages(&errors);
        for expected in [
            "aerospike.cluster.replicas: is required",
            "aerospike.cluster.version: is required",
            r#"aerospike.cluster.heartbeat-port: "0" is not a port number"#,
            r#"aerospike.cluster.paused: "yes" must be true or false"#,
            r#"aerospike.cluster.image: "a/b:7" contains a tag"#,
        ] {
            assert!(
                shown.iter().any(|s| s.starts_with(expected)),
                "missing {expected:?} in {shown:?}"
            );
        }
        assert_eq!(shown.len(), 5, "{shown:?}");
    }

    #[test]
    fn optional_fields() {
        let ok = build(
            &[
                (Field::Replicas, "3"),
                (Field::Version, "7.1.0.0"),
                (Field::Image, "localhost:5000/aerospike"),
                (Field::ConfigSecret, "aerospike.conf"),
                (Field::ConfigTarget, "/etc/aerospike/aerospike.conf"),
                (Field::Paused, "true"),
                (Field::HeartbeatPort, "4002"),
                (Field::ServicePort, "4000"),
                (Field::FabricPort, "4001"),
                (Field::Network, "aerospike_net"),
                (Field::Edition, "community"),
            ],
            None,
        )
        .unwrap();
        assert!(ok.paused());
        assert_eq!(
            (ok.service_port(), ok.fabric_port(), ok.heartbeat_port()),
            (4000, 4001, 4002)
        );
        assert_eq!(ok.config_target(), "/etc/aerospike/aerospike.conf");

        for (field, bad) in [
            (Field::ConfigTarget, "run/secrets/x"),
            (Field::ConfigTarget, "/run/secrets/"),
            (Field::ConfigTarget, "/run/../etc/passwd"),
            (Field::ConfigSecret, "-x"),
            (Field::Network, ""),
            (Field::Edition, "Enterprise"),
            (Field::Paused, "TRUE"),
            (Field::ServicePort, "65536"),
            (Field::FabricPort, "port"),
            (Field::Version, ""),
            (Field::Version, "7.1 0"),
            (Field::Image, ""),
        ] {
            let errors = build(
                &[(Field::Replicas, "3"), (Field::Version, "7"), (field, bad)],
                None,
            )
            .unwrap_err();
            assert_eq!(errors.len(), 1, "{field:?}={bad:?}: {errors:?}");
            assert!(errors[0].names(field.label()), "{errors:?}");
            assert_eq!(errors[0].value.as_deref(), Some(bad));
        }
    }

    #[test]
    fn ports_must_differ() {
        let errors = build(
            &[
                (Field::Replicas, "3"),
                (Field::Version, "7"),
                (Field::HeartbeatPort, "3000"),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(
            messages(&errors),
            [
                r#"aerospike.cluster.heartbeat-port: "3000" is the same port as the default of aerospike.cluster.service-port; the service, fabric and heartbeat ports must all differ"#
            ]
        );
        let errors = build(
            &[
                (Field::Replicas, "3"),
                (Field::Version, "7"),
                (Field::ServicePort, "5000"),
                (Field::FabricPort, "5000"),
            ],
            None,
        )
        .unwrap_err();
        assert!(errors[0].names(super::super::FABRIC_PORT));
        assert!(errors[0]
            .problem
            .contains("aerospike.cluster.service-port;"));
        // Swapping two defaults around is fine.
        assert!(build(
            &[
                (Field::Replicas, "3"),
                (Field::Version, "7"),
                (Field::ServicePort, "3001"),
                (Field::FabricPort, "3000")
            ],
            None
        )
        .is_ok());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);
        let errors = build(&[(Field::Replicas, &long), (Field::Version, "7")], None).unwrap_err();
        let shown = errors[0].to_string();
        assert!(shown.len() < 200, "{shown}");
        assert!(
            shown.contains("...\" is not") || shown.contains("\"... is not"),
            "{shown}"
        );
    }

    #[test]
    fn suggestions() {
        let keys = [
            "replicas",
            "version",
            "config-secret",
            "heartbeat-port",
            "image",
        ];
        assert_eq!(suggest("replica", keys), Some("replicas"));
        assert_eq!(suggest("replcias", keys), Some("replicas"));
        assert_eq!(suggest("configSecret", keys), Some("config-secret"));
        assert_eq!(suggest("config_secret", keys), Some("config-secret"));
        assert_eq!(suggest("hearbeat-port", keys), Some("heartbeat-port"));
        assert_eq!(suggest("imag", keys), Some("image"));
        assert_eq!(suggest("owner", keys), None);
        assert_eq!(suggest("", keys), None);
    }

    #[test]
    fn edit_distances() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("flaw", "lawn"), 2);
    }
}
