//! Arbitrary bytes through every integrity schema and the frame parser.
//!
//! cargo-fuzz builds with `--cfg fuzzing`, which makes every FCS comparison
//! pass, so random inputs reach `Frame::new_checked`. Whatever decodes must
//! re-encode (header and every record, through `FrameWriter` and `seal`) to a
//! datagram that decodes to the same logical frame, byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phasecast_core::wire::{decode, FrameWriter, Integrity, MAX_MTU};

fuzz_target!(|data: &[u8]| {
    let mut scratch = vec![0u8; data.len()];
    for s in Integrity::ALL {
        let Ok(frame) = decode(s, data, &mut scratch) else {
            continue;
        };
        let header = frame.header().expect("a decoded frame has a valid header");
        assert_eq!(header.integrity, s);

        let mut buf = vec![0u8; MAX_MTU];
        let mut w =
            FrameWriter::new(&mut buf, &header, s.max_frame_len(MAX_MTU)).expect("header fits");
        for record in frame.records() {
            w.push_record(&record)
                .expect("a decoded record re-encodes into a frame of the same size");
        }
        let len = w.finish();
        assert_eq!(len, frame.as_bytes().len());
        let sealed = s.seal(&mut buf, len).expect("seal");

        let mut scratch2 = vec![0u8; sealed];
        let again = decode(s, &buf[..sealed], &mut scratch2).expect("re-encoded frame decodes");
        assert_eq!(again.as_bytes(), frame.as_bytes());
        assert_eq!(again.header(), Ok(header));
        assert!(again.records().eq(frame.records()));
    }
});
