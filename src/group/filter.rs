//! Topic filters for wildcard subscriptions (spec §3): normalised like the Java consumer's
//! `TopicFilter`, matched against whole topic names. Pure.

use regex::Regex;

use crate::zk::layout::SubscriptionPattern;

/// The internal topic holding Kafka-stored offsets.
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

/// Java's normalisation: trim, `,` -> `|`, drop spaces, strip surrounding quotes.
fn normalise(raw: &str) -> String {
    raw.trim()
        .replace(',', "|")
        .replace(' ', "")
        .trim_start_matches(['"', '\''])
        .trim_end_matches(['"', '\''])
        .to_string()
}

impl TopicFilter {
    fn new(pattern: SubscriptionPattern, raw: &str) -> Result<Self, FilterError> {
        let text = normalise(raw);
        if text.is_empty() {
            return Err(FilterError {
                filter: raw.to_string(),
                message: "the filter is empty".into(),
            });
        }
        let regex = Regex::new(&format!("^(?:{text})$")).map_err(|e| FilterError {
            filter: raw.to_string(),
            message: e.to_string(),
        })?;
        Ok(TopicFilter {
            pattern,
            text,
            regex,
        })
    }

    /// Topics whose whole name matches the regex.
    pub fn whitelist(raw: &str) -> Result<Self, FilterError> {
        Self::new(SubscriptionPattern::WhiteList, raw)
    }

    /// Topics whose name does not match the regex.
    pub fn blacklist(raw: &str) -> Result<Self, FilterError> {
        Self::new(SubscriptionPattern::BlackList, raw)
    }

    /// Rebuilds a member's filter from its registration.
    pub fn from_registration(
        pattern: SubscriptionPattern,
        regex: &str,
    ) -> Result<Self, FilterError> {
        match pattern {
            SubscriptionPattern::Static => Err(FilterError {
                filter: regex.to_string(),
                message: "a static subscription is not a filter".into(),
            }),
            p => Self::new(p, regex),
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

    /// Whether a topic is consumed under this filter.
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
        assert!(f.is_topic_allowed("orders-eu", true));
        assert!(f.is_topic_allowed("clicks", true));
        assert!(!f.is_topic_allowed("myclicks", true));
        assert!(!f.is_topic_allowed("clicks2", true));
    }

    #[test]
    fn blacklist_and_internal_topic() {
        let f = TopicFilter::blacklist("secret.*").unwrap();
        assert!(!f.is_topic_allowed("secret1", true));
        assert!(f.is_topic_allowed("public", true));
        assert!(!f.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, true));
        assert!(f.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, false));
        let all = TopicFilter::whitelist(".*").unwrap();
        assert!(!all.is_topic_allowed(INTERNAL_OFFSETS_TOPIC, true));
    }

    #[test]
    fn bad_regex_names_the_filter() {
        let err = TopicFilter::whitelist("orders(").unwrap_err().to_string();
        assert!(err.contains("orders("), "{err}");
    }
}
