//! Stream framing for TCP/TLS: bytes in, complete messages out (RFC 3261 18.3).

use bytes::{Buf, BytesMut};

use crate::message::{Framing, Message, ParseError, parse_framed};

/// Accumulates stream bytes and yields complete messages. The buffer never grows beyond
/// `max_message_size`: a peer that sends a larger message (or garbage) gets an error and the
/// connection should be closed, since a stream cannot be resynchronised.
pub struct Framer {
    buf: BytesMut,
    max_message_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(ParseError),
    /// The message's length was known (header block and Content-Length read) but its bytes
    /// do not parse. The stream is still in sync: answer it (400, or nothing for an ACK) and
    /// read on.
    #[error("unparseable message: {error}")]
    Unparseable { error: ParseError, bytes: bytes::Bytes },
}

impl Framer {
    pub fn new(max_message_size: usize) -> Framer {
        Framer { buf: BytesMut::with_capacity(max_message_size.min(16 * 1024)), max_message_size }
    }

    /// Appends received bytes. Fails (without buffering) if that would exceed the bound.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FrameError> {
        if self.buf.len() + data.len() > self.max_message_size {
            return Err(FrameError::TooLarge(self.max_message_size));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Next complete message, `Ok(None)` if more bytes are needed. Keep-alive CRLFs (RFC 5626)
    /// are consumed silently. The message bytes are split off the buffer without copying.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let skip = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        // Only whole CRLF pairs are keep-alives; a trailing lone CR may start the next pair.
        let whole = skip - skip % 2;
        if whole > 0 {
            self.buf.advance(whole);
        }
        if self.buf.iter().all(|&b| b == b'\r' || b == b'\n') {
            return Ok(None);
        }
        let Some(len) = frame_len(&self.buf).map_err(FrameError::Malformed)? else {
            if self.buf.len() >= self.max_message_size {
                return Err(FrameError::TooLarge(self.max_message_size));
            }
            return Ok(None);
        };
        if len > self.max_message_size {
            return Err(FrameError::TooLarge(self.max_message_size));
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let bytes = self.buf.split_to(len).freeze();
        match parse_framed(bytes.clone(), Framing::Stream) {
            Ok((msg, _)) => Ok(Some(msg)),
            Err(error) => Err(FrameError::Unparseable { error, bytes }),
        }
    }
}

/// Length of the message at the front of `buf` (header block plus Content-Length), or `None`
/// if the header block is not complete yet. Knowing the length before the body arrives lets
/// an oversized Content-Length be refused at once instead of buffered.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some(hdr_end) = memchr::memmem::find(buf, b"\r\n\r\n") else { return Ok(None) };
    let mut cl = None;
    for line in buf[..hdr_end].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = crate::scan::trim_wsp(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if cl.is_some() {
                return Err(ParseError::bad("Multiple Content-Length headers"));
            }
            let v = crate::scan::trim_wsp(&line[colon + 1..]);
            cl = Some(
                crate::scan::parse_u64(v)
                    .filter(|&n| n <= u64::from(u32::MAX))
                    .ok_or(ParseError::bad("Invalid Content-Length"))? as usize,
            );
        }
    }
    let cl = cl.ok_or(ParseError::bad("Missing Content-Length"))?;
    Ok(Some(hdr_end + 4 + cl))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPT: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\nabc";

    #[test]
    fn frames_split_and_back_to_back_messages() {
        let mut f = Framer::new(4096);
        let mut all = b"\r\n\r\n".to_vec();
        all.extend_from_slice(OPT);
        all.extend_from_slice(OPT);
        let mut got = 0;
        for chunk in all.chunks(7) {
            f.push(chunk).unwrap();
            while let Some(m) = f.next_message().unwrap() {
                assert_eq!(&m.to_bytes()[..], OPT);
                got += 1;
            }
        }
        assert_eq!(got, 2);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn bounded_buffer() {
        let mut f = Framer::new(64);
        assert!(matches!(f.push(&[b'A'; 65]), Err(FrameError::TooLarge(64))));
        f.push(&[b'A'; 64]).unwrap();
        assert!(f.next_message().is_err());
    }

    #[test]
    fn oversized_content_length_is_refused_before_the_body_arrives() {
        let mut f = Framer::new(4096);
        let big = String::from_utf8_lossy(OPT).replace("Content-Length: 3", "Content-Length: 100000");
        let head = &big.as_bytes()[..big.len() - 3];
        f.push(head).unwrap();
        assert!(matches!(f.next_message(), Err(FrameError::TooLarge(4096))));
    }

    #[test]
    fn a_framed_message_that_does_not_parse_leaves_the_stream_in_sync() {
        let mut f = Framer::new(4096);
        let bad = String::from_utf8_lossy(OPT).replace("OPTIONS sip:a@b SIP/2.0", "ACK sip: SIP/2.0");
        f.push(bad.as_bytes()).unwrap();
        f.push(OPT).unwrap();
        match f.next_message() {
            Err(FrameError::Unparseable { bytes, .. }) => assert_eq!(&bytes[..], bad.as_bytes()),
            other => panic!("{other:?}"),
        }
        assert_eq!(&f.next_message().unwrap().unwrap().to_bytes()[..], OPT);
    }

    #[test]
    fn stream_requires_content_length() {
        let mut f = Framer::new(4096);
        let no_cl = String::from_utf8_lossy(OPT).replace("Content-Length: 3\r\n", "");
        f.push(no_cl.as_bytes()).unwrap();
        assert!(matches!(f.next_message(), Err(FrameError::Malformed(_))));
    }
}
