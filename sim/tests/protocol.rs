//! Protocol fidelity over real sockets: byte-exact frames built by hand from
//! the published format, refused frames, the asinfo subcommand, and config
//! errors from the binary.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::{binary, free_port, scratch_dir, Options, SimNode};

fn connect(node: &SimNode) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", node.service_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Reads one reply frame: header checked byte by byte, body returned.
fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 2, "version");
    assert_eq!(header[1], 1, "type info");
    let mut len = [0u8; 8];
    len[2..].copy_from_slice(&header[2..]);
    let mut body = vec![0u8; u64::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// Whether the server closed the connection (read returns 0 bytes).
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn golden_request_and_reply_frames() {
    let node = SimNode::start(&Options {
        build: Some("6.4.0.7"),
        ..Options::default()
    });
    let id = node.info("node");
    let mut stream = connect(&node);
    // version 2, type 1, length 11 (48-bit big-endian), "node\nbuild\n".
    let mut frame = vec![2, 1, 0, 0, 0, 0, 0, 11];
    frame.extend_from_slice(b"node\nbuild\n");
    stream.write_all(&frame).unwrap();
    let expected = format!("node\t{id}\nbuild\t6.4.0.7\n");
    assert_eq!(read_frame(&mut stream), expected.as_bytes());

    // Same connection, next request: the reply length field is exact.
    stream.write_all(&[2, 1, 0, 0, 0, 0, 0, 8]).unwrap();
    stream.write_all(b"edition\n").unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let body = b"edition\tAerospike Community Edition\n";
    let mut want = [2u8, 1, 0, 0, 0, 0, 0, 0];
    want[7] = body.len() as u8;
    assert_eq!(header, want);
    let mut got = vec![0u8; body.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(&got, body);
}

#[test]
fn an_empty_request_gets_the_default_set() {
    let node = SimNode::start(&Options::default());
    let mut stream = connect(&node);
    stream.write_all(&[2, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    let body = String::from_utf8(read_frame(&mut stream)).unwrap();
    let names: Vec<&str> = body
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, aerospike_sim::info::DEFAULT_COMMANDS);
}

#[test]
fn bad_frames_close_the_connection_and_the_server_keeps_serving() {
    let node = SimNode::start(&Options::default());
    let bad_frames: [&[u8]; 4] = [
        &[3, 1, 0, 0, 0, 0, 0, 5, b'n', b'o', b'd', b'e', b'\n'], // wrong version
        &[2, 3, 0, 0, 0, 0, 0, 5, b'n', b'o', b'd', b'e', b'\n'], // AS_MSG too short for its header
        &[2, 1, 0, 0, 0, 0x10, 0, 1],                             // 1 MiB + 1 announced
        &[2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],              // 2^48 - 1 announced
    ];
    for frame in bad_frames {
        let mut stream = connect(&node);
        stream.write_all(frame).unwrap();
        assert!(closed(&mut stream), "frame {frame:?} was not refused");
    }
    let errors = node.events("protocol_error");
    assert_eq!(errors.len(), 4, "{errors:?}");
    // Garbage that never completes a header just sits until the peer leaves.
    let mut stream = connect(&node);
    stream.write_all(b"GET").unwrap();
    drop(stream);
    assert_eq!(node.info("status"), "ok");
    assert!(node.events("info").iter().any(|e| e["command"] == "status"));
}

#[test]
fn asinfo_subcommand_prints_the_value_and_fails_on_connection_errors() {
    let node = SimNode::start(&Options::default());
    let output = Command::new(binary())
        .args(["asinfo", "-h", "127.0.0.1", "-p"])
        .arg(node.service_port.to_string())
        .args(["-v", "build"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "7.1.0.0\n");
    let output = Command::new(binary())
        .args(["asinfo", "-p"])
        .arg(node.service_port.to_string())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("statistics\tcluster_size="));
    let nobody = free_port();
    let output = Command::new(binary())
        .args(["asinfo", "-p"])
        .arg(nobody.to_string())
        .args(["-v", "node", "-t", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

#[test]
fn config_errors_name_the_line_and_exit_non_zero() {
    let dir = scratch_dir();
    let path = dir.join("aerospike.conf");
    let text =
        support::config_text(free_port(), free_port(), 2).replace("interval 50", "interval soon");
    std::fs::write(&path, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("interval soon"))
        .unwrap()
        + 1;
    let output = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    let event: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(event["event"], "config_error");
    assert_eq!(event["line"], line);

    let output = Command::new(binary())
        .arg("--config-file")
        .arg(dir.join("missing.conf"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let output = Command::new(binary())
        .env("AEROSPIKE_SIM_EDITION", "platinum")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("platinum"));
}

#[test]
fn a_config_without_cluster_name_is_refused_as_7_x_does() {
    let dir = scratch_dir();
    let path = dir.join("aerospike.conf");
    let text =
        support::config_text(free_port(), free_port(), 2).replace("  cluster-name sim-test\n", "");
    assert!(!text.contains("cluster-name"));
    std::fs::write(&path, &text).unwrap();
    let output = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must configure cluster-name"), "{stderr}");
    let event: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(event["event"], "config_error");
    assert_eq!(event["message"], "must configure cluster-name");
    // An unknown interface name is refused at start-up too.
    let text = support::config_text(free_port(), free_port(), 2).replacen(
        "address 127.0.0.1",
        "address nosuch0",
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let output = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .env("AEROSPIKE_SIM_INTERFACES", "eth0=127.0.1.1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nosuch0"));
}

/// The sweep of dead test processes' directories removes only names of
/// the form `aerospike-sim-test-<pid>-<n>` (here, not in `support`, which
/// every test binary includes: it runs once).
#[test]
fn scratch_dir_names_are_recognised_and_nothing_else() {
    use support::scratch_dir_pid;
    assert_eq!(scratch_dir_pid("aerospike-sim-test-9935-3"), Some(9935));
    assert_eq!(scratch_dir_pid("aerospike-sim-test-ports"), None);
    assert_eq!(scratch_dir_pid("aerospike-sim-test-12-x"), None);
    assert_eq!(scratch_dir_pid("other-9935-3"), None);
}
