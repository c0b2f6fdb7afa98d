// Generates src/group/testdata/java_assignments.jsonl: random consumer groups run through the real
// Kafka 0.9.0.1 assignors over an in-memory ZooKeeper (a ZkUtils subclass). Not built by cargo.
// Run: scripts/java-assign-oracle (compiles this against ../shared/kafka-0.9/libs, regenerates the files
// listed with their seeds and counts in oracle-runs.txt and compares; --regenerate rewrites them).
// By hand: java -cp "../shared/kafka-0.9/libs/*:DIR" JavaAssignOracle SEED COUNT [collide] > out.jsonl
import java.util.*;
import kafka.consumer.*;
import kafka.common.TopicAndPartition;
import scala.Tuple2;

public class JavaAssignOracle {
  // In-memory ZooKeeper: path -> data, path -> ordered children.
  static Map<String,String> data = new HashMap<>();
  static Map<String,List<String>> kids = new HashMap<>();
  static void put(String path, String d) {
    data.put(path, d);
    int i = path.lastIndexOf('/');
    String parent = path.substring(0, i), name = path.substring(i + 1);
    if (!parent.isEmpty()) { List<String> l = kids.computeIfAbsent(parent, k -> new ArrayList<>()); if (!l.contains(name)) l.add(name); if (!data.containsKey(parent)) put(parent, ""); }
  }
  static scala.collection.Seq<String> seq(List<String> l) { return scala.collection.JavaConverters.asScalaBufferConverter(l).asScala().toList(); }

  static class FakeZk extends kafka.utils.ZkUtils {
    FakeZk() { super(null, null, false); }
    @Override public Tuple2<String, org.apache.zookeeper.data.Stat> readData(String p) {
      if (!data.containsKey(p)) throw new org.I0Itec.zkclient.exception.ZkNoNodeException(p);
      return new Tuple2<>(data.get(p), new org.apache.zookeeper.data.Stat()); }
    @Override public Tuple2<scala.Option<String>, org.apache.zookeeper.data.Stat> readDataMaybeNull(String p) {
      return new Tuple2<>(scala.Option.apply(data.get(p)), new org.apache.zookeeper.data.Stat()); }
    @Override public scala.collection.Seq<String> getChildren(String p) { return seq(kids.getOrDefault(p, new ArrayList<>())); }
    @Override public scala.collection.Seq<String> getChildrenParentMayNotExist(String p) { return seq(kids.getOrDefault(p, new ArrayList<>())); }
  }

  @SuppressWarnings("unchecked")
  static scala.collection.immutable.Map<String,Object> smap(Map<String,Object> m) {
    scala.collection.immutable.Map<String,Object> r = scala.collection.immutable.Map$.MODULE$.empty();
    for (Map.Entry<String,Object> e : m.entrySet()) r = (scala.collection.immutable.Map<String,Object>) r.$plus(new Tuple2<String,Object>(e.getKey(), e.getValue()));
    return r;
  }
  static String js(String s) { return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""; }

  public static void main(String[] a) throws Exception {
    long seed = Long.parseLong(a[0]); int n = Integer.parseInt(a[1]);
    boolean collide = a.length > 2;
    Random r = new Random(seed);
    String[] pool = collide ? new String[]{"Aa", "BB", "AaAa", "BBBB", "AaBB", "t1"}
                            : new String[]{"t0","t1","t2","t3","orders","orders.eu","orders.us","clicks","page_views","__consumer_offsets","x_y-z.1"};
    String[] regexes = {"orders\\..*", "t[0-2]", ".*", " \"orders.*, clicks\" ", "page_views|t3", "t.*", "__.*|orders"};
    FakeZk zk = new FakeZk();
    for (int s = 0; s < n; s++) {
      data.clear(); kids.clear();
      String group = "g";
      boolean rr = r.nextBoolean();
      boolean exclude = r.nextInt(4) != 0;
      // topics
      List<String> topics = new ArrayList<>(Arrays.asList(pool)); Collections.shuffle(topics, r);
      topics = topics.subList(0, 1 + r.nextInt(topics.size()));
      StringBuilder tj = new StringBuilder("{");
      for (String t : topics) {
        int parts = r.nextInt(4) == 0 ? 1 + r.nextInt(40) : 1 + r.nextInt(12);
        StringBuilder pj = new StringBuilder("{\"version\":1,\"partitions\":{");
        for (int p = 0; p < parts; p++) pj.append(p == 0 ? "" : ",").append("\"").append(p).append("\":[1]");
        put("/brokers/topics/" + t, pj.append("}}").toString());
        tj.append(tj.length() == 1 ? "" : ",").append(js(t)).append(":").append(parts);
      }
      tj.append("}");
      // members
      int members = 1 + r.nextInt(5);
      List<String> ids = new ArrayList<>();
      boolean rrFilter = r.nextBoolean();
      String rrRegex = regexes[r.nextInt(regexes.length)];
      boolean rrBlack = r.nextBoolean();
      List<String> rrTopics = new ArrayList<>(topics); Collections.shuffle(rrTopics, r); rrTopics = rrTopics.subList(0, 1 + r.nextInt(rrTopics.size()));
      StringBuilder regs = new StringBuilder("{");
      for (int m = 0; m < members; m++) {
        String id = r.nextBoolean() ? group + "_host" + r.nextInt(3) + "-" + (1700000000000L + r.nextInt(1000)) + "-" + Integer.toHexString(r.nextInt())
                                    : group + "_c" + r.nextInt(20);
        if (ids.contains(id)) continue;
        ids.add(id);
        TopicCount tc;
        int streams = 1 + r.nextInt(r.nextInt(5) == 0 ? 12 : 3);
        if (rr) {
          if (rrFilter) {
            TopicFilter f = rrBlack ? new Blacklist(rrRegex) : new Whitelist(rrRegex);
            tc = TopicCount$.MODULE$.constructTopicCount(id, f, streams, zk, exclude);
          } else {
            Map<String,Object> m1 = new LinkedHashMap<>(); for (String t : rrTopics) m1.put(t, streams);
            tc = TopicCount$.MODULE$.constructTopicCount(id, smap(m1));
          }
        } else if (r.nextInt(3) == 0) {
          String re = regexes[r.nextInt(regexes.length)];
          TopicFilter f = r.nextBoolean() ? new Blacklist(re) : new Whitelist(re);
          tc = TopicCount$.MODULE$.constructTopicCount(id, f, streams, zk, exclude);
        } else {
          Map<String,Object> m1 = new LinkedHashMap<>();
          List<String> mine = new ArrayList<>(topics); Collections.shuffle(mine, r);
          if (r.nextInt(5) == 0) mine.add("missing_topic");
          for (String t : mine.subList(0, 1 + r.nextInt(mine.size()))) m1.put(t, 1 + r.nextInt(4));
          tc = TopicCount$.MODULE$.constructTopicCount(id, smap(m1));
        }
        Map<String,Object> reg = new LinkedHashMap<>();
        reg.put("version", 1); reg.put("subscription", tc.getTopicCountMap()); reg.put("pattern", tc.pattern()); reg.put("timestamp", "1700000000000");
        String json = kafka.utils.Json$.MODULE$.encode(smap(reg));
        put("/consumers/" + group + "/ids/" + id, json);
        regs.append(regs.length() == 1 ? "" : ",").append(js(id)).append(":").append(js(json));
      }
      regs.append("}");
      // Each member's view.
      StringBuilder res = new StringBuilder("{");
      for (String id : ids) {
        String out;
        try {
          AssignmentContext ctx = new AssignmentContext(group, id, exclude, zk);
          PartitionAssignor pa = PartitionAssignor$.MODULE$.createInstance(rr ? "roundrobin" : "range");
          kafka.utils.Pool<String, scala.collection.mutable.Map<TopicAndPartition, ConsumerThreadId>> pool2 = pa.assign(ctx);
          TreeMap<String,String> flat = new TreeMap<>();
          for (Tuple2<String, scala.collection.mutable.Map<TopicAndPartition, ConsumerThreadId>> e : scala.collection.JavaConverters.asJavaIterableConverter(pool2.toList()).asJava()) {
            for (Tuple2<TopicAndPartition, ConsumerThreadId> x : scala.collection.JavaConverters.asJavaIterableConverter(e._2().toList()).asJava())
              flat.put(x._1().topic() + "/" + x._1().partition(), x._2().toString());
          }
          StringBuilder o = new StringBuilder("{");
          for (Map.Entry<String,String> e : flat.entrySet()) o.append(o.length() == 1 ? "" : ",").append(js(e.getKey())).append(":").append(js(e.getValue()));
          out = o.append("}").toString();
        } catch (Throwable t) { out = js("ERROR " + t.getClass().getSimpleName()); }
        res.append(res.length() == 1 ? "" : ",").append(js(id)).append(":").append(out);
      }
      res.append("}");
      StringBuilder order = new StringBuilder("[");
      for (String t : kids.getOrDefault("/brokers/topics", new ArrayList<>())) order.append(order.length() == 1 ? "" : ",").append(js(t));
      order.append("]");
      System.out.println("{\"strategy\":" + js(rr ? "roundrobin" : "range") + ",\"exclude_internal\":" + exclude + ",\"topic_order\":" + order + ",\"topics\":" + tj + ",\"registrations\":" + regs + ",\"results\":" + res + "}");
    }
  }
}
