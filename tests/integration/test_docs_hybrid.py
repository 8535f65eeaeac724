"""Hybrid ranking against the real binary: `crucible docs add` embeds the
chunks through the fake endpoint's /v1/embeddings (tests/fakes/fake_openai.py,
the real wire format), the vectors sit beside FTS5 in the cache, `crucible docs
search` fuses both rankings, and every failure of the endpoint falls back to
lexical ranking and says so. The fake model is a hashed bag of words with a
synonym table: these tests show the mechanism, never the quality of a real
model (bench/docs/retrieval/run.py --embedding-model measures that)."""
import json
import os
import pathlib
import sqlite3
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from conftest import crucible_bin  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

MODEL = "fake-embed"
# "pause" is in no page: lexical ranking has nothing to go on; the fake model
# maps it to "sleep", which the timing page is about.
QUESTION = "how to pause"

PAGES = {
    "timing.md": "# Sleeping\n\nCall time.sleep(seconds) to sleep. The sleep blocks the calling thread; "
                 "sleep accepts a float for sub-second precision.\n",
    "programs.md": "# Running programs\n\nA program is started with subprocess.run; the program's output "
                   "is captured when asked.\n",
    "files.md": "# Reading files\n\nopen() returns a file object; iterate over it to read lines.\n",
    "json.md": "# JSON\n\njson.loads parses a document; json.dumps writes one.\n",
}




@pytest.fixture
def fake():
    f = FakeOpenAI().start()
    yield f
    f.stop()


class Env:
    def __init__(self, tmp_path, url, model=MODEL, extra=None):
        self.tmp = tmp_path
        self.cache = tmp_path / "cache"
        self.config = tmp_path / "config"
        (self.config / "crucible").mkdir(parents=True, exist_ok=True)
        self.url = url
        self.settings(model, extra)

    def settings(self, model=MODEL, extra=None):
        s = {"docs": {"embeddingModel": model}}
        s.update(extra or {})
        (self.config / "crucible" / "config.json").write_text(json.dumps(s))

    def run(self, *args, check=True, timeout=60):
        env = dict(os.environ, XDG_CACHE_HOME=str(self.cache), XDG_CONFIG_HOME=str(self.config),
                   XDG_STATE_HOME=str(self.tmp / "state"), OPENAI_BASE_URL=self.url, OPENAI_API_KEY="sk-embed-test")
        p = subprocess.run([crucible_bin(), "docs", *args], capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, "crucible docs %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr)
        return p

    def add(self, folder):
        p = self.run("add", str(folder), "--json")
        return json.loads(p.stdout), p.stderr

    def search(self, query, *args, check=True):
        p = self.run("search", query, "--json", "--explain", *args, check=check)
        return json.loads(p.stdout), p

    def db(self):
        return sqlite3.connect(str(self.cache / "crucible" / "docs.db"))

    def counts(self):
        with self.db() as c:
            chunks = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
            vecs = c.execute("SELECT count(*) FROM chunk_vectors WHERE model = ?", (MODEL,)).fetchone()[0]
            dims = {r[0] for r in c.execute("SELECT DISTINCT dim FROM chunk_vectors")}
            orphans = c.execute("SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)"
                                ).fetchone()[0]
        return chunks, vecs, dims, orphans


def folder(tmp_path, extra_pages=0):
    d = tmp_path / "docs"
    d.mkdir(exist_ok=True)
    for name, text in PAGES.items():
        (d / name).write_text(text)
    for i in range(extra_pages):
        (d / ("topic%03d.md" % i)).write_text("# Topic %d\n\nThe widget number %d is configured here.\n" % (i, i))
    return d


def test_add_stores_vectors_beside_fts(fake, tmp_path):
    e = Env(tmp_path, fake.url)
    d = folder(tmp_path, extra_pages=70)
    summary, _ = e.add(d)
    chunks, vecs, dims, orphans = e.counts()
    assert chunks >= 74 and summary["embedded"] == chunks, summary
    assert vecs == chunks and dims == {64} and orphans == 0
    reqs = fake.embedding_requests()
    # batches of 64, the model of the setting, the endpoint's key
    sizes = [len(r["body"]["input"]) for r in reqs]
    assert max(sizes) == 64 and sum(sizes) == chunks, sizes
    assert all(r["body"]["model"] == MODEL for r in reqs)
    assert all(r["headers"].get("authorization") == "Bearer sk-embed-test" for r in reqs)
    # a second sync embeds nothing new
    summary, _ = e.add(d)
    assert summary["embedded"] == 0 and len(fake.embedding_requests()) == len(reqs)
    # vectors go with their chunks: a changed page and a removed one
    (d / "timing.md").write_text(PAGES["timing.md"] + "\n## More\n\nsleep(0) yields the processor.\n")
    (d / "json.md").unlink()
    summary, _ = e.add(d)
    chunks2, vecs2, _, orphans2 = e.counts()
    assert vecs2 == chunks2 and orphans2 == 0 and summary["embedded"] >= 1, summary


def test_hybrid_finds_what_lexical_misses(fake, tmp_path):
    e = Env(tmp_path, fake.url)
    e.add(folder(tmp_path, extra_pages=8))
    j, _ = e.search(QUESTION)
    why = j["explain"]
    assert j["ranking"] == "hybrid" and why["ranking"] == "hybrid", why
    top = why["hits"][0]
    assert top["url"].endswith("/timing.md") and top["vectorRank"] == 1 and top["lexicalRank"] == 0, top
    assert j["sources"][0]["url"].endswith("/timing.md") and "time.sleep" in j["context"]
    assert why["vectorsScanned"] >= 12 and why["embeddingModel"] == MODEL
    # the question went to /v1/embeddings as one input
    assert fake.embedding_requests()[-1]["body"]["input"] == [QUESTION]
    # the same cache with the setting off: lexical, and the timing page is not found
    e.settings(model="")
    j2, p = e.search(QUESTION, check=False)
    assert j2["ranking"] == "lexical" and j2["explain"]["ranking"] == "lexical"
    assert not any(s["url"].endswith("/timing.md") for s in j2["sources"]), j2["sources"]
    # on a terminal the explanation names the ranking
    e.settings()
    p = e.run("search", QUESTION, "--explain")
    assert "ranking: hybrid" in p.stderr and "vector rank 1" in p.stderr, p.stderr


def test_fused_with_lexical(fake, tmp_path):
    """A question both sides answer: the page both rank first stays first."""
    e = Env(tmp_path, fake.url)
    e.add(folder(tmp_path, extra_pages=8))
    j, _ = e.search("parse a JSON document")
    top = j["explain"]["hits"][0]
    assert j["ranking"] == "hybrid" and top["url"].endswith("/json.md"), top
    assert top["lexicalRank"] == 1 and top["vectorRank"] == 1 and abs(top["rrf"] - 2 / 61) < 1e-9, top


@pytest.mark.parametrize("failure", ["404", "500", "garbage", "slow"])
def test_query_embedding_failure_falls_back(fake, tmp_path, failure):
    e = Env(tmp_path, fake.url)
    e.add(folder(tmp_path, extra_pages=4))
    fake.configure_embeddings(failure=failure, delay=10 if failure == "slow" else 0)
    j, p = e.search("parse a JSON document")
    assert j["ranking"] == "lexical" and j["explain"]["ranking"] == "lexical", j["explain"]
    assert "could not be embedded" in j["explain"]["lexicalBecause"], j["explain"]
    assert j["sources"][0]["url"].endswith("/json.md")  # lexical ranking still answers
    # on a terminal it is said on stderr
    p = e.run("search", "parse a JSON document")
    assert "ranking: lexical" in p.stderr and "embeddings" in p.stderr, p.stderr


@pytest.mark.parametrize("failure", ["404", "500", "garbage", "slow"])
def test_sync_embedding_failure_falls_back(fake, tmp_path, failure):
    # a slow batch meets the endpoint's timeout (llm.timeoutMs)
    e = Env(tmp_path, fake.url, extra={"llm": {"timeoutMs": 1500}})
    fake.configure_embeddings(failure=failure, delay=10 if failure == "slow" else 0)
    summary, err = e.add(folder(tmp_path))
    assert summary["pages"] == len(PAGES) and summary["embedded"] == 0 and summary["embeddingError"], summary
    assert "stays lexical" in err, err
    chunks, vecs, _, _ = e.counts()
    assert chunks > 0 and vecs == 0
    # the endpoint recovers for the question, but no chunk has a vector: lexical, said why
    fake.configure_embeddings()
    j, _ = e.search("parse a JSON document")
    assert j["ranking"] == "lexical" and "no chunk" in j["explain"]["lexicalBecause"], j["explain"]
    # the next sync embeds what is missing
    summary, _ = e.add(folder(tmp_path))
    assert summary["embedded"] == chunks and "embeddingError" not in summary


def test_no_endpoint_falls_back(tmp_path):
    e = Env(tmp_path, "http://127.0.0.1:9/v1")
    summary, err = e.add(folder(tmp_path))
    assert summary["embedded"] == 0 and "embeddingError" in summary and "stays lexical" in err
    j, _ = e.search("parse a JSON document")
    assert j["ranking"] == "lexical" and j["sources"][0]["url"].endswith("/json.md")


def _ask_env(tmp_path, fake, model):
    from conftest import llm_env
    env = llm_env(tmp_path, fake.url, "sk-embed-test")
    cfgdir = pathlib.Path(env["XDG_CONFIG_HOME"]) / "crucible"
    cfgdir.mkdir(parents=True, exist_ok=True)
    # the docs folder is outside any workspace: the user file allows it
    (cfgdir / "config.json").write_text(json.dumps({"docs": {"embeddingModel": model, "allowLocal": True}}))
    return env


def _ask(c, fake, d):
    answer = {"prefix": "p", "imports": "import time", "code": "time.sleep(0)\nprint('ok')"}
    fake.script([{"content": json.dumps(answer)}])
    r = c.call("crucible/ask", {"question": QUESTION, "docs": [str(d)]}, timeout=120)
    return r["result"]


def test_ask_result_says_which_ranking_ran(fake, tmp_path):
    from conftest import Client, finish
    d = folder(tmp_path, extra_pages=8)
    c = Client(env=_ask_env(tmp_path, fake, MODEL))
    c.initialize()
    try:
        res = _ask(c, fake, d)
        assert res["outcome"] == "passed", res
        assert res["ranking"] == "hybrid", res
        assert res["sources"][0]["url"].endswith("/timing.md"), res["sources"]
        system = fake.chat_requests()[-1]["body"]["messages"][0]["content"]
        assert "time.sleep(seconds)" in system
        # the sync embedded the chunks, and the question went alone
        inputs = [r["body"]["input"] for r in fake.embedding_requests()]
        assert [QUESTION] in inputs and any(len(i) > 1 for i in inputs), inputs
        # the endpoint fails: the ask still answers, ranked lexically, and says so
        fake.configure_embeddings(failure="500")
        res = _ask(c, fake, d)
        assert res["outcome"] == "passed" and res["ranking"] == "lexical", res
        assert not any(s["url"].endswith("/timing.md") for s in res["sources"]), res["sources"]
    finally:
        finish(c)
    # no model set: lexical
    c = Client(env=_ask_env(tmp_path / "off", fake, ""))
    c.initialize()
    try:
        fake.configure_embeddings()
        n = len(fake.embedding_requests())
        res = _ask(c, fake, d)
        assert res["ranking"] == "lexical" and len(fake.embedding_requests()) == n, res
    finally:
        finish(c)


def test_doctor_says_which_ranking(fake, tmp_path):
    e = Env(tmp_path, fake.url)

    def doctor():
        env = dict(os.environ, XDG_CACHE_HOME=str(e.cache), XDG_CONFIG_HOME=str(e.config),
                   XDG_STATE_HOME=str(tmp_path / "state"), OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="sk-embed-test")
        p = subprocess.run([crucible_bin(), "doctor", "--json"], capture_output=True, text=True, env=env, timeout=120)
        return json.loads(p.stdout)["docs"]

    d = doctor()
    assert d["ranking"] == "hybrid" and d["embeddingModel"] == MODEL and d["embeddings"]["dim"] == 64, d
    fake.configure_embeddings(failure="404")
    d = doctor()
    assert d["ranking"] == "lexical" and "404" in d["embeddings"]["error"] and d["lexicalBecause"], d
    e.settings(model="")
    d = doctor()
    assert d["ranking"] == "lexical" and "not set" in d["lexicalBecause"] and "embeddings" not in d, d
