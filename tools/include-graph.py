#!/usr/bin/env python3
"""tools/include-graph.py [REPO] - the module include graph of src/: module
X -> Y when X.c (or a private header beside it) includes a header that Y.c
implements. Prints the edges between folders and every cycle (strongly
connected component) among modules; exits 1 when a cycle leaves
src/worker/ (the worker's request path is allowed its own)."""
import glob, os, re, sys
os.chdir(sys.argv[1] if len(sys.argv) > 1 else '.')
srcs = sorted(glob.glob('src/*/*.c'))
mod = {os.path.splitext(os.path.basename(p))[0]: p for p in srcs}
def folder(m): return mod[m].split('/')[1]
# which module implements a header: rp_X.h -> X.c; src/F/X.h -> src/F/X.c;
# header-only or multi-module headers mapped by hand
special = {'rp_shm_abi.h': 'shm', 'rp_utf8.h': None, 'rp_event.h': 'event', 'rp_child.h': 'child',
           'rp_supervisor.h': 'supervisor', 'rp_prober.h': 'prober', 'worker.h': 'worker',
           'rp_worker.h': 'worker', 'transport_h1.h': 'transport_h1', 'resolve.h': 'resolve', 'conn.h': 'conn',
           'rp_control.h': 'control', 'rp_privs.h': 'privs'}
def impl(h):
    b = os.path.basename(h)
    if b in special: return special[b]
    m = re.match(r'rp_(\w+)\.h$', b)
    if m and m.group(1) in mod: return m.group(1)
    return None
inc = re.compile(r'#include "([^"]+)"')
def includes(path, seen=None):
    out = set()
    for h in inc.findall(open(path).read()):
        out.add(h)
    return out
edges = {m: set() for m in mod}
for m, p in mod.items():
    hs = includes(p)
    # a private header beside the source pulls in what it includes
    for h in list(hs):
        q = os.path.join(os.path.dirname(p), h)
        if os.path.exists(q) and not h.startswith('rp_'):
            hs |= includes(q)
    for h in hs:
        t = impl(h)
        if t and t != m: edges[m].add(t)
# Tarjan SCC
idx, low, st, on, out, n = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        c = []
        while True:
            w = st.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: out.append(sorted(c))
sys.setrecursionlimit(10000)
for v in mod:
    if v not in idx: sc(v)
fe = {}
for a in edges:
    for b in edges[a]:
        if folder(a) != folder(b): fe.setdefault(folder(a), set()).add(folder(b))
print('folder edges:')
for a in sorted(fe): print(f'  {a} -> {", ".join(sorted(fe[a]))}')
print('module cycles:', out if out else 'none')
bad = [c for c in out if any(folder(m) != 'worker' for m in c)]
print('cycles outside src/worker:', bad if bad else 'none')
sys.exit(1 if bad else 0)
