//! Docker's naming rules for the names a cluster spec refers to.
//!
//! Each check returns `Err(problem)` with a sentence fragment that completes
//! `<label>: "<value>" <problem>`, so callers can attach the label or YAML
//! field the value came from. The grammars are Docker's own (distribution's
//! `reference` package for images, swarmkit's controlapi for service and
//! secret names): a value these functions accept is one the engine accepts,
//! so a spec that validates here does not fail later at `docker service
//! create`.

/// Longest image tag Docker accepts.
const MAX_TAG_LEN: usize = 128;
/// Longest repository name (`[host[:port]/]path`) Docker accepts.
const MAX_REPOSITORY_LEN: usize = 255;
/// Longest swarm secret name.
const MAX_SECRET_LEN: usize = 64;
/// Longest swarm service name: it must fit in one DNS label.
const MAX_SERVICE_LEN: usize = 63;
/// Longest network name we accept (Docker itself stores up to 255 bytes).
const MAX_NETWORK_LEN: usize = 255;
/// Docker's limit on a volume name.
const MAX_VOLUME_LEN: usize = 255;

/// An image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("is empty; give a server version such as 7.1.0.0".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "is longer than the {MAX_TAG_LEN} characters an image tag may have"
        ));
    }
    let first = tag.chars().next().unwrap_or_default();
    if first == '.' || first == '-' {
        return Err(format!(
            "is not a valid image tag: it may not start with '{first}'"
        ));
    }
    if let Some(bad) = tag.chars().find(|c| !is_tag_char(*c)) {
        return Err(format!(
            "is not a valid image tag: {} is not allowed (use letters, digits, '_', '.', '-')",
            describe_char(bad)
        ));
    }
    Ok(())
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// An image repository without tag or digest: `[host[:port]/]path`, where
/// the path is lowercase components separated by `/`.
///
/// A tag or digest is refused with a hint, because the tag is what
/// `aerospike.cluster.version` controls: allowing it in two places would
/// leave the operator to guess which one wins.
pub fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("is empty; give an image repository such as aerospike/aerospike-server".into());
    }
    if repo.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "is longer than the {MAX_REPOSITORY_LEN} characters a repository name may have"
        ));
    }
    if repo.contains('@') {
        return Err(
            "contains a digest (@...); give the repository only: the tag comes from aerospike.cluster.version"
                .into(),
        );
    }
    let components: Vec<&str> = repo.split('/').collect();
    let last = components[components.len() - 1];
    if last.contains(':') {
        return Err(
            "contains a tag (:...); give the repository only: the tag comes from aerospike.cluster.version"
                .into(),
        );
    }
    // Docker's rule: the first component is a registry host when it looks
    // like one (has a '.' or ':' or is "localhost") and more follow.
    let (host, path) = if components.len() > 1 && looks_like_host(components[0]) {
        (Some(components[0]), &components[1..])
    } else {
        (None, &components[..])
    };
    if let Some(host) = host {
        check_host(host)?;
    }
    for component in path {
        check_path_component(component)?;
    }
    Ok(())
}

fn looks_like_host(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "has an invalid registry port {port:?}: it must be a number"
            ));
        }
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || !name.split('.').all(valid_label) {
        return Err(format!("has an invalid registry host {name:?}"));
    }
    Ok(())
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` where a separator is `.`, `_`, `__`
/// or one or more `-`.
fn check_path_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err("has an empty path component (a leading, trailing or doubled '/')".into());
    }
    if let Some(bad) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        let hint = if bad.is_ascii_uppercase() {
            " (repository names are lowercase)"
        } else {
            ""
        };
        return Err(format!(
            "is not a valid image repository: {} is not allowed in {component:?}{hint}",
            describe_char(bad)
        ));
    }
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "is not a valid image repository: {component:?} must start and end with a letter or digit"
        ));
    }
    // Walk the separators between alphanumeric runs.
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!(
                "is not a valid image repository: separator {sep:?} in {component:?} is not allowed (use '.', '_', '__' or dashes)"
            ));
        }
    }
    Ok(())
}

/// The repository part of a full image reference, dropping any tag and
/// digest: `registry:5000/a/b:7.1@sha256:..` gives `registry:5000/a/b`.
///
/// Swarm pins the digest into a service's image when it resolves it, so a
/// service's current image usually carries both.
pub fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rfind(':') {
        // A ':' after the last '/' starts the tag; one before it belongs to
        // a registry port.
        Some(colon) if colon > without_digest.rfind('/').unwrap_or(0) => &without_digest[..colon],
        _ => without_digest,
    }
}

/// A swarm secret name: `[a-zA-Z0-9]+([a-zA-Z0-9_.-]*[a-zA-Z0-9])?`, at most
/// 64 characters (swarmkit's rule).
pub fn check_secret_name(name: &str) -> Result<(), String> {
    check_simple_name(name, "secret", MAX_SECRET_LEN, &['_', '.', '-'])
}

/// A swarm service name: one DNS label's worth of letters, digits, `-` and
/// `_`, starting and ending with a letter or digit, at most 63 characters.
pub fn check_service_name(name: &str) -> Result<(), String> {
    check_simple_name(name, "service", MAX_SERVICE_LEN, &['_', '-'])
}

/// A Docker network name or ID.
pub fn check_network_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; give the name of an overlay network".into());
    }
    if name.len() > MAX_NETWORK_LEN {
        return Err(format!(
            "is longer than the {MAX_NETWORK_LEN} characters a network name may have"
        ));
    }
    let first = name.chars().next().unwrap_or_default();
    if !first.is_ascii_alphanumeric() {
        return Err("is not a valid network name: it must start with a letter or digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "is not a valid network name: {} is not allowed",
            describe_char(bad)
        ));
    }
    Ok(())
}

/// A Docker volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (the engine's rule
/// for named volumes: at least two characters), at most 255.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; give the name of a volume".into());
    }
    if name.len() > MAX_VOLUME_LEN {
        return Err(format!(
            "is longer than the {MAX_VOLUME_LEN} characters a volume name may have"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("is not a valid volume name: it must start with a letter or digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "is not a valid volume name: {} is not allowed",
            describe_char(bad)
        ));
    }
    if name.len() < 2 {
        return Err("is not a valid volume name: Docker wants at least two characters".into());
    }
    Ok(())
}

/// A volume driver: `local`, or a plugin reference such as
/// `vieux/sshfs:latest`.
pub fn check_volume_driver(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty; leave it out for the engine's local driver".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("is not a valid driver name: it must start with a letter or digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/')))
    {
        return Err(format!(
            "is not a valid driver name: {} is not allowed",
            describe_char(bad)
        ));
    }
    Ok(())
}

fn check_simple_name(
    name: &str,
    what: &str,
    max: usize,
    separators: &[char],
) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("is empty; give a {what} name"));
    }
    if name.len() > max {
        return Err(format!(
            "is longer than the {max} characters a {what} name may have"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || separators.contains(c)))
    {
        return Err(format!(
            "is not a valid {what} name: {} is not allowed",
            describe_char(bad)
        ));
    }
    let alnum_at = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum_at(name.chars().next()) || !alnum_at(name.chars().last()) {
        return Err(format!(
            "is not a valid {what} name: it must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Names a character so that invisible ones show up in an error message.
fn describe_char(c: char) -> String {
    if c.is_whitespace() || c.is_control() {
        format!("the character {:?}", c.escape_default().to_string())
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_and_driver_names() {
        for ok in ["aerospike-data", "db_data.1", "a1"] {
            assert_eq!(check_volume_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a", "-data", "data/x", "da ta", "é1"] {
            assert!(check_volume_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_volume_name(&"v".repeat(256))
            .unwrap_err()
            .contains("255"));
        for ok in ["local", "vieux/sshfs:latest", "rexray/ebs"] {
            assert_eq!(check_volume_driver(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-x", "lo cal", "a,b"] {
            assert!(check_volume_driver(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags() {
        for ok in ["7.1.0.0", "ee-7.1.0.0", "latest", "_x", "A-b_c.d"] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        assert!(check_tag(&"1".repeat(128)).is_ok());
        for bad in ["", ".7", "-7", "7.1 ", "7/1", "7:1", "é"] {
            assert!(check_tag(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_tag(&"1".repeat(129)).unwrap_err().contains("128"));
    }

    #[test]
    fn repositories() {
        for ok in [
            "aerospike",
            "aerospike/aerospike-server",
            "aerospike/aerospike-server-enterprise",
            "localhost/aerospike",
            "localhost:5000/aerospike/server",
            "registry.example.com/team/a__b",
            "a/b.c_d--e/f",
        ] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        let tag = check_repository("aerospike/aerospike-server:7.1.0.0").unwrap_err();
        assert!(
            tag.contains("tag") && tag.contains("aerospike.cluster.version"),
            "{tag}"
        );
        assert!(check_repository("aerospike:7").unwrap_err().contains("tag"));
        assert!(check_repository("a/b@sha256:abc")
            .unwrap_err()
            .contains("digest"));
        assert!(check_repository("aerospike/Server")
            .unwrap_err()
            .contains("lowercase"));
        for bad in [
            "", "/a", "a/", "a//b", "a/-b", "a/b-", "a/b..c", "a/b_-c", "a b", "host:x/a",
        ] {
            assert!(check_repository(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn repository_of_strips_tag_and_digest() {
        assert_eq!(
            repository_of("aerospike/aerospike-server:7.1.0.0"),
            "aerospike/aerospike-server"
        );
        assert_eq!(
            repository_of("aerospike/aerospike-server:7.1.0.0@sha256:0123abcd"),
            "aerospike/aerospike-server"
        );
        assert_eq!(
            repository_of("localhost:5000/aerospike"),
            "localhost:5000/aerospike"
        );
        assert_eq!(
            repository_of("localhost:5000/aerospike:7"),
            "localhost:5000/aerospike"
        );
        assert_eq!(repository_of("aerospike:7"), "aerospike");
        assert_eq!(repository_of("aerospike"), "aerospike");
    }

    #[test]
    fn secret_service_network_names() {
        assert!(check_secret_name("aerospike.conf").is_ok());
        assert!(check_secret_name("a").is_ok());
        assert!(check_secret_name(".conf").is_err());
        assert!(check_secret_name("conf.").is_err());
        assert!(check_secret_name("a/b").is_err());
        assert!(check_secret_name(&"a".repeat(65)).is_err());

        assert!(check_service_name("aerospike_aerospikedb").is_ok());
        assert!(check_service_name("aerospikedb").is_ok());
        assert!(check_service_name("aerospike.db").is_err());
        assert!(check_service_name("-db").is_err());
        assert!(check_service_name(&"a".repeat(64)).is_err());

        assert!(check_network_name("aerospike_net").is_ok());
        assert!(check_network_name("my.net-1").is_ok());
        assert!(check_network_name("_net").is_err());
        assert!(check_network_name("a net").unwrap_err().contains("\" \""));
    }
}
