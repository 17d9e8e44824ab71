#![no_main]
//! `handshake_response`: see `snowsocket_fuzz::oracle::handshake_response`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| snowsocket_fuzz::oracle::handshake_response(data));
