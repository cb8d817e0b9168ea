//! The commands a simulated router understands once logged in, as a table.
//!
//! Each menu path (`/interface/print`, ...) maps to an [`Action`]. Today every action is a
//! `print`, whose generic driver applies what RouterOS applies to any print: query words
//! (`?type=ether`, `?#|`), `.proplist`, and `=count-only=`. Adding a path is adding a row
//! to [`ROUTES`]; version-dependent answers (v6 vs v7) are decided inside the handler from
//! [`RouterModel::version`].

use crate::ros_format::{self, Civil};
use crate::router_state::RouterModel;
use ispvm_proto::routeros::{Command, Reply, ReplyKind};
use std::cmp::Ordering;

/// One `!re`: attribute names and values, in the order RouterOS prints them.
pub type Item = Vec<(&'static str, String)>;

/// Produces the items of a print at a Unix time.
type ItemsFn = fn(&RouterModel, f64) -> Vec<Item>;
/// Counts the items of a print without producing them (for big menus).
type CountFn = fn(&RouterModel, f64) -> u64;

/// What a command path does.
enum Action {
    /// A `print`: items, filtered by queries, trimmed by `.proplist`, or counted.
    Print {
        items: ItemsFn,
        /// Used for `count-only` without queries; `None` counts `items`.
        count: Option<CountFn>,
    },
}

struct Route {
    path: &'static str,
    action: Action,
}

/// PPP sessions listed by a print (a real concentrator lists thousands; tests and demos
/// need a sample, and `count-only` still counts them all).
pub const PPP_ACTIVE_PRINT_CAP: usize = 50;

const ROUTES: &[Route] = &[
    Route {
        path: "/system/identity/print",
        action: Action::Print {
            items: identity,
            count: None,
        },
    },
    Route {
        path: "/system/resource/print",
        action: Action::Print {
            items: resource,
            count: None,
        },
    },
    Route {
        path: "/system/routerboard/print",
        action: Action::Print {
            items: routerboard,
            count: None,
        },
    },
    Route {
        path: "/system/clock/print",
        action: Action::Print {
            items: clock,
            count: None,
        },
    },
    Route {
        path: "/system/health/print",
        action: Action::Print {
            items: health,
            count: None,
        },
    },
    Route {
        path: "/interface/print",
        action: Action::Print {
            items: interfaces,
            count: None,
        },
    },
    Route {
        path: "/ip/address/print",
        action: Action::Print {
            items: ip_addresses,
            count: None,
        },
    },
    Route {
        path: "/ppp/active/print",
        action: Action::Print {
            items: ppp_active,
            count: Some(ppp_active_count),
        },
    },
];

/// The command paths the simulator answers (for documentation and tests).
pub fn supported_paths() -> Vec<&'static str> {
    ROUTES.iter().map(|r| r.path).collect()
}

/// Runs a command of a logged-in session and returns its replies, untagged.
pub fn execute(model: &RouterModel, command: &Command, now_s: f64) -> Vec<Reply> {
    let Some(route) = ROUTES.iter().find(|r| r.path == command.path) else {
        return vec![unknown_command(&command.path), Reply::new(ReplyKind::Done)];
    };
    match route.action {
        Action::Print { items, count } => print(model, command, now_s, items, count),
    }
}

/// RouterOS says "no such command" when the menu exists but not the command in it, and
/// "no such command prefix" when the menu itself does not.
fn unknown_command(path: &str) -> Reply {
    let menu = path.rsplit_once('/').map_or("", |(menu, _)| menu);
    let menu_exists = !menu.is_empty()
        && ROUTES
            .iter()
            .any(|r| r.path.rsplit_once('/').is_some_and(|(m, _)| m == menu));
    let message = if menu_exists {
        "no such command"
    } else {
        "no such command prefix"
    };
    Reply::trap(Some(0), message)
}

fn print(
    model: &RouterModel,
    command: &Command,
    now_s: f64,
    items: ItemsFn,
    count: Option<CountFn>,
) -> Vec<Reply> {
    let query = match Query::parse(&command.queries) {
        Ok(q) => q,
        Err(e) => {
            return vec![
                Reply::trap(Some(1), e.to_string()),
                Reply::new(ReplyKind::Done),
            ];
        }
    };
    if command.attr("count-only").is_some() {
        let n = match count {
            Some(count) if query.is_empty() => count(model, now_s),
            _ => items(model, now_s)
                .iter()
                .filter(|item| query.matches(item))
                .count() as u64,
        };
        return vec![Reply::new(ReplyKind::Done).with_attr("ret", n.to_string())];
    }
    // `.proplist` may come as an API word or, as some clients send it, as `=.proplist=`.
    let proplist: Option<Vec<String>> = command.proplist.clone().or_else(|| {
        command.attr(".proplist").map(|v| {
            v.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
    });
    let mut out: Vec<Reply> = items(model, now_s)
        .into_iter()
        .filter(|item| query.matches(item))
        .map(|item| {
            let mut reply = Reply::new(ReplyKind::Re);
            match &proplist {
                // RouterOS answers a `.proplist` in the order it was asked for.
                Some(props) => {
                    for prop in props {
                        let already = reply.attributes.iter().any(|(k, _)| k == prop);
                        if let Some((key, value)) = item.iter().find(|(k, _)| k == prop)
                            && !already
                        {
                            reply.attributes.push(((*key).to_owned(), value.clone()));
                        }
                    }
                }
                None => {
                    reply.attributes = item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                }
            }
            reply
        })
        .collect();
    out.push(Reply::new(ReplyKind::Done));
    out
}

/// A RouterOS query (the `?` words of a print), evaluated as RouterOS does: each word
/// pushes a boolean on a stack, `?#` words combine them, and the item matches when every
/// value left on the stack is true.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Query {
    words: Vec<QueryWord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryWord {
    Has(String),
    HasNot(String),
    Equal(String, String),
    Less(String, String),
    Greater(String, String),
    /// The characters after `#`.
    Ops(String),
}

/// A query RouterOS would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum QueryError {
    #[error("invalid query word ?{0}")]
    Invalid(String),
    #[error("query stack underflow in ?#{0}")]
    Underflow(String),
}

impl Query {
    fn parse(words: &[String]) -> Result<Query, QueryError> {
        let invalid = |w: &str| QueryError::Invalid(w.to_owned());
        let mut out = Vec::with_capacity(words.len());
        for word in words {
            let parsed = if let Some(ops) = word.strip_prefix('#') {
                QueryWord::Ops(ops.to_owned())
            } else if let Some(name) = word.strip_prefix('-') {
                QueryWord::HasNot(name.to_owned())
            } else if let Some(rest) = word.strip_prefix('<') {
                let (k, v) = rest.split_once('=').ok_or_else(|| invalid(word))?;
                QueryWord::Less(k.to_owned(), v.to_owned())
            } else if let Some(rest) = word.strip_prefix('>') {
                let (k, v) = rest.split_once('=').ok_or_else(|| invalid(word))?;
                QueryWord::Greater(k.to_owned(), v.to_owned())
            } else {
                let rest = word.strip_prefix('=').unwrap_or(word);
                match rest.split_once('=') {
                    Some((k, v)) => QueryWord::Equal(k.to_owned(), v.to_owned()),
                    None => QueryWord::Has(rest.to_owned()),
                }
            };
            if let QueryWord::Has(k)
            | QueryWord::HasNot(k)
            | QueryWord::Equal(k, _)
            | QueryWord::Less(k, _)
            | QueryWord::Greater(k, _) = &parsed
                && k.is_empty()
            {
                return Err(invalid(word));
            }
            if let QueryWord::Ops(ops) = &parsed {
                // Check the operations once, against a stack of dummy values, so a
                // malformed query is refused up front rather than per item.
                let depth = out
                    .iter()
                    .filter(|w| !matches!(w, QueryWord::Ops(_)))
                    .count();
                apply_ops(ops, &mut vec![true; depth])
                    .map_err(|()| QueryError::Underflow(ops.clone()))?;
            }
            out.push(parsed);
        }
        Ok(Query { words: out })
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn matches(&self, item: &Item) -> bool {
        let get = |key: &str| {
            item.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        let mut stack: Vec<bool> = Vec::new();
        for word in &self.words {
            match word {
                QueryWord::Has(k) => stack.push(get(k).is_some()),
                QueryWord::HasNot(k) => stack.push(get(k).is_none()),
                QueryWord::Equal(k, v) => stack.push(get(k) == Some(v.as_str())),
                QueryWord::Less(k, v) => {
                    stack.push(get(k).is_some_and(|x| compare(x, v) == Ordering::Less))
                }
                QueryWord::Greater(k, v) => {
                    stack.push(get(k).is_some_and(|x| compare(x, v) == Ordering::Greater))
                }
                QueryWord::Ops(ops) => {
                    if apply_ops(ops, &mut stack).is_err() {
                        return false;
                    }
                }
            }
        }
        stack.iter().all(|&b| b)
    }
}

/// Numbers compare as numbers, anything else as text.
fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// Applies `?#` operations: `!` negates the top, `&` and `|` combine the top two, `.` is a
/// no-op separator, a number is a stack index (0 = top) whose value is pushed, or, at the
/// end of the word, replaces the whole stack.
fn apply_ops(ops: &str, stack: &mut Vec<bool>) -> Result<(), ()> {
    let bytes = ops.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let index: usize = ops[start..i].parse().map_err(|_| ())?;
            let value = *stack
                .len()
                .checked_sub(index + 1)
                .and_then(|pos| stack.get(pos))
                .ok_or(())?;
            if i == bytes.len() {
                stack.clear();
            }
            stack.push(value);
            continue;
        }
        match c {
            b'!' => {
                let top = stack.last_mut().ok_or(())?;
                *top = !*top;
            }
            b'&' | b'|' => {
                let x = stack.pop().ok_or(())?;
                let y = stack.pop().ok_or(())?;
                stack.push(if c == b'&' { x && y } else { x || y });
            }
            b'.' => {}
            _ => return Err(()),
        }
        i += 1;
    }
    Ok(())
}

fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

fn iso_dates(model: &RouterModel) -> bool {
    ros_format::uses_iso_dates(model.version)
}

fn identity(model: &RouterModel, _now_s: f64) -> Vec<Item> {
    vec![vec![("name", model.spec.identity.clone())]]
}

fn resource(model: &RouterModel, now_s: f64) -> Vec<Item> {
    let uptime = model.uptime_s(now_s);
    let (free_mem, total_mem) = model.memory(now_s);
    let (free_hdd, total_hdd) = model.hdd();
    let build = Civil::from_unix(ros_format::build_time_unix(model.version));
    let build_time = if iso_dates(model) {
        build.date_time(true)
    } else {
        // v6 capitalises the month here: `Feb/12/2024 10:43:56`.
        let mut text = build.date_time(false);
        if let Some(first) = text.get(..1) {
            text = first.to_ascii_uppercase() + text.get(1..).unwrap_or("");
        }
        text
    };
    let b = model.board;
    vec![vec![
        ("uptime", ros_format::duration(uptime)),
        (
            "version",
            ros_format::version_string(&model.spec.ros_version, model.version),
        ),
        ("build-time", build_time),
        ("free-memory", free_mem.to_string()),
        ("total-memory", total_mem.to_string()),
        ("cpu", b.cpu.to_owned()),
        ("cpu-count", b.cpu_count.to_string()),
        ("cpu-frequency", b.cpu_frequency_mhz.to_string()),
        ("cpu-load", model.cpu_load(now_s).to_string()),
        ("free-hdd-space", free_hdd.to_string()),
        ("total-hdd-space", total_hdd.to_string()),
        ("write-sect-since-reboot", (uptime / 40).to_string()),
        ("write-sect-total", (uptime / 40 + 180_000).to_string()),
        ("bad-blocks", "0".to_owned()),
        ("architecture-name", b.architecture.to_owned()),
        ("board-name", model.spec.board.clone()),
        ("platform", "MikroTik".to_owned()),
    ]]
}

fn routerboard(model: &RouterModel, _now_s: f64) -> Vec<Item> {
    if !model.board.routerboard {
        return vec![vec![("routerboard", bool_text(false))]];
    }
    let factory = if model.version.major >= 7 {
        "7.1"
    } else {
        "6.45.9"
    };
    let firmware = model.spec.ros_version.clone();
    vec![vec![
        ("routerboard", bool_text(true)),
        ("board-name", model.spec.board.clone()),
        ("model", model.spec.board.clone()),
        ("serial-number", model.serial_number.clone()),
        ("firmware-type", model.board.architecture.to_owned()),
        ("factory-firmware", factory.to_owned()),
        ("current-firmware", firmware.clone()),
        ("upgrade-firmware", firmware),
    ]]
}

fn clock(model: &RouterModel, now_s: f64) -> Vec<Item> {
    let now = Civil::from_unix(if now_s.is_finite() { now_s as i64 } else { 0 });
    vec![vec![
        ("time", now.time()),
        ("date", now.date(iso_dates(model))),
        ("time-zone-autodetect", bool_text(false)),
        ("time-zone-name", "UTC".to_owned()),
        ("gmt-offset", "+00:00".to_owned()),
        ("dst-active", bool_text(false)),
    ]]
}

/// v7 lists one item per sensor (`name`, `value`, `type` = unit); v6 has one item with a
/// property per sensor. Boards without sensors (CHR) list nothing.
fn health(model: &RouterModel, now_s: f64) -> Vec<Item> {
    let Some(temp) = model.temperature_c(now_s) else {
        return Vec::new();
    };
    let cpu_temp = temp + 8.0 + f64::from(model.cpu_load(now_s)) * 0.1;
    let voltage = format!("{:.1}", model.voltage_v(now_s));
    let fans = model.fan_rpm(now_s);
    if model.version.major >= 7 {
        let mut sensors: Vec<(String, String, &str)> = vec![
            ("voltage".to_owned(), voltage, "V"),
            ("temperature".to_owned(), format!("{temp:.0}"), "C"),
            ("cpu-temperature".to_owned(), format!("{cpu_temp:.0}"), "C"),
        ];
        for (i, rpm) in fans.iter().enumerate() {
            sensors.push((format!("fan{}-speed", i + 1), rpm.to_string(), "RPM"));
        }
        sensors
            .into_iter()
            .enumerate()
            .map(|(i, (name, value, unit))| {
                vec![
                    (".id", format!("*{:X}", i + 1)),
                    ("name", name),
                    ("value", value),
                    ("type", unit.to_owned()),
                ]
            })
            .collect()
    } else {
        let mut item: Item = vec![
            ("voltage", voltage),
            ("temperature", format!("{temp:.0}")),
            ("cpu-temperature", format!("{cpu_temp:.0}")),
        ];
        const FAN_KEYS: [&str; 4] = ["fan1-speed", "fan2-speed", "fan3-speed", "fan4-speed"];
        for (key, rpm) in FAN_KEYS.iter().zip(fans) {
            item.push((key, rpm.to_string()));
        }
        vec![item]
    }
}

fn interfaces(model: &RouterModel, now_s: f64) -> Vec<Item> {
    let iso = iso_dates(model);
    model
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let c = model.interface_counters(i, now_s).unwrap_or_default();
            let kind = iface.spec.kind.as_str();
            let (mtu, actual_mtu) = match kind {
                "bridge" if model.version.major >= 7 => ("auto", "1500"),
                "pppoe-in" | "pppoe-out" => ("1480", "1480"),
                _ => ("1500", "1500"),
            };
            let last_up = iface.last_link_up_s.min(now_s);
            let mut item: Item = vec![
                (".id", format!("*{:X}", i + 1)),
                ("name", iface.spec.name.clone()),
            ];
            if kind == "ether" {
                item.push(("default-name", iface.spec.name.clone()));
            }
            item.push(("type", kind.to_owned()));
            item.push(("mtu", mtu.to_owned()));
            item.push(("actual-mtu", actual_mtu.to_owned()));
            match kind {
                "ether" => item.push(("l2mtu", "1592".to_owned())),
                "vlan" => item.push(("l2mtu", "1588".to_owned())),
                _ => {}
            }
            item.push(("mac-address", iface.mac_string()));
            item.push((
                "last-link-up-time",
                Civil::from_unix(if last_up.is_finite() {
                    last_up as i64
                } else {
                    0
                })
                .date_time(iso),
            ));
            item.push(("link-downs", iface.link_downs.to_string()));
            item.extend([
                ("rx-byte", c.rx_byte.to_string()),
                ("tx-byte", c.tx_byte.to_string()),
                ("rx-packet", c.rx_packet.to_string()),
                ("tx-packet", c.tx_packet.to_string()),
                ("rx-drop", c.rx_drop.to_string()),
                ("tx-drop", c.tx_drop.to_string()),
                ("tx-queue-drop", c.tx_queue_drop.to_string()),
                ("rx-error", c.rx_error.to_string()),
                ("tx-error", c.tx_error.to_string()),
                ("running", bool_text(true)),
                ("disabled", bool_text(false)),
            ]);
            item
        })
        .collect()
}

fn ip_addresses(model: &RouterModel, _now_s: f64) -> Vec<Item> {
    model
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (".id", format!("*{:X}", i + 1)),
                ("address", format!("{}/{}", a.address, a.prefix_len)),
                ("network", a.network().to_string()),
                ("interface", a.interface.clone()),
                ("actual-interface", a.interface.clone()),
                ("invalid", bool_text(false)),
                ("dynamic", bool_text(false)),
                ("disabled", bool_text(false)),
            ]
        })
        .collect()
}

fn ppp_active(model: &RouterModel, now_s: f64) -> Vec<Item> {
    model
        .pppoe_sessions(now_s, PPP_ACTIVE_PRINT_CAP)
        .into_iter()
        .map(|s| {
            vec![
                (".id", s.id),
                ("name", s.name),
                ("service", "pppoe".to_owned()),
                ("caller-id", s.caller_id),
                ("encoding", String::new()),
                ("address", s.address.to_string()),
                ("uptime", ros_format::duration(s.uptime_s)),
                ("session-id", s.session_id),
                ("limit-bytes-in", "0".to_owned()),
                ("limit-bytes-out", "0".to_owned()),
                ("radius", bool_text(true)),
            ]
        })
        .collect()
}

fn ppp_active_count(model: &RouterModel, now_s: f64) -> u64 {
    model.pppoe_session_count(now_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: f64 = 1_732_050_000.0;

    fn model(id: &str) -> RouterModel {
        RouterModel::from_topology(
            &Topology::demo(),
            id,
            UNIX_EPOCH + Duration::from_secs(1_732_000_000),
        )
        .expect("router exists")
    }

    fn run(m: &RouterModel, cmd: Command) -> Vec<Reply> {
        execute(m, &cmd, NOW)
    }

    fn names(replies: &[Reply]) -> Vec<String> {
        replies
            .iter()
            .filter_map(|r| r.get("name").map(str::to_owned))
            .collect()
    }

    #[test]
    fn every_route_answers_on_v6_and_v7() {
        for id in ["lis1-core1", "lis1-edge2", "lis1-rr1", "cbr1-bng1"] {
            let m = model(id);
            for path in supported_paths() {
                let replies = run(&m, Command::new(path));
                let last = replies.last().expect("replies");
                assert_eq!(last.kind, ReplyKind::Done, "{id} {path}");
                assert!(
                    replies.iter().all(|r| r.kind != ReplyKind::Trap),
                    "{id} {path}"
                );
            }
        }
    }

    #[test]
    fn health_differs_between_v6_and_v7() {
        let v7 = run(&model("lis1-core1"), Command::new("/system/health/print"));
        assert!(v7.len() > 3);
        assert!(
            v7.iter()
                .any(|r| r.get("name") == Some("temperature") && r.get("type") == Some("C"))
        );
        let v6 = run(&model("lis1-edge2"), Command::new("/system/health/print"));
        assert_eq!(v6.len(), 2);
        assert!(v6[0].get("temperature").is_some() && v6[0].get("voltage").is_some());
        // A CHR has no sensors.
        let chr = run(&model("lis1-rr1"), Command::new("/system/health/print"));
        assert_eq!(chr.len(), 1);
    }

    #[test]
    fn queries_filter_items() {
        let m = model("lis1-core1");
        let all = run(&m, Command::new("/interface/print"));
        let ether = run(
            &m,
            Command::new("/interface/print").with_query("type=ether"),
        );
        assert!(ether.len() < all.len() && ether.len() > 2);
        let one = run(
            &m,
            Command::new("/interface/print").with_query("name=sfp28-1"),
        );
        assert_eq!(names(&one), vec!["sfp28-1"]);
        // Either of two names: ?name=a ?name=b ?#|
        let two = run(
            &m,
            Command::new("/interface/print")
                .with_query("name=ether1")
                .with_query("name=sfp28-2")
                .with_query("#|"),
        );
        assert_eq!(names(&two), vec!["ether1", "sfp28-2"]);
        // Not ether: ?type=ether ?#!
        let not_ether = run(
            &m,
            Command::new("/interface/print")
                .with_query("type=ether")
                .with_query("#!"),
        );
        assert_eq!(not_ether.len() + ether.len() - 1, all.len());
        let has_default = run(
            &m,
            Command::new("/interface/print").with_query("-default-name"),
        );
        assert_eq!(has_default.len(), not_ether.len());
        let big = run(
            &m,
            Command::new("/interface/print").with_query(">rx-byte=0"),
        );
        assert!(big.len() > 2);
        let counted = run(
            &m,
            Command::new("/interface/print")
                .with_query("type=ether")
                .with_attr("count-only", ""),
        );
        assert_eq!(counted.len(), 1);
        assert_eq!(
            counted[0].get("ret"),
            Some((ether.len() - 1).to_string().as_str())
        );
    }

    #[test]
    fn bad_queries_trap() {
        let m = model("lis1-core1");
        for q in ["#&", "#x", "<rx-byte", "=", "#9"] {
            let r = run(&m, Command::new("/interface/print").with_query(q));
            assert_eq!(r[0].kind, ReplyKind::Trap, "{q}");
            assert_eq!(r[1].kind, ReplyKind::Done);
        }
    }

    #[test]
    fn stack_operations() {
        let mut s = vec![true, false];
        assert_eq!(apply_ops("|", &mut s), Ok(()));
        assert_eq!(s, vec![true]);
        let mut s = vec![true, false, false];
        assert_eq!(apply_ops("2", &mut s), Ok(()));
        assert_eq!(s, vec![true]);
        let mut s = vec![true, false];
        assert_eq!(apply_ops("1.!", &mut s), Ok(()));
        assert_eq!(s, vec![true, false, false]);
        assert!(apply_ops("&", &mut vec![true]).is_err());
    }

    #[test]
    fn unknown_paths() {
        let m = model("lis1-core1");
        let r = run(&m, Command::new("/interface/frobnicate"));
        assert_eq!(r[0].get("message"), Some("no such command"));
        let r = run(&m, Command::new("/routing/bgp/peer/print"));
        assert_eq!(r[0].get("message"), Some("no such command prefix"));
        assert_eq!(r[0].get("category"), Some("0"));
    }
}
