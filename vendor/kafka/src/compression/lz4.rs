//! zkconsumer patch: lz4 message sets, decoded with lz4_flex's frame decoder.
//!
//! Two framings exist on the wire. The standard LZ4 frame computes the header checksum (HC)
//! over the frame descriptor only; Kafka 0.8.2-0.9 (KAFKA-1493), and librdkafka when it talks
//! to them, compute it over the magic number *and* the descriptor. Both are accepted: the HC
//! byte must match one of the two, and is rewritten to the standard value before the frame
//! goes to lz4_flex (a frame whose HC matches neither is refused).

use std::hash::Hasher;
use std::io::Read;

use twox_hash::XxHash32;

use crate::error::{Error, Result};

const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_DICTIONARY_ID: u8 = 0x01;

/// The HC byte of an LZ4 frame: the second byte of the xxHash32 (seed 0) of `bytes`.
fn header_checksum(bytes: &[u8]) -> u8 {
    let mut h = XxHash32::with_seed(0);
    h.write(bytes);
    (h.finish() >> 8) as u8
}

/// Decompresses an lz4 message set value in either framing.
pub fn uncompress(src: &[u8]) -> Result<Vec<u8>> {
    let invalid = |what: String| Error::InvalidLz4(what);
    if src.len() < 7 || src[..4] != MAGIC {
        return Err(invalid("not an LZ4 frame (bad magic number)".into()));
    }
    let flg = src[4];
    let mut hc_at = 6;
    if flg & FLG_CONTENT_SIZE != 0 {
        hc_at += 8;
    }
    if flg & FLG_DICTIONARY_ID != 0 {
        hc_at += 4;
    }
    if src.len() <= hc_at {
        return Err(invalid("truncated LZ4 frame descriptor".into()));
    }
    let standard = header_checksum(&src[4..hc_at]);
    let kafka_0_8 = header_checksum(&src[..hc_at]);
    if src[hc_at] != standard && src[hc_at] != kafka_0_8 {
        return Err(invalid(format!(
            "LZ4 frame descriptor checksum {:#04x} matches neither the standard ({standard:#04x}) \
             nor the Kafka 0.8 framing ({kafka_0_8:#04x})",
            src[hc_at]
        )));
    }
    let mut header = src[..=hc_at].to_vec();
    header[hc_at] = standard;
    let mut decoder =
        lz4_flex::frame::FrameDecoder::new(header.as_slice().chain(&src[hc_at + 1..]));
    let mut out = Vec::with_capacity(src.len() * 4);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(out)
}

/// Compresses `src` into one standard LZ4 frame (64 KiB independent blocks, as Kafka writes).
#[cfg(test)]
pub fn compress(src: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(src).expect("write to a Vec");
    enc.finish().expect("finish into a Vec")
}

/// Rewrites the HC byte of a standard frame to the Kafka 0.8.2-0.9 (KAFKA-1493) value.
#[cfg(test)]
pub fn to_kafka_0_8_framing(mut frame: Vec<u8>) -> Vec<u8> {
    // the frames `compress` writes have no content size and no dictionary id
    frame[6] = header_checksum(&frame[..6]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    // "hello hello hello hello" as the Kafka 0.9 Java producer's KafkaLZ4BlockOutputStream
    // writes it: FLG 0x60 (version 01, independent blocks), BD 0x40 (64 KiB), HC over
    // magic + descriptor (0x1a instead of the standard 0x82; both computed with an
    // independent xxHash32), one uncompressed block, end mark.
    const KAFKA_0_9_FRAME: &[u8] = &[
        0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x1a, 0x17, 0x00, 0x00, 0x80, b'h', b'e', b'l', b'l',
        b'o', b' ', b'h', b'e', b'l', b'l', b'o', b' ', b'h', b'e', b'l', b'l', b'o', b' ', b'h',
        b'e', b'l', b'l', b'o', 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn header_checksums_of_both_framings() {
        assert_eq!(header_checksum(&[0x60, 0x40]), 0x82);
        assert_eq!(header_checksum(&KAFKA_0_9_FRAME[..6]), 0x1a);
    }

    #[test]
    fn decodes_the_kafka_0_8_framing() {
        assert_eq!(
            uncompress(KAFKA_0_9_FRAME).unwrap(),
            b"hello hello hello hello"
        );
    }

    #[test]
    fn decodes_the_standard_framing() {
        let mut frame = KAFKA_0_9_FRAME.to_vec();
        frame[6] = 0x82;
        assert_eq!(uncompress(&frame).unwrap(), b"hello hello hello hello");
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        assert_eq!(uncompress(&compress(&data)).unwrap(), data);
        assert_eq!(
            uncompress(&to_kafka_0_8_framing(compress(&data))).unwrap(),
            data
        );
    }

    #[test]
    fn refuses_a_wrong_header_checksum_and_garbage() {
        let mut frame = KAFKA_0_9_FRAME.to_vec();
        frame[6] = 0x00;
        let e = uncompress(&frame).unwrap_err().to_string();
        assert!(e.contains("matches neither"), "{e}");
        let e = uncompress(b"not lz4 at all").unwrap_err().to_string();
        assert!(e.contains("bad magic"), "{e}");
        let mut truncated = compress(&[7u8; 100_000]);
        truncated.truncate(40);
        assert!(uncompress(&truncated).is_err());
    }
}
