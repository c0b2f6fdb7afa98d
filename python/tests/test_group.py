"""A Python member, a zkconsumer CLI member and Kafka's own Java console consumer in one group."""

import signal

from conftest import (SESSION_MS, java_console_consumer, kill9, parse_json_lines, python_member,
                      range_assignment, wait_until)


def produce_to_every_partition(cluster, topic, prefix):
    """50 messages `<prefix>-<partition>-<i>` to each of the 6 partitions; returns the values."""
    values = []
    for p in range(6):
        batch = [f"{prefix}-{p}-{i}" for i in range(50)]
        cluster.produce(topic, p, batch)
        values += batch
    return values


def test_python_rust_and_java_members_share_a_group(cluster, group, processes, zkconsumer_cli,
                                                    tmp_path):
    topic = cluster.create_topic(6)
    props = tmp_path / "consumer.properties"
    props.write_text(cluster.properties(group))
    config = [f"{k}={v}" for k, v in cluster.config().items()]

    py = processes(python_member(cluster.zk_connect, group, topic, "1", *config))
    cli = processes([zkconsumer_cli, "consume", "--zookeeper", cluster.zk_connect, "--group",
                     group, "--topic", topic, "--consumer.config", str(props), "--format", "json"])
    java = processes(java_console_consumer(cluster, topic, props))

    # Ownership equals Java's range assignment over the three members' thread ids.
    wait_until("three registered members", lambda: len(cluster.members(group)) == 3, 60)

    def settled():
        expected = range_assignment([f"{m}-0" for m in cluster.members(group)], 6)
        owners = cluster.owners(group, topic)
        return owners == expected and len(set(owners.values())) == 3

    wait_until("the group's owners to equal Java's range assignment", settled, 60)
    python_id = next(l.split()[1] for l in py.output() if l.startswith("member "))
    owned_by_python = {p for p, t in cluster.owners(group, topic).items() if t.startswith(python_id)}
    assert len(owned_by_python) == 2

    values = produce_to_every_partition(cluster, topic, "first")

    def delivered():
        got = ([l.split(" ", 2)[2] for l in py.output() if l[:1].isdigit()]
               + [m["value"] for m in parse_json_lines(cli.output())]
               + [l for l in java.output() if l.startswith("first-") or l.startswith("second-")])
        return got

    wait_until("all 300 messages", lambda: len(set(delivered())) >= 300, 60)
    got = delivered()
    assert sorted(got) == sorted(values), "every message exactly once across the three members"
    py_got = {int(l.split()[0]) for l in py.output() if l[:1].isdigit()}
    assert py_got == owned_by_python

    # kill -9 the Python member: its partitions are taken over once its session expires.
    kill9(py)
    wait_until("the killed member's registration to expire",
               lambda: len(cluster.members(group)) == 2, SESSION_MS / 1000 + 30)

    def taken_over():
        owners = cluster.owners(group, topic)
        expected = range_assignment([f"{m}-0" for m in cluster.members(group)], 6)
        return owners == expected

    wait_until("the survivors to take the killed member's partitions", taken_over, 60)
    second = produce_to_every_partition(cluster, topic, "second")

    def survivors_got():
        return ({m["value"] for m in parse_json_lines(cli.output())}
                | {l for l in java.output() if l.startswith("second-")})

    wait_until("the survivors to deliver every new message",
               lambda: set(second) <= survivors_got(), 60)
    everything = set(delivered()) | survivors_got()
    assert set(values) | set(second) <= everything, "nothing lost"
    cli.signal(signal.SIGTERM)
    java.signal(signal.SIGTERM)
    assert cli.wait(30) == 0
    java.wait(30)
