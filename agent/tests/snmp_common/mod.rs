//! A real net-snmp `snmpd` for tests (Debian package `snmpd`).
//!
//! Each [`Snmpd`] runs its own agent on a free UDP port of 127.0.0.1 with a configuration
//! written to a temporary directory: `-C -c <conf>,<state>` so no system configuration
//! (`/etc/snmp/snmpd.conf`, `~/.snmp`) is read, only that file and the agent's persistent
//! state (USM users, engine ID and boots) kept in the same directory; no MIB files loaded,
//! no SMUX. It serves:
//!
//! - SNMPv2c community [`COMMUNITY`] with the full view, and [`NO_IFX_COMMUNITY`] with a
//!   view that hides IF-MIB's ifXTable (no ifName, no 64-bit counters);
//! - SNMPv3 users [`V3_USER`] (authPriv, SHA + AES-128), [`V3_SHA256_USER`] (authPriv,
//!   SHA-256 + AES-128) and [`V3_AUTH_ONLY_USER`] (authNoPriv, SHA);
//! - optionally a few MIKROTIK-MIB scalars from a `pass` script.
//!
//! The agent is killed when the value is dropped.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const COMMUNITY: &str = "ispvm-ro-test";
pub const NO_IFX_COMMUNITY: &str = "ispvm-no-ifx";
pub const V3_USER: &str = "monitor";
pub const V3_SHA256_USER: &str = "monitor256";
pub const V3_AUTH_ONLY_USER: &str = "authonly";
pub const V3_AUTH_KEY: &str = "auth-pass-123";
pub const V3_PRIV_KEY: &str = "priv-pass-123";

/// What the MikroTik `pass` script serves.
pub const MT_TEMPERATURE_DC: i64 = 415;
pub const MT_DHCP_LEASES: u64 = 17;
pub const MT_VERSION: &str = "7.16.1";
pub const MT_BOARD: &str = "RB5009UG+S+";

#[derive(Debug, Clone, Copy, Default)]
pub struct SnmpdOptions {
    /// Serve mtxrHlTemperature, mtxrHlProcessorTemperature, mtxrLicVersion,
    /// mtxrDHCPLeaseCount and mtxrBoardName from a `pass` script.
    pub mikrotik: bool,
}

pub struct Snmpd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    options: SnmpdOptions,
}

fn snmpd_binary() -> PathBuf {
    for candidate in ["/usr/sbin/snmpd", "/usr/local/sbin/snmpd"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("snmpd")
}

/// A minimal SNMPv2c GET of sysUpTime.0, hand-encoded so that the harness does not depend
/// on the code under test.
fn probe_packet(community: &str) -> Vec<u8> {
    let varbind_list: &[u8] = &[
        0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00, 0x05,
        0x00,
    ];
    let mut pdu = vec![0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00];
    pdu.extend_from_slice(varbind_list);
    let mut body = vec![0x02, 0x01, 0x01, 0x04, community.len() as u8];
    body.extend_from_slice(community.as_bytes());
    body.push(0xa0);
    body.push(pdu.len() as u8);
    body.extend_from_slice(&pdu);
    let mut message = vec![0x30, body.len() as u8];
    message.extend_from_slice(&body);
    message
}

fn answers(port: u16) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    if socket
        .send_to(&probe_packet(COMMUNITY), ("127.0.0.1", port))
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 1500];
    socket.recv_from(&mut buf).is_ok()
}

const MIKROTIK_SCRIPT: &str = r#"#!/bin/sh
# A few MIKROTIK-MIB scalars for the SNMP collector tests (net-snmp `pass`, GET only).
[ "$1" = "-g" ] || exit 0
case "$2" in
  .1.3.6.1.4.1.14988.1.1.3.10.0) printf '%s\ninteger\n415\n' "$2" ;;
  .1.3.6.1.4.1.14988.1.1.3.11.0) printf '%s\ninteger\n523\n' "$2" ;;
  .1.3.6.1.4.1.14988.1.1.4.4.0) printf '%s\nstring\n7.16.1\n' "$2" ;;
  .1.3.6.1.4.1.14988.1.1.6.1.0) printf '%s\ngauge\n17\n' "$2" ;;
  .1.3.6.1.4.1.14988.1.1.7.9.0) printf '%s\nstring\nRB5009UG+S+\n' "$2" ;;
esac
exit 0
"#;

impl Snmpd {
    /// Starts an agent and waits until it answers; panics (with its log) when it cannot.
    pub fn start(options: SnmpdOptions) -> Snmpd {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut snmpd = Snmpd {
                dir,
                port: ispvm_testkit::free_udp_port(),
                child: None,
                options,
            };
            snmpd.write_config(None);
            match snmpd.spawn() {
                Ok(()) => return snmpd,
                // Most likely another process took the port meanwhile: try another one.
                Err(log) => last_log = log,
            }
        }
        panic!("snmpd did not start (is the Debian package `snmpd` installed?):\n{last_log}");
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.path().join("snmpd.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Kills the agent (the port then refuses datagrams).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the agent again on the same port with the same configuration and state.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn() {
            panic!("snmpd did not restart:\n{log}");
        }
    }

    /// Restarts the agent as a different SNMP engine, like a replaced device: its
    /// persistent state is wiped and it gets another snmpEngineID; same users, same port.
    pub fn restart_as_new_engine(&mut self, engine_id: &str) {
        self.stop();
        fs::write(self.persist_dir().join("snmpd.conf"), "").expect("wipe the agent state");
        self.write_config(Some(engine_id));
        if let Err(log) = self.spawn() {
            panic!("snmpd did not restart:\n{log}");
        }
    }

    fn persist_dir(&self) -> PathBuf {
        self.dir.path().join("persist")
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("snmpd.conf")
    }

    fn write_config(&self, engine_id: Option<&str>) {
        let persist = self.persist_dir();
        fs::create_dir_all(&persist).expect("persistent directory");
        let state = persist.join("snmpd.conf");
        if !state.exists() {
            fs::write(&state, "").expect("persistent state file");
        }
        let mut conf = String::new();
        if let Some(id) = engine_id {
            conf.push_str(&format!("engineID {id}\n"));
        }
        conf.push_str(&format!(
            "[snmp] persistentDir {persist}\n\
             rocommunity {COMMUNITY} 127.0.0.1\n\
             view noifx included .1\n\
             view noifx excluded .1.3.6.1.2.1.31\n\
             rocommunity {NO_IFX_COMMUNITY} 127.0.0.1 -V noifx\n\
             createUser {V3_USER} SHA {V3_AUTH_KEY} AES {V3_PRIV_KEY}\n\
             createUser {V3_SHA256_USER} SHA-256 {V3_AUTH_KEY} AES {V3_PRIV_KEY}\n\
             createUser {V3_AUTH_ONLY_USER} SHA {V3_AUTH_KEY}\n\
             rouser {V3_USER} authpriv\n\
             rouser {V3_SHA256_USER} authpriv\n\
             rouser {V3_AUTH_ONLY_USER} auth\n",
            persist = persist.display()
        ));
        if self.options.mikrotik {
            let script = self.dir.path().join("mikrotik.sh");
            fs::write(&script, MIKROTIK_SCRIPT).expect("write the pass script");
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
                .expect("make the pass script executable");
            conf.push_str(&format!("pass .1.3.6.1.4.1.14988 {}\n", script.display()));
        }
        fs::write(self.conf_path(), conf).expect("write snmpd.conf");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("snmpd.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot clone the log file: {e}"))?;
        // Where util-linux's setpriv exists, the agent also dies with the thread that
        // started it, should the test process abort before `Drop` runs.
        let setpriv = Path::new("/usr/bin/setpriv");
        let mut command = if setpriv.exists() {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(snmpd_binary());
            c
        } else {
            Command::new(snmpd_binary())
        };
        let child = command
            .arg("-f") // foreground: the child is snmpd itself
            .arg("-Lo") // log to stdout
            .arg("-r") // do not exit over files only root may read
            .arg("-C") // no default configuration files
            .arg("-c")
            // The persistent file keeps the engine ID and counts engine boots across
            // restarts, as on a real device; -C alone would skip it.
            .arg(format!(
                "{},{}",
                self.conf_path().display(),
                self.persist_dir().join("snmpd.conf").display()
            ))
            .arg("-p")
            .arg(self.dir.path().join("snmpd.pid"))
            .args(["-I", "-smux"])
            .arg(format!("udp:127.0.0.1:{}", self.port))
            .env("MIBS", "")
            .env("MIBDIRS", self.dir.path().join("no-mibs"))
            .env("SNMPCONFPATH", self.dir.path())
            .env("SNMP_PERSISTENT_DIR", self.persist_dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", snmpd_binary().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("snmpd exited with {status}:\n{}", self.log()));
            }
            if answers(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        Err(format!("snmpd did not answer within 15 s:\n{}", self.log()))
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `datagrams` UDP datagrams of 1000 bytes over the loopback interface.
pub fn loopback_traffic(datagrams: usize) {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind the receiver");
    let target = receiver.local_addr().expect("receiver address");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    let payload = [0x5au8; 1000];
    for _ in 0..datagrams {
        let _ = sender.send_to(&payload, target);
    }
}
