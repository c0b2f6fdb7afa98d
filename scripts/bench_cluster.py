"""The cluster a benchmark script (bench-consume, bench-python, bench-rebalance-cli) reads from,
its Kafka version, and what the scripts do on it alike: run a Kafka class, create a topic, get
kazoo (Python's ZooKeeper client) for the scripts that watch ZooKeeper themselves.

Without --kafka: ZKC_ZK + ZKC_BROKERS (+ ZKC_ZK_VERSION) name any cluster, else the test bed of
`source .testbed/env` (ZKC_TEST_*), else 127.0.0.1:2181/kafka.
With --kafka 0.8.2|0.9: this worktree's test bed of that Kafka version (.testbed/env); when none
runs, `scripts/testbed start --kafka V` starts one (and it is left running, like scripts/demo's);
when one of another version runs, the script stops with a message instead of replacing it.
"""
import os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_argument(ap):
    ap.add_argument("--kafka", choices=["0.8.2", "0.9"],
                    help="Kafka version of the test bed to use (started if none runs)")


def _testbed_env():
    path = os.path.join(ROOT, ".testbed", "env")
    env = {}
    if os.path.exists(path):
        for line in open(path):
            key, _, value = line.strip().removeprefix("export ").partition("=")
            env[key] = value
    return env


def cluster(kafka):
    """(zk, brokers, zk_version, kafka_home, kafka_version) of the cluster to use."""
    if kafka is None:
        env = os.environ
        zk = env.get("ZKC_ZK") or env.get("ZKC_TEST_ZK", "127.0.0.1:2181/kafka")
        brokers = env.get("ZKC_BROKERS") or env.get("ZKC_TEST_BROKERS", "127.0.0.1:9092")
        zk_version = env.get("ZKC_ZK_VERSION") or env.get("ZKC_TEST_ZK_VERSION", "3.4.6")
        version = env.get("ZKC_TEST_KAFKA", "0.8.2.2")
        shared = "kafka-0.9" if version.startswith("0.9") else "kafka-0.8.2"
        home = env.get("KAFKA_HOME") or os.path.join(ROOT, "..", "shared", shared)
        return zk, brokers, zk_version, home, version
    if os.environ.get("ZKC_ZK"):
        sys.exit("--kafka picks this worktree's test bed; it does not go with ZKC_ZK/ZKC_BROKERS")
    env = _testbed_env()
    running = env.get("ZKC_TEST_KAFKA")
    if running is None:
        subprocess.run([os.path.join(ROOT, "scripts", "testbed"), "start", "--zk", "3.4",
                        "--kafka", kafka], check=True)
        env = _testbed_env()
        running = env.get("ZKC_TEST_KAFKA", "")
    if not running.startswith(kafka):
        sys.exit(f"the test bed runs Kafka {running}, not {kafka}: scripts/testbed stop first")
    return (env["ZKC_TEST_ZK"], env["ZKC_TEST_BROKERS"], env["ZKC_TEST_ZK_VERSION"],
            env["KAFKA_HOME"], running)


KAZOO_VENV = os.path.join(ROOT, "target", "bench-kazoo")


def ensure_kazoo(script):
    """Re-runs `script` (the caller's __file__) under a throwaway venv with kazoo, made once in
    target/bench-kazoo from PyPI, unless this Python has kazoo."""
    try:
        import kazoo  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(KAZOO_VENV, "bin", "python")
    if os.environ.get("ZKC_BENCH_IN_VENV"):
        sys.exit(f"kazoo still missing in {KAZOO_VENV}")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", KAZOO_VENV], check=True)
    if subprocess.run([python, "-c", "import kazoo"], stderr=subprocess.DEVNULL).returncode:
        subprocess.run([os.path.join(KAZOO_VENV, "bin", "pip"), "install", "--quiet", "kazoo"],
                       check=True)
    os.environ["ZKC_BENCH_IN_VENV"] = "1"
    os.execv(python, [python, os.path.abspath(script), *sys.argv[1:]])


def kafka_run_class(kafka_home):
    """The command that runs a Kafka class: kafka-run-class of ../shared, or
    bin/kafka-run-class.sh of an Apache download."""
    runner = os.path.join(kafka_home, "kafka-run-class")
    if not os.path.exists(runner):
        runner = os.path.join(kafka_home, "bin", "kafka-run-class.sh")
    if not os.path.exists(runner):
        sys.exit(f"no Kafka at {kafka_home} (set KAFKA_HOME)")
    return runner


def create_topic(kafka_home, zk_connect, topic, partitions, env=None):
    """`topic` with `partitions` partitions (replication 1), by Kafka's own TopicCommand."""
    subprocess.run([kafka_run_class(kafka_home), "kafka.admin.TopicCommand", "--zookeeper",
                    zk_connect, "--create", "--topic", topic, "--partitions", str(partitions),
                    "--replication-factor", "1"],
                   check=True, stdout=subprocess.DEVNULL, env=env)


def wait_for_partition_states(zk, prefix, topic, partitions, limit):
    """Until the kazoo client `zk` sees a leader state node under `prefix` (the chroot the client
    does not apply itself, or "") for every partition of `topic`; exits after `limit` seconds."""
    base = f"{prefix}/brokers/topics/{topic}/partitions"
    start = time.monotonic()
    while not all(zk.exists(f"{base}/{p}/state") for p in range(partitions)):
        if time.monotonic() - start > limit:
            sys.exit(f"no leaders for {topic} after {limit:.0f} s")
        time.sleep(0.2)
