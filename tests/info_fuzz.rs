//! Fuzzing of everything the operator reads from a node: the info frame
//! header, whole reply frames, every reply parser of
//! `aerospike::reply`, and a cold start's console lines — fed arbitrary
//! bytes and text, and replies that are almost right (a valid reply with
//! one part mangled). None may panic, and none may allocate more than its
//! input calls for: a length field can claim up to 256 TiB, and the
//! decoder must refuse it from the 8 header bytes alone.
//!
//! Allocation is measured, not assumed: this binary's global allocator
//! records the largest single allocation made on the calling thread while
//! a check runs (see [`Tracked`]).
//!
//! Case counts: `ASW_FUZZ_CASES` per property (default 2,000: the
//! property tier runs them in seconds); `scripts/bench-fuzz` runs a
//! million per property in release mode and prints cases, time and
//! failures. `ASW_FUZZ_TCP_CASES` (default 32) sets how many fuzzed
//! replies a loopback server sends a real `InfoClient`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use aerospike_swarm_operator::aerospike::frame::{
    decode_reply, parse_reply_body, FrameError, Header, DEFAULT_MAX_REPLY, HEADER_LEN,
};
use aerospike_swarm_operator::aerospike::reply::{self, NamespaceStats, NodeId, Statistics};
use aerospike_swarm_operator::aerospike::{coldstart, InfoClient, InfoError};

// --- allocation tracking ----------------------------------------------------

/// The system allocator, recording the largest single allocation made by a
/// thread while that thread tracks (thread-local, so tests running beside
/// each other do not count each other's allocations).
struct Tracked;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-locals may be gone while a thread exits.
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Tracked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Tracked = Tracked;

/// What `f` allocated on this thread: (largest single allocation, number
/// of allocations), and its result.
fn tracked<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    LARGEST.with(|l| l.set(0));
    COUNT.with(|c| c.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (LARGEST.with(Cell::get), COUNT.with(Cell::get), out)
}

/// The most any parser may allocate at once for an input of `len` bytes:
/// linear in the input (a list of one-byte entries costs a `String` header
/// per byte, doubled by growth), never in what the input claims.
fn allowed(len: usize) -> usize {
    64 * len + 1024
}

// --- the runner -------------------------------------------------------------

fn env_cases(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Ok(text) => text
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a count")),
        Err(_) => default,
    }
}

/// Runs `test` on `cases` values of `strategy`, failing with proptest's
/// shrunk counter-example; prints one line for scripts/bench-fuzz.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases,
        // The failing input is printed; nothing is written to the tree.
        failure_persistence: None,
        ..Config::default()
    };
    let started = Instant::now();
    let result = TestRunner::new(config).run(&strategy, test);
    let failures = u32::from(result.is_err());
    println!(
        "fuzz {name}: {cases} cases in {:.2} s, {failures} failures",
        started.elapsed().as_secs_f64()
    );
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

fn cases() -> u32 {
    env_cases("ASW_FUZZ_CASES", 2_000)
}

// --- headers ----------------------------------------------------------------

#[test]
fn every_header_decodes_to_its_length_or_a_typed_error_without_allocating() {
    let lengths = prop_oneof![
        any::<u64>(),
        Just(1u64 << 47),
        Just((1u64 << 48) - 1),
        Just(DEFAULT_MAX_REPLY as u64),
        Just(DEFAULT_MAX_REPLY as u64 + 1),
        0u64..64,
    ];
    let headers = prop_oneof![
        any::<[u8; 8]>(),
        // Right version and type: only the length varies.
        lengths.prop_map(|len| {
            let mut bytes = len.to_be_bytes();
            bytes[0] = 2;
            bytes[1] = 1;
            bytes
        }),
    ];
    let max = prop_oneof![Just(DEFAULT_MAX_REPLY), 0usize..128, Just(usize::MAX)];
    fuzz("header", cases(), (headers, max), |(bytes, max)| {
        let (largest, count, decoded) = tracked(|| Header::decode(bytes, max));
        prop_assert_eq!((largest, count), (0, 0), "Header::decode allocated");
        let len = u64::from_be_bytes(bytes) & ((1 << 48) - 1);
        let expected = if bytes[0] != 2 {
            Err(FrameError::WrongVersion(bytes[0]))
        } else if bytes[1] != 1 {
            Err(FrameError::WrongType(bytes[1]))
        } else if len > max as u64 {
            Err(FrameError::TooLarge { len, max })
        } else {
            Ok(Header { body_len: len })
        };
        prop_assert_eq!(decoded, expected);
        Ok(())
    });
}

#[test]
fn a_header_claiming_2_pow_47_bytes_is_refused_from_the_header_alone() {
    let huge = Header { body_len: 1 << 47 }.encode();
    let (largest, count, decoded) = tracked(|| Header::decode(huge, DEFAULT_MAX_REPLY));
    assert_eq!((largest, count), (0, 0));
    assert_eq!(
        decoded,
        Err(FrameError::TooLarge {
            len: 1 << 47,
            max: DEFAULT_MAX_REPLY
        })
    );
    // A whole frame that claims it, with a few body bytes: refused, and
    // nothing allocated in proportion to the claim.
    let mut frame = huge.to_vec();
    frame.extend_from_slice(b"node\tBB9\n");
    let (largest, _, decoded) = tracked(|| decode_reply(&frame, DEFAULT_MAX_REPLY));
    assert!(matches!(decoded, Err(FrameError::TooLarge { .. })));
    assert!(largest < 1024, "{largest}");
    // The control: the tracker sees an allocation the size of a body.
    let (largest, _, _) = tracked(|| vec![0u8; 1 << 20]);
    assert!(largest >= 1 << 20, "{largest}");
}

// --- whole frames -----------------------------------------------------------

/// What a successful decode promises: the header's length was the body's,
/// and every line is a command without tab or newline and a value without
/// newline.
fn check_decoded(frame: &[u8], lines: &[(String, String)]) -> Result<(), TestCaseError> {
    let announced = u64::from_be_bytes(frame[..HEADER_LEN].try_into().unwrap()) & ((1 << 48) - 1);
    prop_assert_eq!(announced as usize, frame.len() - HEADER_LEN);
    for (command, value) in lines {
        prop_assert!(!command.contains(['\t', '\n']));
        prop_assert!(!value.contains('\n'));
    }
    // Re-encoding the lines gives the body back.
    let body: String = lines.iter().map(|(c, v)| format!("{c}\t{v}\n")).collect();
    prop_assert_eq!(body.as_bytes(), &frame[HEADER_LEN..]);
    Ok(())
}

#[test]
fn arbitrary_bytes_as_a_reply_frame() {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // A valid header in front of arbitrary bytes.
        (0u64..300, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(len, body)| {
            let mut frame = Header { body_len: len }.encode().to_vec();
            frame.extend(body);
            frame
        }),
    ];
    fuzz("frame-bytes", cases(), bytes, |frame| {
        let (largest, _, decoded) = tracked(|| decode_reply(&frame, 4096));
        prop_assert!(largest <= allowed(frame.len()), "{largest} bytes at once");
        if let Ok(lines) = &decoded {
            check_decoded(&frame, lines)?;
        }
        let (largest, _, _) = tracked(|| parse_reply_body(&frame));
        prop_assert!(largest <= allowed(frame.len()));
        Ok(())
    });
}

/// A valid reply frame for `lines`.
fn reply_frame(lines: &[(String, String)]) -> Vec<u8> {
    let body: String = lines.iter().map(|(c, v)| format!("{c}\t{v}\n")).collect();
    let mut frame = Header {
        body_len: body.len() as u64,
    }
    .encode()
    .to_vec();
    frame.extend_from_slice(body.as_bytes());
    frame
}

/// One way to spoil a valid frame.
#[derive(Debug, Clone)]
enum Spoil {
    /// Replace byte `at` (modulo the length) with `byte`.
    Byte(usize, u8),
    /// Keep only the first `n` bytes.
    Truncate(usize),
    /// Add bytes after the frame.
    Append(Vec<u8>),
    /// Set the length field to this.
    Length(u64),
    /// Insert bytes into the body at `at`, leaving the length as it was.
    Insert(usize, Vec<u8>),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    let structural = proptest::collection::vec(
        prop::sample::select(vec![b'\t', b'\n', b'\r', 0, 0xff, 0xc3, b'=', b';']),
        1..4,
    );
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Spoil::Byte(at, b)),
        any::<usize>().prop_map(Spoil::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Spoil::Append),
        prop_oneof![
            Just(1u64 << 47),
            Just((1u64 << 48) - 1),
            0u64..400,
            any::<u64>()
        ]
        .prop_map(Spoil::Length),
        (any::<usize>(), structural).prop_map(|(at, bytes)| Spoil::Insert(at, bytes)),
    ]
}

/// `spoil` applied to `frame`; a spoil that needs a header or a byte the
/// (already truncated) frame lacks leaves it as it is.
fn apply(mut frame: Vec<u8>, spoil: &Spoil) -> Vec<u8> {
    let whole = frame.len() >= HEADER_LEN;
    match spoil {
        Spoil::Byte(..) if frame.is_empty() => {}
        Spoil::Length(_) | Spoil::Insert(..) if !whole => {}
        Spoil::Byte(at, byte) => {
            let at = at % frame.len();
            frame[at] = *byte;
        }
        Spoil::Truncate(n) => frame.truncate(n % (frame.len() + 1)),
        Spoil::Append(bytes) => frame.extend_from_slice(bytes),
        Spoil::Length(len) => {
            let mut head = (len & ((1 << 48) - 1)).to_be_bytes();
            head[..2].copy_from_slice(&frame[..2]);
            frame[..HEADER_LEN].copy_from_slice(&head);
        }
        Spoil::Insert(at, bytes) => {
            let at = HEADER_LEN + at % (frame.len() - HEADER_LEN + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
    }
    frame
}

fn reply_lines() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop::sample::select(vec![
                "node",
                "statistics",
                "service-clear-std",
                "peers-clear-std",
                "cluster-stable:size=3;ignore-migrations=false",
            ])
            .prop_map(str::to_string),
            "[ -~]{0,40}",
        ),
        0..6,
    )
}

#[test]
fn near_valid_reply_frames() {
    fuzz(
        "frame-near-valid",
        cases(),
        (reply_lines(), proptest::collection::vec(spoil(), 0..3)),
        |(lines, spoils)| {
            let valid = reply_frame(&lines);
            // The unspoilt frame decodes to its lines: the control.
            prop_assert_eq!(decode_reply(&valid, DEFAULT_MAX_REPLY), Ok(lines.clone()));
            let frame = spoils.iter().fold(valid, apply);
            let (largest, _, decoded) = tracked(|| decode_reply(&frame, DEFAULT_MAX_REPLY));
            prop_assert!(largest <= allowed(frame.len()), "{largest} bytes at once");
            if let Ok(lines) = &decoded {
                check_decoded(&frame, lines)?;
            }
            Ok(())
        },
    );
}

// --- reply values -------------------------------------------------------------

/// Every parser of `aerospike::reply`, on `value`; none may panic, and
/// each allocates at most linearly in the value.
fn every_parser(value: &str, sent: u32) -> Result<(), TestCaseError> {
    let limit = allowed(value.len());
    macro_rules! bounded {
        ($e:expr) => {{
            let (largest, _, out) = tracked(|| $e);
            prop_assert!(
                largest <= limit,
                "{} allocated {largest} bytes at once for {} input bytes",
                stringify!($e),
                value.len()
            );
            out
        }};
    }
    let error = bounded!(reply::server_error(value));
    // An error keeps the server's words, and says nothing it did not.
    if let Some(reply::ReplyError::Server { message, .. }) = &error {
        prop_assert!(value.contains(message.as_str()));
    }
    prop_assert_eq!(bounded!(reply::check(value)).is_err(), error.is_some());
    let _ = bounded!(reply::parse_map(value));
    let _ = bounded!(reply::parse_list(value));
    if let Ok(id) = bounded!(value.parse::<NodeId>()) {
        prop_assert!(id.0 != 0);
        prop_assert_eq!(u64::from_str_radix(value, 16).ok(), Some(id.0));
    }
    let _ = bounded!(Statistics::parse(value));
    let _ = bounded!(NamespaceStats::parse(value));
    let _ = bounded!(reply::parse_tip(value));
    if let Ok(outcome) = bounded!(reply::parse_tip_clear(value, sent)) {
        // Counts come from the reply, or are the count sent for `ok`.
        if value != "ok" {
            prop_assert!(value.contains(&outcome.cleared.to_string()));
        }
    }
    let _ = bounded!(reply::parse_ok(value));
    let _ = bounded!(reply::parse_recluster(value));
    let _ = bounded!(reply::parse_endpoints(value));
    let _ = bounded!(reply::parse_cluster_stable(value));
    if let Ok(peers) = bounded!(reply::parse_peers(value)) {
        prop_assert!(peers.len() <= value.len());
    }
    let _ = bounded!(reply::parse_service_addrs(value));
    let _ = bounded!(reply::parse_word(value, "a word"));
    let _ = bounded!(coldstart::read(value.split('\n')));
    Ok(())
}

#[test]
fn arbitrary_text_to_every_reply_parser() {
    let text = prop_oneof![
        "(?s).{0,200}",
        // The characters reply values are built from.
        "[0-9A-Fa-fx=;:,\\[\\] .-]{0,120}",
        // Error forms with anything after them.
        (
            prop::sample::select(vec![
                "ERROR", "error", "FAIL", "ERROR:", "error:", "ERROR::"
            ]),
            "(?s).{0,60}"
        )
            .prop_map(|(p, rest)| format!("{p}{rest}")),
    ];
    fuzz(
        "values-arbitrary",
        cases(),
        (text, any::<u32>()),
        |(value, sent)| every_parser(&value, sent),
    );
}

/// Valid values of every shape the operator parses.
const VALID: &[&str] = &[
    "cluster_size=3;cluster_key=5A1C0E2B9D74;cluster_generation=7;\
     cluster_principal=BB9040011AC4202;cluster_integrity=true;cluster_is_member=true;\
     cluster_duplicate_nodes=null;uptime=88;migrate_allowed=false;\
     migrate_partitions_remaining=312",
    "ns_cluster_size=2;effective_replication_factor=2;migrate_tx_partitions_remaining=10;\
     migrate_rx_partitions_remaining=20;unavailable_partitions=0;dead_partitions=4;\
     replication-factor=2;storage-engine=memory;pending_quiesce=true;effective_is_quiesced=false",
    "12,3000,[[BB9030011AC4202,,[10.0.1.6,10.215.0.3]],[BB9040011AC4202,,[10.0.1.7:3100,[fd00::7]:3100]]]",
    "3,3000,[[A1,tls1,[db1.example:3000,10.0.1.8]]]",
    "error: 0 cleared, 1 not found",
    "ERROR::1 cleared, 3 not found",
    "ERROR:7:unstable cluster",
    "ERROR::unstable-cluster",
    "5A1C0E2B9D74",
    "BB9020011AC4202",
    "10.0.1.5:3000;[::1]:3100",
    "10.0.1.5:3000,10.215.0.3:3000",
    "ignored-by-non-principal",
    "ok",
    "type=unknown",
    "{test} loaded: objects 1200 device-pcts (40)",
];

#[test]
fn near_valid_values_to_every_reply_parser() {
    let junk = prop_oneof![
        "[\\[\\],;:=]{1,4}",
        "[0-9A-Fa-f]{1,20}",
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just(String::new()),
        "(?s).{1,6}",
    ];
    fuzz(
        "values-near-valid",
        cases(),
        (
            prop::sample::select(VALID.to_vec()),
            proptest::collection::vec((any::<prop::sample::Index>(), 0usize..8, junk), 1..4),
            any::<u32>(),
        ),
        |(valid, edits, sent)| {
            let mut value = valid.to_string();
            for (at, cut, junk) in edits {
                // Edit at a character boundary: the values are text.
                let bounds: Vec<usize> = value
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([value.len()])
                    .collect();
                let start = bounds[at.index(bounds.len())];
                let end = bounds
                    .iter()
                    .copied()
                    .filter(|b| *b >= start)
                    .nth(cut)
                    .unwrap_or(value.len());
                value.replace_range(start..end, &junk);
            }
            every_parser(&value, sent)
        },
    );
}

#[test]
fn the_valid_values_parse() {
    // The control for the near-valid fuzzing: its starting points are what
    // the parsers accept, so the edits are what makes them fail.
    assert!(Statistics::parse(VALID[0]).is_ok());
    assert!(NamespaceStats::parse(VALID[1]).is_ok());
    assert_eq!(reply::parse_peers(VALID[2]).unwrap().len(), 2);
    assert_eq!(reply::parse_peers(VALID[3]).unwrap().len(), 1);
    assert!(reply::parse_tip_clear(VALID[4], 1).is_ok());
    assert!(reply::parse_tip_clear(VALID[5], 4).is_ok());
    assert!(reply::parse_cluster_stable(VALID[8]).is_ok());
    assert!(VALID[9].parse::<NodeId>().is_ok());
    assert_eq!(reply::parse_endpoints(VALID[10]).unwrap().len(), 2);
    assert_eq!(reply::parse_service_addrs(VALID[11]).unwrap().len(), 2);
    assert!(reply::parse_recluster(VALID[12]).is_ok());
    assert!(reply::parse_ok(VALID[13]).is_ok());
    assert!(coldstart::read([VALID[15]]).is_none());
}

// --- over a connection ---------------------------------------------------------

/// A loopback server that answers each connection's request with the next
/// of `replies`, then reads until the client hangs up; sends back, per
/// connection, whether the client closed it within 5 s.
async fn hostile_server(
    replies: Vec<Vec<u8>>,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for reply in replies {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; HEADER_LEN];
            stream.read_exact(&mut head).await.unwrap();
            let len = Header::decode(head, 1 << 16).unwrap().body_len as usize;
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await.unwrap();
            let _ = stream.write_all(&reply).await;
            let mut rest = Vec::new();
            let hung_up =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                    .await
                    .is_ok();
            let _ = closed.send(hung_up);
        }
    });
    (addr, seen)
}

/// The commands [`InfoClient::observe_node`] sends, in order.
const OBSERVE: [&str; 6] = [
    "node",
    "statistics",
    "service-clear-std",
    "peers-clear-std",
    "alumni-clear-std",
    "cluster-stable:size=3;ignore-migrations=false",
];

#[tokio::test]
async fn fuzzed_replies_over_a_connection_are_typed_errors_and_closed_connections() {
    let cases = env_cases("ASW_FUZZ_TCP_CASES", 32) as usize;
    // Replies that echo the commands with spoilt values or frames.
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let values = proptest::collection::vec("(?s).{0,40}", 6);
    let spoils = proptest::collection::vec(spoil(), 0..3);
    let mut replies = Vec::new();
    for _ in 0..cases {
        let values = values.new_tree(&mut runner).unwrap().current();
        let spoils = spoils.new_tree(&mut runner).unwrap().current();
        let lines: Vec<(String, String)> = OBSERVE
            .iter()
            .zip(values)
            .map(|(c, v)| (c.to_string(), v))
            .collect();
        replies.push(spoils.iter().fold(reply_frame(&lines), apply));
    }
    let (addr, mut closed) = hostile_server(replies).await;
    let client = InfoClient::new().with_total_timeout(Duration::from_millis(200));
    let mut misbehaviours = 0;
    let started = Instant::now();
    for case in 0..cases {
        match client.observe_node(addr, 3).await {
            // Arbitrary values make a valid observation now and then (a
            // spoilt byte in a value); that is no failure.
            Ok(report) => assert_eq!(report.observation.addr, addr),
            Err(error) => {
                assert_eq!(error.addr(), Some(addr), "case {case}: {error}");
                assert!(
                    error.to_string().starts_with(&addr.to_string()),
                    "case {case}: {error}"
                );
                assert!(
                    error.is_misbehaviour() || matches!(error, InfoError::Closed { .. }),
                    "case {case}: {error:?}"
                );
                misbehaviours += 1;
            }
        }
        assert_eq!(closed.recv().await, Some(true), "case {case}: left open");
    }
    println!(
        "fuzz observe-over-tcp: {cases} cases in {:.2} s, 0 failures",
        started.elapsed().as_secs_f64()
    );
    // The control: most fuzzed replies are refused.
    assert!(misbehaviours * 2 >= cases, "{misbehaviours} of {cases}");
}
