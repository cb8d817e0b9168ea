#!/usr/bin/env python3
"""Reads a RouterOS API endpoint with librouteros, an independent client from PyPI.

Usage: librouteros_check.py HOST PORT USERNAME PASSWORD

Used by agent/tests/librouteros.rs, which reads the same things with our client and
compares. Prints one JSON object on stdout:

- "identity", "interfaces": rows of `/system/identity/print` and of `/interface/print`
  with `.proplist` (librouteros's `select`), each row a list of [key, value] pairs in
  the order received, values as librouteros types them (int, bool or str).
- "trap": the TrapError librouteros raises for an unknown command, and whether the
  session still answers after it.
- "tagged": three tagged commands written back to back before any reply is read
  (librouteros's protocol layer; its Api object neither tags nor multiplexes), and the
  raw reply sentences grouped by tag.
- "high_level_tag": what librouteros's Api does with a reply that carries `.tag`.
- "bad_login": the error of a login with the password "wrong-" + PASSWORD.
- "legacy_login": the outcome of librouteros's pre-6.43 (MD5 challenge) login.

Exits with 2 on a usage error, 3 if librouteros is missing, 1 on any unexpected failure.
"""

import importlib.metadata
import json
import platform
import sys

try:
    import librouteros
    from librouteros.exceptions import LibRouterosError, TrapError
    from librouteros.login import token
    from librouteros.query import Key
except ImportError as e:
    print(
        f"librouteros is not installed ({e}): python3 -m pip install librouteros==4.2.2",
        file=sys.stderr,
    )
    sys.exit(3)

INTERFACE_PROPS = ["name", "type", "mtu", "mac-address", "disabled"]
TIMEOUT_S = 10


def rows(response):
    """librouteros rows (dicts) as lists of [key, value] pairs, order kept."""
    return [[[k, v] for k, v in row.items()] for row in response]


def trap_json(e):
    return {
        "exception": type(e).__name__,
        "category": e.category,
        "message": e.message,
        "str": str(e),
    }


def error_json(e):
    if isinstance(e, TrapError):
        return trap_json(e)
    return {"exception": type(e).__name__, "str": str(e)}


def split_sentence(reply_word, words):
    """A raw reply sentence: its reply word, tag(s), `=key=value` attributes in order."""
    tags, attributes, other = [], [], []
    for word in words:
        if word.startswith(".tag="):
            tags.append(word[len(".tag="):])
        elif word.startswith("="):
            key, sep, value = word[1:].partition("=")
            if sep:
                attributes.append([key, value])
            else:
                other.append(word)
        else:
            other.append(word)
    return {"reply": reply_word, "tags": tags, "attributes": attributes, "other": other}


def pipelined_tagged(api):
    """Several tagged commands in flight at once, replies read raw and grouped by tag."""
    commands = {
        "id": ["/system/identity/print"],
        # `.proplist` as an API attribute word here; `select` sends it as `=.proplist=`.
        "if": ["/interface/print", ".proplist=" + ",".join(INTERFACE_PROPS)],
        "bad": ["/no/such/thing/print"],
    }
    for tag, (cmd, *words) in commands.items():
        api.protocol.writeSentence(cmd, *words, f".tag={tag}")
    by_tag = {tag: [] for tag in commands}
    arrival = []
    untagged = []
    done = set()
    while done != set(commands):
        reply_word, words = api.protocol.readSentence()
        sentence = split_sentence(reply_word, words)
        arrival.append([reply_word, sentence["tags"]])
        if len(sentence["tags"]) != 1 or sentence["tags"][0] not in by_tag:
            untagged.append(sentence)
            if reply_word == "!done" and not sentence["tags"]:
                break  # cannot tell whose: stop rather than wait forever
            continue
        tag = sentence["tags"][0]
        by_tag[tag].append(sentence)
        if reply_word == "!done":
            done.add(tag)
    return {
        "commands": {tag: cmd for tag, cmd in commands.items()},
        "replies": by_tag,
        "arrival": arrival,
        "unexpected": untagged,
    }


def connect(host, port, username, password, **kwargs):
    return librouteros.connect(
        host, username, password, port=port, timeout=TIMEOUT_S, **kwargs
    )


def main(argv):
    if len(argv) != 5:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    host, port, username, password = argv[1], int(argv[2]), argv[3], argv[4]
    out = {
        "librouteros_version": importlib.metadata.version("librouteros"),
        "python_version": platform.python_version(),
    }

    api = connect(host, port, username, password)
    out["identity"] = rows(api.path("system", "identity"))
    keys = [Key(p) for p in INTERFACE_PROPS]
    out["interfaces"] = rows(api.path("interface").select(*keys))

    try:
        got = rows(api("/no/such/thing/print"))
        out["trap"] = {"exception": None, "rows": got}
    except TrapError as e:
        out["trap"] = trap_json(e)
    # A trap ends one command, not the session.
    out["trap"]["identity_after"] = rows(api.path("system", "identity"))

    out["tagged"] = pipelined_tagged(api)
    out["tagged"]["identity_after"] = rows(api.path("system", "identity"))
    api.close()

    # librouteros's Api reads replies as `=key=value` words only; a tagged reply is
    # outside what it parses. Its own connection, as the session is unusable afterwards.
    api = connect(host, port, username, password)
    try:
        got = rows(api.rawCmd("/system/identity/print", ".tag=hl"))
        out["high_level_tag"] = {"exception": None, "rows": got}
    except Exception as e:  # noqa: BLE001 - what it raises is the finding
        out["high_level_tag"] = error_json(e)
    api.close()

    try:
        connect(host, port, username, "wrong-" + password).close()
        out["bad_login"] = {"exception": None}
    except LibRouterosError as e:
        out["bad_login"] = error_json(e)

    try:
        connect(host, port, username, password, login_method=token).close()
        out["legacy_login"] = {"exception": None}
    except LibRouterosError as e:
        out["legacy_login"] = error_json(e)

    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
