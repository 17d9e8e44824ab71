#![no_main]
//! `client_connection`: see `snowsocket_fuzz::oracle::client_connection`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| snowsocket_fuzz::oracle::client_connection(data));
