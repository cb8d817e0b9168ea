//! The commands a simulated router understands once logged in, as a table.
//!
//! Each menu path (`/interface/print`, ...) maps to an [`Action`]. Today every action is a
//! `print`, whose generic driver applies what RouterOS applies to any print: query words
//! (`?type=ether`, `?#|`), `.proplist`, and `=count-only=`. Adding a path is adding a row
//! to [`ROUTES`]. Some menus exist only on one major version (`/routing/bgp/session` is
//! RouterOS 7, `/routing/bgp/peer` RouterOS 6), as on real routers; other version
//! differences are decided inside the handler from [`RouterModel::version`].
//!
//! Streaming commands (`/interface/listen`, `/cancel`) need per-connection state and are
//! handled by [`crate::listen`], not here.

use crate::menus;
use crate::network::{InterfaceLive, Network};
use crate::router_state::RouterModel;
use crate::routing_menus;
use ispvm_proto::routeros::{Command, Reply, ReplyKind};
use std::cell::OnceCell;
use std::cmp::Ordering;

/// One `!re`: attribute names and values, in the order RouterOS prints them.
pub type Item = Vec<(&'static str, String)>;

/// What a handler may look at: the router, the whole network, and the request time.
pub struct Ctx<'a> {
    pub net: &'a Network,
    /// Index of the router in the topology.
    pub router: usize,
    pub model: &'a RouterModel,
    pub now_s: f64,
    boot: OnceCell<f64>,
}

impl<'a> Ctx<'a> {
    /// `None` if `router` is not a router of `net`.
    pub fn new(net: &'a Network, router: usize, now_s: f64) -> Option<Ctx<'a>> {
        Some(Ctx {
            net,
            router,
            model: net.model(router)?,
            now_s,
            boot: OnceCell::new(),
        })
    }

    /// When the router last booted (faults included).
    pub fn boot_s(&self) -> f64 {
        *self.boot.get_or_init(|| {
            self.net
                .with_log(|log| self.net.boot_s(log, self.router, self.now_s))
        })
    }

    /// Interface `index` as it stands now.
    pub fn interface(&self, index: usize) -> InterfaceLive {
        self.net
            .with_log(|log| self.net.interface_live(log, self.router, index, self.now_s))
    }
}

/// Produces the items of a print.
type ItemsFn = fn(&Ctx) -> Vec<Item>;
/// Counts the items of a print without producing them (for big menus).
type CountFn = fn(&Ctx) -> u64;

/// What a command path does.
enum Action {
    /// A `print`: items, filtered by queries, trimmed by `.proplist`, or counted.
    Print {
        items: ItemsFn,
        /// Used for `count-only` without queries; `None` counts `items`.
        count: Option<CountFn>,
    },
}

/// RouterOS major versions a menu exists on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Versions {
    All,
    Only(u32),
}

struct Route {
    path: &'static str,
    versions: Versions,
    action: Action,
}

impl Route {
    fn exists_on(&self, major: u32) -> bool {
        match self.versions {
            Versions::All => true,
            Versions::Only(m) => m == major,
        }
    }
}

/// PPP sessions listed by a print (a real concentrator lists thousands; tests and demos
/// need a sample, and `count-only` still counts them all).
pub const PPP_ACTIVE_PRINT_CAP: usize = 50;
/// DHCP leases listed by a print, for the same reason.
pub const DHCP_LEASE_PRINT_CAP: usize = 50;

const fn print_all(path: &'static str, items: ItemsFn) -> Route {
    Route {
        path,
        versions: Versions::All,
        action: Action::Print { items, count: None },
    }
}

const ROUTES: &[Route] = &[
    print_all("/system/identity/print", menus::identity),
    print_all("/system/resource/print", menus::resource),
    print_all("/system/routerboard/print", menus::routerboard),
    print_all("/system/clock/print", menus::clock),
    print_all("/system/health/print", menus::health),
    print_all("/interface/print", menus::interfaces),
    print_all("/ip/address/print", menus::ip_addresses),
    Route {
        path: "/ppp/active/print",
        versions: Versions::All,
        action: Action::Print {
            items: menus::ppp_active,
            count: Some(menus::ppp_active_count),
        },
    },
    Route {
        path: "/ip/dhcp-server/lease/print",
        versions: Versions::All,
        action: Action::Print {
            items: menus::dhcp_leases,
            count: Some(menus::dhcp_lease_count),
        },
    },
    print_all("/ip/neighbor/print", routing_menus::ip_neighbors),
    print_all(
        "/routing/ospf/neighbor/print",
        routing_menus::ospf_neighbors,
    ),
    Route {
        path: "/routing/bgp/session/print",
        versions: Versions::Only(7),
        action: Action::Print {
            items: routing_menus::bgp_sessions_v7,
            count: None,
        },
    },
    Route {
        path: "/routing/bgp/peer/print",
        versions: Versions::Only(6),
        action: Action::Print {
            items: routing_menus::bgp_peers_v6,
            count: None,
        },
    },
];

/// The command paths the simulator answers on a RouterOS major version (for
/// documentation and tests); `/interface/listen` and `/cancel` come on top.
pub fn supported_paths(major: u32) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| r.exists_on(major))
        .map(|r| r.path)
        .collect()
}

/// Runs a command of a logged-in session on router `router` and returns its replies,
/// untagged.
pub fn execute(net: &Network, router: usize, command: &Command, now_s: f64) -> Vec<Reply> {
    let Some(ctx) = Ctx::new(net, router, now_s) else {
        return vec![
            Reply::trap(Some(0), "no such command prefix"),
            Reply::new(ReplyKind::Done),
        ];
    };
    let major = ctx.model.version.major;
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.path == command.path && r.exists_on(major))
    else {
        return vec![
            unknown_command(&command.path, major),
            Reply::new(ReplyKind::Done),
        ];
    };
    match route.action {
        Action::Print { items, count } => print(&ctx, command, items, count),
    }
}

/// Whether RouterOS answers an empty print with `!empty` (7.18 and later).
pub fn answers_empty(model: &RouterModel) -> bool {
    let v = model.version;
    v.major > 7 || (v.major == 7 && v.minor >= 18)
}

/// RouterOS says "no such command" when the menu exists but not the command in it, and
/// "no such command prefix" when the menu itself does not.
pub fn unknown_command(path: &str, major: u32) -> Reply {
    let menu = path.rsplit_once('/').map_or("", |(menu, _)| menu);
    let menu_exists = !menu.is_empty()
        && (menu == "/interface"
            || ROUTES.iter().any(|r| {
                r.exists_on(major) && r.path.rsplit_once('/').is_some_and(|(m, _)| m == menu)
            }));
    let message = if menu_exists {
        "no such command"
    } else {
        "no such command prefix"
    };
    Reply::trap(Some(0), message)
}

fn print(ctx: &Ctx, command: &Command, items: ItemsFn, count: Option<CountFn>) -> Vec<Reply> {
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
            Some(count) if query.is_empty() => count(ctx),
            _ => items(ctx).iter().filter(|item| query.matches(item)).count() as u64,
        };
        return vec![Reply::new(ReplyKind::Done).with_attr("ret", n.to_string())];
    }
    let proplist = proplist_of(command);
    let mut out: Vec<Reply> = items(ctx)
        .into_iter()
        .filter(|item| query.matches(item))
        .map(|item| item_reply(item, proplist.as_deref()))
        .collect();
    // RouterOS 7.18 added `!empty` for a print with nothing to return; it is still
    // followed by `!done` (wire captures in pear2/Net_RouterOS#80).
    if out.is_empty() && answers_empty(ctx.model) {
        out.push(Reply::new(ReplyKind::Empty));
    }
    out.push(Reply::new(ReplyKind::Done));
    out
}

/// The `.proplist` of a command: as an API word or, as some clients send it, as
/// `=.proplist=`.
pub fn proplist_of(command: &Command) -> Option<Vec<String>> {
    command.proplist.clone().or_else(|| {
        command.attr(".proplist").map(|v| {
            v.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
    })
}

/// An item as a `!re`, trimmed to `proplist` (in the order asked for, as RouterOS does).
pub fn item_reply(item: Item, proplist: Option<&[String]>) -> Reply {
    let mut reply = Reply::new(ReplyKind::Re);
    match proplist {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: f64 = 1_732_050_000.0;

    /// A router of the demo ISP with its network, as a session would see it.
    struct Demo {
        net: Network,
        index: usize,
    }

    fn model(id: &str) -> Demo {
        let net = Network::new(
            Topology::demo(),
            UNIX_EPOCH + Duration::from_secs(1_732_000_000),
        );
        let index = net.index_of(id).expect("router exists");
        Demo { net, index }
    }

    fn run(m: &Demo, cmd: Command) -> Vec<Reply> {
        execute(&m.net, m.index, &cmd, NOW)
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
            let major = m.net.model(m.index).expect("model").version.major;
            for path in supported_paths(major) {
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
