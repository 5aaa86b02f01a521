import json,glob,statistics,sys,collections
# Medians of the interleaved rounds of rounds.sh: python3 medians.py OUT_DIR
def load(prefix):
    cells=collections.defaultdict(list)
    for f in sorted(glob.glob(f'{sys.argv[1]}/{prefix}-*/compare.json')):
        for c in json.load(open(f))['cells']:
            if c['status']!='ok': continue
            cells[(c['workload'],c['server'],c['tool'])].append((c['rps']['median'],c['server_cpu_us']['median'],c['tool_cpu_us']['median']))
    return cells
for prefix in ['srv','tool']:
    cells=load(prefix)
    print(f'## {prefix}')
    print('| workload | server | tool | rounds | req/s | server µs/req | tool µs/req |')
    print('|---|---|---|--:|--:|--:|--:|')
    med={}
    for k,v in sorted(cells.items()):
        r=statistics.median(x[0] for x in v); s=statistics.median(x[1] for x in v); t=statistics.median(x[2] for x in v)
        med[k]=(r,s,t)
        print(f'| {k[0]} | {k[1]} | {k[2]} | {len(v)} | {r:,.0f} | {s:.2f} | {t:.2f} |')
    if prefix=='srv':
        for w in ['ka64','pipe16','file64k','close']:
            e=med.get((w,'uring-server-epoll','uring-load')); n=med.get((w,'nginx','uring-load')); u=med.get((w,'uring-server','uring-load'))
            if e and n and u:
                print(f'{w}: nginx/epoll server CPU = {n[1]/e[1]:.2f}x; epoll/full server CPU = {e[1]/u[1]:.2f}x; rps epoll/nginx {e[0]/n[0]:.2f}x, full/epoll {u[0]/e[0]:.2f}x')
    else:
        for w in ['ka64','pipe16']:
            e=med.get((w,'nginx','uring-load-epoll')); k=med.get((w,'nginx','wrk')); u=med.get((w,'nginx','uring-load'))
            if e and k and u:
                print(f'{w}: wrk/uring-load-epoll tool CPU = {k[2]/e[2]:.2f}x; uring-load-epoll/uring-load tool CPU = {e[2]/u[2]:.2f}x; rps epoll/wrk {e[0]/k[0]:.2f}x')
print('## per-round ratios (median over rounds)')
def rounds(prefix):
    out=[]
    for f in sorted(glob.glob(f'{sys.argv[1]}/{prefix}-*/compare.json')):
        d={}
        for c in json.load(open(f))['cells']:
            if c['status']=='ok': d[(c['workload'],c['server'],c['tool'])]=(c['rps']['median'],c['server_cpu_us']['median'],c['tool_cpu_us']['median'])
        out.append(d)
    return out
R=rounds('srv')
for w in ['ka64','pipe16','file64k','close']:
    a=[r[(w,'nginx','uring-load')][1]/r[(w,'uring-server-epoll','uring-load')][1] for r in R if (w,'nginx','uring-load') in r and (w,'uring-server-epoll','uring-load') in r]
    b=[r[(w,'uring-server-epoll','uring-load')][1]/r[(w,'uring-server','uring-load')][1] for r in R if (w,'uring-server','uring-load') in r and (w,'uring-server-epoll','uring-load') in r]
    if a: print(f'{w}: nginx/epoll server CPU {statistics.median(a):.2f}x (rounds {", ".join(f"{x:.2f}" for x in a)}); epoll/full {statistics.median(b):.2f}x (rounds {", ".join(f"{x:.2f}" for x in b)})')
T=rounds('tool')
for w in ['ka64','pipe16']:
    a=[r[(w,'nginx','wrk')][2]/r[(w,'nginx','uring-load-epoll')][2] for r in T if (w,'nginx','wrk') in r and (w,'nginx','uring-load-epoll') in r]
    b=[r[(w,'nginx','uring-load-epoll')][2]/r[(w,'nginx','uring-load')][2] for r in T if (w,'nginx','uring-load') in r and (w,'nginx','uring-load-epoll') in r]
    if a: print(f'{w}: wrk/uring-load-epoll tool CPU {statistics.median(a):.2f}x (rounds {", ".join(f"{x:.2f}" for x in a)}); uring-load epoll/io_uring {statistics.median(b):.2f}x')
