"""The SDK's use of trained policies against the real server: client.act and client.run agree with
each other; read_checkpoint gives the policy's arrays, and a NumPy forward pass over them scores
every decision as the server does (1e-5); import_checkpoint brings the file back; and
export_chat_jsonl writes the documented fine-tuning shape."""
import json
import subprocess

import numpy as np
import pytest

from agentcore.checkpoint import BagPolicy, CheckpointError, read_checkpoint, tensor_layout
from conftest import ALL_PERMS, SRC

FAST = {"n_iterations": 20, "batch_size": 8, "n_trajectories_per_query": 4, "beta": 0.0,
        "max_steps_per_trajectory": 8, "checkpoint_interval": 10, "seed": 3}


@pytest.fixture(scope="module")
def client(server):
    return server.client("infer", perms=ALL_PERMS + ["agents:invoke"])


@pytest.fixture(scope="module")
def job(client, data):
    j = client.start_training("calculator", FAST, data["training_data"], evaluation_data=data["evaluation_data"])
    final = client.wait_for_completion(j["job_id"], poll_interval=0.25, timeout=180)
    assert final["status"] == "completed", final
    return j["job_id"]


@pytest.fixture(scope="module")
def ckpt_file(client, job, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.ckpt"
    r = client.export_checkpoint(job, path=str(path))
    assert path.read_bytes() == r["bytes_data"]
    return str(path), r


def log_probs(decision):
    return np.array([-np.inf if v is None else v for v in decision["log_probs"]], dtype=float)


def test_act_and_run_agree(client, job, data):
    q = data["evaluation_data"][0]
    run = client.run(q["query"], job_id=job, expected_outcome=q["expected_outcome"])
    assert run["reward"] is not None and isinstance(run["success"], bool)
    history = []
    for step in run["trajectory"]["steps"]:
        act = client.act(q["query"], job_id=job, history=history, top_k=2)
        assert (act["tool"], act["params"]) == (step["action"]["tool"], step["action"]["params"])
        assert act["checkpoint_id"] == run["checkpoint_id"]
        history.append({"tool": step["action"]["tool"], "params": step["action"]["params"],
                        "result": step["result"]})


def test_read_checkpoint(ckpt_file):
    path, exported = ckpt_file
    ck = read_checkpoint(path)
    assert ck.version == exported["version"] and ck.iteration == exported["iteration"]
    assert ck.config["kind"] == "bag" and ck.params.size == exported["policy"]["n_params"]
    assert ck.params.dtype == np.float32 and "%08x" % ck.crc32 == exported["crc32"]
    layout = tensor_layout(ck.config)
    assert layout[-1][1] + int(np.prod(layout[-1][2])) == ck.params.size  # the tensors tile the vector
    assert ck.tensors["Wt"].shape == (ck.config["hidden"], ck.config["n_tools"])
    assert [t["name"] for t in ck.agent["tools"]][:2] == ["add", "subtract"]
    assert ck.meta["agent_id"] == "calculator" and ck.meta["config"]["max_steps_per_trajectory"] == 8
    assert ck.adam["m"].shape == ck.params.shape
    damaged = bytearray(open(path, "rb").read())
    damaged[100] ^= 0xFF
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(bytes(damaged))
    with pytest.raises(CheckpointError, match="magic"):
        read_checkpoint(b"not a checkpoint at all, not at all")


def test_numpy_forward_matches_the_server(client, job, data, ckpt_file):
    """The server's log-probabilities of every decision (tool, then each argument given the
    earlier ones) of several calls, recomputed in NumPy from the file alone."""
    ck = read_checkpoint(ckpt_file[0])
    policy = BagPolicy(ck)
    tools = [t["name"] for t in ck.agent["tools"]]
    checked = 0
    for q in data["evaluation_data"][:4]:
        run = client.run(q["query"], job_id=job)
        history = []
        for step in run["trajectory"]["steps"][:3]:
            act = client.act(q["query"], checkpoint_id=ckpt_file[1]["checkpoint_id"], history=history,
                             explain=True, top_k=0)
            ours = policy.decisions_logp(act["explain"], tools)
            for d, mine in zip(act["explain"]["decisions"], ours):
                theirs = log_probs(d)
                assert np.array_equal(np.isinf(theirs), np.isinf(mine)), (d, mine)
                fin = np.isfinite(theirs)
                np.testing.assert_allclose(mine[fin], theirs[fin], atol=1e-5, rtol=0)
                checked += 1
            # the call's log_prob is its decisions' chosen options summed
            total = sum(log_probs(d)[d["chosen"]] for d in act["explain"]["decisions"])
            assert abs(total - act["log_prob"]) < 1e-5
            history.append({"tool": step["action"]["tool"], "params": step["action"]["params"],
                            "result": step["result"]})
    assert checked >= 8


def test_import_checkpoint_acts_the_same(client, job, data, ckpt_file):
    imported = client.import_checkpoint(ckpt_file[0])
    assert imported["status"] == "completed" and imported["agent_id"] == "calculator"
    q = data["evaluation_data"][1]["query"]
    a = client.act(q, job_id=job)
    b = client.act(q, job_id=imported["job_id"])
    assert (a["tool"], a["params"], a["log_prob"]) == (b["tool"], b["params"], b["log_prob"])


def test_export_chat_jsonl(client, job, tmp_path):
    path = tmp_path / "chat.jsonl"
    n = client.export_chat_jsonl(job, str(path), page_size=500)
    lines = path.read_text().splitlines()
    assert n == len(lines) == client.get_status(job)["trajectories_stored"] > 500  # more than one page
    tools_seen = None
    for line in lines[:200]:
        rec = json.loads(line)
        assert set(rec) == {"messages", "tools"}
        tools = {t["function"]["name"]: t["function"] for t in rec["tools"]}
        tools_seen = tools_seen or tools
        assert tools == tools_seen
        for f in tools.values():
            p = f["parameters"]
            assert p["type"] == "object" and p["additionalProperties"] is False
            assert sorted(p["required"]) == sorted(p["properties"])
        msgs = rec["messages"]
        assert [m["role"] for m in msgs[:2]] == ["system", "user"]
        i, calls = 2, 0
        while i < len(msgs) and "tool_calls" in msgs[i]:
            (call,) = msgs[i]["tool_calls"]
            assert call["type"] == "function" and call["function"]["name"] in tools
            args = json.loads(call["function"]["arguments"])
            assert set(args) == set(tools[call["function"]["name"]]["parameters"]["properties"])
            reply = msgs[i + 1]
            assert reply["role"] == "tool" and reply["tool_call_id"] == call["id"]
            json.loads(reply["content"])
            i, calls = i + 2, calls + 1
        assert calls >= 1
        assert msgs[i:] == [] or (len(msgs[i:]) == 1 and msgs[i]["role"] == "assistant"
                                  and isinstance(msgs[i]["content"], str))


def scores_as_the_server(client, checkpoint_id, ck, q, history, cursor_text):
    """act with explain on q after history: the checkpoint reads with the current feature set, the
    SDK's cursor stands on the query's token cursor_text, and NumPy scores every decision as the
    server does."""
    act = client.act(q, checkpoint_id=checkpoint_id, history=history, explain=True, top_k=0)
    assert ck.config["reader"] == 6
    policy = BagPolicy(ck)
    ours = policy.decisions_logp(act["explain"], [t["name"] for t in ck.agent["tools"]])
    toks = act["explain"]["tokens"]
    assert toks[policy._cur]["text"] == cursor_text and toks[policy._cur]["seg"] == 1  # the query's
    for d, mine in zip(act["explain"]["decisions"], ours):
        theirs = log_probs(d)
        assert np.array_equal(np.isinf(theirs), np.isinf(mine)), (d, mine)
        np.testing.assert_allclose(mine[np.isfinite(theirs)], theirs[np.isfinite(theirs)], atol=1e-5, rtol=0)
    assert len(ours) >= 1


def test_numpy_forward_tells_a_query_number_from_an_equal_result(client, job, ckpt_file):
    """A calculator policy (feature set 4 and later): 22 / 11 answered 2 and multiply took that 2 (a history
    given to act says no more: the server tells by the values); the query's own 2 ("then divide by
    2") is still to do, so the cursor stays on the 5."""
    q = "Start with 22, divide by 11, then multiply by 5, then divide by 2."
    history = [{"tool": "divide", "params": {"a": 22, "b": 11}, "result": {"value": 2}},
               {"tool": "multiply", "params": {"a": 2, "b": 5}, "result": {"value": 10}}]
    scores_as_the_server(client, ckpt_file[1]["checkpoint_id"], read_checkpoint(ckpt_file[0]), q, history, "5")


def test_numpy_forward_follows_the_cursor_through_result_rows(client):
    """A support policy (feature set 3 and later): after a search whose row of ORD-1111 names the
    item the message asks about, and a read of ORD-1111, the cursor stands on that item in the
    query (feature set 5: the two steps done are read, and the row of the lamp is the next
    request's, the row of the kettle the one dealt with)."""
    out = subprocess.run(["lua5.4", "examples/gen_data.lua", "support", "7"], cwd=SRC, capture_output=True,
                         check=True, timeout=60)
    sup = json.loads(out.stdout)
    j = client.start_training("support", dict(FAST, n_iterations=4), sup["training_data"],
                              evaluation_data=sup["evaluation_data"])
    assert client.wait_for_completion(j["job_id"], poll_interval=0.25, timeout=180)["status"] == "completed"
    q = "Hi, this is Maria Lopez. Please refund the kettle. Then exchange the lamp."
    history = [{"tool": "search_orders", "params": {"text": "Lopez"},
                "result": {"orders": ["ORD-1111 kettle, Maria Lopez", "ORD-2222 lamp, Maria Lopez"]}},
               {"tool": "read_order", "params": {"order_id": "ORD-1111"},
                "result": {"order": "ORD-1111", "item": "kettle", "amount": 129.99}}]
    exported = client.export_checkpoint(j["job_id"])
    scores_as_the_server(client, exported["checkpoint_id"], read_checkpoint(exported["bytes_data"]), q, history,
                         "kettle")
