"""The cluster a benchmark script (bench-consume, bench-python) reads from, and its Kafka version.

Without --kafka: ZKC_ZK + ZKC_BROKERS (+ ZKC_ZK_VERSION) name any cluster, else the test bed of
`source .testbed/env` (ZKC_TEST_*), else 127.0.0.1:2181/kafka.
With --kafka 0.8.2|0.9: this worktree's test bed of that Kafka version (.testbed/env); when none
runs, `scripts/testbed start --kafka V` starts one (and it is left running, like scripts/demo's);
when one of another version runs, the script stops with a message instead of replacing it.
"""
import os, subprocess, sys

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
