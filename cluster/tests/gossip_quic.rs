//! The agent cluster over real QUIC with mutual TLS on loopback: join, graceful leave,
//! abrupt death with failover of its routers, partition and heal, refused peers, and a
//! member cut off by a revocation while it runs.
//! Figures are printed (run with `--nocapture` to see them).

use ispvm_cluster::assignment::{HandoverKind, RouterSpec};
use ispvm_cluster::gossip::GossipConfig;
use ispvm_cluster::node_state::Reach;
use ispvm_cluster::ownership::Capability;
use ispvm_cluster::testing::{TENANT, TestCluster, free_udp_addr};
use ispvm_transport::pki::{CertKind, Pki, Validity};
use ispvm_transport::refusal::Refusal;
use ispvm_transport::tls::TlsMaterial;
use std::time::{Duration, SystemTime};

const INTERVAL: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(30);

fn routers(sites: &[(&str, usize)]) -> Vec<RouterSpec> {
    sites
        .iter()
        .flat_map(|(site, n)| {
            (0..*n).map(move |i| RouterSpec {
                id: format!("{site}-r{i}"),
                site: (*site).to_owned(),
                needs: Capability::RouterOs,
            })
        })
        .collect()
}

async fn cluster(dir: &std::path::Path, nodes: &[(&str, &str)], r: Vec<RouterSpec>) -> TestCluster {
    let mut c = TestCluster::new(dir, INTERVAL, r).expect("cluster");
    for (agent, site) in nodes {
        c.add(agent, site).await.expect("node");
    }
    c
}

/// Settled: every running member sees every other, and each router has one poller (a
/// member nobody has heard of yet would otherwise pass as "polls nothing").
fn every_router_polled_exactly_once(c: &TestCluster) -> bool {
    c.converged() && c.pollers().values().all(|n| *n == 1)
}

fn every_router_polled(c: &TestCluster) -> bool {
    c.pollers().values().all(|n| *n >= 1)
}

const FIVE: [(&str, &str); 5] = [
    ("agent-1", "lis"),
    ("agent-2", "lis"),
    ("agent-3", "lis"),
    ("agent-4", "opo"),
    ("agent-5", "opo"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_join_converge_and_split_the_routers() {
    let dir = tempfile::tempdir().expect("dir");
    let c = cluster(dir.path(), &FIVE, routers(&[("lis", 30), ("opo", 20)])).await;
    let joined = c.wait_for(LIMIT, TestCluster::converged).await;
    println!("5 nodes: membership converged in {joined:?}");
    assert!(joined.is_some(), "membership did not converge");
    let settled = c.wait_for(LIMIT, every_router_polled_exactly_once).await;
    println!("5 nodes: every router polled exactly once after {settled:?}");
    assert!(settled.is_some(), "pollers: {:?}", c.pollers());
    // Site affinity: opo routers are polled by opo agents only.
    for n in c.running() {
        for r in n.owned() {
            assert!(r.starts_with(&n.site), "{} polls {r}", n.agent);
        }
    }
    // Every member sees every other's published identity.
    let m = c.nodes[0].membership().expect("running");
    let m5 = m.member("agent-5").expect("agent-5 known");
    assert_eq!(m5.site.as_deref(), Some("opo"));
    assert_eq!(m5.tenant.as_deref(), Some(TENANT));
    assert!(m5.cert_expiry_s.is_some_and(|e| e > 0));
    let stats = c.nodes[0]
        .node
        .as_ref()
        .expect("node")
        .transport_stats()
        .snapshot();
    assert!(stats.messages_received > 0 && stats.connections_opened > 0);
    assert_eq!(stats.messages_malformed, 0);

    // A probe verdict published by one agent reaches every other agent's matrix.
    let verdict = Reach {
        loss_pct: 100.0,
        rtt_us: None,
        at_s: 1_790_000_000,
    };
    c.nodes[2]
        .node
        .as_ref()
        .expect("node")
        .set_reach("dns1", verdict)
        .await
        .expect("publish");
    let spread = c
        .wait_for(LIMIT, |c| {
            c.running().all(|n| {
                n.membership().is_some_and(|m| {
                    m.member("agent-3")
                        .is_some_and(|v| v.reach.iter().any(|(t, r)| t == "dns1" && *r == verdict))
                })
            })
        })
        .await;
    println!("5 nodes: a reachability verdict reached every agent after {spread:?}");
    assert!(spread.is_some(), "verdict not gossiped to every agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_hands_routers_over_without_waiting_for_the_detector() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = cluster(dir.path(), &FIVE, routers(&[("lis", 30), ("opo", 20)])).await;
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
    let leaver = 1;
    let had = c.nodes[leaver].owned();
    assert!(!had.is_empty());
    let start = tokio::time::Instant::now();
    c.leave(leaver).await;
    let taken = c.wait_for(LIMIT, every_router_polled).await;
    let total = start.elapsed();
    println!(
        "graceful leave: {} routers re-polled {total:?} after the leave began",
        had.len()
    );
    assert!(taken.is_some(), "pollers: {:?}", c.pollers());
    // The others learnt it from the announcement, not from the failure detector: the
    // leaver is listed as leaving, not dead.
    let m = c.nodes[0].membership().expect("running");
    let left = m.member("agent-2").expect("still listed");
    assert!(left.leaving, "{left:?}");
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_routers_are_polled_again_within_the_failure_detection_time() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = cluster(dir.path(), &FIVE, routers(&[("lis", 30), ("opo", 20)])).await;
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
    let victim = 2;
    let orphans = c.nodes[victim].owned();
    assert!(!orphans.is_empty());
    let start = tokio::time::Instant::now();
    c.kill(victim);
    // Detection: every survivor's failure detector says the victim is dead.
    let detected = c
        .wait_for(LIMIT, |c| {
            c.running().all(|n| {
                n.membership()
                    .and_then(|m| m.member("agent-3").map(|v| !v.live))
                    .unwrap_or(false)
            })
        })
        .await
        .expect("victim never declared dead");
    // Failover: when did a survivor acquire each orphan?
    assert!(c.wait_for(LIMIT, every_router_polled).await.is_some());
    let mut last_takeover = Duration::ZERO;
    for r in &orphans {
        let at = c
            .running()
            .filter_map(|n| {
                n.handovers.lock().ok()?.iter().find_map(|(t, h)| {
                    (h.router == *r && h.kind == HandoverKind::Acquired && *t > start)
                        .then(|| t.duration_since(start))
                })
            })
            .min()
            .expect("orphan acquired");
        last_takeover = last_takeover.max(at);
    }
    println!(
        "SIGKILL-like death: detected by all survivors after {detected:?}; \
         all {} orphaned routers polled again after {last_takeover:?} \
         (gossip {INTERVAL:?}, phi threshold 8)",
        orphans.len()
    );
    // Survivors take over as soon as they declare the victim dead: within the time the
    // slowest survivor needed to detect it, plus one membership round.
    assert!(
        last_takeover <= detected + INTERVAL * 2,
        "{last_takeover:?} vs {detected:?}"
    );
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_keeps_every_router_polled_and_the_heal_settles_without_flapping() {
    let dir = tempfile::tempdir().expect("dir");
    let six = [
        ("agent-1", "lis"),
        ("agent-2", "lis"),
        ("agent-3", "lis"),
        ("agent-4", "opo"),
        ("agent-5", "opo"),
        ("agent-6", "opo"),
    ];
    let mut c = cluster(dir.path(), &six, routers(&[("lis", 24), ("opo", 24)])).await;
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
    let (lis, opo) = ([0, 1, 2], [3, 4, 5]);
    // Also take one lis agent down so the split is uneven and lis has had a failover.
    c.kill(2);
    assert!(c.wait_for(LIMIT, every_router_polled).await.is_some());
    c.partition(&lis, &opo);
    // Each side sees the other as dead and polls every router itself.
    let side_polls_all = |c: &TestCluster, side: &[usize]| {
        let mut seen = std::collections::BTreeSet::new();
        for &i in side {
            if c.nodes[i].is_running() {
                seen.extend(c.nodes[i].owned());
            }
        }
        seen.len() == 48
    };
    let split = c
        .wait_for(LIMIT, |c| {
            side_polls_all(c, &lis) && side_polls_all(c, &opo)
        })
        .await;
    println!("partition: each side polls all 48 routers after {split:?}");
    assert!(split.is_some());

    let healed_at = tokio::time::Instant::now();
    c.heal();
    let settled = c.wait_for(LIMIT, every_router_polled_exactly_once).await;
    println!("heal: ownership settled to one poller per router after {settled:?}");
    assert!(settled.is_some(), "pollers: {:?}", c.pollers());
    // Stay a while: nothing moves any more.
    tokio::time::sleep(INTERVAL * 15).await;
    assert!(every_router_polled_exactly_once(&c), "{:?}", c.pollers());
    // No flapping: after the heal, no router was released and then taken back by the
    // same agent, and no router was ever left without a poller.
    for n in c.running() {
        let log = n.handovers.lock().expect("log");
        let after: Vec<_> = log.iter().filter(|(t, _)| *t >= healed_at).collect();
        for (i, (_, h)) in after.iter().enumerate() {
            if h.kind == HandoverKind::Released {
                let reacquired = after[i + 1..]
                    .iter()
                    .any(|(_, l)| l.router == h.router && l.kind == HandoverKind::Acquired);
                assert!(!reacquired, "{} flapped on {}", n.agent, h.router);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_a_foreign_ca_an_expired_or_revoked_certificate_or_another_tenant_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::new(dir.path().join("pki"));
    // Certificates the cluster must refuse, made before the members load the CRL.
    pki.init("deployment CA", 30).expect("ca");
    let now = SystemTime::now();
    pki.issue_valid(
        CertKind::Agent,
        "expired",
        Some(TENANT),
        &[],
        &[],
        Validity {
            not_before: now - Duration::from_secs(10 * 86_400),
            not_after: now - Duration::from_secs(86_400),
        },
    )
    .expect("expired cert");
    pki.issue(CertKind::Agent, "revoked", Some(TENANT), &[], &[], 30)
        .expect("revoked cert");
    pki.revoke("revoked").expect("revoke");
    pki.revoke("revoked").expect("revoking twice is harmless");
    pki.issue(
        CertKind::Agent,
        "stranger",
        Some("other-tenant"),
        &[],
        &[],
        30,
    )
    .expect("other tenant cert");
    let rogue = Pki::new(dir.path().join("rogue"));
    rogue.init("rogue CA", 30).expect("rogue ca");
    rogue
        .issue(CertKind::Agent, "rogue", Some(TENANT), &[], &[], 30)
        .expect("rogue cert");

    // The cluster: three members on the deployment PKI (TestCluster::new inits its own
    // CA, so reuse ours by pointing a cluster at the same directory).
    let mut c = TestCluster::new(&dir.path().join("cluster"), INTERVAL, Vec::new()).expect("c");
    c.pki = pki.clone();
    for (agent, site) in &FIVE[..3] {
        c.add(agent, site).await.expect("member");
    }
    assert!(c.wait_for(LIMIT, TestCluster::converged).await.is_some());

    let intruders = [
        (rogue.dir().to_owned(), "rogue"),
        (pki.dir().to_owned(), "expired"),
        (pki.dir().to_owned(), "revoked"),
        (pki.dir().to_owned(), "stranger"),
    ];
    let mut started = Vec::new();
    for (pki_dir, name) in &intruders {
        let material = TlsMaterial::load_from_pki_dir(pki_dir, name).expect("material");
        let mut config = GossipConfig::new(name, TENANT, "lis", free_udp_addr().expect("port"));
        config.gossip_interval = INTERVAL;
        config.seeds = c.nodes.iter().map(|n| n.addr.to_string()).collect();
        started.push(
            ispvm_cluster::gossip::GossipNode::start(config, material)
                .await
                .expect("intruder starts (and is refused by peers)"),
        );
    }
    let counted = c
        .wait_for(LIMIT, |c| {
            let total = |r| -> u64 {
                c.running()
                    .filter_map(|n| n.node.as_ref())
                    .map(|n| n.transport_stats().refusals.get(r))
                    .sum()
            };
            total(Refusal::UnknownCa) > 0
                && total(Refusal::Expired) > 0
                && total(Refusal::Revoked) > 0
                && total(Refusal::WrongIdentity) > 0
        })
        .await;
    for n in c.running().filter_map(|n| n.node.as_ref()) {
        println!(
            "{}: refused {:?}",
            n.agent_id(),
            n.transport_stats().snapshot().refused
        );
    }
    assert!(
        counted.is_some(),
        "not every kind of intruder was refused and counted"
    );
    // None of them ever became a member, and the members still see each other.
    for n in c.running() {
        let m = n.membership().expect("running");
        for (_, name) in &intruders {
            assert!(m.member(name).is_none(), "{} lists {name}", n.agent);
        }
    }
    assert!(c.converged());
    // The intruders learnt nothing either.
    for i in &started {
        assert_eq!(
            i.membership().members.len(),
            1,
            "{} saw others",
            i.agent_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_revoked_while_running_is_cut_off_and_its_routers_taken_over() {
    let dir = tempfile::tempdir().expect("dir");
    let c = cluster(dir.path(), &FIVE[..4], routers(&[("lis", 24)])).await;
    assert!(
        c.wait_for(LIMIT, every_router_polled_exactly_once)
            .await
            .is_some()
    );
    let victim = "agent-3";
    assert!(!c.nodes[2].owned().is_empty());
    let start = tokio::time::Instant::now();
    c.pki.revoke(victim).expect("revoke");
    // The others re-read the list, drop their connections, and refuse the victim's
    // handshakes: it goes silent for them and the detector declares it dead.
    let others = [0usize, 1, 3];
    let cut_off = c
        .wait_for(LIMIT, |c| {
            others.iter().all(|i| {
                c.nodes[*i]
                    .membership()
                    .is_some_and(|m| m.member(victim).is_some_and(|v| !v.live))
            })
        })
        .await;
    println!(
        "revoked while running: declared dead by every other member {:?} after the revocation",
        cut_off.map(|_| start.elapsed())
    );
    assert!(
        cut_off.is_some(),
        "the revoked member is still live somewhere"
    );
    let taken = c
        .wait_for(LIMIT, |c| {
            let mut polled = std::collections::BTreeSet::new();
            for i in others {
                polled.extend(c.nodes[i].owned());
            }
            polled.len() == 24
        })
        .await;
    println!(
        "revoked while running: its routers polled by the others {:?} after the revocation",
        taken.map(|_| start.elapsed())
    );
    assert!(
        taken.is_some(),
        "the others did not take the victim's routers"
    );
    let revoked: u64 = others
        .iter()
        .filter_map(|i| c.nodes[*i].node.as_ref())
        .map(|n| n.transport_stats().refusals.get(Refusal::Revoked))
        .sum();
    assert!(revoked > 0, "no handshake refused as revoked");
    // The others still see each other.
    for i in others {
        let m = c.nodes[i].membership().expect("running");
        for j in others {
            let agent = &c.nodes[j].agent;
            assert!(m.member(agent).is_some_and(|x| x.live), "{agent}");
        }
    }
}

/// An agent of the tenant, with a valid certificate of its own, runs chitchat under
/// another member's node id (a newer generation at its own address, which would win the
/// name): the others never believe it, keep the real member, and count the forgery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_speak_as_another() {
    let dir = tempfile::tempdir().expect("dir");
    let c = cluster(
        dir.path(),
        &[("agent-1", "lis"), ("agent-2", "lis")],
        routers(&[("lis", 10)]),
    )
    .await;
    assert!(c.wait_for(LIMIT, TestCluster::converged).await.is_some());
    let real = c.nodes[0].addr;

    // The impostor: certificate of agent-9, chitchat id of agent-1.
    c.pki
        .issue(CertKind::Agent, "agent-9", Some(TENANT), &[], &[], 30)
        .expect("issue");
    let material = TlsMaterial::load_from_pki_dir(c.pki.dir(), "agent-9").expect("material");
    let addr = free_udp_addr().expect("addr");
    let mut config = c.config("agent-1", "lis", addr);
    config.seeds = vec![c.nodes[0].addr.to_string(), c.nodes[1].addr.to_string()];
    let generation = u64::MAX / 2;
    let transport = ispvm_cluster::gossip::QuicTransport::new(material, TENANT);
    let impostor = chitchat::spawn_chitchat(
        config.chitchat_config(generation),
        vec![("site".to_owned(), "lis".to_owned())],
        &transport,
    )
    .await
    .expect("impostor starts");

    // Long enough for dozens of gossip rounds with the impostor.
    tokio::time::sleep(INTERVAL * 30).await;
    let m = c.nodes[1].membership().expect("running");
    let seen = m.member("agent-1").expect("agent-1 known");
    assert_eq!(seen.gossip_addr, real, "agent-2 believed the impostor");
    assert_ne!(seen.generation, generation);
    let stats = c.nodes[1]
        .node
        .as_ref()
        .expect("node")
        .transport_stats()
        .snapshot();
    println!(
        "impostor: agent-2 left out {} forged entries",
        stats.entries_forged
    );
    assert!(stats.entries_forged > 0, "{stats:?}");
    // The real agent-1 still polls its share.
    assert!(every_router_polled_exactly_once(&c));
    drop(impostor);
}

/// Our own node id must be our certificate's: peers would refuse anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_that_is_not_the_certificate_name_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = cluster(dir.path(), &[("agent-1", "lis")], routers(&[("lis", 1)])).await;
    let material = TlsMaterial::load_from_pki_dir(c.pki.dir(), "agent-1").expect("material");
    let config = c.config("agent-2", "lis", free_udp_addr().expect("addr"));
    let err = c.start_with(config, material).await.expect_err("refused");
    assert!(err.to_string().contains("common name"), "{err}");
}
