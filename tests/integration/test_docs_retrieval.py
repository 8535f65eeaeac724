"""Retrieval quality on real documentation nobody here wrote: Debian's
python3-doc (the Python 3.11 HTML docs), indexed from its folder with the
real binary and asked every question of bench/docs/retrieval (the tuning set
and the two held-out sets, each written before a change was measured on it), through the bench's own
evaluation (bench/docs/retrieval/run.py). The floors sit a margin under what
the ranking reached when they were set; a ranking change that loses answers
fails here. Skipped only when python3-doc is not installed (.ci/setup
installs it)."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "docs" / "retrieval"))
import run  # noqa: E402

DOCS = run.DEFAULT_DOCS
# (recall@1, MRR, answering section in the prompt) floors per question set:
# reached when set 0.60 / 0.71 / 63 of 70 (tuning set), 0.70 / 0.80 / 17 of
# 20 and 0.65 / 0.69 / 17 of 20 (the two held-out sets); the margin is about
# 3 questions of 70 and 2 of 20. (The tuning set's MRR was 0.72 before API
# entries became sections and page evidence was capped: a trade for the
# held-out sets' 0.58 and 0.47.) heldout3.jsonl (25, issue 16 round 3):
# 0.44 / 0.55 / 18 of 25 when written; the margin is 2 questions.
FLOORS = {
    "questions.jsonl": (0.55, 0.67, 0.85),
    "heldout.jsonl": (0.60, 0.72, 0.75),
    "heldout2.jsonl": (0.55, 0.60, 0.75),
    "heldout3.jsonl": (0.36, 0.47, 0.64),
}


def crucible_bin():
    b = os.environ.get("CRUCIBLE_BIN")
    p = pathlib.Path(b) if b else ROOT / "build" / "server" / "crucible"
    if not p.exists():
        pytest.skip("crucible not built (build first or set CRUCIBLE_BIN)")
    return str(p)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    if not os.path.isdir(DOCS):
        pytest.skip("python3-doc is not installed (apt-get install python3-doc; .ci/setup does)")
    tmp = tmp_path_factory.mktemp("retrieval")
    env = run.Env(crucible_bin(), tmp)
    db = tmp / "docs.db"
    st, _ = run.index(env, db, DOCS)
    assert st["pages"] >= 500 and st["errors"] == 0, st
    return env, db


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_retrieval_on_python_docs(indexed, name):
    env, db = indexed
    qs = run.load_questions(str(run.HERE / name))
    assert len(qs) >= 20
    # every question is answerable from the pages it names
    assert run.check_questions(db, qs) == []
    rec, mrr, in_prompt, misses = run.evaluate(env, db, qs, 6000, False)
    got = (rec[1], mrr, in_prompt / len(qs))
    floor = FLOORS[name]
    report = "%s: recall@1 %.2f MRR %.2f in prompt %.2f (floors %s)\n%s" % (name, got[0], got[1], got[2], floor,
                                                                           "\n".join(misses))
    print(report)
    assert all(g >= f for g, f in zip(got, floor)), report
