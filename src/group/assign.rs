//! Partition assignment, bit-identical to the Java consumer's `RangeAssignor` and
//! `RoundRobinAssignor` (spec §5), so that Java and Rust members of one group compute the same
//! global map from the same ZooKeeper state. Pure: plain values in, plain values out; never
//! reads ZooKeeper.
//!
//! One corner is not reproducible: roundrobin sorts (topic, partition) pairs by the Java hash
//! of `[topic,partition]` with a stable sort, so two pairs of *different* topics with equal
//! hashes keep the order in which Java iterated a Scala `HashMap` of topics, which depends on
//! ZooKeeper child order and on each member's own registration. Java members do not agree
//! with each other there either. This module breaks such ties by topic name; ties inside one
//! topic follow numeric partition order, exactly as Java does.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::AssignmentStrategy;
use crate::group::filter::TopicFilter;
use crate::group::identity::{thread_ids, ConsumerId, ThreadId};
use crate::partition::TopicPartition;
use crate::zk::layout::{Registration, SubscriptionPattern};

/// Partition -> owning thread, for the topics of the member that computed it.
pub type GlobalAssignment = BTreeMap<TopicPartition, ThreadId>;

/// Why no assignment could be computed.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    /// Roundrobin needs every topic to have the same set of consumer threads.
    #[error(
        "round-robin assignment is allowed only if all consumers in the group subscribe to the \
         same topics with the same stream counts: topic {topic_a} has streams {threads_a:?}, \
         topic {topic_b} has streams {threads_b:?}"
    )]
    RoundRobinMismatch {
        /// First topic.
        topic_a: String,
        /// Its threads.
        threads_a: Vec<String>,
        /// Second topic.
        topic_b: String,
        /// Its threads.
        threads_b: Vec<String>,
    },
    /// A member's filter subscription could not be compiled.
    #[error("registration has an unusable filter: {0}")]
    BadFilter(#[from] crate::group::filter::FilterError),
    /// A filter registration must have exactly one regex.
    #[error("a {pattern:?} registration must have exactly one regex, found {count}")]
    FilterShape {
        /// The pattern.
        pattern: SubscriptionPattern,
        /// How many entries the subscription had.
        count: usize,
    },
}

/// Java's `String.hashCode`: `h = 31*h + c` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The topics a member consumes and with how many streams, given every topic that exists.
pub fn member_topic_counts(
    reg: &Registration,
    all_topics: &[String],
    exclude_internal_topics: bool,
) -> Result<BTreeMap<String, u32>, AssignError> {
    match reg.pattern {
        SubscriptionPattern::Static => Ok(reg.subscription.clone()),
        pattern => {
            let mut entries = reg.subscription.iter();
            let (Some((regex, &count)), None) = (entries.next(), entries.next()) else {
                return Err(AssignError::FilterShape {
                    pattern,
                    count: reg.subscription.len(),
                });
            };
            let filter = TopicFilter::from_registration(pattern, regex)?;
            Ok(all_topics
                .iter()
                .filter(|t| filter.is_topic_allowed(t, exclude_internal_topics))
                .map(|t| (t.clone(), count))
                .collect())
        }
    }
}

/// For every topic, the thread ids of all members subscribed to it, sorted as Java sorts
/// strings (Java's `ZkUtils.getConsumersPerTopic`). A topic only some member subscribes to
/// with zero streams gets no entry, as in Java.
pub fn consumers_per_topic(
    members: &BTreeMap<ConsumerId, BTreeMap<String, u32>>,
) -> BTreeMap<String, Vec<ThreadId>> {
    let mut out: BTreeMap<String, Vec<ThreadId>> = BTreeMap::new();
    for (consumer, topics) in members {
        for (topic, &count) in topics {
            if count == 0 {
                continue;
            }
            out.entry(topic.clone())
                .or_default()
                .extend(thread_ids(consumer, count));
        }
    }
    for threads in out.values_mut() {
        threads.sort();
    }
    out
}

/// The global assignment of this member's topics (`partitions_per_topic`, partition ids in
/// any order), given the threads of all members per topic (`consumers_per_topic`, from
/// [`consumers_per_topic`]: every topic of every member, which roundrobin's precondition
/// needs). Every member computes the same owner for a topic they share.
pub fn assign(
    strategy: AssignmentStrategy,
    partitions_per_topic: &BTreeMap<String, Vec<i32>>,
    consumers_per_topic: &BTreeMap<String, Vec<ThreadId>>,
) -> Result<GlobalAssignment, AssignError> {
    match strategy {
        AssignmentStrategy::Range => Ok(range(partitions_per_topic, consumers_per_topic)),
        AssignmentStrategy::RoundRobin => round_robin(partitions_per_topic, consumers_per_topic),
    }
}

fn range(
    partitions_per_topic: &BTreeMap<String, Vec<i32>>,
    consumers_per_topic: &BTreeMap<String, Vec<ThreadId>>,
) -> GlobalAssignment {
    let mut out = GlobalAssignment::new();
    for (topic, partitions) in partitions_per_topic {
        let Some(threads) = consumers_per_topic.get(topic).filter(|t| !t.is_empty()) else {
            continue;
        };
        let sorted = sorted_partitions(partitions);
        let per_thread = sorted.len() / threads.len();
        let extra = sorted.len() % threads.len();
        for (i, thread) in threads.iter().enumerate() {
            let start = per_thread * i + i.min(extra);
            let count = per_thread + usize::from(i < extra);
            if count == 0 {
                tracing::warn!(thread = %thread, topic = %topic, "no partition for this consumer thread");
            }
            for &p in &sorted[start..start + count] {
                out.insert(TopicPartition::new(topic, p), thread.clone());
            }
        }
    }
    out
}

/// Partition ids in numeric order without duplicates (Java reads them as map keys and sorts).
fn sorted_partitions(partitions: &[i32]) -> Vec<i32> {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

fn round_robin(
    partitions_per_topic: &BTreeMap<String, Vec<i32>>,
    consumers_per_topic: &BTreeMap<String, Vec<ThreadId>>,
) -> Result<GlobalAssignment, AssignError> {
    let mut out = GlobalAssignment::new();
    let Some((head_topic, head_threads)) = consumers_per_topic.iter().next() else {
        return Ok(out);
    };
    let head: BTreeSet<&ThreadId> = head_threads.iter().collect();
    for (topic, threads) in consumers_per_topic {
        let set: BTreeSet<&ThreadId> = threads.iter().collect();
        if set != head {
            return Err(AssignError::RoundRobinMismatch {
                topic_a: topic.clone(),
                threads_a: set.iter().map(|t| t.to_string()).collect(),
                topic_b: head_topic.clone(),
                threads_b: head.iter().map(|t| t.to_string()).collect(),
            });
        }
    }
    let threads: Vec<&ThreadId> = head.into_iter().collect();
    if threads.is_empty() {
        return Ok(out);
    }
    // Java: partitionsForTopic.flatMap(TopicAndPartition(topic, p)).sortWith(hash < hash),
    // where TopicAndPartition.toString is "[topic,p]" and the partitions are numerically
    // sorted. sortWith is stable (TimSort), as is sort_by_key.
    let mut all: Vec<(i32, TopicPartition)> = partitions_per_topic
        .iter()
        .flat_map(|(topic, partitions)| {
            sorted_partitions(partitions).into_iter().map(move |p| {
                (
                    java_string_hash(&format!("[{topic},{p}]")),
                    TopicPartition::new(topic, p),
                )
            })
        })
        .collect();
    all.sort_by_key(|(hash, _)| *hash);
    for (i, (_, tp)) in all.into_iter().enumerate() {
        out.insert(tp, threads[i % threads.len()].clone());
    }
    Ok(out)
}

/// The part of a global assignment owned by one member's threads.
pub fn owned_by(
    assignment: &GlobalAssignment,
    consumer: &ConsumerId,
) -> BTreeMap<TopicPartition, ThreadId> {
    assignment
        .iter()
        .filter(|(_, thread)| thread.consumer_id() == consumer.as_str())
        .map(|(tp, thread)| (tp.clone(), thread.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn threads(names: &[&str]) -> Vec<ThreadId> {
        let mut v: Vec<ThreadId> = names
            .iter()
            .map(|n| ThreadId::from_string(n.to_string()))
            .collect();
        v.sort();
        v
    }

    fn by_thread(a: &GlobalAssignment) -> BTreeMap<String, Vec<(String, i32)>> {
        let mut out: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for (tp, t) in a {
            out.entry(t.to_string())
                .or_default()
                .push((tp.topic.clone(), tp.partition));
        }
        out
    }

    fn one_topic(
        topic: &str,
        n: i32,
        names: &[&str],
    ) -> (BTreeMap<String, Vec<i32>>, BTreeMap<String, Vec<ThreadId>>) {
        (
            BTreeMap::from([(topic.to_string(), (0..n).collect())]),
            BTreeMap::from([(topic.to_string(), threads(names))]),
        )
    }

    fn parts(topic: &str, ps: &[i32]) -> Vec<(String, i32)> {
        ps.iter().map(|&p| (topic.to_string(), p)).collect()
    }

    #[test]
    fn range_golden_examples() {
        let names = ["g_c1-0", "g_c1-1", "g_c2-0"];
        let (p, c) = one_topic("t", 6, &names);
        let a = by_thread(&assign(AssignmentStrategy::Range, &p, &c).unwrap());
        assert_eq!(a["g_c1-0"], parts("t", &[0, 1]));
        assert_eq!(a["g_c1-1"], parts("t", &[2, 3]));
        assert_eq!(a["g_c2-0"], parts("t", &[4, 5]));
        let (p, c) = one_topic("t", 7, &names);
        let a = by_thread(&assign(AssignmentStrategy::Range, &p, &c).unwrap());
        assert_eq!(a["g_c1-0"], parts("t", &[0, 1, 2]));
        assert_eq!(a["g_c1-1"], parts("t", &[3, 4]));
        assert_eq!(a["g_c2-0"], parts("t", &[5, 6]));
    }

    #[test]
    fn range_uses_string_order_of_twelve_threads() {
        let c = ConsumerId::parse("c");
        let cpt = consumers_per_topic(&BTreeMap::from([(
            c,
            BTreeMap::from([("t".to_string(), 12)]),
        )]));
        let order: Vec<&str> = cpt["t"].iter().map(ThreadId::as_str).collect();
        assert_eq!(
            order,
            [
                "c-0", "c-1", "c-10", "c-11", "c-2", "c-3", "c-4", "c-5", "c-6", "c-7", "c-8",
                "c-9"
            ]
        );
        let p = BTreeMap::from([("t".to_string(), (0..12).collect())]);
        let a = assign(AssignmentStrategy::Range, &p, &cpt).unwrap();
        assert_eq!(a[&TopicPartition::new("t", 2)].as_str(), "c-10");
    }

    #[test]
    fn roundrobin_golden_examples() {
        let names = ["g_c1-0", "g_c1-1", "g_c2-0"];
        let (p, c) = one_topic("t", 6, &names);
        let a = by_thread(&assign(AssignmentStrategy::RoundRobin, &p, &c).unwrap());
        assert_eq!(a["g_c1-0"], parts("t", &[0, 3]));
        assert_eq!(a["g_c1-1"], parts("t", &[1, 4]));
        assert_eq!(a["g_c2-0"], parts("t", &[2, 5]));

        let mut hashed: Vec<(i32, i32)> = (0..12)
            .map(|p| (java_string_hash(&format!("[clicks,{p}]")), p))
            .collect();
        hashed.sort_by_key(|(h, _)| *h);
        let order: Vec<i32> = hashed.iter().map(|(_, p)| *p).collect();
        assert_eq!(order, [10, 11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

        let p = BTreeMap::from([
            ("clicks".to_string(), (0..4).collect()),
            ("page_views".to_string(), (0..4).collect()),
        ]);
        let c = BTreeMap::from([
            ("clicks".to_string(), threads(&names)),
            ("page_views".to_string(), threads(&names)),
        ]);
        let a = by_thread(&assign(AssignmentStrategy::RoundRobin, &p, &c).unwrap());
        let mut c10 = a["g_c1-0"].clone();
        c10.sort();
        assert_eq!(
            c10,
            vec![
                ("clicks".into(), 2),
                ("page_views".into(), 0),
                ("page_views".into(), 3)
            ]
        );
        let mut c11 = a["g_c1-1"].clone();
        c11.sort();
        assert_eq!(
            c11,
            vec![
                ("clicks".into(), 0),
                ("clicks".into(), 3),
                ("page_views".into(), 1)
            ]
        );
        let mut c20 = a["g_c2-0"].clone();
        c20.sort();
        assert_eq!(c20, vec![("clicks".into(), 1), ("page_views".into(), 2)]);
    }

    #[test]
    fn java_hash_matches_known_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn roundrobin_rejects_mismatched_subscriptions() {
        let p = BTreeMap::from([("a".to_string(), vec![0])]);
        let c = BTreeMap::from([
            ("a".to_string(), threads(&["g_c1-0", "g_c2-0"])),
            ("b".to_string(), threads(&["g_c1-0"])),
        ]);
        let err = assign(AssignmentStrategy::RoundRobin, &p, &c)
            .unwrap_err()
            .to_string();
        assert!(err.contains("topic a") && err.contains("topic b"), "{err}");
    }

    #[test]
    fn filter_registrations_expand_to_matching_topics() {
        let reg = Registration::new_filter(SubscriptionPattern::WhiteList, "o.*", 2, 0);
        let topics = vec![
            "orders".to_string(),
            "clicks".to_string(),
            "__consumer_offsets".to_string(),
        ];
        let counts = member_topic_counts(&reg, &topics, true).unwrap();
        assert_eq!(counts, BTreeMap::from([("orders".to_string(), 2)]));
        let reg = Registration::new_filter(SubscriptionPattern::BlackList, "o.*", 1, 0);
        let counts = member_topic_counts(&reg, &topics, true).unwrap();
        assert_eq!(counts, BTreeMap::from([("clicks".to_string(), 1)]));
    }

    #[test]
    fn zero_stream_subscriptions_add_no_topic_entry() {
        let members = BTreeMap::from([
            (
                ConsumerId::parse("g_a"),
                BTreeMap::from([("t".to_string(), 1), ("u".to_string(), 0)]),
            ),
            (
                ConsumerId::parse("g_b"),
                BTreeMap::from([("t".to_string(), 1)]),
            ),
        ]);
        let cpt = consumers_per_topic(&members);
        assert_eq!(cpt.keys().collect::<Vec<_>>(), ["t"]);
        // So roundrobin's precondition holds, as it does in Java.
        let p = BTreeMap::from([("t".to_string(), vec![0, 1])]);
        assert!(assign(AssignmentStrategy::RoundRobin, &p, &cpt).is_ok());
    }

    #[test]
    fn partition_input_order_does_not_matter() {
        let names = ["g_c1-0", "g_c1-1", "g_c2-0"];
        for strategy in [AssignmentStrategy::Range, AssignmentStrategy::RoundRobin] {
            let (p, c) = one_topic("clicks", 12, &names);
            let shuffled = BTreeMap::from([(
                "clicks".to_string(),
                vec![5, 11, 0, 3, 3, 10, 1, 2, 4, 6, 9, 8, 7],
            )]);
            assert_eq!(
                assign(strategy, &p, &c).unwrap(),
                assign(strategy, &shuffled, &c).unwrap()
            );
        }
        // clicks, 12 partitions, roundrobin over 3 threads in hash order 10, 11, 0, 1, ...
        let (p, c) = one_topic("clicks", 12, &names);
        let a = by_thread(&assign(AssignmentStrategy::RoundRobin, &p, &c).unwrap());
        let sorted = |v: &[i32]| {
            let mut v = v.to_vec();
            v.sort();
            parts("clicks", &v)
        };
        assert_eq!(a["g_c1-0"], sorted(&[10, 1, 4, 7]));
        assert_eq!(a["g_c1-1"], sorted(&[11, 2, 5, 8]));
        assert_eq!(a["g_c2-0"], sorted(&[0, 3, 6, 9]));
    }

    /// Golden vectors from the real Kafka 0.9.0.1 `RangeAssignor` / `RoundRobinAssignor`:
    /// random groups (static, whitelist and blacklist members, missing topics, the internal
    /// topic) whose registrations were written by Kafka's own `Json.encode` (so filter regexes
    /// such as `orders\..*` are unescaped), run through `AssignmentContext` over an in-memory
    /// ZooKeeper. Each line holds every member's view of the global assignment; this member
    /// pipeline (parse, expand, group, assign) must reproduce each view exactly.
    #[test]
    fn matches_java_assignors_on_recorded_groups() {
        let text = include_str!("testdata/java_assignments.jsonl");
        let mut views = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let strategy = match v["strategy"].as_str().unwrap() {
                "roundrobin" => AssignmentStrategy::RoundRobin,
                _ => AssignmentStrategy::Range,
            };
            let exclude = v["exclude_internal"].as_bool().unwrap();
            let topics: BTreeMap<String, i32> = v["topics"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(t, n)| (t.clone(), n.as_i64().unwrap() as i32))
                .collect();
            let all_topics: Vec<String> = topics.keys().cloned().collect();
            let mut members = BTreeMap::new();
            for (id, json) in v["registrations"].as_object().unwrap() {
                let reg = Registration::parse(id, json.as_str().unwrap().as_bytes()).unwrap();
                let counts = member_topic_counts(&reg, &all_topics, exclude).unwrap();
                members.insert(ConsumerId::parse(id), counts);
            }
            let cpt = consumers_per_topic(&members);
            for (id, java) in v["results"].as_object().unwrap() {
                let mine = &members[&ConsumerId::parse(id)];
                let ppt: BTreeMap<String, Vec<i32>> = mine
                    .keys()
                    .filter_map(|t| topics.get(t).map(|&n| (t.clone(), (0..n).collect())))
                    .collect();
                let ours: BTreeMap<String, String> = assign(strategy, &ppt, &cpt)
                    .unwrap()
                    .iter()
                    .map(|(tp, t)| (format!("{}/{}", tp.topic, tp.partition), t.to_string()))
                    .collect();
                let java: BTreeMap<String, String> = java
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(ours, java, "member {id} in {line}");
                views += 1;
            }
        }
        assert!(views > 100, "{views} member views checked");
    }

    const TOPICS: [&str; 3] = ["a", "b", "c"];

    /// Per member: stream count per topic (0 = not subscribed); partitions per topic.
    fn group_strategy() -> impl Strategy<Value = (Vec<[u32; 3]>, [i32; 3])> {
        (
            prop::collection::vec([0u32..4, 0u32..4, 0u32..4], 1..6),
            [0i32..25, 0i32..25, 0i32..25],
        )
    }

    fn group(members: &[[u32; 3]]) -> BTreeMap<ConsumerId, BTreeMap<String, u32>> {
        members
            .iter()
            .enumerate()
            .map(|(i, counts)| {
                (
                    ConsumerId::parse(&format!("g_host-{i}")),
                    TOPICS
                        .iter()
                        .zip(counts)
                        .filter(|(_, &n)| n > 0)
                        .map(|(t, &n)| (t.to_string(), n))
                        .collect(),
                )
            })
            .collect()
    }

    /// What one member computes: the partitions of its own topics only (given in reverse
    /// order, to show input order does not matter).
    fn member_view(
        strategy: AssignmentStrategy,
        member: &BTreeMap<String, u32>,
        partitions: &[i32; 3],
        cpt: &BTreeMap<String, Vec<ThreadId>>,
    ) -> GlobalAssignment {
        let ppt: BTreeMap<String, Vec<i32>> = member
            .keys()
            .map(|t| {
                let n = partitions[TOPICS.iter().position(|x| x == t).unwrap()];
                (t.clone(), (0..n).rev().collect())
            })
            .collect();
        assign(strategy, &ppt, cpt).unwrap()
    }

    proptest! {
        #[test]
        fn range_members_agree_cover_and_balance((members, partitions) in group_strategy()) {
            let members = group(&members);
            let cpt = consumers_per_topic(&members);
            let mut union: BTreeMap<TopicPartition, ThreadId> = BTreeMap::new();
            for member in members.values() {
                let view = member_view(AssignmentStrategy::Range, member, &partitions, &cpt);
                for (tp, thread) in view {
                    // Every member that computes a partition's owner computes the same one.
                    if let Some(previous) = union.insert(tp.clone(), thread.clone()) {
                        prop_assert_eq!(previous, thread);
                    }
                }
            }
            for (ti, topic) in TOPICS.iter().enumerate() {
                let Some(threads) = cpt.get(*topic) else {
                    prop_assert!(union.keys().all(|tp| tp.topic != *topic));
                    continue;
                };
                // Full, disjoint cover of the topic's partitions.
                let covered: Vec<i32> = union.keys().filter(|tp| tp.topic == *topic).map(|tp| tp.partition).collect();
                prop_assert_eq!(covered, (0..partitions[ti]).collect::<Vec<_>>());
                // Contiguous blocks in thread order, sizes differing by at most one.
                let mut next = 0;
                let mut sizes = Vec::new();
                for thread in threads {
                    let block: Vec<i32> = union.iter().filter(|(tp, t)| tp.topic == *topic && *t == thread).map(|(tp, _)| tp.partition).collect();
                    prop_assert_eq!(&block, &(next..next + block.len() as i32).collect::<Vec<_>>());
                    next += block.len() as i32;
                    sizes.push(block.len());
                }
                let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
                prop_assert!(max - min <= 1, "sizes {:?}", sizes);
                prop_assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "larger blocks first: {:?}", sizes);
            }
        }

        #[test]
        fn roundrobin_members_agree_cover_and_balance(
            streams in prop::collection::vec(1u32..4, 1..6),
            subscribed in [any::<bool>(), any::<bool>(), any::<bool>()],
            partitions in [0i32..25, 0i32..25, 0i32..25],
        ) {
            prop_assume!(subscribed.iter().any(|&s| s));
            // Identical topic sets, one stream count per member (the precondition).
            let members: Vec<[u32; 3]> = streams
                .iter()
                .map(|&n| [0, 1, 2].map(|i| if subscribed[i] { n } else { 0 }))
                .collect();
            let members = group(&members);
            let cpt = consumers_per_topic(&members);
            let views: Vec<GlobalAssignment> = members
                .values()
                .map(|m| member_view(AssignmentStrategy::RoundRobin, m, &partitions, &cpt))
                .collect();
            for view in &views[1..] {
                prop_assert_eq!(view, &views[0]);
            }
            let global = &views[0];
            let total: i32 = (0..3).filter(|&i| subscribed[i]).map(|i| partitions[i]).sum();
            prop_assert_eq!(global.len() as i32, total);
            let mut counts: BTreeMap<&ThreadId, usize> = BTreeMap::new();
            for thread in global.values() {
                *counts.entry(thread).or_default() += 1;
            }
            let threads: usize = streams.iter().map(|&n| n as usize).sum();
            let (min, max) = if counts.len() < threads {
                (0, counts.values().max().copied().unwrap_or(0))
            } else {
                (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0))
            };
            prop_assert!(max - min <= 1, "counts {:?}", counts);
        }
    }
}
