//! Feeds arbitrary bytes to `openflow::Message::decode`. What decodes must re-encode to bytes
//! that decode again, after which encoding and decoding are each other's inverse.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vxtund::openflow::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok((xid, message)) = Message::decode(data) {
        let again = message.encode(xid);
        let (xid2, message2) = match Message::decode(&again) {
            Ok(decoded) => decoded,
            Err(e) => panic!("re-encoding of {message:?} does not decode: {e}"),
        };
        assert_eq!(xid2, xid);
        assert_eq!(Message::decode(&message2.encode(xid)), Ok((xid, message2)));
    }
});
