//! Real ICMP through network namespaces (root only): unreachable targets of every kind
//! (packets silently dropped, blackhole route, no route, a router answering
//! "unreachable"), datagram ping sockets, and traceroute over a two-hop path.
//!
//! The test process cannot enter a namespace itself without unsafe code, so each check
//! builds its namespaces with `ip`, then runs this same binary inside them (`ip netns
//! exec NS <this binary>` with `ISPVM_PROBE_NETNS_INNER=<part>`), which then runs only that
//! part. The binary has its own `main` (`harness = false` in Cargo.toml) so that both
//! halves are plain functions rather than tests the harness would have to skip. The host's
//! own routes and sysctls are never touched, and the namespaces are deleted at the end.
//! Network namespaces need root: without it this test fails and says so.

use ispvm_agent::probe::tcp::tcp_round;
use ispvm_agent::probe::{Family, IcmpPinger, IcmpSocketMode, RoundPlan, SocketKind, traceroute};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the environment of the inner run.
const INNER: &str = "ISPVM_PROBE_NETNS_INNER";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                == Some("0")
        })
        .unwrap_or(false)
}

/// Runs a command, failing the test with its stderr when it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Network namespaces that are deleted (with their interfaces) on drop.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn new(roles: &[&str]) -> Self {
        let mut ns = Namespaces { names: Vec::new() };
        for role in roles {
            let name = format!("ispvm-probe-{}-{role}", std::process::id());
            run("ip", &["netns", "add", &name]);
            ns.names.push(name);
        }
        for i in 0..ns.names.len() {
            // No duplicate address detection: addresses (link-local ones too, which
            // neighbour discovery uses) are usable at once instead of after ~1 s.
            ns.sysctl(i, "net.ipv6.conf.all.accept_dad=0");
            ns.sysctl(i, "net.ipv6.conf.default.accept_dad=0");
        }
        ns
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `ip -n <ns i> <args>`
    fn ip(&self, i: usize, args: &str) {
        let mut full = vec!["-n", self.name(i)];
        full.extend(args.split_whitespace());
        run("ip", &full);
    }

    fn sysctl(&self, i: usize, setting: &str) {
        run(
            "ip",
            &["netns", "exec", self.name(i), "sysctl", "-qw", setting],
        );
    }

    /// Runs one inner part of this binary inside namespace `i`.
    fn run_inside(&self, i: usize, test: &str) {
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new("ip")
            .args(["netns", "exec", self.name(i)])
            .arg(exe)
            .env(INNER, test)
            .output()
            .expect("ip netns exec runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{text}");
        assert!(out.status.success(), "inner test {test} failed");
        assert!(
            text.contains(&format!("inner {test} ok")),
            "inner test {test} did not run"
        );
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn plan(count: u16, spacing_ms: u64, timeout_ms: u64) -> RoundPlan {
    RoundPlan {
        count,
        spacing: Duration::from_millis(spacing_ms),
        timeout: Duration::from_millis(timeout_ms),
        payload_size: 56,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP literal")
}

// --- unreachable targets ---------------------------------------------------------------

/// One namespace: 198.51.100.0/24 and 2001:db8:dead::/48 routed to a neighbour that
/// does not exist (packets leave and vanish: true timeouts), blackhole routes to
/// 203.0.113.9 and 2001:db8:beef::9, no default route, and datagram ping sockets allowed.
fn unreachable_targets_in_a_namespace() {
    assert!(is_root(), "network namespaces need root (CI runs as root)");
    let ns = Namespaces::new(&["u"]);
    for cmd in [
        "link set lo up",
        "link add v0 type veth peer name v1",
        "link set v0 up",
        "link set v1 up",
        "addr add 10.99.0.1/24 dev v0",
        "neigh add 10.99.0.2 lladdr 02:00:00:00:99:02 dev v0 nud permanent",
        "route add 198.51.100.0/24 via 10.99.0.2",
        "-6 addr add fd99::1/64 dev v0 nodad",
        "-6 neigh add fd99::2 lladdr 02:00:00:00:99:02 dev v0 nud permanent",
        "-6 route add 2001:db8:dead::/48 via fd99::2",
        "route add blackhole 203.0.113.9/32",
        "-6 route add blackhole 2001:db8:beef::9/128",
    ] {
        ns.ip(0, cmd);
    }
    ns.sysctl(0, "net.ipv4.ping_group_range=0 2147483647");
    ns.run_inside(0, "inner_unreachable");
}

async fn inner_unreachable() {
    let raw = IcmpPinger::new(IcmpSocketMode::Raw);

    // Dropped on the way: every echo times out, and the round ends on time.
    for target in ["198.51.100.77", "2001:db8:dead::77"] {
        let started = Instant::now();
        let stats = raw
            .round(ip(target), &plan(3, 50, 300), &mut raw.session())
            .await
            .expect("round runs");
        let took = started.elapsed();
        eprintln!("{target}: {stats:?} in {took:?}");
        assert_eq!((stats.sent, stats.received), (3, 0), "{target}");
        assert_eq!(stats.loss_pct, 100.0);
        assert_eq!(
            stats.unreachable + stats.send_failed,
            0,
            "{target}: timeouts"
        );
        assert!(took >= Duration::from_millis(390), "{target}: {took:?}");
        assert!(took < Duration::from_millis(1_000), "{target}: {took:?}");
    }

    // Blackhole and no route: the echo cannot leave; lost at once, not after the timeout.
    for target in ["203.0.113.9", "2001:db8:beef::9", "192.0.2.50"] {
        let started = Instant::now();
        let stats = raw
            .round(ip(target), &plan(3, 10, 2_000), &mut raw.session())
            .await
            .expect("round runs");
        let took = started.elapsed();
        eprintln!("{target}: {stats:?} in {took:?}");
        assert_eq!((stats.sent, stats.received), (3, 0), "{target}");
        assert_eq!(
            stats.send_failed, 3,
            "{target}: refused by the routing table"
        );
        assert_eq!(stats.loss_pct, 100.0);
        assert!(took < Duration::from_millis(1_000), "{target}: {took:?}");
    }

    // Silent targets do not hold up answering ones: 500 echoes into the void in flight
    // (each keeps its place in the send window only briefly) while a loopback round runs.
    let void = async {
        let p = plan(100, 0, 1_000);
        let target = ip("198.51.100.88");
        let mut s: Vec<_> = (0..5).map(|_| raw.session()).collect();
        let [a, b, c, d, e] = &mut s[..] else {
            unreachable!()
        };
        let rounds = tokio::join!(
            raw.round(target, &p, a),
            raw.round(target, &p, b),
            raw.round(target, &p, c),
            raw.round(target, &p, d),
            raw.round(target, &p, e),
        );
        let rounds = [rounds.0, rounds.1, rounds.2, rounds.3, rounds.4];
        rounds
            .into_iter()
            .map(|r| r.expect("round runs").sent)
            .sum::<u32>()
    };
    let answering = async {
        // Starts once the void echoes are in flight.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let stats = raw
            .round(ip("127.0.0.1"), &plan(5, 10, 1_000), &mut raw.session())
            .await
            .expect("round runs");
        (stats, started.elapsed())
    };
    let (sent, (stats, took)) = tokio::join!(void, answering);
    assert_eq!(sent, 500);
    assert_eq!(stats.received, 5, "{stats:?}");
    assert!(
        took < Duration::from_millis(300),
        "loopback round took {took:?}"
    );

    // TCP toward the void: connects time out.
    let stats = tcp_round(
        SocketAddr::new(ip("198.51.100.77"), 80),
        None,
        &plan(2, 10, 300),
    )
    .await;
    assert_eq!((stats.sent, stats.received), (2, 0));
    assert_eq!(stats.loss_pct, 100.0);

    // Traceroute: silent hops toward the void, an error toward the blackhole.
    let hops = traceroute(ip("198.51.100.77"), 3, Duration::from_millis(200))
        .await
        .expect("traceroute runs");
    assert_eq!(hops.len(), 3, "{hops:?}");
    assert!(
        hops.iter()
            .all(|h| h.address.is_none() && h.rtt_ms.is_none())
    );
    assert!(
        traceroute(ip("203.0.113.9"), 3, Duration::from_millis(200))
            .await
            .is_err()
    );

    // Datagram ping sockets (ping_group_range allows them here).
    let dgram = IcmpPinger::new(IcmpSocketMode::Dgram);
    assert_eq!(
        dgram.open(Family::V4).expect("ICMP socket opens"),
        SocketKind::Dgram
    );
    assert_eq!(
        dgram.open(Family::V6).expect("ICMP socket opens"),
        SocketKind::Dgram
    );
    let auto = IcmpPinger::new(IcmpSocketMode::Auto);
    assert_eq!(
        auto.open(Family::V4).expect("ICMP socket opens"),
        SocketKind::Dgram
    );
    let mut a = dgram.session();
    let mut b = dgram.session();
    for target in ["127.0.0.1", "::1"] {
        // Two targets on one address through one datagram socket.
        let p = plan(5, 10, 1_000);
        let (sa, sb) = tokio::join!(
            dgram.round(ip(target), &p, &mut a),
            dgram.round(ip(target), &p, &mut b),
        );
        for stats in [sa.expect("round runs"), sb.expect("round runs")] {
            assert_eq!(stats.received, 5, "{target} over dgram: {stats:?}");
            assert!(stats.min_ms.expect("answered") > 0.0);
        }
    }
    let stats = dgram
        .round(ip("198.51.100.77"), &plan(2, 10, 300), &mut a)
        .await
        .expect("round runs");
    assert_eq!(stats.loss_pct, 100.0);
}

// --- traceroute over two hops -----------------------------------------------------------

/// Three namespaces: prober A (10.77.1.2, fd77:1::2) — router R — target B (10.77.2.2,
/// fd77:2::2). R forwards, has no route beyond, and does not rate-limit its ICMP errors.
fn traceroute_through_a_router() {
    assert!(is_root(), "network namespaces need root (CI runs as root)");
    let ns = Namespaces::new(&["a", "r", "b"]);
    let (a, r, b) = (0, 1, 2);
    ns.ip(
        a,
        &format!("link add va type veth peer name ra netns {}", ns.name(r)),
    );
    ns.ip(
        r,
        &format!("link add rb type veth peer name vb netns {}", ns.name(b)),
    );
    for (i, cmds) in [
        (
            a,
            &[
                "link set lo up",
                "link set va up",
                "addr add 10.77.1.2/24 dev va",
                "-6 addr add fd77:1::2/64 dev va nodad",
                "route add default via 10.77.1.1",
                "-6 route add default via fd77:1::1",
            ][..],
        ),
        (
            r,
            &[
                "link set lo up",
                "link set ra up",
                "link set rb up",
                "addr add 10.77.1.1/24 dev ra",
                "addr add 10.77.2.1/24 dev rb",
                "-6 addr add fd77:1::1/64 dev ra nodad",
                "-6 addr add fd77:2::1/64 dev rb nodad",
            ][..],
        ),
        (
            b,
            &[
                "link set lo up",
                "link set vb up",
                "addr add 10.77.2.2/24 dev vb",
                "-6 addr add fd77:2::2/64 dev vb nodad",
                "route add default via 10.77.2.1",
                "-6 route add default via fd77:2::1",
            ][..],
        ),
    ] {
        for cmd in cmds {
            ns.ip(i, cmd);
        }
    }
    for setting in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv6.icmp.ratelimit=0",
    ] {
        ns.sysctl(r, setting);
    }
    ns.run_inside(a, "inner_traceroute");
}

async fn inner_traceroute() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Raw);
    // Beyond the router there is no route: the router answers "unreachable", which is a
    // lost echo (not a reply), and the end of the traced path. First, because Linux
    // rate-limits "unreachable" per destination (5 at once, then 1/s) with state that
    // any ICMP error sent to us, such as "time exceeded", resets.
    for (target, router) in [("10.77.9.9", "10.77.1.1"), ("fd77:9::9", "fd77:1::1")] {
        let stats = pinger
            .round(ip(target), &plan(3, 10, 1_000), &mut pinger.session())
            .await
            .expect("round runs");
        eprintln!("{target}: {stats:?}");
        assert_eq!((stats.received, stats.unreachable), (0, 3), "{target}");
        assert_eq!(stats.loss_pct, 100.0);

        let hops = traceroute(ip(target), 10, Duration::from_secs(1))
            .await
            .expect("traceroute runs");
        eprintln!("{target}: {hops:?}");
        assert!(hops.len() <= 2, "{target}: {hops:?}");
        assert_eq!(hops.last().and_then(|h| h.address), Some(ip(router)));
    }

    for (target, router) in [("10.77.2.2", "10.77.1.1"), ("fd77:2::2", "fd77:1::1")] {
        // The path works end to end.
        let stats = pinger
            .round(ip(target), &plan(3, 10, 1_000), &mut pinger.session())
            .await
            .expect("round runs");
        assert_eq!(stats.received, 3, "{target}: {stats:?}");

        let hops = traceroute(ip(target), 10, Duration::from_secs(1))
            .await
            .expect("traceroute runs");
        eprintln!("{target}: {hops:?}");
        assert_eq!(hops.len(), 2, "{target}: {hops:?}");
        assert_eq!((hops[0].ttl, hops[0].address), (1, Some(ip(router))));
        assert_eq!((hops[1].ttl, hops[1].address), (2, Some(ip(target))));
        assert!(hops.iter().all(|h| h.rtt_ms.is_some_and(|r| r > 0.0)));
    }
}

fn main() {
    if let Some(part) = std::env::var_os(INNER) {
        let part = part.to_string_lossy().into_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match part.as_str() {
            "inner_unreachable" => rt.block_on(inner_unreachable()),
            "inner_traceroute" => rt.block_on(inner_traceroute()),
            other => panic!("no inner part {other:?}"),
        }
        println!("inner {part} ok");
        return;
    }
    for (name, check) in [
        (
            "unreachable_targets_in_a_namespace",
            unreachable_targets_in_a_namespace as fn(),
        ),
        (
            "traceroute_through_a_router",
            traceroute_through_a_router as fn(),
        ),
    ] {
        check();
        println!("test {name} ... ok");
    }
}
