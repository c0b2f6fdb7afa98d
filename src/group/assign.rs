//! Partition assignment, bit-identical to the Java consumer's `RangeAssignor` and
//! `RoundRobinAssignor` (spec §5), so that Java and Rust members of one group compute the same
//! global map from the same ZooKeeper state. Pure: plain values in, plain values out; never
//! reads ZooKeeper.
//!
//! Roundrobin sorts (topic, partition) pairs by the Java hash of `[topic,partition]` with a
//! stable sort, so pairs with equal hashes keep the order in which Java iterated its topics:
//! Scala collections whose iteration order this module reproduces
//! ([`java_topic_iteration_order`]). That order starts from the member's own subscription
//! order (registration document order, or ZooKeeper's child order for a filter), so
//! [`assign_with_topic_order`] takes it; [`assign`] assumes sorted topic names, which is what
//! zkconsumer writes.

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
/// needs). Every member computes the same owner for a topic they share. Roundrobin hash ties
/// are broken as a Java member whose subscription lists its topics in sorted order would;
/// see [`assign_with_topic_order`].
pub fn assign(
    strategy: AssignmentStrategy,
    partitions_per_topic: &BTreeMap<String, Vec<i32>>,
    consumers_per_topic: &BTreeMap<String, Vec<ThreadId>>,
) -> Result<GlobalAssignment, AssignError> {
    let sorted: Vec<&String> = partitions_per_topic.keys().collect();
    assign_with_topic_order(strategy, partitions_per_topic, consumers_per_topic, &sorted)
}

/// [`assign`], with the order in which the member being imitated read its subscription
/// (`source_order`, see [`member_topic_source_order`]; include subscribed topics that do not
/// exist, as Java does). Only roundrobin uses it, and only to break ties between pairs whose
/// `[topic,partition]` hashes are equal; topics of `partitions_per_topic` missing from it are
/// taken in name order after it.
pub fn assign_with_topic_order<S: AsRef<str>>(
    strategy: AssignmentStrategy,
    partitions_per_topic: &BTreeMap<String, Vec<i32>>,
    consumers_per_topic: &BTreeMap<String, Vec<ThreadId>>,
    source_order: &[S],
) -> Result<GlobalAssignment, AssignError> {
    match strategy {
        AssignmentStrategy::Range => Ok(range(partitions_per_topic, consumers_per_topic)),
        AssignmentStrategy::RoundRobin => {
            let mut order: Vec<String> = source_order
                .iter()
                .map(|t| t.as_ref().to_string())
                .chain(
                    partitions_per_topic
                        .keys()
                        .filter(|t| !source_order.iter().any(|s| s.as_ref() == t.as_str()))
                        .cloned(),
                )
                .collect();
            order = java_topic_iteration_order(&order);
            round_robin(partitions_per_topic, consumers_per_topic, &order)
        }
    }
}

/// The order in which a member read its subscription, as Java's `TopicCount` does: the
/// registration's document order for a static subscription (`document_order`, from
/// [`crate::zk::layout::subscription_document_order`]), or the `/brokers/topics` children in
/// the order ZooKeeper returned them (`all_topics`), filtered, for a whitelist/blacklist.
pub fn member_topic_source_order(
    reg: &Registration,
    document_order: &[String],
    all_topics: &[String],
    exclude_internal_topics: bool,
) -> Result<Vec<String>, AssignError> {
    match reg.pattern {
        SubscriptionPattern::Static => Ok(document_order
            .iter()
            .filter(|t| reg.subscription.contains_key(*t))
            .cloned()
            .collect()),
        pattern => {
            let Some(regex) = reg.subscription.keys().next() else {
                return Err(AssignError::FilterShape { pattern, count: 0 });
            };
            let filter = TopicFilter::from_registration(pattern, regex)?;
            Ok(all_topics
                .iter()
                .filter(|t| filter.is_topic_allowed(t, exclude_internal_topics))
                .cloned()
                .collect())
        }
    }
}

/// The subscription order a zkconsumer member uses to break roundrobin hash ties, given every
/// member's own order (from [`member_topic_source_order`]). A Java member breaks ties by its own
/// order; zkconsumer writes static subscriptions sorted, so an order that is not sorted comes
/// from another client: the one most members share is used (ties: the smallest consumer id's),
/// so Rust members agree with the Java members of a mixed group. When every order is sorted the
/// sorted order is used. Every zkconsumer member computes the same answer from the same state.
pub fn group_tie_order(orders: &BTreeMap<ConsumerId, Vec<String>>) -> Option<Vec<String>> {
    let mut votes: Vec<(&Vec<String>, usize)> = Vec::new();
    for order in orders.values() {
        if order.windows(2).all(|w| w[0] <= w[1]) {
            continue;
        }
        match votes.iter_mut().find(|(o, _)| *o == order) {
            Some((_, n)) => *n += 1,
            None => votes.push((order, 1)),
        }
    }
    // `orders` iterates in consumer-id order, so the first of equally common orders wins.
    let best = votes.iter().map(|(_, n)| *n).max()?;
    votes
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(o, _)| o.clone())
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
    topic_order: &[String],
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
    let mut all: Vec<(i32, TopicPartition)> = topic_order
        .iter()
        .filter_map(|topic| partitions_per_topic.get_key_value(topic))
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

/// Iteration orders of the Scala 2.11 collections the Java consumer keeps topics in. Roundrobin
/// breaks hash ties by the order Java iterates its topics in, which these reproduce.
mod scala {
    /// `java.lang.String.hashCode`.
    fn hash(s: &str) -> i32 {
        super::java_string_hash(s)
    }

    /// `scala.util.hashing.byteswap32`.
    fn byteswap32(v: i32) -> i32 {
        const K: i32 = 0x9e37_75cd_u32 as i32;
        v.wrapping_mul(K).swap_bytes().wrapping_mul(K)
    }

    /// `scala.collection.mutable.HashMap` (a `HashTable`): chained buckets, new entries
    /// prepended, resized to twice the length when the size exceeds 75%, iterated from the
    /// highest bucket down. The hash seed is fixed when the table is created (16 buckets).
    struct MutableHashMap {
        table: Vec<Vec<String>>,
        size: usize,
    }

    impl MutableHashMap {
        const SEED: u32 = 4; // Integer.bitCount(16 - 1)

        fn new() -> Self {
            MutableHashMap {
                table: vec![Vec::new(); 16],
                size: 0,
            }
        }

        fn index(key: &str, len: usize) -> usize {
            let improved = (byteswap32(hash(key)) as u32).rotate_right(Self::SEED);
            let bits = (len - 1).count_ones();
            ((improved >> (32 - bits)) as usize) & (len - 1)
        }

        fn insert(&mut self, key: &str) {
            if self.table.iter().flatten().any(|k| k == key) {
                return;
            }
            let h = Self::index(key, self.table.len());
            self.table[h].insert(0, key.to_string());
            self.size += 1;
            if self.size > self.table.len() * 750 / 1000 {
                let doubled = vec![Vec::new(); self.table.len() * 2];
                let old = std::mem::replace(&mut self.table, doubled);
                for bucket in old.into_iter().rev() {
                    for key in bucket {
                        let h = Self::index(&key, self.table.len());
                        self.table[h].insert(0, key);
                    }
                }
            }
        }

        fn keys(&self) -> Vec<String> {
            self.table.iter().rev().flatten().cloned().collect()
        }
    }

    /// `mutable.HashMap` filled in `order`, iterated.
    pub(super) fn mutable_map_order<S: AsRef<str>>(order: &[S]) -> Vec<String> {
        let mut map = MutableHashMap::new();
        for key in order {
            map.insert(key.as_ref());
        }
        map.keys()
    }

    /// `immutable.HashMap`'s hash improvement (2.11).
    fn improve_immutable(hcode: i32) -> i32 {
        let mut h = hcode.wrapping_add(!(hcode << 9));
        h ^= ((h as u32) >> 14) as i32;
        h = h.wrapping_add(h << 4);
        h ^ (((h as u32) >> 10) as i32)
    }

    /// An immutable `Map` built from pairs in `order` (`Map(pairs: _*)`, as Kafka's JSON
    /// reader and `WildcardTopicCount` build them), iterated: up to four entries keep
    /// insertion order (`Map1`..`Map4`); more form a hash trie iterated by 5-bit hash chunks
    /// from the low end, equal hashes in insertion order.
    pub(super) fn immutable_map_order<S: AsRef<str>>(order: &[S]) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in order {
            if !keys.iter().any(|k| k == key.as_ref()) {
                keys.push(key.as_ref().to_string());
            }
        }
        if keys.len() <= 4 {
            return keys;
        }
        let trie_path = |key: &String| {
            let h = improve_immutable(hash(key)) as u32;
            (0..7)
                .map(|level| (h >> (5 * level)) & 31)
                .collect::<Vec<u32>>()
        };
        // Stable: equal hashes keep insertion order.
        keys.sort_by_cached_key(trie_path);
        keys
    }
}

/// The order in which a Java member iterates its topics when it lays out partitions for
/// roundrobin (`AssignmentContext.partitionsForTopic`), given the order its subscription was
/// read in: the document order of its registration's `subscription` (static), or the order
/// of `/brokers/topics` children as ZooKeeper returned them, filtered (wildcard). Java puts
/// them in an immutable `Map`, then through three `mutable.HashMap`s.
pub fn java_topic_iteration_order<S: AsRef<str>>(source_order: &[S]) -> Vec<String> {
    let topic_count_map = scala::immutable_map_order(source_order);
    let my_topic_thread_ids = scala::mutable_map_order(&topic_count_map);
    let partition_assignment = scala::mutable_map_order(&my_topic_thread_ids);
    scala::mutable_map_order(&partition_assignment)
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

    fn order_of(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn tie_order_prefers_the_unsorted_order_most_members_share() {
        let mut orders = BTreeMap::new();
        orders.insert(ConsumerId::parse("a-rust"), order_of(&["t1", "t2", "t3"]));
        orders.insert(ConsumerId::parse("b-java"), order_of(&["t3", "t1", "t2"]));
        orders.insert(ConsumerId::parse("c-java"), order_of(&["t3", "t1", "t2"]));
        orders.insert(ConsumerId::parse("d-java"), order_of(&["t2", "t1", "t3"]));
        orders.insert(ConsumerId::parse("e-rust"), order_of(&["t1", "t2", "t3"]));
        assert_eq!(
            group_tie_order(&orders),
            Some(order_of(&["t3", "t1", "t2"]))
        );
    }

    #[test]
    fn tie_order_equal_votes_go_to_the_smallest_consumer_id_and_sorted_means_none() {
        let mut orders = BTreeMap::new();
        orders.insert(ConsumerId::parse("b"), order_of(&["y", "x"]));
        orders.insert(ConsumerId::parse("a"), order_of(&["z", "x"]));
        assert_eq!(group_tie_order(&orders), Some(order_of(&["z", "x"])));
        let mut sorted = BTreeMap::new();
        sorted.insert(ConsumerId::parse("a"), order_of(&["x", "y"]));
        sorted.insert(ConsumerId::parse("b"), order_of(&["x", "y"]));
        assert_eq!(group_tie_order(&sorted), None);
    }
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

    /// Replays groups recorded from the real Kafka 0.9.0.1 `RangeAssignor` /
    /// `RoundRobinAssignor` (generator: `testdata/JavaAssignOracle.java`): registrations
    /// written by Kafka's own `Json.encode` (so filter regexes such as `orders\..*` are
    /// unescaped), run through `AssignmentContext` over an in-memory ZooKeeper. Each line holds
    /// every member's view of the global assignment; this member pipeline (parse, expand,
    /// group, assign with the member's own topic order) must reproduce each view exactly.
    /// Returns (views checked, views where plain [`assign`] differs).
    fn replay_java_groups(text: &str) -> (usize, usize) {
        let (mut views, mut sorted_order_differs) = (0, 0);
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
            // `/brokers/topics` children in the order ZooKeeper returned them.
            let zk_order: Vec<String> = v["topic_order"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            let mut members = BTreeMap::new();
            let mut source_orders = BTreeMap::new();
            for (id, json) in v["registrations"].as_object().unwrap() {
                let data = json.as_str().unwrap().as_bytes();
                let reg = Registration::parse(id, data).unwrap();
                let doc = crate::zk::layout::subscription_document_order(id, data).unwrap();
                let source = member_topic_source_order(&reg, &doc, &zk_order, exclude).unwrap();
                source_orders.insert(id.clone(), source);
                let counts = member_topic_counts(&reg, &zk_order, exclude).unwrap();
                members.insert(ConsumerId::parse(id), counts);
            }
            let cpt = consumers_per_topic(&members);
            for (id, java) in v["results"].as_object().unwrap() {
                let mine = &members[&ConsumerId::parse(id)];
                let ppt: BTreeMap<String, Vec<i32>> = mine
                    .keys()
                    .filter_map(|t| topics.get(t).map(|&n| (t.clone(), (0..n).collect())))
                    .collect();
                let flat = |g: GlobalAssignment| -> BTreeMap<String, String> {
                    g.iter()
                        .map(|(tp, t)| (format!("{}/{}", tp.topic, tp.partition), t.to_string()))
                        .collect()
                };
                let ours = flat(
                    assign_with_topic_order(strategy, &ppt, &cpt, &source_orders[id]).unwrap(),
                );
                let java: BTreeMap<String, String> = java
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(ours, java, "member {id} in {line}");
                if flat(assign(strategy, &ppt, &cpt).unwrap()) != java {
                    sorted_order_differs += 1;
                }
                views += 1;
            }
        }
        (views, sorted_order_differs)
    }

    #[test]
    fn matches_java_assignors_on_recorded_groups() {
        let (views, differs) = replay_java_groups(include_str!("testdata/java_assignments.jsonl"));
        assert!(views > 100, "{views} member views checked");
        // Without hash ties the topic order is irrelevant.
        assert_eq!(differs, 0);
    }

    /// Topics `Aa`, `BB`, `AaAa`, `BBBB`, `AaBB` have equal Java hashes, so every partition
    /// number ties across them: Java's order comes from its Scala maps, reproduced exactly.
    #[test]
    fn matches_java_roundrobin_hash_ties() {
        let (views, differs) =
            replay_java_groups(include_str!("testdata/java_assignments_hash_ties.jsonl"));
        assert!(views > 50, "{views} member views checked");
        // The recorded members listed topics in other than sorted order, so the tie order
        // really decides the owners here.
        assert!(differs > 0, "ties made no difference in {views} views");
    }

    #[test]
    fn scala_iteration_orders() {
        // Recorded from Scala 2.11.12 (the runtime of Kafka 0.9.0.1 here): keys inserted in
        // this order into a mutable.HashMap, and parsed as a JSON object by Kafka's reader.
        let insert = ["AaAaAa", "AaBB", "t1dcp", "AaAa", "t208e"];
        assert_eq!(
            scala::mutable_map_order(&insert),
            ["t1dcp", "AaAaAa", "t208e", "AaAa", "AaBB"]
        );
        assert_eq!(
            scala::immutable_map_order(&insert),
            ["t208e", "t1dcp", "AaAaAa", "AaBB", "AaAa"]
        );
        let insert = ["BB", "t1ufn", "ta3o", "t1dzv", "t1yx5", "teuz", "t14qh"];
        assert_eq!(
            scala::mutable_map_order(&insert),
            ["teuz", "ta3o", "BB", "t1dzv", "t14qh", "t1ufn", "t1yx5"]
        );
        assert_eq!(
            scala::immutable_map_order(&insert),
            ["t1yx5", "ta3o", "t14qh", "BB", "t1dzv", "teuz", "t1ufn"]
        );
        // More than 12 keys: the mutable table is resized (to 64 buckets here).
        let insert = [
            "BBBB", "t13o9", "Aa", "t68p", "t10bm", "txae", "t3yn", "t1xri", "AaBB", "AaAa", "BB",
            "tz1t", "t1obu", "t1lmn", "t1h6i", "t13wd", "t214s", "t1zaj", "t1g0y", "t1u1l",
            "t1foz", "t1btr", "t1oo7", "t2zu", "trm6", "tofr", "BBBBBB", "t1prs", "t4u5", "taga",
            "t1kmb", "t251x", "t1ur", "t1wly", "tb8g", "BBAa",
        ];
        assert_eq!(
            scala::mutable_map_order(&insert),
            [
                "txae", "t214s", "t251x", "t1xri", "t10bm", "t1zaj", "t2zu", "t1wly", "trm6",
                "t1lmn", "t13wd", "BBBBBB", "t1h6i", "t1ur", "t1prs", "t3yn", "BB", "Aa", "t1foz",
                "t1kmb", "t13o9", "t1g0y", "BBAa", "AaAa", "AaBB", "BBBB", "tz1t", "t68p", "t1btr",
                "tb8g", "t4u5", "t1u1l", "t1oo7", "tofr", "t1obu", "taga"
            ]
        );
        assert_eq!(
            scala::immutable_map_order(&insert),
            [
                "tb8g", "taga", "tofr", "t214s", "t68p", "t13o9", "t10bm", "t1obu", "t4u5", "tz1t",
                "t1prs", "txae", "Aa", "BB", "t13wd", "t1xri", "t1foz", "t1zaj", "BBBBBB", "t2zu",
                "t1oo7", "t1wly", "t1btr", "BBBB", "AaBB", "AaAa", "BBAa", "t1lmn", "t1g0y",
                "t1kmb", "trm6", "t1u1l", "t1h6i", "t1ur", "t3yn", "t251x"
            ]
        );
        // Up to four entries keep insertion order.
        assert_eq!(scala::immutable_map_order(&["b", "a", "b"]), ["b", "a"]);
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
