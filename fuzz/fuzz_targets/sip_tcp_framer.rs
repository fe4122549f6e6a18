//! A TCP/TLS byte stream from an untrusted peer, delivered in arbitrary segment sizes.
//! Invariants: nothing panics; the buffer never exceeds its bound; every framed message
//! re-serialises to bytes that parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_sip::{Message, tcp::Framer};

const MAX: usize = 8 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&seg, stream)) = data.split_first() else { return };
    // The first byte chooses the segment size, so one input covers "byte by byte" up to
    // "everything at once" and messages split at every offset.
    let seg = if seg == 0 { stream.len().max(1) } else { seg as usize };
    let mut framer = Framer::new(MAX);
    'stream: for chunk in stream.chunks(seg) {
        if framer.push(chunk).is_err() {
            break;
        }
        assert!(framer.buffered() <= MAX);
        loop {
            match framer.next_message() {
                Ok(Some(msg)) => {
                    let bytes = msg.to_bytes();
                    if let Err(e) = Message::parse(&bytes) {
                        panic!("framed message does not re-parse: {e}\n{}", String::from_utf8_lossy(&bytes));
                    }
                }
                Ok(None) => break,
                // The connection is closed on a framing error: a stream cannot resynchronise.
                Err(_) => break 'stream,
            }
        }
    }
});
