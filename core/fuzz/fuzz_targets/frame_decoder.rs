#![no_main]
//! `frame_decoder`: see `snowsocket_fuzz::oracle::frame_decoder`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| snowsocket_fuzz::oracle::frame_decoder(data));
