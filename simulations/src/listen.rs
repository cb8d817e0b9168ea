//! Streaming commands: `/interface/listen` and `/cancel`.
//!
//! A listen stays open after it is issued and sends an `!re` (the same attributes as
//! `/interface/print`) whenever an interface's `running` or `disabled` changes, until the
//! client cancels it with `/cancel =tag=<its tag>`. The listen then ends with
//! `!trap =category=2 =message=interrupted` and `!done`, and the cancel gets its own
//! `!done`. Other tagged commands run on the same connection in between, so a client
//! must route replies by tag, which is exactly what this is here to exercise.

use crate::commands::{Ctx, item_reply, proplist_of};
use crate::menus;
use ispvm_proto::routeros::{Command, Reply, ReplyKind};

/// One open listen.
#[derive(Debug, Clone)]
struct Listen {
    tag: Option<String>,
    proplist: Option<Vec<String>>,
    /// `(running, disabled)` per interface as last reported.
    last: Vec<(bool, bool)>,
}

/// The listens open on one connection.
#[derive(Debug, Default)]
pub struct Listens {
    open: Vec<Listen>,
}

/// `(running, disabled)` of every interface, from the same items a print returns.
fn states(ctx: &Ctx) -> Vec<(bool, bool)> {
    menus::interfaces(ctx)
        .iter()
        .map(|item| {
            let flag = |key: &str| item.iter().any(|(k, v)| *k == key && v == "true");
            (flag("running"), flag("disabled"))
        })
        .collect()
}

impl Listens {
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Opens a listen; it answers nothing until something changes.
    pub fn start(&mut self, command: &Command, ctx: &Ctx) {
        self.open.push(Listen {
            tag: command.tag.clone(),
            proplist: proplist_of(command),
            last: states(ctx),
        });
    }

    /// `/cancel`: ends the listen with `=tag=` (every listen without it), then answers
    /// the cancel itself (tagged with its own `.tag`).
    pub fn cancel(&mut self, command: &Command) -> Vec<Reply> {
        let target = command.attr("tag");
        let mut out = Vec::new();
        self.open.retain(|l| {
            let hit = target.is_none_or(|t| l.tag.as_deref() == Some(t));
            if hit {
                out.push(Reply::trap(Some(2), "interrupted").with_tag(l.tag.clone()));
                out.push(Reply::new(ReplyKind::Done).with_tag(l.tag.clone()));
            }
            !hit
        });
        out.push(Reply::new(ReplyKind::Done).with_tag(command.tag.clone()));
        out
    }

    /// The `!re` of every interface whose state changed since the last poll.
    pub fn poll(&mut self, ctx: &Ctx) -> Vec<Reply> {
        if self.open.is_empty() {
            return Vec::new();
        }
        let items = menus::interfaces(ctx);
        let now = states(ctx);
        let mut out = Vec::new();
        for listen in &mut self.open {
            for (i, state) in now.iter().enumerate() {
                if listen.last.get(i) != Some(state)
                    && let Some(item) = items.get(i)
                {
                    out.push(
                        item_reply(item.clone(), listen.proplist.as_deref())
                            .with_tag(listen.tag.clone()),
                    );
                }
            }
            listen.last.clone_from(&now);
        }
        out
    }
}
