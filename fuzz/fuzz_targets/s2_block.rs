#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reference decoder, bounded like the S2 one (it reserves the declared length).
    let snappy = match snap::raw::decompress_len(data) {
        Ok(n) if n <= jetdir::s2::MAX_RAW_BLOCK => {
            snap::raw::Decoder::new().decompress_vec(data).ok()
        }
        _ => None,
    };
    jetdir::fuzzing::s2_block(data, snappy.as_deref());
});
