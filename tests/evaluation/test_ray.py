"""The Ray engine: a local instance on 127.0.0.1 equals the local engine record for record; a
two-node cluster simulated on this machine completes, retries a task whose worker died mid-run,
and merges. Skipped when Ray is not installed (``make test`` installs it)."""
import os
import textwrap

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

import foolkit as fk  # noqa: E402
from foolkit.evaluation.ray_engine import local_init_kwargs, loopback_only  # noqa: E402
from foolkit.evaluation.run import runs_in  # noqa: E402
from foolkit.evaluation.sweep import task_path  # noqa: E402
from foolkit.evaluation.sweep_spec import load_spec  # noqa: E402



def spec(**over):
    s = {"data": {"dataset": "cifar10", "split": "test", "n": 20}, "models": ["cifar10/resnet20"],
         "batch_size": 10, "attacks": [{"name": "fgsm", "eps": [0.01, 0.03]}]}
    s.update(over)
    return s


from conftest import assert_same_records  # noqa: E402,F401  (test_reproduce_ray reads it here)

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def listening_addresses() -> set[str]:
    """IP addresses that the processes started from this test process listen on (Ray's services)."""
    ips = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ips |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    return ips


@pytest.fixture
def local_ray():
    with loopback_only():  # what the engine starts without --address
        ray.init(**local_init_kwargs(2))
        try:
            yield
        finally:
            ray.shutdown()
    assert not ray.is_initialized()


def test_ray_local_instance_equals_local_engine_on_loopback(tmp_path, local_ray):
    s = spec(attacks=[{"name": "fgsm", "eps": [0.01, 0.03]}])
    ips = listening_addresses()
    assert ips and ips <= LOOPBACK, f"Ray listens on {ips - LOOPBACK}"
    r = fk.sweep(s, tmp_path / "ray", engine="ray", progress=False, report=False)
    assert r["ran"] == 2
    assert listening_addresses() <= LOOPBACK  # workers too
    fk.sweep(s, tmp_path / "local", engine="local", progress=False, report=False)
    a = {x.run_id: x for x in runs_in(tmp_path / "ray" / "results.db")}
    b = {x.run_id: x for x in runs_in(tmp_path / "local" / "results.db")}
    assert a.keys() == b.keys() and len(a) == 2
    for rid in a:
        assert_same_records(a[rid], b[rid])


CRASHY = textwrap.dedent('''
    import os
    from pathlib import Path
    import torch
    import foolkit as fk

    MARKER = Path(__file__).with_name("crashed")
    CALLS = [0]

    class Crashy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = fk.models.load("cifar10/resnet20")

        def forward(self, x):
            CALLS[0] += 1
            # the first forward of the second batch (FGSM: 2 probes + 4 calls a batch), once
            if CALLS[0] == 7 and not MARKER.exists():
                MARKER.write_text(str(os.getpid()))
                os._exit(1)  # the worker dies mid-run, its first batch already stored
            return self.net(x)

    def build():
        return Crashy()
''')


@pytest.fixture
def two_nodes():
    from ray.cluster_utils import Cluster

    args = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    with loopback_only():
        cluster = Cluster(initialize_head=True, head_node_args=args)
        try:
            cluster.add_node(**args)
            cluster.wait_for_nodes()
            yield cluster
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()


def test_two_node_cluster_retries_a_killed_task_and_merges(tmp_path, two_nodes):
    (tmp_path / "crashy.py").write_text(CRASHY)
    s = spec(models=[str(tmp_path / "crashy.py") + ":build"], data={"n": 30},
             attacks=[{"name": "fgsm", "eps": [0.01, 0.03]}])
    ips = listening_addresses()
    assert ips and ips <= LOOPBACK, f"Ray listens on {ips - LOOPBACK}"
    r = fk.sweep(s, tmp_path / "sw", engine="ray", address=two_nodes.address, max_retries=2, progress=False,
                 report=False)
    assert (tmp_path / "crashed").exists()  # one worker did die
    assert r["ran"] == 2 and not ray.is_initialized()  # the driver disconnected
    runs = runs_in(tmp_path / "sw" / "results.db")
    assert len(runs) == 2
    for run in runs:  # complete and unique: each index once
        idx = [rec["idx"] for rec in run.records()]
        assert run.complete and idx == list(range(30))
    for task in load_spec(s).tasks():
        assert task_path(tmp_path / "sw", task).exists()
    assert os.environ.get("RAY_ADDRESS") is None
