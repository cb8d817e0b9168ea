//! `docs/metrics.md` is rendered from the metrics registries of the agent and the server;
//! this test fails when the file is stale (`ISPVM_UPDATE_DOCS=1` rewrites it).

use ispvm_agent::internal_events::AllMetrics;
use ispvm_server::internal_events::ServerMetrics;

fn render() -> String {
    let agent = AllMetrics::new();
    let server = ServerMetrics::new();
    format!(
        "# Metrics\n\n\
         Every metric the agent and the server export, generated from the code: each is\n\
         registered through one `MetricsRegistry` (crate `ispvm-telemetry`) that keeps its\n\
         name, type, labels and meaning. `cli/tests/metrics_doc.rs` fails when this file is\n\
         stale; `ISPVM_UPDATE_DOCS=1 cargo test -p ispvm-cli --test metrics_doc` rewrites it.\n\n\
         Both serve OpenMetrics text on `GET /metrics`. Counters end in `_total`; a family\n\
         appears in a scrape only once one of its label sets has been used.\n\n\
         ## Agent (`ispvm-agent`, its HTTP port)\n\n{}\n\
         ## Server (`ispvm server`, the API port)\n\n{}",
        agent.agent.catalog().markdown_table(),
        server.catalog().markdown_table()
    )
}

#[test]
fn docs_metrics_md_lists_every_metric() {
    let text = render();
    // Every part of the agent registered into the one registry.
    for name in [
        "ispvm_agent_polls_total",
        "ispvm_agent_syslog_received_total",
        "ispvm_agent_probe_rounds_total",
        "ispvm_agent_cluster_members",
        "ispvm_server_ingest_batches_total",
    ] {
        assert!(text.contains(&format!("`{name}`")), "{name} missing");
    }
    ispvm_testkit::assert_generated_file("docs/metrics.md", &text);
}
