"""The interoperability matrix as markdown (interop_matrix_test.py): the table of rows and
columns, then every cell that is not a plain pass with its cause and evidence."""
import json
import os


def cell_text(c):
    if c["result"] == "limit":
        return "limit: " + c["limit"].split(":")[0].split(" (")[0]
    text = "pass" if c["result"] == "pass" else "FAIL"
    if c["control"] and c["result"] == "pass":
        text = "control"
    if c["result"] != "pass" and c["expected_to_fail"]:
        text = "xfail"
    first = c["seed_first_byte_s"]
    if first is not None:
        text += " %.2f s" % first
    notes = []
    if c["transport"]:
        notes.append(c["transport"])
    if c["result"] == "pass" and c["allowance_s"] >= 0.3:
        notes.append("%.2f s not the seed's" % c["allowance_s"])
    if c["result"] == "pass" and c["mib_per_s"] is not None and c["row"].startswith("lossy"):
        notes.append("%.1f MiB/s" % c["mib_per_s"])
    return text + (" (%s)" % ", ".join(notes) if notes else "")


def markdown(cells, rows, columns, legend):
    """`rows`: objects with .key and .title, in the table's order; `columns`: (source,
    version) pairs."""
    rows = [r for r in rows if any(c["row"] == r.key for c in cells)]
    head = ["client (settings)"] + ["%s %s" % (".torrent" if s == "torrent" else "magnet", v)
                                    for s, v in columns]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        line = [r.title]
        for s, v in columns:
            c = [x for x in cells if x["row"] == r.key and x["source"] == s and x["version"] == v]
            line.append(cell_text(c[0]) if c else "n/a")
        out.append("| " + " | ".join(line) + " |")
    out += ["", legend, ""]
    for c in cells:
        if c["result"] == "pass" and not c["expected_to_fail"] and c["allowance_s"] < 0.3:
            continue
        out.append("- **%s, %s %s**: %s" % (c["title"], c["source"], c["version"],
                                             cell_text(c)))
        if c["error"]:
            out.append("  - cause: %s" % c["error"])
        if c["expected_to_fail"]:
            out.append("  - expected to fail: %s" % c["expected_to_fail"])
        if c["limit"]:
            out.append("  - client limit: %s" % c["limit"])
        if c["refused"]:
            out.append("  - refused when given: %s" % c["refused"])
        out.append("  - tracker listed it after %s s; its own first byte after %s s; own "
                   "waits %s" % (c["announced_s"], c["client_first_byte_s"], "; ".join(
                       "%.2f s %s" % (w, why) for w, why in c["own_waits"]) or "none"))
        if c["poll_errors"]:
            out.append("  - %d polls of the client failed, the last: %s" % (
                c["poll_errors"], c["last_poll_error"]))
        if c.get("link"):
            out.append("  - link: %s" % json.dumps(c["link"]))
        for line in c["evidence"][:16]:
            out.append("  - client: `%s`" % line.replace("`", "'")[:220])
        for line in c["seed_log"][:6]:
            out.append("  - evertd: `%s`" % line.replace("`", "'")[:220])
    return "\n".join(out) + "\n"


def write_report(directory, rows, columns, legend):
    """Joins the rows' ROW.json files in `directory` into interop-matrix.md; returns its
    text. Fails when there are none (run the matrix first)."""
    cells, when = [], []
    for r in rows:
        p = os.path.join(directory, r.key + ".json")
        if os.path.exists(p):
            with open(p) as f:
                j = json.load(f)
            cells += j["cells"]
            when.append(j["when"])
    if not cells:
        raise RuntimeError("no matrix rows in %s: run ctest -R '^matrix\\.' first" % directory)
    missing = [r.key for r in rows if not os.path.exists(os.path.join(directory, r.key + ".json"))]
    text = "# Interoperability matrix\n\n" + markdown(cells, rows, columns, legend)
    if missing:
        text += "\nRows not run: %s\n" % ", ".join(missing)
    with open(os.path.join(directory, "interop-matrix.md"), "w") as f:
        f.write(text)
    return text
