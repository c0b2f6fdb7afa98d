//! Topic filters for wildcard subscriptions (spec §3): normalised exactly like the Java
//! consumer's `TopicFilter` (so the regex text in a registration is the same string Java would
//! write) and matched against whole topic names. Pure: never reads ZooKeeper.
//!
//! Java's regex dialect and the `regex` crate agree on everything a topic filter normally
//! uses (literals, classes, alternation, quantifiers, groups, flags). Java's `\Q…\E` quoting is
//! translated; constructs the `regex` crate lacks (look-around, back-references, possessive
//! quantifiers) are rejected with an error naming the filter.

use regex::Regex;

use crate::zk::layout::SubscriptionPattern;

/// The internal topic holding Kafka-stored offsets (Kafka's `Topic.InternalTopics`).
pub const INTERNAL_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A filter that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid topic filter {filter:?}: {message}")]
pub struct FilterError {
    /// The filter as given.
    pub filter: String,
    /// Why it is rejected.
    pub message: String,
}

/// A whitelist or blacklist of topics.
#[derive(Debug, Clone)]
pub struct TopicFilter {
    pattern: SubscriptionPattern,
    text: String,
    regex: Regex,
}

/// Java's `String.trim`: strips every char <= U+0020 at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Line terminators for Java's `$` (without MULTILINE it also matches before one final
/// line terminator).
const LINE_TERMINATORS: [&str; 6] = ["\r\n", "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"];

/// Java's normalisation, step for step: `trim`, `replace(',', '|')`, `replace(" ", "")`,
/// `replaceAll("^[\"']+", "")`, `replaceAll("[\"']+$", "")`.
pub fn normalise(raw: &str) -> String {
    let text = java_trim(raw).replace(',', "|").replace(' ', "");
    let text = text.trim_start_matches(['"', '\'']);
    // `["']+$` matches quotes at the very end, or just before a final line terminator.
    if let Some(stripped) = strip_trailing_quotes(text) {
        return stripped;
    }
    for terminator in LINE_TERMINATORS {
        if let Some(body) = text.strip_suffix(terminator) {
            if let Some(stripped) = strip_trailing_quotes(body) {
                return stripped + terminator;
            }
        }
    }
    text.to_string()
}

fn strip_trailing_quotes(text: &str) -> Option<String> {
    let stripped = text.trim_end_matches(['"', '\'']);
    (stripped.len() != text.len()).then(|| stripped.to_string())
}

/// Translates Java-only syntax the `regex` crate spells differently: `\Q…\E` literal quoting.
fn translate_java_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('Q') => {
                let quoted = &after[1..];
                let (literal, tail) = match quoted.find("\\E") {
                    Some(end) => (&quoted[..end], &quoted[end + 2..]),
                    None => (quoted, ""),
                };
                out.push_str(&regex::escape(literal));
                rest = tail;
            }
            Some(c) => {
                out.push('\\');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('\\');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl TopicFilter {
    fn new(
        pattern: SubscriptionPattern,
        raw: &str,
        allow_empty: bool,
    ) -> Result<Self, FilterError> {
        let text = normalise(raw);
        if text.is_empty() && !allow_empty {
            return Err(FilterError {
                filter: raw.to_string(),
                message: "the filter is empty".into(),
            });
        }
        let regex = Regex::new(&format!("^(?:{})$", translate_java_regex(&text))).map_err(|e| {
            FilterError {
                filter: raw.to_string(),
                message: e.to_string(),
            }
        })?;
        Ok(TopicFilter {
            pattern,
            text,
            regex,
        })
    }

    /// Topics whose whole name matches the regex.
    pub fn whitelist(raw: &str) -> Result<Self, FilterError> {
        Self::new(SubscriptionPattern::WhiteList, raw, false)
    }

    /// Topics whose name does not match the regex.
    pub fn blacklist(raw: &str) -> Result<Self, FilterError> {
        Self::new(SubscriptionPattern::BlackList, raw, false)
    }

    /// Rebuilds a member's filter from its registration. The regex is normalised again, as
    /// Java does when it reads a registration; an empty regex is accepted as Java accepts it
    /// (a whitelist matching nothing, a blacklist matching everything).
    pub fn from_registration(
        pattern: SubscriptionPattern,
        regex: &str,
    ) -> Result<Self, FilterError> {
        match pattern {
            SubscriptionPattern::Static => Err(FilterError {
                filter: regex.to_string(),
                message: "a static subscription is not a filter".into(),
            }),
            p => Self::new(p, regex, true),
        }
    }

    /// The normalised regex, as written into the registration.
    pub fn regex_text(&self) -> &str {
        &self.text
    }

    /// `white_list` or `black_list`.
    pub fn pattern(&self) -> SubscriptionPattern {
        self.pattern
    }

    /// Whether a topic is consumed under this filter: the whole name must match (whitelist)
    /// or not match (blacklist); `__consumer_offsets` is never allowed when
    /// `exclude_internal_topics` is set.
    pub fn is_topic_allowed(&self, topic: &str, exclude_internal_topics: bool) -> bool {
        if exclude_internal_topics && topic == INTERNAL_OFFSETS_TOPIC {
            return false;
        }
        let matched = self.regex.is_match(topic);
        match self.pattern {
            SubscriptionPattern::BlackList => !matched,
            _ => matched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_matches_whole_names_after_normalisation() {
        let f = TopicFilter::whitelist(" \"orders.*, clicks\" ").unwrap();
        assert_eq!(f.regex_text(), "orders.*|clicks");
        assert_eq!(f.pattern(), SubscriptionPattern::WhiteList);
        assert!(f.is_topic_allowed("orders-eu", true));
        assert!(f.is_topic_allowed("clicks", true));
        assert!(!f.is_topic_allowed("myclicks", true));
        assert!(!f.is_topic_allowed("clicks2", true));
        // Alternation is anchored as a whole, not per branch.
        let f = TopicFilter::whitelist("a|b.*").unwrap();
        assert!(!f.is_topic_allowed("ab", true)); // Java: "ab".matches("a|b.*") == false
        assert!(!f.is_topic_allowed("xa", true));
        assert!(f.is_topic_allowed("bcd", true));
    }

    #[test]
    fn normalisation_matches_the_java_consumer() {
        // Golden values from kafka.consumer.Whitelist(raw).regex on Kafka 0.9.0.1.
        for (raw, java) in [
            (" \"orders.*, clicks\" ", "orders.*|clicks"),
            ("'a b'", "ab"),
            ("\"\t'x", "\t'x"),
            ("x'\u{2028}", "x\u{2028}"),
            ("''", ""),
            ("a,b ,c", "a|b|c"),
        ] {
            assert_eq!(normalise(raw), java, "raw {raw:?}");
        }
        // Java's trim strips control characters, not Unicode spaces.
        assert_eq!(normalise("\u{1}a\u{1f}"), "a");
        assert_eq!(normalise("\u{a0}a"), "\u{a0}a");
        // Reading a registration normalises again (not idempotent in corner cases).
        let f = TopicFilter::from_registration(SubscriptionPattern::WhiteList, "\t'x").unwrap();
        assert_eq!(f.regex_text(), "x");
    }

    #[test]
    fn blacklist_and_internal_topic() {
        let f = TopicFilter::blacklist("secret.*").unwrap();
        assert_eq!(f.pattern(), SubscriptionPattern::BlackList);
        assert!(!f.is_topic_allowed("secret1", true));
        assert!(f.is_topic_allowed("public", true));
        assert!(!f.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, true));
        assert!(f.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, false));
        let all = TopicFilter::whitelist(".*").unwrap();
        assert!(!all.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, true));
        assert!(all.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, false));
    }

    #[test]
    fn empty_filters() {
        assert!(TopicFilter::whitelist(" '' ").is_err());
        let w = TopicFilter::from_registration(SubscriptionPattern::WhiteList, "").unwrap();
        assert!(!w.is_topic_allowed("t", true));
        let b = TopicFilter::from_registration(SubscriptionPattern::BlackList, "").unwrap();
        assert!(b.is_topic_allowed("t", true));
        assert!(TopicFilter::from_registration(SubscriptionPattern::Static, "t").is_err());
    }

    #[test]
    fn java_quoting_is_translated() {
        let f = TopicFilter::whitelist(r"\Qa.b\E.*").unwrap();
        assert!(f.is_topic_allowed("a.b-1", true));
        assert!(!f.is_topic_allowed("axb-1", true));
        let f = TopicFilter::whitelist(r"x\Q.").unwrap();
        assert!(f.is_topic_allowed("x.", true));
        assert!(!f.is_topic_allowed("xy", true));
        let f = TopicFilter::whitelist(r"orders\..*").unwrap();
        assert!(f.is_topic_allowed("orders.eu", true));
        assert!(!f.is_topic_allowed("ordersXeu", true));
    }

    #[test]
    fn bad_regex_names_the_filter() {
        let err = TopicFilter::whitelist("orders(").unwrap_err().to_string();
        assert!(err.contains("orders("), "{err}");
        let err = TopicFilter::blacklist("(?!x).*").unwrap_err().to_string();
        assert!(err.contains("(?!x).*"), "{err}");
    }
}
