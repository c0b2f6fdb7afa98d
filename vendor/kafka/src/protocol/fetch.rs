//! A representation of fetched messages from Kafka.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::Write;
use std::sync::Arc;
use std::{mem, result};

use fnv::FnvHasher;

use crate::codecs::ToByte;
#[cfg(feature = "gzip")]
use crate::compression::gzip;
#[cfg(feature = "lz4")]
use crate::compression::lz4;
#[cfg(feature = "snappy")]
use crate::compression::snappy::SnappyReader;
use crate::compression::Compression;
use crate::error::KafkaCode;
use crate::{Error, Result};

use super::to_crc;
use super::zreader::ZReader;
use super::{HeaderRequest, API_KEY_FETCH, API_VERSION};

pub type PartitionHasher = BuildHasherDefault<FnvHasher>;

#[derive(Debug)]
pub struct FetchRequest<'a, 'b> {
    pub header: HeaderRequest<'a>,
    pub replica: i32,
    pub max_wait_time: i32,
    pub min_bytes: i32,
    // topic -> partitions
    pub topic_partitions: HashMap<&'b str, TopicPartitionFetchRequest>,
}

#[derive(Debug)]
pub struct TopicPartitionFetchRequest {
    // partition-id -> partition-data
    pub partitions: HashMap<i32, PartitionFetchRequest, PartitionHasher>,
}

#[derive(Debug)]
pub struct PartitionFetchRequest {
    pub offset: i64,
    pub max_bytes: i32,
}

impl<'a, 'b> FetchRequest<'a, 'b> {
    pub fn new(
        correlation_id: i32,
        client_id: &'a str,
        max_wait_time: i32,
        min_bytes: i32,
    ) -> FetchRequest<'a, 'b> {
        FetchRequest {
            header: HeaderRequest::new(API_KEY_FETCH, API_VERSION, correlation_id, client_id),
            replica: -1,
            max_wait_time,
            min_bytes,
            topic_partitions: HashMap::new(),
        }
    }

    pub fn add(&mut self, topic: &'b str, partition: i32, offset: i64, max_bytes: i32) {
        self.topic_partitions
            .entry(topic)
            .or_insert_with(TopicPartitionFetchRequest::new)
            .add(partition, offset, max_bytes)
    }

    pub fn get<'d>(&'a self, topic: &'d str) -> Option<&'a TopicPartitionFetchRequest> {
        self.topic_partitions.get(topic)
    }
}

impl TopicPartitionFetchRequest {
    pub fn new() -> TopicPartitionFetchRequest {
        TopicPartitionFetchRequest {
            partitions: HashMap::default(),
        }
    }

    pub fn add(&mut self, partition: i32, offset: i64, max_bytes: i32) {
        self.partitions
            .insert(partition, PartitionFetchRequest::new(offset, max_bytes));
    }

    pub fn get(&self, partition: i32) -> Option<&PartitionFetchRequest> {
        self.partitions.get(&partition)
    }
}

impl PartitionFetchRequest {
    pub fn new(offset: i64, max_bytes: i32) -> PartitionFetchRequest {
        PartitionFetchRequest { offset, max_bytes }
    }
}

impl<'a, 'b> ToByte for FetchRequest<'a, 'b> {
    fn encode<W: Write>(&self, buffer: &mut W) -> Result<()> {
        self.header.encode(buffer)?;
        self.replica.encode(buffer)?;
        self.max_wait_time.encode(buffer)?;
        self.min_bytes.encode(buffer)?;
        // encode the hashmap as a vector
        (self.topic_partitions.len() as i32).encode(buffer)?;
        for (name, tp) in self.topic_partitions.iter() {
            tp.encode(name, buffer)?;
        }
        Ok(())
    }
}

impl TopicPartitionFetchRequest {
    fn encode<W: Write>(&self, topic: &str, buffer: &mut W) -> Result<()> {
        topic.encode(buffer)?;
        // encode the hashmap as a vector
        (self.partitions.len() as i32).encode(buffer)?;
        for (&pid, p) in self.partitions.iter() {
            p.encode(pid, buffer)?;
        }
        Ok(())
    }
}

impl PartitionFetchRequest {
    fn encode<T: Write>(&self, partition: i32, buffer: &mut T) -> Result<()> {
        try_multi!(
            partition.encode(buffer),
            self.offset.encode(buffer),
            self.max_bytes.encode(buffer)
        )
    }
}

// ~ response related -------------------------------------------------

pub struct ResponseParser<'a, 'b, 'c> {
    pub validate_crc: bool,
    // zkconsumer patch: `false` keeps compressed wrappers undecoded (see `Data::entries`)
    pub decompress: bool,
    pub requests: Option<&'c FetchRequest<'a, 'b>>,
}

impl<'a, 'b, 'c> super::ResponseParser for ResponseParser<'a, 'b, 'c> {
    type T = Response;
    fn parse(&self, response: Vec<u8>) -> Result<Self::T> {
        Response::parse(response, self.requests, self.validate_crc, self.decompress)
    }
}

// ~ helper macro to aid parsing arrays of values (as defined by the
// Kafka protocol.)
macro_rules! array_of {
    ($zreader:ident, $parse_elem:expr) => {{
        let n_elems = $zreader.read_array_len()?;
        let mut array = Vec::with_capacity(n_elems);
        for _ in 0..n_elems {
            array.push($parse_elem?);
        }
        array
    }};
}

/// The result of a "fetch messages" request from a particular Kafka
/// broker. Such a response can contain messages for multiple topic
/// partitions.
#[derive(Debug)]
pub struct Response {
    // used to "own" the data all other references of this struct
    // point to.
    #[allow(dead_code)]
    raw_data: Vec<u8>,

    correlation_id: i32,

    // ~ Static is used here to get around the fact that we don't want
    // Response have to a lifetime parameter as well.  The field is
    // exposed only through an accessor which binds the exposed
    // lifetime to the lifetime of the Response instance.
    topics: Vec<Topic<'static>>,
}

impl Response {
    /// Parses a Response from binary data as defined by the
    /// Kafka Protocol.
    #[cfg(test)]
    fn from_vec(
        response: Vec<u8>,
        reqs: Option<&FetchRequest<'_, '_>>,
        validate_crc: bool,
    ) -> Result<Response> {
        Response::parse(response, reqs, validate_crc, true)
    }

    /// zkconsumer patch: with `decompress` false, compressed wrappers stay undecoded.
    fn parse(
        response: Vec<u8>,
        reqs: Option<&FetchRequest<'_, '_>>,
        validate_crc: bool,
        decompress: bool,
    ) -> Result<Response> {
        let slice = unsafe { mem::transmute(&response[..]) };
        let mut r = ZReader::new(slice);
        let correlation_id = r.read_i32()?;
        let topics = array_of!(r, Topic::read(&mut r, reqs, validate_crc, decompress));
        Ok(Response {
            raw_data: response,
            correlation_id,
            topics,
        })
    }

    /// Retrieves the id corresponding to the fetch messages request
    /// (provided for debugging purposes only).
    #[inline]
    pub fn correlation_id(&self) -> i32 {
        self.correlation_id
    }

    /// Provides an iterator over all the topics and the fetched data
    /// relative to these topics.
    #[inline]
    pub fn topics<'a>(&'a self) -> &[Topic<'a>] {
        &self.topics
    }
}

/// The result of a "fetch messages" request from a particular Kafka
/// broker for a single topic only.  Beside the name of the topic,
/// this structure provides an iterator over the topic partitions from
/// which messages were requested.
#[derive(Debug)]
pub struct Topic<'a> {
    topic: &'a str,
    partitions: Vec<Partition<'a>>,
}

impl<'a> Topic<'a> {
    fn read(
        r: &mut ZReader<'a>,
        reqs: Option<&FetchRequest<'_, '_>>,
        validate_crc: bool,
        decompress: bool,
    ) -> Result<Topic<'a>> {
        let name = r.read_str()?;
        let preqs = reqs.and_then(|reqs| reqs.get(name));
        let partitions = array_of!(r, Partition::read(r, preqs, validate_crc, decompress));
        Ok(Topic {
            topic: name,
            partitions,
        })
    }

    /// Retrieves the identifier/name of the represented topic.
    #[inline]
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// Provides an iterator over all the partitions of this topic for
    /// which messages were requested.
    #[inline]
    pub fn partitions(&self) -> &[Partition<'a>] {
        &self.partitions
    }
}

/// The result of a "fetch messages" request from a particular Kafka
/// broker for a single topic partition only.  Beside the partition
/// identifier, this structure provides an iterator over the actually
/// requested message data.
///
/// Note: There might have been a (recoverable) error for a particular
/// partition (but not for another).
#[derive(Debug)]
pub struct Partition<'a> {
    /// The identifier of the represented partition.
    partition: i32,

    /// The partition data.
    data: result::Result<Data<'a>, Arc<Error>>,
}

impl<'a> Partition<'a> {
    fn read(
        r: &mut ZReader<'a>,
        preqs: Option<&TopicPartitionFetchRequest>,
        validate_crc: bool,
        decompress: bool,
    ) -> Result<Partition<'a>> {
        let partition = r.read_i32()?;
        let proffs = preqs
            .and_then(|preqs| preqs.get(partition))
            .map(|preq| preq.offset)
            .unwrap_or(0);

        let err = Error::from_protocol(r.read_i16()?);
        // we need to parse the rest even if there was an error to
        // consume the input stream (zreader)
        let highwatermark = r.read_i64()?;
        let msgset = MessageSet::from_slice(r.read_bytes()?, proffs, validate_crc, decompress)?;

        Ok(Partition {
            partition,
            data: match err {
                Some(err) => Err(Arc::new(err)),
                None => Ok(Data {
                    highwatermark_offset: highwatermark,
                    message_set: msgset,
                }),
            },
        })
    }

    /// Retrieves the identifier of the represented partition.
    #[inline]
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Retrieves the data payload for this partition.
    pub fn data(&'a self) -> result::Result<&'a Data<'a>, Arc<Error>> {
        match self.data.as_ref() {
            Ok(data) => Ok(data),
            Err(err) => Err(err.clone()),
        }
    }
}

/// The successfully fetched data payload for a particular partition.
#[derive(Debug)]
pub struct Data<'a> {
    highwatermark_offset: i64,
    message_set: MessageSet<'a>,
}

impl<'a> Data<'a> {
    /// Retrieves the so-called "high water mark offset" indicating
    /// the "latest" offset for this partition at the remote broker.
    /// This can be used by clients to find out how much behind the
    /// latest available message they are.
    #[inline]
    pub fn highwatermark_offset(&self) -> i64 {
        self.highwatermark_offset
    }

    /// Retrieves the fetched message data for this partition.
    ///
    /// zkconsumer patch: empty when the client's fetch decompression is off; see
    /// [`entries`](Self::entries).
    #[inline]
    pub fn messages(&self) -> &[Message<'a>] {
        &self.message_set.messages
    }

    /// zkconsumer patch: the set in log order with compressed wrappers left undecoded, when
    /// the client's fetch decompression is off (`KafkaClient::set_fetch_decompression`);
    /// empty otherwise. Plain messages below the requested offset are left out; a wrapper is
    /// decoded with [`Compressed::decode`], one at a time, so that a whole answer never has
    /// to be held decompressed at once. [`decode_error`](Self::decode_error) names the
    /// message the set stopped at (a CRC mismatch or a message that does not parse).
    #[inline]
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.message_set.entries
    }

    /// zkconsumer patch: the message of this partition's set that could not be decoded, if
    /// any. [`messages`](Self::messages) holds the messages before it; the rest of the set
    /// is dropped. Other partitions of the answer are not affected.
    #[inline]
    pub fn decode_error(&self) -> Option<&DecodeError> {
        self.message_set.error.as_ref()
    }
}

/// zkconsumer patch: a message of a fetched set that cannot be decoded (unknown compression
/// codec, corrupt compressed payload, decompressed set that does not parse, CRC mismatch).
#[derive(Debug)]
pub struct DecodeError {
    /// Offset of the message that cannot be decoded. For a compressed wrapper (magic 0) this
    /// is the offset of the last message inside it: fetching from `offset + 1` skips it.
    pub offset: i64,
    /// What is wrong with it.
    pub error: Error,
}

/// zkconsumer patch: an entry of a fetched message set, when fetch decompression is off.
#[derive(Debug)]
pub enum Entry<'a> {
    /// An uncompressed message.
    Message(Message<'a>),
    /// A compressed wrapper message, not decoded yet.
    Compressed(Compressed<'a>),
}

/// zkconsumer patch: a compressed wrapper message as fetched (its CRC already checked when
/// CRC validation is on), holding a whole producer batch.
#[derive(Debug)]
pub struct Compressed<'a> {
    /// The wrapper's offset: that of the last message inside it (as Kafka 0.8/0.9 brokers
    /// write it), so fetching from `offset + 1` skips it.
    pub offset: i64,
    /// The compression codec (the low three bits of the attributes).
    codec: i8,
    /// The compressed inner message set.
    payload: &'a [u8],
}

impl<'a> Compressed<'a> {
    /// Decompresses and parses the inner message set, leaving out messages below
    /// `req_offset`. An unknown codec, a corrupt payload, an inner set that does not parse
    /// completely or an inner CRC mismatch (with `validate_crc`) is an error.
    pub fn decode(&self, req_offset: i64, validate_crc: bool) -> Result<Decoded> {
        let data = uncompress(self.codec, self.payload)?;
        check_complete(&data)?;
        let mut set = MessageSet::from_vec(data, req_offset, validate_crc)?;
        match set.error.take() {
            Some(e) => Err(e.error),
            None => Ok(Decoded { set }),
        }
    }
}

/// zkconsumer patch: the messages of one decoded compressed wrapper, owning their bytes.
#[derive(Debug)]
pub struct Decoded {
    set: MessageSet<'static>,
}

impl Decoded {
    /// The messages, in offset order.
    pub fn messages(&self) -> &[Message<'_>] {
        &self.set.messages
    }
}

#[derive(Debug)]
struct MessageSet<'a> {
    #[allow(dead_code)]
    raw_data: Cow<'a, [u8]>, // ~ this field is used to potentially "own" the underlying vector
    // zkconsumer patch: the decompressed buffers of every compressed wrapper message, which
    // `messages` borrow from (a Vec's heap buffer does not move when the Vec does).
    #[allow(dead_code)]
    decompressed: Vec<Vec<u8>>,
    messages: Vec<Message<'a>>,
    // zkconsumer patch: the set's entries when compressed wrappers are not decoded
    entries: Vec<Entry<'a>>,
    // zkconsumer patch: the message the set stopped decoding at (messages holds those before)
    error: Option<DecodeError>,
}

/// A fetched message from a remote Kafka broker for a particular
/// topic partition.
#[derive(Debug)]
pub struct Message<'a> {
    /// The offset at which this message resides in the remote kafka
    /// broker topic partition.
    pub offset: i64,

    /// The "key" data of this message.  Empty if there is no such
    /// data for this message.
    pub key: &'a [u8],

    /// The value data of this message.  Empty if there is no such
    /// data for this message.
    pub value: &'a [u8],
}

impl<'a> MessageSet<'a> {
    fn from_vec(data: Vec<u8>, req_offset: i64, validate_crc: bool) -> Result<MessageSet<'a>> {
        // since we're going to keep the original
        // uncompressed vector around without
        // further modifying it and providing
        // publicly no mutability possibilities
        // this is safe
        let ms = MessageSet::from_slice(
            unsafe { mem::transmute(&data[..]) },
            req_offset,
            validate_crc,
            true,
        )?;
        return Ok(MessageSet {
            raw_data: Cow::Owned(data),
            decompressed: ms.decompressed,
            messages: ms.messages,
            entries: ms.entries,
            error: ms.error,
        });
    }

    /// zkconsumer patch: a message that cannot be decoded no longer fails the whole answer;
    /// it ends this partition's set and is reported in `error` (see [`Data::decode_error`]).
    /// With `decompress` false, the set goes to `entries` with its compressed wrappers left
    /// undecoded (see [`Data::entries`]).
    fn from_slice(
        raw_data: &[u8],
        req_offset: i64,
        validate_crc: bool,
        decompress: bool,
    ) -> Result<MessageSet<'_>> {
        let mut r = ZReader::new(raw_data);
        let mut msgs = Vec::new();
        let mut entries = Vec::new();
        let mut decompressed = Vec::new();
        let mut error = None;
        while !r.is_empty() {
            match MessageSet::next_message(&mut r, validate_crc) {
                // this is the last messages which might be
                // incomplete; a valid case to be handled by
                // consumers
                Err(Error::UnexpectedEOF) => {
                    break;
                }
                Err(e) => {
                    return Err(e);
                }
                Ok((offset, Err(e))) => {
                    error = Some(DecodeError { offset, error: e });
                    break;
                }
                Ok((offset, Ok(pmsg))) => {
                    // handle compression (denoted by the last 3 bits
                    // of the attr field)
                    let decoded = match pmsg.attr & 0x07 {
                        c if c == Compression::NONE as i8 => {
                            // skip messages with a lower offset
                            // than the request one
                            if offset >= req_offset {
                                let message = Message {
                                    offset,
                                    key: pmsg.key,
                                    value: pmsg.value,
                                };
                                if decompress {
                                    msgs.push(message);
                                } else {
                                    entries.push(Entry::Message(message));
                                }
                            }
                            Ok(())
                        }
                        codec if !decompress => {
                            entries.push(Entry::Compressed(Compressed {
                                offset,
                                codec,
                                payload: pmsg.value,
                            }));
                            Ok(())
                        }
                        // zkconsumer patch: every compressed wrapper of the set is decoded
                        // (upstream returned after the first one, dropping the rest of the
                        // answer, so each fetch yielded one producer batch).
                        codec => uncompress(codec, pmsg.value).and_then(|v| {
                            MessageSet::append_inner(v, req_offset, validate_crc, &mut msgs, &mut decompressed)
                        }),
                    };
                    if let Err(e) = decoded {
                        error = Some(DecodeError { offset, error: e });
                        break;
                    }
                }
            };
        }
        Ok(MessageSet {
            raw_data: Cow::Borrowed(raw_data),
            decompressed,
            messages: msgs,
            entries,
            error,
        })
    }

    /// zkconsumer patch: parses a decompressed inner message set, appends its messages to
    /// `msgs` and keeps the buffer they borrow from in `decompressed`.
    fn append_inner<'b>(
        data: Vec<u8>,
        req_offset: i64,
        validate_crc: bool,
        msgs: &mut Vec<Message<'b>>,
        decompressed: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        // The slice stays valid as long as `data`'s heap buffer, which `decompressed` keeps
        // alongside the messages (moving the Vec does not move the buffer).
        let slice = unsafe { mem::transmute::<&[u8], &'b [u8]>(&data[..]) };
        check_complete(slice)?;
        let inner = MessageSet::from_slice(slice, req_offset, validate_crc, true)?;
        if let Some(e) = inner.error {
            return Err(e.error);
        }
        msgs.extend(inner.messages);
        decompressed.extend(inner.decompressed);
        decompressed.push(data);
        Ok(())
    }

    /// zkconsumer patch: the offset is returned even when the message does not parse.
    fn next_message<'b>(
        r: &mut ZReader<'b>,
        validate_crc: bool,
    ) -> Result<(i64, Result<ProtocolMessage<'b>>)> {
        let offset = r.read_i64()?;
        let msg_data = r.read_bytes()?;
        Ok((offset, ProtocolMessage::from_slice(msg_data, validate_crc)))
    }
}

/// zkconsumer patch: the decompressed inner message set of a wrapper with `codec`.
fn uncompress(codec: i8, payload: &[u8]) -> Result<Vec<u8>> {
    match codec {
        #[cfg(feature = "gzip")]
        c if c == Compression::GZIP as i8 => gzip::uncompress(payload),
        #[cfg(feature = "snappy")]
        c if c == Compression::SNAPPY as i8 => {
            use std::io::Read;
            let mut v = Vec::new();
            SnappyReader::new(payload).and_then(|mut r| Ok(r.read_to_end(&mut v)?))?;
            Ok(v)
        }
        // lz4 (codec 3), either framing
        #[cfg(feature = "lz4")]
        3 => lz4::uncompress(payload),
        _ => Err(Error::UnsupportedCompression),
    }
}

/// zkconsumer patch: a decompressed set is complete: a message cut short in it is an error,
/// not the end of a fetch answer.
fn check_complete(set: &[u8]) -> Result<()> {
    let mut r = ZReader::new(set);
    while !r.is_empty() {
        r.read_i64()?;
        r.read_bytes()?;
    }
    Ok(())
}

/// Represents a messages exactly as defined in the protocol.
struct ProtocolMessage<'a> {
    attr: i8,
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> ProtocolMessage<'a> {
    /// Parses a raw message from the given byte slice.  Does _not_
    /// handle any compression.
    fn from_slice(raw_data: &[u8], validate_crc: bool) -> Result<ProtocolMessage<'_>> {
        let mut r = ZReader::new(raw_data);

        // ~ optionally validate the crc checksum
        let msg_crc = r.read_i32()?;
        if validate_crc && to_crc(r.rest()) as i32 != msg_crc {
            return Err(Error::Kafka(KafkaCode::CorruptMessage));
        }
        // ~ we support parsing only messages with the "zero"
        // magic_byte; this covers kafka 0.8 and 0.9.
        let msg_magic = r.read_i8()?;
        if msg_magic != 0 {
            return Err(Error::UnsupportedProtocol);
        }
        let msg_attr = r.read_i8()?;
        let msg_key = r.read_bytes()?;
        let msg_val = r.read_bytes()?;

        debug_assert!(r.is_empty());

        Ok(ProtocolMessage {
            attr: msg_attr,
            key: msg_key,
            value: msg_val,
        })
    }
}

// tests --------------------------------------------------------------

// zkconsumer patch: upstream's tests read test-data/, which the crate package does not ship;
// ours (zkc_tests below) build their answers from raw bytes.
#[cfg(all(test, feature = "upstream-test-data"))]
mod tests {
    use std::str;

    use super::{FetchRequest, Message, Response};
    use crate::error::{Error, KafkaCode};

    static FETCH1_TXT: &str = include_str!("../../test-data/fetch1.txt");

    #[rustfmt::skip]
    static FETCH1_FETCH_RESPONSE_NOCOMPRESSION_K0821: &[u8] =
        include_bytes!("../../test-data/fetch1.mytopic.1p.nocompression.kafka.0821");

    #[rustfmt::skip]
    static FETCH1_FETCH_RESPONSE_SNAPPY_K0821: &[u8] =
        include_bytes!("../../test-data/fetch1.mytopic.1p.snappy.kafka.0821");

    #[cfg(feature = "snappy")]
    #[rustfmt::skip]
    static FETCH1_FETCH_RESPONSE_SNAPPY_K0822: &[u8] =
        include_bytes!("../../test-data/fetch1.mytopic.1p.snappy.kafka.0822");

    #[cfg(feature = "gzip")]
    #[rustfmt::skip]
    static FETCH1_FETCH_RESPONSE_GZIP_K0821: &[u8] =
        include_bytes!("../../test-data/fetch1.mytopic.1p.gzip.kafka.0821");

    static FETCH2_TXT: &str = include_str!("../../test-data/fetch2.txt");

    #[rustfmt::skip]
    static FETCH2_FETCH_RESPONSE_NOCOMPRESSION_K0900: &[u8] =
        include_bytes!("../../test-data/fetch2.mytopic.nocompression.kafka.0900");

    #[rustfmt::skip]
    static FETCH2_FETCH_RESPONSE_NOCOMPRESSION_INVALID_CRC_K0900: &[u8] =
        include_bytes!("../../test-data/fetch2.mytopic.nocompression.invalid_crc.kafka.0900");

    fn into_messages(r: &Response) -> Vec<&Message<'_>> {
        let mut all_msgs = Vec::new();
        for t in r.topics() {
            for p in t.partitions() {
                let data = p.data().unwrap();
                all_msgs.extend(data.messages());
            }
        }
        all_msgs
    }

    fn test_decode_new_fetch_response(
        msg_per_line: &str,
        response: Vec<u8>,
        requests: Option<&FetchRequest<'_, '_>>,
        validate_crc: bool,
    ) {
        let resp = Response::from_vec(response, requests, validate_crc);
        let resp = resp.unwrap();

        let original: Vec<_> = msg_per_line.lines().collect();

        // ~ response for exactly one topic expected
        assert_eq!(1, resp.topics.len());
        // ~ topic name
        assert_eq!("my-topic", resp.topics[0].topic);
        // ~ exactly one partition
        assert_eq!(1, resp.topics[0].partitions.len());
        // ~ the first partition
        assert_eq!(0, resp.topics[0].partitions[0].partition);
        // ~ no error
        // assert!(resp.topics[0].partitions[0].data.is_ok());

        let msgs = into_messages(&resp);
        assert_eq!(original.len(), msgs.len());
        for (msg, orig) in msgs.into_iter().zip(original.iter()) {
            assert_eq!(str::from_utf8(msg.value).unwrap(), *orig);
        }
    }

    fn skip_lines(mut lines: &str, mut n: usize) -> &str {
        while n > 0 {
            n -= 1;
            lines = &lines[lines.find('\n').map(|i| i + 1).unwrap_or(0)..];
        }
        lines
    }

    #[test]
    fn test_from_slice_nocompression_k0821() {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 0, -1);
        req.add("foo-quux", 0, 100, -1);
        test_decode_new_fetch_response(
            FETCH1_TXT,
            FETCH1_FETCH_RESPONSE_NOCOMPRESSION_K0821.to_owned(),
            Some(&req),
            false,
        );

        // ~ pretend we asked for messages as of offset five (while
        // the server delivered the zero-offset message as well)
        req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 5, -1);
        test_decode_new_fetch_response(
            skip_lines(FETCH1_TXT, 5),
            FETCH1_FETCH_RESPONSE_NOCOMPRESSION_K0821.to_owned(),
            Some(&req),
            false,
        );
    }

    // verify we don't crash but cleanly fail and report we don't
    // support the compression
    #[cfg(not(feature = "snappy"))]
    #[test]
    fn test_unsupported_compression_snappy() {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 0, -1);
        let r = Response::from_vec(
            FETCH1_FETCH_RESPONSE_SNAPPY_K0821.to_owned(),
            Some(&req),
            false,
        );
        assert!(match r {
            return Err(Error::UnsupportedCompression) => true,
            _ => false,
        });
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn test_from_slice_snappy_k0821() {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 0, -1);
        test_decode_new_fetch_response(
            FETCH1_TXT,
            FETCH1_FETCH_RESPONSE_SNAPPY_K0821.to_owned(),
            Some(&req),
            false,
        );

        // ~ pretend we asked for messages as of offset three (while
        // the server delivered the zero-offset message as well)
        req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 3, -1);
        test_decode_new_fetch_response(
            skip_lines(FETCH1_TXT, 3),
            FETCH1_FETCH_RESPONSE_SNAPPY_K0821.to_owned(),
            Some(&req),
            false,
        );
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn test_from_slice_snappy_k0822() {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 0, -1);
        test_decode_new_fetch_response(
            FETCH1_TXT,
            FETCH1_FETCH_RESPONSE_SNAPPY_K0822.to_owned(),
            Some(&req),
            false,
        );
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn test_from_slice_gzip_k0821() {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        req.add("my-topic", 0, 0, -1);
        test_decode_new_fetch_response(
            FETCH1_TXT,
            FETCH1_FETCH_RESPONSE_GZIP_K0821.to_owned(),
            Some(&req),
            false,
        );

        // ~ pretend we asked for messages as of offset one (while the
        // server delivered the zero-offset message as well)
        req.add("my-topic", 0, 1, -1);
        test_decode_new_fetch_response(
            skip_lines(FETCH1_TXT, 1),
            FETCH1_FETCH_RESPONSE_GZIP_K0821.to_owned(),
            Some(&req),
            false,
        );

        // ~ pretend we asked for messages as of offset ten (while the
        // server delivered the zero-offset message as well)
        req.add("my-topic", 0, 10, -1);
        test_decode_new_fetch_response(
            skip_lines(FETCH1_TXT, 10),
            FETCH1_FETCH_RESPONSE_GZIP_K0821.to_owned(),
            Some(&req),
            false,
        );
    }

    #[test]
    fn test_crc_validation() {
        test_decode_new_fetch_response(
            FETCH2_TXT,
            FETCH2_FETCH_RESPONSE_NOCOMPRESSION_K0900.to_owned(),
            None,
            true,
        );

        // now test the same message but with an invalid crc checksum
        // (modified by hand)
        // 1) without checking the crc ... since only the crc field is
        // artificially falsified ... we expect the rest of the
        // message to be parsed correctly
        test_decode_new_fetch_response(
            FETCH2_TXT,
            FETCH2_FETCH_RESPONSE_NOCOMPRESSION_INVALID_CRC_K0900.to_owned(),
            None,
            false,
        );
        // 2) with checking the crc ... parsing should fail immediately
        match Response::from_vec(
            FETCH2_FETCH_RESPONSE_NOCOMPRESSION_INVALID_CRC_K0900.to_owned(),
            None,
            true,
        ) {
            Ok(_) => panic!("Expected error, but got successful response!"),
            Err(Error::Kafka(KafkaCode::CorruptMessage)) => {}
            Err(e) => panic!("Expected KafkaCode::CorruptMessage error, but got: {:?}", e),
        }
    }

    #[cfg(feature = "nightly")]
    mod benches {
        use test::{black_box, Bencher};

        use super::super::{FetchRequest, Response};
        use super::into_messages;

        fn bench_decode_new_fetch_response(b: &mut Bencher, data: Vec<u8>, validate_crc: bool) {
            let mut reqs = FetchRequest::new(0, "foo", -1, -1);
            reqs.add("my-topic", 0, 0, -1);
            b.bytes = data.len() as u64;
            b.iter(|| {
                let data = data.clone();
                let r = black_box(Response::from_vec(data, Some(&reqs), validate_crc).unwrap());
                let v = black_box(into_messages(&r));
                v.len()
            });
        }

        #[bench]
        fn bench_decode_new_fetch_response_nocompression_k0821(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_NOCOMPRESSION_K0821.to_owned(),
                false,
            )
        }

        #[cfg(feature = "snappy")]
        #[bench]
        fn bench_decode_new_fetch_response_snappy_k0821(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_SNAPPY_K0821.to_owned(),
                false,
            )
        }

        #[cfg(feature = "snappy")]
        #[bench]
        fn bench_decode_new_fetch_response_snappy_k0822(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_SNAPPY_K0822.to_owned(),
                false,
            )
        }

        #[cfg(feature = "gzip")]
        #[bench]
        fn bench_decode_new_fetch_response_gzip_k0821(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_GZIP_K0821.to_owned(),
                false,
            )
        }

        #[bench]
        fn bench_decode_new_fetch_response_nocompression_k0821_validate_crc(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_NOCOMPRESSION_K0821.to_owned(),
                true,
            )
        }

        #[cfg(feature = "snappy")]
        #[bench]
        fn bench_decode_new_fetch_response_snappy_k0821_validate_crc(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_SNAPPY_K0821.to_owned(),
                true,
            )
        }

        #[cfg(feature = "snappy")]
        #[bench]
        fn bench_decode_new_fetch_response_snappy_k0822_validate_crc(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_SNAPPY_K0822.to_owned(),
                true,
            )
        }

        #[cfg(feature = "gzip")]
        #[bench]
        fn bench_decode_new_fetch_response_gzip_k0821_validate_crc(b: &mut Bencher) {
            bench_decode_new_fetch_response(
                b,
                super::FETCH1_FETCH_RESPONSE_GZIP_K0821.to_owned(),
                true,
            )
        }
    }
}

// zkconsumer patch: fetch answers built from raw bytes (no broker): every compressed wrapper
// of an answer is decoded, a fetch may start inside a compressed set, lz4 in both framings,
// and a set that cannot be decoded fails its partition only. Every answer is decoded both
// ways — decompressed while parsed, and with wrappers left undecoded and decoded one at a
// time (`Data::entries`, `Compressed::decode`) — and both must agree.
#[cfg(all(test, feature = "gzip", feature = "snappy", feature = "lz4"))]
mod zkc_tests {
    use super::super::to_crc;
    use super::{Entry, FetchRequest, Response};
    use crate::compression::{gzip, lz4, snappy};
    use crate::error::{Error, KafkaCode};

    fn bytes(v: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        out.extend_from_slice(v);
    }

    /// One magic-0 message (crc, magic, attributes, null key, value).
    fn message(attr: i8, value: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8, attr as u8];
        body.extend_from_slice(&(-1i32).to_be_bytes());
        bytes(value, &mut body);
        let mut m = to_crc(&body).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    fn entry(offset: i64, message: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&offset.to_be_bytes());
        bytes(message, out);
    }

    /// Plain messages "v<offset>" at `offsets`.
    fn plain(offsets: std::ops::RangeInclusive<i64>) -> Vec<u8> {
        let mut set = Vec::new();
        for o in offsets {
            entry(o, &message(0, format!("v{o}").as_bytes()), &mut set);
        }
        set
    }

    /// Snappy in the xerial framing Kafka's Java producer writes (two chunks).
    fn xerial_snappy(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
        let (a, b) = data.split_at(data.len() / 2);
        for chunk in [a, b] {
            bytes(&snappy::compress(chunk).unwrap(), &mut out);
        }
        out
    }

    /// A compressed wrapper holding "v<offset>" for `offsets`; it carries the offset of its
    /// last inner message, as Kafka 0.8/0.9 brokers write it.
    fn wrapper(codec: i8, offsets: std::ops::RangeInclusive<i64>) -> Vec<u8> {
        let last = *offsets.end();
        let inner = plain(offsets);
        let payload = match codec {
            1 => gzip::compress(&inner).unwrap(),
            2 => xerial_snappy(&inner),
            3 => lz4::to_kafka_0_8_framing(lz4::compress(&inner)),
            // 4 stands for lz4 in the standard framing here (on the wire it is codec 3)
            4 => return raw_wrapper(3, last, &lz4::compress(&inner)),
            _ => unreachable!(),
        };
        raw_wrapper(codec, last, &payload)
    }

    fn raw_wrapper(attr: i8, offset: i64, payload: &[u8]) -> Vec<u8> {
        let mut set = Vec::new();
        entry(offset, &message(attr, payload), &mut set);
        set
    }

    /// A fetch answer for topic "t" with the given partitions' message sets.
    fn answer(partitions: &[(i32, Vec<u8>)]) -> Vec<u8> {
        let mut a = 7i32.to_be_bytes().to_vec(); // correlation id
        a.extend_from_slice(&1i32.to_be_bytes());
        a.extend_from_slice(&1i16.to_be_bytes());
        a.push(b't');
        a.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for (p, set) in partitions {
            a.extend_from_slice(&p.to_be_bytes());
            a.extend_from_slice(&0i16.to_be_bytes());
            a.extend_from_slice(&100i64.to_be_bytes());
            bytes(set, &mut a);
        }
        a
    }

    type Decoded = Vec<(i32, Vec<(i64, String)>, Option<(i64, String)>)>;

    fn request(from: &[(i32, i64)]) -> FetchRequest<'static, 'static> {
        let mut req = FetchRequest::new(0, "test", -1, -1);
        for &(p, offset) in from {
            req.add("t", p, offset, -1);
        }
        req
    }

    fn text(value: &[u8]) -> String {
        String::from_utf8(value.to_vec()).unwrap()
    }

    /// (partition, offsets and values decoded, decode error offset and text) per partition,
    /// the same whether wrappers are decompressed while parsing or one at a time afterwards.
    fn decode(answer: Vec<u8>, from: &[(i32, i64)]) -> Decoded {
        let eager = decode_eager(answer.clone(), from);
        assert_eq!(decode_lazy(answer, from), eager, "one wrapper at a time decodes the same");
        eager
    }

    fn decode_eager(answer: Vec<u8>, from: &[(i32, i64)]) -> Decoded {
        let req = request(from);
        let resp = Response::from_vec(answer, Some(&req), true).expect("the answer parses");
        let mut out = Vec::new();
        for t in resp.topics() {
            for p in t.partitions() {
                let data = p.data().expect("no partition error");
                assert!(data.entries().is_empty(), "entries only without decompression");
                let msgs = data.messages().iter().map(|m| (m.offset, text(m.value))).collect();
                let err = data.decode_error().map(|e| (e.offset, e.error.to_string()));
                out.push((p.partition(), msgs, err));
            }
        }
        out
    }

    /// As a consumer decodes undecoded wrappers: one at a time, stopping at the first that
    /// fails (reported at the wrapper's offset) or at the set's own decode error.
    fn decode_lazy(answer: Vec<u8>, from: &[(i32, i64)]) -> Decoded {
        let req = request(from);
        let resp = Response::parse(answer, Some(&req), true, false).expect("the answer parses");
        let mut out = Vec::new();
        for t in resp.topics() {
            for p in t.partitions() {
                let data = p.data().expect("no partition error");
                assert!(data.messages().is_empty(), "messages only with decompression");
                let requested = from.iter().find(|f| f.0 == p.partition()).map_or(0, |f| f.1);
                let mut msgs = Vec::new();
                let mut err = None;
                for entry in data.entries() {
                    match entry {
                        Entry::Message(m) => msgs.push((m.offset, text(m.value))),
                        Entry::Compressed(c) => match c.decode(requested, true) {
                            Ok(d) => msgs.extend(d.messages().iter().map(|m| (m.offset, text(m.value)))),
                            Err(e) => {
                                err = Some((c.offset, e.to_string()));
                                break;
                            }
                        },
                    }
                }
                if err.is_none() {
                    err = data.decode_error().map(|e| (e.offset, e.error.to_string()));
                }
                out.push((p.partition(), msgs, err));
            }
        }
        out
    }

    #[test]
    fn without_decompression_wrappers_stay_compressed_in_log_order() {
        let req = request(&[(0, 3)]);
        let resp = Response::parse(answer(&[(0, mixed_set())]), Some(&req), true, false).unwrap();
        let data = resp.topics()[0].partitions()[0].data().unwrap();
        let kinds: Vec<(char, i64)> = data
            .entries()
            .iter()
            .map(|e| match e {
                Entry::Message(m) => ('m', m.offset),
                Entry::Compressed(c) => ('c', c.offset),
            })
            .collect();
        // plain 0 and 1 are below the requested offset 3; each wrapper carries its last offset
        assert_eq!(kinds, [('c', 4), ('c', 7), ('c', 10), ('c', 13), ('c', 15), ('m', 16)]);
    }

    #[test]
    fn an_inner_crc_mismatch_fails_the_wrapper() {
        let mut inner = plain(2..=3);
        inner[12] ^= 0xff; // the CRC of the message at offset 2
        let set = [plain(0..=1), raw_wrapper(1, 3, &gzip::compress(&inner).unwrap())].concat();
        let got = decode(answer(&[(0, set)]), &[(0, 0)]);
        let corrupt = Error::Kafka(KafkaCode::CorruptMessage).to_string();
        assert_eq!(got, vec![(0, values(0..=1), Some((3, corrupt)))]);
    }

    fn values(offsets: std::ops::RangeInclusive<i64>) -> Vec<(i64, String)> {
        offsets.map(|o| (o, format!("v{o}"))).collect()
    }

    fn mixed_set() -> Vec<u8> {
        [
            plain(0..=1),
            wrapper(1, 2..=4),
            wrapper(2, 5..=7),
            wrapper(3, 8..=10),
            wrapper(4, 11..=13),
            wrapper(1, 14..=15),
            plain(16..=16),
        ]
        .concat()
    }

    #[test]
    fn every_compressed_wrapper_of_an_answer_is_decoded() {
        let got = decode(answer(&[(0, mixed_set()), (1, wrapper(3, 0..=2))]), &[(0, 0), (1, 0)]);
        assert_eq!(got, vec![(0, values(0..=16), None), (1, values(0..=2), None)]);
    }

    #[test]
    fn a_fetch_may_start_inside_a_compressed_set() {
        for start in [3, 6, 9, 12, 15] {
            let got = decode(answer(&[(0, mixed_set())]), &[(0, start)]);
            assert_eq!(got, vec![(0, values(start..=16), None)], "from {start}");
        }
    }

    #[test]
    fn a_truncated_last_message_ends_the_set_quietly() {
        let mut set = mixed_set();
        set.truncate(set.len() - 3);
        let got = decode(answer(&[(0, set)]), &[(0, 0)]);
        assert_eq!(got, vec![(0, values(0..=15), None)]);
    }

    #[test]
    fn an_unknown_codec_fails_its_partition_only() {
        let set = [plain(0..=1), raw_wrapper(5, 4, b"whatever"), plain(5..=6)].concat();
        let got = decode(answer(&[(0, set), (1, plain(0..=3))]), &[(0, 0), (1, 0)]);
        assert_eq!(
            got,
            vec![
                (0, values(0..=1), Some((4, "Unsupported compression format".to_string()))),
                (1, values(0..=3), None)
            ]
        );
    }

    #[test]
    fn a_corrupt_compressed_payload_fails_its_partition_only() {
        for codec in [1i8, 2, 3] {
            let inner = plain(2..=4);
            let mut payload = match codec {
                1 => gzip::compress(&inner).unwrap(),
                2 => xerial_snappy(&inner),
                _ => lz4::to_kafka_0_8_framing(lz4::compress(&inner)),
            };
            let middle = payload.len() / 2;
            for b in &mut payload[middle..] {
                *b ^= 0x5a;
            }
            // the message's CRC is right: the damage is inside the compressed bytes
            let set = [plain(0..=1), raw_wrapper(codec, 4, &payload), plain(5..=5)].concat();
            let got = decode(answer(&[(3, set), (4, wrapper(codec, 0..=1))]), &[(3, 0), (4, 0)]);
            assert_eq!(got[0].0, 3);
            assert_eq!(got[0].1, values(0..=1), "codec {codec}");
            assert_eq!(got[0].2.as_ref().map(|e| e.0), Some(4), "codec {codec}: {got:?}");
            assert_eq!(got[1], (4, values(0..=1), None), "codec {codec}");
        }
    }

    #[test]
    fn a_decompressed_set_that_does_not_parse_fails_its_partition_only() {
        let mut cut = plain(2..=4);
        cut.truncate(cut.len() - 2); // a message cut short inside the compressed set
        for payload in [gzip::compress(b"not a message set").unwrap(), gzip::compress(&cut).unwrap()] {
            let set = [plain(0..=1), raw_wrapper(1, 4, &payload)].concat();
            let got = decode(answer(&[(0, set), (1, plain(0..=0))]), &[(0, 0), (1, 0)]);
            assert_eq!(got[0].1, values(0..=1));
            assert_eq!(got[0].2, Some((4, Error::UnexpectedEOF.to_string())));
            assert_eq!(got[1], (1, values(0..=0), None));
        }
    }

    #[test]
    fn a_crc_mismatch_fails_its_partition_only() {
        let mut set = plain(0..=2);
        let second = set.len() / 3 + 12; // the CRC of the message at offset 1
        set[second] ^= 0xff;
        let got = decode(answer(&[(0, set), (1, plain(0..=0))]), &[(0, 0), (1, 0)]);
        assert_eq!(
            got,
            vec![
                (0, values(0..=0), Some((1, Error::Kafka(KafkaCode::CorruptMessage).to_string()))),
                (1, values(0..=0), None)
            ]
        );
    }
}
