#![no_main]
//! `handshake_request`: see `snowsocket_fuzz::oracle::handshake_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| snowsocket_fuzz::oracle::handshake_request(data));
