"""The ask loop end to end on the docker backend (the fake LLM, the real
engine): an import the host has but the image lacks is caught statically
against the image's module index, a runtime error in the container is
reflected, and the third answer passes. The engine and image come from
test_docker's fixture."""
import json

from conftest import Client, finish, llm_env
from test_docker import IMAGE, SOCK, api, engine, ours  # noqa: F401  (engine: the fixture)


def sol(imports, code):
    return {"content": json.dumps({"prefix": "p", "imports": imports, "code": code})}


def user_text(req):
    return "\n".join(m["content"] for m in req["body"]["messages"] if m["role"] == "user")


def test_ask_loop_on_the_docker_backend(engine, fake, tmp_path):  # noqa: F811
    env = llm_env(tmp_path, fake.url)
    env["DOCKER_HOST"] = "unix://" + SOCK
    cfg = tmp_path / "config" / "crucible"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"sandbox": {"backend": "docker", "image": IMAGE}}))
    fake.script([
        # json is in the host's Python, not in the image's python3-minimal
        sol("import json", "print(json.dumps([1]))"),
        {"content": "json is not available there; use csv."},
        sol("import csv", "print(csv.QUOTE_ALL)\nprint(1 / 0)"),
        {"content": "Do not divide by zero."},
        sol("import csv", "print('quote', csv.QUOTE_ALL)"),
    ])
    c = Client(env=env)
    try:
        c.initialize()
        notes = []
        r = c.call("crucible/ask", {"question": "print csv.QUOTE_ALL", "task": "dk"}, timeout=180,
                   notifications=notes)
        res = r["result"]
        assert (res["outcome"], res["iterations"]) == ("passed", 3), res
        first, second, third = res["attempts"]
        # 1: judged by the image's index, never ran
        assert first["run"]["outcome"] == "rejected" and first["failedStage"] == "imports", first
        assert "json" in first["error"]
        assert first["run"]["diagnostics"][0]["code"] == "missing-module"
        # 2: ran in a container, failed, and the model was told why
        assert second["run"]["outcome"] == "error" and second["run"]["isolation"] == "container"
        assert "ZeroDivisionError" in second["run"]["stderr"]
        reqs = fake.chat_requests()
        assert len(reqs) == 5
        assert "json" in user_text(reqs[1])
        assert "ZeroDivisionError" in user_text(reqs[3])
        # 3: passed in the image
        assert third["passed"] is True and res["run"]["stdout"] == "quote 1\n"
        assert res["run"]["isolation"] == "container"
        assert (res["environment"]["kind"], res["environment"]["image"]) == ("image", IMAGE)
        assert res["environment"]["imageId"] == api("GET", "/images/%s/json" % IMAGE)[1]["Id"]
        outputs = "".join(n["params"]["text"] for n in notes if n.get("method") == "crucible/output")
        assert "[1]" not in outputs
        pid = c.proc.pid
    finally:
        finish(c)
    assert ours(pid) == []
