#!/usr/bin/env python3
"""Derive pgbr's pgBackRest option table from pgBackRest's config.yaml files.

pgbr validates the `[options]` table of a topology against the options of
the pgBackRest release the topology names (`[pgbackrest] version`, 2.45 to
2.59). This script reads pgBackRest's own option definitions
(`src/build/config/config.yaml` of the last patch release of each minor, MIT
license) and prints the compact table that `src/topology/options.rs` embeds:
the first release in full, then for each later release only the rows that
it adds, changes or drops. It is run by hand; its output is committed:

    python3 tools/gen_pgbackrest_options.py ../shared/data/pgbackrest-*-config.yaml \
        > src/topology/pgbackrest_options.tsv

The header records every source file with its SHA-256. Needs PyYAML. The
output is deterministic (sorted), so a re-run on the same input produces no
diff.
"""

import hashlib
import os
import re
import sys

import yaml

# pgBackRest's CFG_OPTION_KEY_MAX (src/config/config.h): the highest index of
# an option in a group, e.g. pg256-path or repo256-path. It is not in the yaml.
GROUP_INDEX_MAX = 256
# Units of time ranges written with a suffix (from 2.53: `100ms..1d`); the
# table holds seconds, as 2.45 wrote them.
TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. PyYAML's YAML 1.1 default would
    read the log level `off` (and any on/yes/no) as a boolean."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|false)$"),
    list("tf"),
)


def resolve(options, name):
    """The definition of `name` with `inherit:` applied (the child wins)."""
    opt = options[name]
    if "inherit" in opt:
        merged = dict(resolve(options, opt["inherit"]))
        merged.pop("deprecate", None)  # deprecated names are never inherited
        merged.update({k: v for k, v in opt.items() if k != "inherit"})
        return merged
    return opt


def value_name(v):
    """An allow-list entry; `{zst: HAVE_LIBZST}` is a value that depends on a
    build feature, which Debian's and PGDG's packages have."""
    if isinstance(v, dict):
        (name,) = v.keys()
        return str(name)
    return str(v)


def allow_list(options, opt):
    """The allow-list; a string names another option whose list is shared."""
    allowed = opt.get("allow-list")
    if isinstance(allowed, str):
        allowed = resolve(options, allowed).get("allow-list")
    return [value_name(v) for v in allowed or []]


def seconds(v):
    """`100ms`, `1d`, `0.1` -> seconds as text."""
    m = re.fullmatch(r"(-?[0-9.]+)([a-z]*)", str(v))
    n = float(m.group(1)) * TIME_UNITS.get(m.group(2), 1)
    return str(int(n)) if n == int(n) else repr(n)


def bound(opt, v):
    return seconds(v) if opt["type"] == "time" else str(v)


def range_field(options, opt):
    """`lo..hi`; or, for a range that depends on another option's value
    (compress-level by compress-type from 2.56),
    `<option>|<its default>|<value>=lo..hi,...`."""
    rng = opt.get("allow-range")
    if not rng:
        return "-"
    if isinstance(rng[0], dict):
        by = opt["depend"]["option"]
        default = resolve(options, by).get("default", "-")
        parts = []
        for entry in rng:
            ((value, (lo, hi)),) = entry.items()
            parts.append(f"{value}={bound(opt, lo)}..{bound(opt, hi)}")
        return f"{by}|{default}|{','.join(parts)}"
    return f"{bound(opt, rng[0])}..{bound(opt, rng[1])}"


def field(values):
    return ",".join(values) if values else "-"


def release_of(path):
    """`pgbackrest-2.55.1-config.yaml` -> (2, 55, 1)."""
    m = re.search(r"pgbackrest-([0-9]+)\.([0-9]+)(?:\.([0-9]+))?-config\.yaml$", path)
    if not m:
        sys.exit(f"{path}: expected a name like pgbackrest-2.55.1-config.yaml")
    return tuple(int(g or 0) for g in m.groups())


def rows_of(path):
    """{(kind, name): row} for one release."""
    with open(path, encoding="utf-8") as f:
        config = yaml.load(f, Loader=Loader)
    options = config["option"]
    rows = {}
    for g in sorted(config["optionGroup"]):
        rows[("group", g)] = f"group\t{g}\t{GROUP_INDEX_MAX}"
    for name in sorted(options):
        opt = resolve(options, name)
        flags = [f for f in ("internal", "beta", "secure") if opt.get(f)]
        rows[("option", name)] = "\t".join(
            [
                "option",
                name,
                opt.get("section", "command-line"),
                opt["type"],
                opt.get("group", "-"),
                field(allow_list(options, opt)),
                range_field(options, opt),
                field(flags),
            ]
        )
        for old in sorted(options[name].get("deprecate", {}) or {}):
            rows[("deprecated", old)] = f"deprecated\t{old}\t{name}"
    return rows


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(paths):
    paths = sorted(paths, key=release_of)
    releases = [release_of(p) for p in paths]
    minors = [r[:2] for r in releases]
    if len(set(minors)) != len(minors):
        sys.exit("give one config.yaml per minor release")
    out = sys.stdout
    first, last = releases[0], releases[-1]
    out.write(
        f"# pgBackRest {first[0]}.{first[1]} to {last[0]}.{last[1]} options, derived from pgBackRest's\n"
        "# src/build/config/config.yaml (pgBackRest is MIT licensed, Copyright (c)\n"
        "# 2015-2025 The PostgreSQL Global Development Group and (c) 2013-2016 David\n"
        "# Steele). Generated by tools/gen_pgbackrest_options.py; do not edit.\n"
        "# Regenerate with:\n"
        "#   python3 tools/gen_pgbackrest_options.py ../shared/data/pgbackrest-*-config.yaml \\\n"
        "#       > src/topology/pgbackrest_options.tsv\n"
        "# Sources (file, SHA-256):\n"
    )
    for p in paths:
        out.write(f"#   {os.path.basename(p)} {sha256(p)}\n")
    out.write(
        "#\n"
        "# Tab-separated rows; `-` means none; lists are comma-separated.\n"
        "#   release     <major.minor> <the patch release the rows come from>\n"
        "#   group       <name> <highest index>\n"
        "#   option      <name> <section: global|stanza|command-line> <type> <group>\n"
        "#               <allowed values> <range> <flags: internal,beta,secure>\n"
        "#   deprecated  <old name, `?` = the group index> <current option name>\n"
        "#   drop        <group|option|deprecated> <name>\n"
        "# The first release lists every row; each later one only the rows it adds\n"
        "# or changes (a row replaces the one of the same kind and name) and drops.\n"
        "# A range is `lo..hi` (times in seconds), or\n"
        "# `<option>|<its default>|<value>=lo..hi,...` when it depends on another\n"
        "# option's value. A grouped option `repo-path` is spelled `repo1-path` ..\n"
        "# `repo256-path`; a deprecated name without `?` means index 1.\n"
    )
    previous = {}
    for path, release in zip(paths, releases):
        rows = rows_of(path)
        out.write(f"release\t{release[0]}.{release[1]}\t{'.'.join(map(str, release))}\n")
        for key in sorted(rows):
            if previous.get(key) != rows[key]:
                out.write(rows[key] + "\n")
        for kind, name in sorted(set(previous) - set(rows)):
            out.write(f"drop\t{kind}\t{name}\n")
        previous = rows


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: gen_pgbackrest_options.py path/to/pgbackrest-<v>-config.yaml...")
    main(sys.argv[1:])
