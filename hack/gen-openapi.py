#!/usr/bin/env python3
"""Generates tenant-master/src/openapi/upstream.json: what upstream's OpenAPI spec says that
k8s-openapi's schemars schemas do not, read from the Go doc comments the k8s-pb crate keeps.

Usage (from the repository root; re-runnable, output is deterministic):

    python3 hack/gen-openapi.py [--pb DIR] [--schema FILE] [--out FILE]

Output:

  {"optional": {"core.v1.LocalObjectReference": ["name"], ...},
   "lists":    {"core.v1.PodList": ["PodList is a list of Pods.", "List of pods. More info: ..."], ...}}

  * optional: per message (named as in tenant-master/src/schema.json), the JSON names of the
    fields marked `+optional`. Upstream (openapi-gen) never lists those as required;
    k8s-openapi does for some (every kind's `metadata`, fields with a default such as
    LocalObjectReference.name), so tenant-master drops them from `required`.
  * lists: for every `<Kind>List` message of a kind in schema.json, the description of the
    list type and of its `items` field, formatted as openapi-gen formats Go comments
    (lines joined, paragraphs kept, `+markers` and TODO lines dropped).

Field names come from schema.json (protobuf tag -> JSON name), so run hack/gen-schema.py
first when k8s-pb changes.
"""

import argparse
import importlib.util
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def load_gen_schema():
    spec = importlib.util.spec_from_file_location("gen_schema", os.path.join(HERE, "gen-schema.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fmt_doc(lines):
    """A Go comment as openapi-gen writes it into the spec."""
    out = []
    para = []
    for line in lines:
        line = line.rstrip()
        lead = line.lstrip()
        if not line:
            if para:
                out.append(" ".join(para))
                para = []
            continue
        if lead.startswith("TODO") or lead.startswith("+"):
            continue
        para.append(lead)
    if para:
        out.append(" ".join(para))
    text = "\n\n".join(out).strip()
    # prost wraps bare URLs in <...> for rustdoc; the Go comments have them bare.
    return re.sub(r"<(https?://[^>\s]+)>", r"\1", text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pb", help="k8s-pb crate source")
    ap.add_argument("--schema", default=os.path.join(HERE, "..", "tenant-master", "src", "schema.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tenant-master", "src", "openapi", "upstream.json"))
    args = ap.parse_args()
    gs = load_gen_schema()
    pb_root = args.pb or gs.find_crate("k8s-pb-0.9.0")
    messages, _ = gs.parse_pb(pb_root)
    schema = json.load(open(args.schema, encoding="utf-8"))
    json_names = {name: {tag: j for tag, j, _ty, _card in fields} for name, fields in schema["messages"].items()}

    optional = {}
    lists = {}
    kinds = set(schema["kinds"].values())
    for (mod, name), msg in messages.items():
        full = f"{gs.short_module(mod)}.{name}"
        names = json_names.get(full)
        if names is not None:
            opt = []
            for f in msg["fields"]:
                m = re.search(r'tag\s*=\s*"(\d+)"', f["attr"])
                if m and any(d.strip().startswith("+optional") for d in f["doc"]) and names.get(int(m.group(1))):
                    opt.append(names[int(m.group(1))])
            if opt:
                optional[full] = sorted(opt)
        if name.endswith("List") and full[: -len("List")] in kinds:
            items = next((f for f in msg["fields"] if f["rust"] == "items"), None)
            if items is not None:
                lists[full] = [fmt_doc(msg["doc"]), fmt_doc(items["doc"])]

    with open(args.out, "w", encoding="utf-8") as out:
        out.write('{\n"optional": {')
        out.write(",".join(f"\n{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(optional.items())))
        out.write('},\n"lists": {')
        out.write(",".join(f"\n{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(lists.items())))
        out.write("}\n}\n")


if __name__ == "__main__":
    main()
