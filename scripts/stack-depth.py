#!/usr/bin/env python3
"""Worst-case stack depth of a Thumb-2 firmware, from its call graph.

usage: stack-depth.py OBJDUMP ELF [ENTRY]

Reads `OBJDUMP -d` of ELF; for each function adds up what its prologue
takes from the stack (push / stmdb / str ..., [sp, #-n]! / vpush /
sub sp, #n), follows direct calls (bl, blx <f>, and branches to another
function's start: tail calls) and prints the deepest path from ENTRY
(default: main, the cortex-m-rt entry). Static: the figure holds for every
input, as long as the functions flagged on the path make no indirect call
or run-time-sized frame. The panic and formatting machinery (core::panicking,
core::fmt, the slice/str index failures) is left out: with panic = "abort"
it only runs on the way to a halt, and its formatting recursion has no
static bound.
"""
import re
import subprocess
import sys
from functools import lru_cache

objdump, elf = sys.argv[1], sys.argv[2]
entry = sys.argv[3] if len(sys.argv) > 3 else "main"
text = subprocess.run([objdump, "-d", "--demangle", "--no-show-raw-insn", elf],
                      capture_output=True, text=True, check=True).stdout

funcs, order = {}, []
current = None
head = re.compile(r"^([0-9a-f]+) <(.+)>:$")
for line in text.splitlines():
    m = head.match(line)
    if m:
        if m.group(2).startswith("$"):
            continue  # a data or code marker inside the current function
        current = m.group(2)
        funcs[current] = {"addr": int(m.group(1), 16), "frame": 0, "calls": set(), "indirect": False,
                          "body": []}
        order.append(current)
        continue
    if current in funcs and "\t" in line:
        funcs[current]["body"].append(line)

starts = {f["addr"]: name for name, f in funcs.items()}
reg_list = re.compile(r"\{([^}]*)\}")


def regs(spec):
    n = 0
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            n += int(b[1:]) - int(a[1:]) + 1
        elif part:
            n += 1
    return n


for name, f in funcs.items():
    for line in f["body"]:
        parts = line.split("\t")
        ins = [p.strip() for p in parts if p.strip()]
        if len(ins) < 2:
            continue
        op, args = ins[1], " ".join(ins[2:])
        op = op.split(".")[0]
        if op in ("push",) or (op == "stmdb" and args.startswith("sp!")):
            m = reg_list.search(args)
            if m:
                f["frame"] += 4 * regs(m.group(1))
        elif op == "vpush":
            m = reg_list.search(args)
            if m:
                size = 8 if "d" in m.group(1) else 4
                f["frame"] += size * regs(m.group(1))
        elif op == "str" and re.search(r"\[sp, #-(\d+)\]!", args):
            f["frame"] += int(re.search(r"\[sp, #-(\d+)\]!", args).group(1))
        elif op in ("sub", "subw") and re.match(r"sp,\s*(sp,\s*)?#(\d+)", args):
            f["frame"] += int(re.match(r"sp,\s*(sp,\s*)?#(\d+)", args).group(2))
        elif op in ("sub",) and re.match(r"sp,\s*(sp,\s*)?r\d+", args):
            f["indirect"] = True  # a frame sized at run time
        if op in ("bl", "blx", "b") or (op.startswith("b") and len(op) <= 3):
            m = re.search(r"0x([0-9a-f]+)", args) or re.match(r"([0-9a-f]+)", args)
            target = int(m.group(1), 16) if m else None
            if target in starts and starts[target] != name:
                f["calls"].add(starts[target])
            elif op == "blx" and target is None:
                f["indirect"] = True

visiting = set()


PANIC = ("core::panicking", "core::fmt", "core::str::slice_error_fail", "core::slice::index::",
         "core::result::unwrap_failed", "core::option::unwrap_failed", "core::option::expect_failed",
         "rust_begin_unwind", "__rustc::rust_begin_unwind")
for f in funcs.values():
    f["calls"] = {c for c in f["calls"] if not c.startswith(PANIC)}


@lru_cache(maxsize=None)
def depth(name):
    if name in visiting:
        raise SystemExit(f"stack-depth: recursion through {name}")
    visiting.add(name)
    f = funcs[name]
    best, path = 0, []
    for callee in f["calls"]:
        d, p = depth(callee)
        if d > best:
            best, path = d, p
    visiting.discard(name)
    return f["frame"] + best, [name] + path


roots = [n for n in funcs if n == entry or n.startswith(entry + "::") or n.endswith("::" + entry)]
if not roots:
    raise SystemExit(f"stack-depth: no function {entry}")
d, path = max(depth(r) for r in roots)
print(d)
for name in path:
    f = funcs[name]
    flag = " (indirect call or run-time frame)" if f["indirect"] else ""
    print(f"  {f['frame']:6d}  {name[:110]}{flag}", file=sys.stderr)
